"""The buffer between the encoders and the sink: records already encoded, with their batch's ack.

`memory` and `disk` implement `Buffer`; `when_full` is `block` (push waits: backpressure) or
`drop_newest` (push discards the batch, counts it, and acks it so the source moves on).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from hostwatch.core.events import Ack


@dataclass(slots=True)
class Record:
    topic: str
    key: bytes | None  # the container id: one container's lines stay in one partition, in order
    value: bytes  # one ECS JSON document


@dataclass(slots=True)
class RecordBatch:
    records: list[Record]
    ack: Ack | None = None  # None for batches replayed from disk after a restart
    source: str = ""
    oldest_ns: int = 0  # event time of its oldest record (for the oldest-buffered-age gauge)
    nbytes: int = 0  # sum of key and value sizes; set by `sized()`

    def sized(self) -> RecordBatch:
        self.nbytes = sum(len(r.value) + len(r.key or b"") + len(r.topic) for r in self.records)
        return self


class Buffer(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def push(self, batch: RecordBatch) -> None:
        """Accept a batch; waits for room (block) or drops and acks it (drop_newest) when full."""
        ...

    async def pop(self) -> RecordBatch:
        """The oldest batch not yet handed to the sink; waits for one."""
        ...

    def release(self, batch: RecordBatch) -> None:
        """The sink delivered `batch`: free its room, advance the durable read position, run its ack."""
        ...

    @property
    def events(self) -> int: ...

    @property
    def bytes(self) -> int: ...

    def oldest_age_seconds(self, now_ns: int) -> float: ...
