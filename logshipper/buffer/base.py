"""The buffer between the encoders and the sink: records already encoded, with their batch's ack.

`memory` and `disk` implement `Buffer`; `when_full` is `block` (push waits: backpressure) or
`drop_newest` (push discards the batch, counts it, and acks it so the source moves on).

A batch's records are kept as `Run`s: consecutive records with one topic and key hold only their
values (a docker_json batch is one run: one file, one container). That is what the buffers frame and
the sink produces from, with no object per record; `records` gives them one by one when asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
from operator import attrgetter
from typing import Protocol

from hostwatch.core.events import Ack


@dataclass(slots=True)
class Record:
    topic: str
    key: bytes | None  # the container id: one container's lines stay in one partition, in order
    value: bytes  # one ECS JSON document


@dataclass(slots=True)
class Run:
    """Consecutive records of a batch with the same topic and key."""

    topic: str
    key: bytes | None
    values: list[bytes]

    @property
    def nbytes(self) -> int:
        return sum(map(len, self.values)) + (len(self.key or b"") + len(self.topic)) * len(self.values)


_topic_key = attrgetter("topic", "key")


def runs_of(records: list[Record]) -> list[Run]:
    """Records grouped into runs, in order."""
    return [Run(topic, key, [r.value for r in group]) for (topic, key), group in groupby(records, _topic_key)]


class RecordBatch:
    """The records of one source batch, its ack, and what the buffer's telemetry needs.

    Built from `runs` (the pipeline) or from a list of `records` (one object each). Whichever was asked
    for last is the batch: reading `records` of a batch built from runs turns it into a list of
    Records that may be changed in place; `runs` of a batch built from records groups them afresh.
    """

    __slots__ = ("_runs", "_records", "_handed_over", "ack", "source", "oldest_ns", "nbytes", "replayable")

    def __init__(self, records: list[Record] | None = None, ack: Ack | None = None, source: str = "",
                 oldest_ns: int = 0, nbytes: int = 0, *, runs: list[Run] | None = None,
                 replayable: bool = False) -> None:
        self._records = records if records is not None or runs is not None else []
        self._runs = runs if records is None else None
        self._handed_over: int | None = None  # the record count once forget_values() dropped them
        self.ack = ack  # None for batches replayed from disk after a restart
        self.source = source
        self.oldest_ns = oldest_ns  # event time of its oldest record (for the oldest-buffered-age gauge)
        self.nbytes = nbytes  # sum of value, key and topic sizes; set by `sized()`
        self.replayable = replayable  # its source reads it again after a restart until the ack (core Batch)

    @property
    def runs(self) -> list[Run]:
        if self._runs is not None:
            return self._runs
        assert self._records is not None
        return runs_of(self._records)

    @property
    def records(self) -> list[Record]:
        if self._records is None:
            assert self._runs is not None
            self._records = [Record(r.topic, r.key, v) for r in self._runs for v in r.values]
            self._runs = None
        return self._records

    def __len__(self) -> int:
        if self._handed_over is not None:
            return self._handed_over
        if self._runs is not None:
            return sum(len(r.values) for r in self._runs)
        assert self._records is not None
        return len(self._records)

    def forget_values(self) -> None:
        """The producer holds copies of every record now (and the sink's run reports a packed one, for a
        retry): drop the batch's own objects. The count, nbytes and ack stay for the release."""
        count = len(self)
        self._runs, self._records, self._handed_over = [], None, count

    def sized(self) -> RecordBatch:
        if self._runs is not None:
            self.nbytes = sum(r.nbytes for r in self._runs)
        else:
            assert self._records is not None
            self.nbytes = sum(len(r.value) + len(r.key or b"") + len(r.topic) for r in self._records)
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
