"""Value types shared by the log drivers: the message, the container info and the driver protocol."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

DAEMON_NAME = "hostwatch"  # what Docker's {{.DaemonName}} expands to ("docker" there)


@dataclass
class LogMessage:
    """One line (or one piece of a long line) read from a container's stdout or stderr.

    Docker's ``PartialLogMetaData`` maps to ``partial_id``/``partial_ordinal``/``partial_last``; it is present
    (``partial_id != ""``) on every piece of a split line, including the last one. ``partial`` is True on the
    pieces that do not end the line (metadata present and not last), which json-file writes without "\\n".
    """

    line: bytes  # content WITHOUT the trailing newline
    stream: str  # "stdout" | "stderr"
    timestamp_ns: int  # time.time_ns() when read
    partial: bool = False
    partial_id: str = ""
    partial_ordinal: int = 0  # 1-based
    partial_last: bool = False

    @property
    def has_partial_meta(self) -> bool:
        return bool(self.partial_id)


@dataclass
class LogInfo:
    """Docker's logger.Info: what a driver knows about the container it logs for."""

    container_id: str  # 64 hex
    container_name: str  # without leading "/"
    image_name: str
    image_id: str
    command: list[str] = field(default_factory=list)
    created: str = ""  # RFC3339Nano
    labels: dict[str, str] = field(default_factory=dict)
    env: list[str] = field(default_factory=list)
    log_path: str = ""  # for json-file: <state_dir>/<id>-json.log
    opts: dict[str, str] = field(default_factory=dict)  # --log-opt k=v
    cache_path: str = ""  # dual logging: where journald/fluentd/gelf keep a readable local copy


class LogDriver(Protocol):
    """What the runtime's monitor talks to. ``log`` never raises for endpoint errors and never blocks for long."""

    @property
    def dropped(self) -> int:
        """Messages dropped so far (buffer full, endpoint unreachable, write error)."""
        ...

    def log(self, msg: LogMessage) -> None: ...

    def close(self) -> None:
        """Flush what can be flushed within ~2 s, then stop. Idempotent."""
        ...


class NoneDriver:
    """The "none" driver: discards everything."""

    def __init__(self) -> None:
        self.dropped = 0

    def log(self, msg: LogMessage) -> None:
        return None

    def close(self) -> None:
        return None
