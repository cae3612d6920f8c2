"""`hostwatch ship` configuration: one frozen object per section, every default named once.

The YAML file has the same sections and keys as the flags (`kafka.brokers` is `--kafka.brokers`);
unknown keys are an error naming the file and key (hostwatch.core.config).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hostwatch.core.config import option, section
from hostwatch.core.paths import DATA_DIR
from hostwatch.core.timefmt import parse_duration
from hostwatch.core.units import parse_size

DEFAULT_TOPIC = "hostwatch-logs"
DEFAULT_FORWARD_ADDRESS = "127.0.0.1:24224"
DEFAULT_GELF_ADDRESS = "127.0.0.1:12201"
DEFAULT_STATE_DIR = DATA_DIR / "shipper"
DEFAULT_MAX_MESSAGE_BYTES = 1 << 20  # a longer message is rejected (counted), not truncated
DEFAULT_BUFFER_MAX_BYTES = 256 << 20
DEFAULT_MEMORY_BUFFER_MAX_BYTES = 64 << 20


@dataclass(frozen=True)
class KafkaConfig:
    brokers: tuple[str, ...] = option((), "Kafka bootstrap servers HOST:PORT,... (up: the embedded noida-db)")
    topic: str = option(DEFAULT_TOPIC, "topic, or a template over container labels: logs-{labels.app|default}")
    compression: Literal["lz4", "zstd", "gzip", "snappy", "none"] = option("lz4", "record batch compression")
    linger_ms: int = option(5, "how long the producer waits to fill a record batch")
    max_in_flight_events: int = option(100_000, "events handed to the producer and not yet acknowledged")
    retry_backoff_ms: int = option(100, "first retry backoff; doubles up to retry_backoff_max_ms")
    retry_backoff_max_ms: int = option(5_000, "the longest retry backoff")


@dataclass(frozen=True)
class ForwardConfig:
    enabled: bool = option(True, "serve the fluentd forward protocol (Docker's fluentd log driver, fluent-logger)")
    listen_address: str = option(DEFAULT_FORWARD_ADDRESS, "forward protocol TCP (and heartbeat UDP) address")
    shared_key: str | None = option(None, "require the HELO/PING/PONG handshake with this shared key")
    self_hostname: str = option("", "hostname sent in the handshake (default: this host's name)")


@dataclass(frozen=True)
class GelfConfig:
    enabled: bool = option(True, "receive GELF (Docker's gelf log driver) on UDP and TCP")
    listen_address: str = option(DEFAULT_GELF_ADDRESS, "GELF UDP and TCP address")
    chunk_timeout: float = option(5.0, "seconds an incomplete chunked message waits for its chunks",
                                  parse=parse_duration)
    max_pending_messages: int = option(10_000, "incomplete chunked messages held at once (chunk flood bound)")


@dataclass(frozen=True)
class DockerConfig:
    enabled: bool = option(True, "tail Docker json-file logs")
    logs_glob: tuple[str, ...] = option((), "json-file logs to tail (repeatable; default: the runtime's state "
                                        "root and /var/lib/docker/containers)", repeat=True)
    scan_interval: float = option(1.0, "how often globs are re-scanned for new files", parse=parse_duration)
    poll_interval: float = option(0.1, "how often an idle file is checked for new lines", parse=parse_duration)
    fingerprint_bytes: int = option(256, "bytes at the start of a file whose checksum identifies it")
    remove_after: float = option(30.0, "a deleted file is released this long after its last line was read",
                                 parse=parse_duration)
    read_bytes: int = option(256 << 10, "bytes read from a file per batch")


@dataclass(frozen=True)
class JournaldConfig:
    enabled: bool = option(False, "read the systemd journal")
    namespace: str | None = option(None, "journal namespace (journalctl --namespace)")
    directory: Path | None = option(None, "journal directory (journalctl --directory)")
    file: Path | None = option(None, "journal file (journalctl --file)")
    journalctl: str = option("journalctl", "the journalctl binary")


@dataclass(frozen=True)
class StateConfig:
    dir: Path = option(DEFAULT_STATE_DIR, "checkpoints and the disk buffer")


@dataclass(frozen=True)
class BufferConfig:
    type: Literal["disk", "memory"] = option("disk", "disk survives a crash and a long broker outage")
    max_bytes: int = option(DEFAULT_BUFFER_MAX_BYTES, "the buffer's bound (e.g. 256m)", parse=parse_size)
    when_full: Literal["block", "drop_newest"] = option("block", "block: stop reading; drop_newest: count and drop")
    segment_bytes: int = option(8 << 20, "disk buffer segment size", parse=parse_size)
    sync_interval: float = option(0.2, "disk buffer fsync interval", parse=parse_duration)


@dataclass(frozen=True)
class MultilineConfig:
    enabled: bool = option(False, "join Java stack traces, Python tracebacks and Go panics into one event")
    flush_timeout: float = option(1.0, "an incomplete multi-line event is flushed after this long",
                                  parse=parse_duration)
    max_lines: int = option(500, "lines joined into one event at most")


@dataclass(frozen=True)
class ShipperConfig:
    kafka: KafkaConfig = section(KafkaConfig)
    forward: ForwardConfig = section(ForwardConfig)
    gelf: GelfConfig = section(GelfConfig)
    docker: DockerConfig = section(DockerConfig)
    journald: JournaldConfig = section(JournaldConfig)
    state: StateConfig = section(StateConfig)
    buffer: BufferConfig = section(BufferConfig)
    multiline: MultilineConfig = section(MultilineConfig)
    max_message_bytes: int = option(DEFAULT_MAX_MESSAGE_BYTES, "longer messages are rejected and counted",
                                    parse=parse_size)
    host_name: str = option("", "host.name of every event (default: this host's name)")
