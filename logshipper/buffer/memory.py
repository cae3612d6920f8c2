"""The memory buffer: a bounded FIFO of record batches. Nothing survives a restart, but nothing is
lost either for sources that checkpoint: a batch's ack (its source's commit) runs only on release,
so what was buffered and not delivered is read again from the source's checkpoint."""

from __future__ import annotations

import asyncio
import logging
from collections import deque

from logshipper.buffer.base import RecordBatch
from logshipper.buffer.room import BufferClosed, Room, age_seconds, run_ack
from logshipper.config import BufferConfig
from logshipper.telemetry import ShipperMetrics

log = logging.getLogger("hostwatch.logshipper.buffer")


class MemoryBuffer:
    def __init__(self, config: BufferConfig, metrics: ShipperMetrics) -> None:
        self._room = Room(config.bound, config.when_full, metrics)
        self._queue: deque[RecordBatch] = deque()
        self._ready = asyncio.Event()
        self._in_flight: dict[int, RecordBatch] = {}  # id(batch) -> batch: popped, not yet released

    async def open(self) -> None:
        self._room.register_gauges(self.oldest_age_seconds)

    async def close(self) -> None:
        self._room.close()
        self._ready.set()

    async def push(self, batch: RecordBatch) -> None:
        if not len(batch):
            if self._room.closed:
                raise BufferClosed("buffer closed")
            run_ack(batch.ack)
            return
        if not batch.nbytes:
            batch.sized()
        if not await self._room.admit(batch, batch.nbytes):
            return
        self._room.add(len(batch), batch.nbytes)
        self._queue.append(batch)
        self._ready.set()

    async def pop(self) -> RecordBatch:
        while True:
            if self._room.closed:
                raise BufferClosed("buffer closed")
            if self._queue:
                break
            self._ready.clear()
            await self._ready.wait()
        batch = self._queue.popleft()
        self._in_flight[id(batch)] = batch
        return batch

    def release(self, batch: RecordBatch) -> None:
        if self._in_flight.pop(id(batch), None) is None:
            log.warning("release of a batch this buffer did not hand out (or released twice): ignored")
            return
        self._room.remove(len(batch), batch.nbytes)
        run_ack(batch.ack)

    @property
    def events(self) -> int:
        return self._room.events

    @property
    def bytes(self) -> int:
        return self._room.bytes

    def oldest_age_seconds(self, now_ns: int) -> float:
        oldest = min((b.oldest_ns for b in self._in_flight.values()), default=None)
        if self._queue and (oldest is None or self._queue[0].oldest_ns < oldest):
            oldest = self._queue[0].oldest_ns
        return age_seconds(oldest, now_ns)
