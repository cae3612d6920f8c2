"""What the memory and disk buffers share: the byte bound with its `block`/`drop_newest` policy, the
events/bytes totals, running acks, and the buffer gauges."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from hostwatch.core.events import Ack
from logshipper.buffer.base import RecordBatch
from logshipper.telemetry import ShipperMetrics, now_ns

log = logging.getLogger("hostwatch.logshipper.buffer")

REASON_BUFFER_FULL = "buffer_full"
UNKNOWN_SOURCE = "unknown"


class BufferClosed(RuntimeError):
    """push() or pop() on a closed buffer (or one closed while the call waited)."""


def run_ack(ack: Ack | None) -> None:
    """A source's ack failing must not stop the sink from releasing the next batch."""
    if ack is None:
        return
    try:
        ack()
    except Exception:  # noqa: BLE001 - the source's bug, logged; the buffer carries on
        log.exception("a batch's ack raised")


class Room:
    """The bound: `bytes` held until released; `admit` waits for room or drops."""

    def __init__(self, max_bytes: int, when_full: str, metrics: ShipperMetrics) -> None:
        self.max_bytes = max_bytes
        self.drop_newest = when_full == "drop_newest"
        self.metrics = metrics
        self.events = 0
        self.bytes = 0
        self.closed = False
        self._freed = asyncio.Event()

    def fits(self, nbytes: int) -> bool:
        # an empty buffer takes any batch, so one larger than the bound cannot wedge the pipeline
        return self.bytes == 0 or self.bytes + nbytes <= self.max_bytes

    async def admit(self, batch: RecordBatch, nbytes: int) -> bool:
        """True once `nbytes` fit (the caller then `add`s them); False when the batch was dropped
        (counted, and acked so its source moves on)."""
        if self.closed:
            raise BufferClosed("buffer closed")
        if self.fits(nbytes):
            return True
        if self.drop_newest:
            self.metrics.dropped.labels(batch.source or UNKNOWN_SOURCE, REASON_BUFFER_FULL).inc(len(batch))
            run_ack(batch.ack)
            return False
        while not self.fits(nbytes):
            self._freed.clear()
            await self._freed.wait()
            if self.closed:
                raise BufferClosed("buffer closed while a push waited for room")
        return True

    def add(self, events: int, nbytes: int) -> None:
        self.events += events
        self.bytes += nbytes

    def remove(self, events: int, nbytes: int) -> None:
        self.events -= events
        self.bytes -= nbytes
        self._freed.set()

    def close(self) -> None:
        self.closed = True
        self._freed.set()

    def register_gauges(self, oldest_age: Callable[[int], float]) -> None:
        """Set the buffer gauges before every exposition (nothing once closed)."""
        m = self.metrics

        def refresh() -> None:
            if self.closed:
                return
            m.buffer_events.set(self.events)
            m.buffer_bytes.set(self.bytes)
            m.buffer_max_bytes.set(self.max_bytes)
            m.buffer_oldest_age.set(oldest_age(now_ns()))

        m.on_collect(refresh)


def age_seconds(oldest_ns: int | None, now: int) -> float:
    return max(0.0, (now - oldest_ns) / 1e9) if oldest_ns else 0.0
