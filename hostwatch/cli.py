"""The composition root: the only module that imports the sibling packages."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from hostwatch.core.exits import EXIT_USAGE as USAGE_ERROR
from hostwatch.core.paths import DATA_DIR


class Parser(argparse.ArgumentParser):
    """Bad flags get one line on stderr and exit code 125, like the Docker CLI."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(USAGE_ERROR)


def build_parser(verb: str | None = None) -> Parser:
    """Every command; with `verb`, just the group that registers it (none for a word of no group), so
    `hostwatch run` does not import the shipper, the indexer, alerting and dashboards, nor `hostwatch ship`
    the others (about 200 ms a call)."""
    parser = Parser(prog="hostwatch", description=(
        "Observability and log pipeline for container hosts: cAdvisor-compatible metrics, "
        "log shipping, alerting, and a minimal container runtime."))
    parser.add_argument("--version", action=_Version, nargs=0, help="show the version and exit")
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND", required=True)
    for verbs, register in _groups():
        if verb is None or verb in verbs:
            register(sub)
    return parser


def _groups() -> list[tuple[frozenset[str], Callable[[argparse._SubParsersAction], None]]]:  # type: ignore[type-arg]
    """Each group of verbs, in --help's order, with the function that registers it (importing its module)."""
    return [
        (frozenset({"up"}), _register_up),
        (RUNTIME_VERBS, _register_runtime),
        (frozenset({"exporter", "stats"}), _register_exporter),
        (frozenset({"ship"}), _register_ship),
        (frozenset({"index", "search"}), _register_index),
        (frozenset({"alerting"}), _register_alerting),
        (frozenset({"dashboards"}), _register_dashboards),
    ]


# what runtime/command.py registers (tests/unit/hostwatch/test_cli.py holds each group to its verbs)
RUNTIME_VERBS = frozenset({"images", "rootfs", "import", "commit", "rmi", "diff", "run", "ps", "inspect", "logs",
                           "stop", "kill", "rm"})


def _register_runtime(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from runtime.command import register

    register(sub)


def _register_exporter(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from exporter.command import register

    register(sub)


def _register_ship(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from logshipper.command import register

    register(sub)


def _register_index(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from logshipper.indexer.command import register

    register(sub)


def _register_dashboards(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from dashboards.command import register

    register(sub)


def _register_alerting(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from alerting.command import register
    from alerting.oncall.command import register_who

    register(sub, subcommands=[register_who])


def _parser_for(argv: Sequence[str]) -> Parser:
    """Only the group of argv's verb (no group at all for `--version`); every group for --help or an
    unknown verb, so that argparse can list them."""
    first = argv[0] if argv else None
    if first == "--version" or any(first in verbs for verbs, _ in _groups()):
        return build_parser(first)
    return build_parser()


class _Version(argparse.Action):
    """--version, reading the installed version only when asked (importlib.metadata costs ~40 ms)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        print(f"hostwatch {_version()}")
        parser.exit()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hostwatch")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _register_up(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from hostwatch.core.config import add_flags
    from hostwatch.embedded import DEFAULT_ELASTICSEARCH_PORT, DEFAULT_KAFKA_PORT
    from logshipper.config import ShipperConfig

    p = sub.add_parser("up", help="run the main job: Kafka + Elasticsearch (embedded), exporter on :9100, log "
                                  "shipper, demo workloads, until Ctrl-C",
                       description="The main job on embedded defaults. Every `hostwatch ship` flag applies to "
                                   "its shipper; --kafka.brokers uses an existing Kafka instead of noida-db.")
    p.add_argument("--data-dir", default=str(DATA_DIR), help="where state and data live (default %(default)s)")
    p.add_argument("--web.listen-address", dest="listen_address", default=":9100",
                   help="exporter address, also serving every component's metrics (default %(default)s)")
    p.add_argument("--embedded.kafka-port", dest="embedded_kafka_port", type=int, default=DEFAULT_KAFKA_PORT,
                   help="port of the embedded Kafka (default %(default)s)")
    p.add_argument("--embedded.elasticsearch-port", dest="embedded_es_port", type=int,
                   default=DEFAULT_ELASTICSEARCH_PORT, help="port of the embedded Elasticsearch (default %(default)s)")
    p.add_argument("--elasticsearch.hosts", dest="elasticsearch_hosts", default=None, metavar="URL[,URL]",
                   help="index into this Elasticsearch instead of the embedded one")
    p.add_argument("--alerting.listen-address", dest="alerting_listen_address", default=":9093",
                   help="the alerting replica's Alertmanager API (default %(default)s)")
    p.add_argument("--alerting.external-url", dest="alerting_external_url", default=None, metavar="URL",
                   help="URL under which people reach the alerting page (ack links in pages)")
    p.add_argument("--alerting.config-file", dest="alerting_config_file", default=None, metavar="FILE",
                   help="Alertmanager-style routing for the alerting replica (default: a receiver that notifies "
                        "nobody)")
    p.add_argument("--no-demo", dest="demo", action="store_false", help="do not start the demo workloads")
    add_flags(p, ShipperConfig)
    p.set_defaults(func=_up)


def _up(a: argparse.Namespace) -> int:
    import asyncio
    import socket

    from alerting.service import AlertingService
    from alerting.settings import AlertingConfig
    from exporter.config import ExporterConfig
    from exporter.server import ExporterService
    from hostwatch.core.addresses import url_for
    from hostwatch.core.config import apply_flags, with_values
    from hostwatch.core.paths import DOCKER_CONTAINERS
    from hostwatch.embedded import EmbeddedNoida
    from hostwatch.up import NamedService, Up
    from logshipper.config import ShipperConfig
    from logshipper.indexer.config import IndexerConfig
    from logshipper.indexer.service import Indexer
    from logshipper.pipeline import Shipper

    data_dir = Path(a.data_dir)
    state_root = data_dir / "containers"
    services: list[NamedService] = []
    ship = with_values(ShipperConfig(), {
        "state.dir": data_dir / "shipper",
        "docker.logs_glob": [f"{state_root}/*/*-json.log*", f"{DOCKER_CONTAINERS}/*/*-json.log*"],
    })
    ship = apply_flags(ship, a)
    es_hosts = a.elasticsearch_hosts
    if not ship.kafka.brokers or not es_hosts:
        noida = EmbeddedNoida(data_dir / "noida", a.embedded_kafka_port, a.embedded_es_port)
        services.append(NamedService("kafka+elasticsearch", noida,
                                     f"noida-db: Kafka {noida.bootstrap}, Elasticsearch {noida.elasticsearch_url}"))
        if not ship.kafka.brokers:
            ship = with_values(ship, {"kafka.brokers": noida.bootstrap})
        es_hosts = es_hosts or noida.elasticsearch_url
    shipper = Shipper(ship, state_root_dir=state_root)
    services.append(NamedService("shipper", shipper, _describe_shipper(ship)))
    index = with_values(IndexerConfig(), {"kafka.brokers": ship.kafka.brokers, "kafka.topic": ship.kafka.topic,
                                          "elasticsearch.hosts": es_hosts})
    indexer = Indexer(index)
    search = f"hostwatch search --elasticsearch.hosts {index.elasticsearch.hosts[0]} --container demo-ticker --since 5m"
    services.append(NamedService("indexer", indexer, f"{ship.kafka.topic} -> Elasticsearch "
                                 f"{','.join(index.elasticsearch.hosts)}; try: {search}"))
    alert_cfg = with_values(AlertingConfig(), {"web.listen_address": a.alerting_listen_address,
                                               "kafka.brokers": ship.kafka.brokers,
                                               "state.dir": data_dir / "alerting",
                                               "cluster.replica_id": socket.gethostname()})
    if a.alerting_external_url:
        alert_cfg = with_values(alert_cfg, {"web.external_url": a.alerting_external_url})
    if a.alerting_config_file:
        alert_cfg = with_values(alert_cfg, {"config.file": a.alerting_config_file})
    alerting = AlertingService(alert_cfg)
    services.append(NamedService("alerting", alerting, url_for(a.alerting_listen_address, "/")))
    exporter = ExporterService(ExporterConfig(listen_address=a.listen_address, state_root=state_root),
                               telemetry=[shipper.metrics, indexer.metrics, alerting.metrics.registry])
    services.append(NamedService("exporter", exporter, url_for(a.listen_address, "/metrics")))
    return asyncio.run(Up(data_dir, services, demo=a.demo).run())


def _describe_shipper(ship: object) -> str:
    from logshipper.config import ShipperConfig

    assert isinstance(ship, ShipperConfig)
    parts = [f"Kafka {','.join(ship.kafka.brokers)} topic {ship.kafka.topic}"]
    if ship.forward.enabled:
        parts.append(f"fluentd forward on {ship.forward.listen_address}")
    if ship.gelf.enabled:
        parts.append(f"gelf on udp+tcp {ship.gelf.listen_address}")
    if ship.docker.enabled:
        parts.append("tailing json-file logs")
    if ship.journald.enabled:
        parts.append("reading journald")
    return "; ".join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser_for(argv).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - one clear line, not a traceback, for the user
        print(f"hostwatch {args.cmd}: {e}", file=sys.stderr)
        return 1
