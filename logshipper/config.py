"""`hostwatch ship` configuration: one frozen object per section, every default named once.

The YAML file has the same sections and keys as the flags (`kafka.brokers` is `--kafka.brokers`);
unknown keys are an error naming the file and key (hostwatch.core.config).
"""

from __future__ import annotations

import re
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
DEFAULT_BUFFER_SEGMENT_BYTES = 8 << 20
DEFAULT_BUFFER_SYNC_INTERVAL = 0.2


DEFAULT_KAFKA_COMPRESSION = "lz4"
DEFAULT_KAFKA_LINGER_MS = 5
# an in-flight event is held by librdkafka and, packed with its run, by the sink until the run's report
# (~0.6-0.8 KB each, so this bounds ~30 MB; a broker stall at the bound peaked at 90 MB RSS). Measured
# into noida-db (bench/shipper_throughput.py, medians of 3) once the disk buffer stopped writing what
# Kafka takes at once: 10k 343k lines/s at 3.07 us/line, 20k 376k at 2.90, 30k and 50k no better.
DEFAULT_KAFKA_MAX_IN_FLIGHT_EVENTS = 20_000
DEFAULT_KAFKA_RETRY_BACKOFF_MS = 100
DEFAULT_KAFKA_RETRY_BACKOFF_MAX_MS = 5_000
DEFAULT_KAFKA_FLUSH_TIMEOUT = 10.0
DEFAULT_KAFKA_MESSAGE_MAX_BYTES = 1_000_000  # librdkafka's message.max.bytes, under Kafka's broker default


@dataclass(frozen=True)
class KafkaConfig:
    brokers: tuple[str, ...] = option((), "Kafka bootstrap servers HOST:PORT,... (up: the embedded noida-db)")
    topic: str = option(DEFAULT_TOPIC, "topic, or a template over container labels: logs-{labels.app|default} "
                        "({labels.KEY}: that label's value; |default: when the label is missing)")
    compression: Literal["lz4", "zstd", "gzip", "snappy", "none"] = option(DEFAULT_KAFKA_COMPRESSION,
                                                                           "record batch compression")
    linger_ms: int = option(DEFAULT_KAFKA_LINGER_MS, "how long the producer waits to fill a record batch")
    max_in_flight_events: int = option(DEFAULT_KAFKA_MAX_IN_FLIGHT_EVENTS, "events handed to the producer and not "
                                       "yet acknowledged")
    retry_backoff_ms: int = option(DEFAULT_KAFKA_RETRY_BACKOFF_MS, "first retry backoff; doubles up to "
                                   "retry_backoff_max_ms")
    retry_backoff_max_ms: int = option(DEFAULT_KAFKA_RETRY_BACKOFF_MAX_MS, "the longest retry backoff")
    message_max_bytes: int = option(DEFAULT_KAFKA_MESSAGE_MAX_BYTES, "the largest request the producer sends "
                                    "(librdkafka message.max.bytes); a larger record is dropped (counted); raise "
                                    "it with the brokers' message.max.bytes", parse=parse_size)
    flush_timeout: float = option(DEFAULT_KAFKA_FLUSH_TIMEOUT, "on stop, how long undelivered events may take "
                                  "(what is left stays in the disk buffer)", parse=parse_duration)

    def __post_init__(self) -> None:
        from logshipper.sinks.topic import TopicTemplate  # pure; validates the template's syntax

        TopicTemplate(self.topic)
        if self.max_in_flight_events < 1:
            raise ValueError("kafka.max_in_flight_events must be at least 1")
        if not 0 < self.retry_backoff_ms <= self.retry_backoff_max_ms:
            raise ValueError("kafka: 0 < retry_backoff_ms <= retry_backoff_max_ms is required")
        if not 1000 <= self.message_max_bytes <= 1_000_000_000:
            raise ValueError("kafka.message_max_bytes must be between 1000 and 1000000000 (librdkafka's range)")
        if self.linger_ms < 0 or self.flush_timeout < 0:
            raise ValueError("kafka.linger_ms and kafka.flush_timeout must not be negative")


@dataclass(frozen=True)
class ForwardConfig:
    enabled: bool = option(True, "serve the fluentd forward protocol (Docker's fluentd log driver, fluent-logger)")
    listen_address: str = option(DEFAULT_FORWARD_ADDRESS, "forward protocol TCP (and heartbeat UDP) address")
    shared_key: str | None = option(None, "require the HELO/PING/PONG handshake with this shared key")
    self_hostname: str = option("", "hostname sent in the handshake (default: this host's name)")
    users: tuple[str, ...] = option((), "with shared_key, also require one of these USER:PASSWORD logins "
                                    "(repeatable)", repeat=True)
    max_connections: int = option(1024, "client connections served at once (Docker opens one per container)")
    max_buffer_bytes: int = option(16 << 20, "bytes one connection may buffer: the largest forward message taken "
                                   "(e.g. 16m)", parse=parse_size)
    max_decompressed_bytes: int = option(64 << 20, "the largest CompressedPackedForward payload once decompressed",
                                         parse=parse_size)
    partial_timeout: float = option(5.0, "a Docker partial message whose last piece does not come is sent as it "
                                    "is after this long", parse=parse_duration)


DEFAULT_GELF_CHUNK_TIMEOUT = 5.0  # Graylog's: every chunk of a message within 5 s
DEFAULT_GELF_MAX_PENDING_MESSAGES = 10_000
DEFAULT_GELF_MAX_PENDING_BYTES = 64 << 20
DEFAULT_GELF_UDP_RECEIVE_BUFFER = 8 << 20
DEFAULT_GELF_UDP_QUEUE_EVENTS = 10_000


@dataclass(frozen=True)
class GelfConfig:
    enabled: bool = option(True, "receive GELF (Docker's gelf log driver) on UDP and TCP")
    listen_address: str = option(DEFAULT_GELF_ADDRESS, "GELF UDP and TCP address")
    chunk_timeout: float = option(DEFAULT_GELF_CHUNK_TIMEOUT, "seconds an incomplete chunked message waits for "
                                  "its chunks", parse=parse_duration)
    max_pending_messages: int = option(DEFAULT_GELF_MAX_PENDING_MESSAGES, "incomplete chunked messages held at "
                                       "once (chunk flood bound)")
    max_pending_bytes: int = option(DEFAULT_GELF_MAX_PENDING_BYTES, "bytes of incomplete chunked messages held at "
                                    "once; beyond it the oldest incomplete message is dropped (counted)",
                                    parse=parse_size)
    udp_receive_buffer: int = option(DEFAULT_GELF_UDP_RECEIVE_BUFFER, "SO_RCVBUF of the UDP socket: the burst the "
                                     "kernel holds while the shipper is busy", parse=parse_size)
    udp_queue_events: int = option(DEFAULT_GELF_UDP_QUEUE_EVENTS, "decoded UDP events waiting for the pipeline; "
                                   "UDP has no ack, so beyond it new events are dropped (counted)")

    def __post_init__(self) -> None:
        if self.chunk_timeout <= 0:
            raise ValueError("gelf.chunk_timeout must be positive")
        for key in ("max_pending_messages", "max_pending_bytes", "udp_queue_events"):
            if getattr(self, key) < 1:
                raise ValueError(f"gelf.{key} must be at least 1")


# a json-file line ends in its nanosecond time, so a first line within this cap identifies its file
DEFAULT_FINGERPRINT_BYTES = 4096
MIN_FINGERPRINT_BYTES = 64
MIN_READ_BYTES = 4096


@dataclass(frozen=True)
class DockerConfig:
    enabled: bool = option(True, "tail Docker json-file logs")
    logs_glob: tuple[str, ...] = option((), "json-file logs to tail, with their rotated siblings .1 .2 ... "
                                        "(repeatable; default: the runtime's state root and "
                                        "/var/lib/docker/containers)", repeat=True)
    scan_interval: float = option(1.0, "how often globs are re-scanned for new files", parse=parse_duration)
    poll_interval: float = option(0.1, "how often an idle file is checked for new lines", parse=parse_duration)
    fingerprint_bytes: int = option(DEFAULT_FINGERPRINT_BYTES, "a file is identified by the checksum of its first "
                                    "line, or of this many bytes when the first line is longer")
    remove_after: float = option(30.0, "a deleted file is released this long after its last line was read",
                                 parse=parse_duration)
    read_bytes: int = option(256 << 10, "bytes read from a file per batch", parse=parse_size)
    checkpoint_interval: float = option(0.1, "how often delivered positions are written to the checkpoint file",
                                        parse=parse_duration)
    partial_timeout: float = option(1.0, "a 16 KiB partial line whose continuation has not come after this long "
                                    "idle is shipped as it is", parse=parse_duration)

    def __post_init__(self) -> None:
        if self.fingerprint_bytes < MIN_FINGERPRINT_BYTES:
            raise ValueError(f"docker.fingerprint_bytes must be at least {MIN_FINGERPRINT_BYTES}")
        if self.read_bytes < MIN_READ_BYTES:
            raise ValueError(f"docker.read_bytes must be at least {MIN_READ_BYTES}")
        for key in ("scan_interval", "poll_interval", "checkpoint_interval"):
            if getattr(self, key) <= 0:
                raise ValueError(f"docker.{key} must be positive")


DEFAULT_JOURNALD_BATCH_EVENTS = 1024
DEFAULT_JOURNALD_PARTIAL_TIMEOUT = 5.0  # Docker never finishes a line whose container died mid-way
DEFAULT_JOURNALD_RESTART_BACKOFF_MAX = 5.0
JOURNAL_MATCH_RE = re.compile(r"[A-Z0-9_]+=.*", re.DOTALL)


@dataclass(frozen=True)
class JournaldConfig:
    enabled: bool = option(False, "read the systemd journal")
    namespace: str | None = option(None, "journal namespace (journalctl --namespace)")
    directory: Path | None = option(None, "journal directory (journalctl --directory)")
    file: Path | None = option(None, "one journal file (journalctl --file; not followed into the files it is "
                               "rotated into: give the directory for that)")
    journalctl: str = option("journalctl", "the journalctl binary")
    matches: tuple[str, ...] = option((), "journalctl matches FIELD=VALUE (repeatable; one field's values are "
                                      "ORed, different fields ANDed), e.g. CONTAINER_NAME=web", repeat=True)
    since_now: bool = option(False, "with no saved cursor, start at the journal's end instead of its beginning")
    batch_events: int = option(DEFAULT_JOURNALD_BATCH_EVENTS, "journal entries per batch at most")
    partial_timeout: float = option(DEFAULT_JOURNALD_PARTIAL_TIMEOUT, "a partial message (Docker's 16 KiB pieces) "
                                    "still missing its last piece after this long is shipped as it is",
                                    parse=parse_duration)
    restart_backoff_max: float = option(DEFAULT_JOURNALD_RESTART_BACKOFF_MAX, "longest wait before journalctl is "
                                        "restarted after it exits", parse=parse_duration)

    def __post_init__(self) -> None:
        chosen = [k for k in ("namespace", "directory", "file") if getattr(self, k) is not None]
        if len(chosen) > 1:
            raise ValueError(f"journald: give one of namespace, directory or file, not {' and '.join(chosen)}")
        if self.batch_events < 1:
            raise ValueError("journald.batch_events must be at least 1")
        if self.partial_timeout <= 0 or self.restart_backoff_max <= 0:
            raise ValueError("journald.partial_timeout and journald.restart_backoff_max must be positive")
        for m in self.matches:
            if m != "+" and not JOURNAL_MATCH_RE.fullmatch(m):
                raise ValueError(f"journald.matches: {m!r} is not FIELD=VALUE (FIELD in A-Z, 0-9, _) or +")


@dataclass(frozen=True)
class StateConfig:
    dir: Path = option(DEFAULT_STATE_DIR, "checkpoints and the disk buffer")


@dataclass(frozen=True)
class BufferConfig:
    type: Literal["disk", "memory"] = option("disk", "disk survives a crash and a long broker outage")
    max_bytes: int = option(0, "the buffer's bound (e.g. 256m); 0: 256m for disk, 64m for memory", parse=parse_size)
    when_full: Literal["block", "drop_newest"] = option("block", "block: stop reading; drop_newest: count and drop")
    segment_bytes: int = option(DEFAULT_BUFFER_SEGMENT_BYTES, "disk buffer segment size", parse=parse_size)
    sync_interval: float = option(DEFAULT_BUFFER_SYNC_INTERVAL, "disk buffer: how often written batches are "
                                  "fsynced and the delivered position saved", parse=parse_duration)

    def __post_init__(self) -> None:
        if self.max_bytes < 0:
            raise ValueError("buffer.max_bytes must not be negative")
        if self.segment_bytes < 1 or self.sync_interval <= 0:
            raise ValueError("buffer.segment_bytes and buffer.sync_interval must be positive")

    @property
    def bound(self) -> int:
        """max_bytes, or the default of the buffer's type."""
        if self.max_bytes:
            return self.max_bytes
        return DEFAULT_BUFFER_MAX_BYTES if self.type == "disk" else DEFAULT_MEMORY_BUFFER_MAX_BYTES


DEFAULT_MULTILINE_FLUSH_TIMEOUT = 1.0
DEFAULT_MULTILINE_MAX_LINES = 500


@dataclass(frozen=True)
class MultilineConfig:
    enabled: bool = option(False, "join Java stack traces, Python tracebacks and Go panics into one event")
    flush_timeout: float = option(DEFAULT_MULTILINE_FLUSH_TIMEOUT, "an incomplete multi-line event is flushed "
                                  "after this long", parse=parse_duration)
    max_lines: int = option(DEFAULT_MULTILINE_MAX_LINES, "lines joined into one event at most")

    def __post_init__(self) -> None:
        if self.max_lines < 1:
            raise ValueError("multiline.max_lines must be at least 1")
        if self.flush_timeout <= 0:
            raise ValueError("multiline.flush_timeout must be positive")


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
