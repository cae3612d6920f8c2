"""The log event every source produces and every sink consumes, and the batch its delivery status
travels with.

A source emits `Batch`es; its `ack` runs once every event of the batch is delivered (Kafka has
acknowledged it, or a configured drop policy discarded it), on the event loop. That is the only way a
source learns it may commit its position (file offset, journald cursor, forward-protocol chunk).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# input.type values: which source an event came through
DOCKER_JSON = "docker_json"
JOURNALD = "journald"
FLUENT_FORWARD = "fluent_forward"
GELF = "gelf"
INPUT_TYPES = (DOCKER_JSON, JOURNALD, FLUENT_FORWARD, GELF)


@dataclass(slots=True)
class LogEvent:
    time_ns: int  # when the source says it was written (nanoseconds since the epoch)
    message: str  # one line, without the trailing newline
    input_type: str  # one of INPUT_TYPES
    event_id: str  # deterministic from the source position, so a re-sent event is recognised downstream
    stream: str | None = None  # stdout | stderr
    container_id: str | None = None  # the full id when known
    container_name: str | None = None
    image: str | None = None
    labels: dict[str, str] | None = None
    level: str | None = None  # log.level: syslog keyword (err, warning, info, debug, ...) where known
    file_path: str | None = None  # log.file.path
    offset: int | None = None  # log.offset: byte offset of the line in file_path
    fields: dict[str, Any] | None = None  # more ECS fields by dotted name, e.g. {"log.syslog.facility.code": 3}


Ack = Callable[[], None]


@dataclass(slots=True)
class Batch:
    events: list[LogEvent]
    ack: Ack | None = None  # called once, when every event is delivered or deliberately dropped
    source: str = ""  # the source's name, for telemetry
    # The source reads these events again after a restart until `ack` has run (it commits a file offset
    # or a journal cursor in the ack): the disk buffer need not write them while they are delivered soon.
    replayable: bool = False


@dataclass(slots=True)
class OrderedCommitter:
    """Commit positions in the order they were read, whatever order deliveries complete in.

    `track(pos)` when a batch ending at `pos` is handed on; `done(pos)` when it is delivered; the
    return value of `done` is the highest position whose batch and every earlier one are delivered
    (None when that did not move), which is what a file offset or cursor may advance to.
    """

    _pending: dict[int, bool] = field(default_factory=dict)  # seq -> delivered, insertion-ordered
    _positions: dict[int, Any] = field(default_factory=dict)
    _next: int = 0

    def track(self, pos: Any) -> int:
        seq = self._next
        self._next += 1
        self._pending[seq] = False
        self._positions[seq] = pos
        return seq

    def done(self, seq: int) -> Any | None:
        if seq not in self._pending:
            return None
        self._pending[seq] = True
        committed = None
        while self._pending:
            s = next(iter(self._pending))
            if not self._pending[s]:
                break
            del self._pending[s]
            committed = self._positions.pop(s)
        return committed

    @property
    def outstanding(self) -> int:
        return len(self._pending)
