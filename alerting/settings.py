"""`hostwatch alerting` service settings (flags as Alertmanager spells them where it has them).

The Alertmanager YAML (routes, receivers, inhibit rules) is `--config.file`, parsed by alerting/config.py;
these are the process's own settings, through hostwatch.core.config like every component's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alerting.replog import DEFAULT_TOPIC
from hostwatch.core.config import option, section
from hostwatch.core.timefmt import parse_duration

DEFAULT_LISTEN_ADDRESS = ":9093"
DEFAULT_PEER_TIMEOUT = 15.0  # --cluster.peer-timeout, Alertmanager's default


@dataclass(frozen=True)
class ConfigSection:
    file: Path | None = option(None, "Alertmanager configuration file (route, receivers, inhibit_rules, and the "
                                     "on-call sections people, schedules, escalation_policies; default: a built-in "
                                     "one whose receiver notifies nobody)")


@dataclass(frozen=True)
class WebSection:
    listen_address: str = option(DEFAULT_LISTEN_ADDRESS, "address of the API, the page at /, /metrics and health "
                                                         "endpoints")
    external_url: str | None = option(None, "URL under which this service is reachable (webhook externalURL and "
                                            "the acknowledge links in pages; default http://<hostname>:<port>)")


@dataclass(frozen=True)
class KafkaSection:
    brokers: tuple[str, ...] = option((), "Kafka bootstrap servers HOST:PORT,...: the replicated log shared by "
                                          "replicas (none: a local journal in --state.dir, one replica)")
    topic: str = option(DEFAULT_TOPIC, "compacted topic holding alerts, silences, acks, notification log, claims")


@dataclass(frozen=True)
class StateSection:
    dir: Path | None = option(None, "local state without Kafka (a journal of the same records); none: memory only")


@dataclass(frozen=True)
class ClusterSection:
    peer_timeout: float = option(DEFAULT_PEER_TIMEOUT, "claim lease: a replica whose claim goes this long without "
                                 "a heartbeat is taken over by the next; also the fail-open wait per position when "
                                 "Kafka is unreachable", parse=parse_duration)
    replica_id: str = option("", "this replica's name in the log (default: the hostname and a random suffix)")


@dataclass(frozen=True)
class AlertingConfig:
    config: ConfigSection = section(ConfigSection)
    web: WebSection = section(WebSection)
    kafka: KafkaSection = section(KafkaSection)
    state: StateSection = section(StateSection)
    cluster: ClusterSection = section(ClusterSection)
