"""The one clock every timer and timestamp in alerting/ reads, so tests can drive time by hand."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    def time_ns(self) -> int:
        """Wall time, ns since the epoch (alert and silence timestamps)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (timers, leases)."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def time_ns(self) -> int:
        return time.time_ns()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """Time stands still until `advance()`; sleepers wake in deadline order as it passes them."""

    def __init__(self, start_ns: int = 1_700_000_000 * 1_000_000_000) -> None:
        self._wall0 = start_ns
        self._mono = 0.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def time_ns(self) -> int:
        return self._wall0 + int(round(self._mono * 1e9))

    def monotonic(self) -> float:
        return self._mono

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._mono + seconds, next(self._seq), fut))
        await fut

    async def settle(self) -> None:
        """Let every runnable task run until all are blocked again."""
        for _ in range(50):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking each sleeper at its own deadline (so timers chain correctly)."""
        target = self._mono + seconds
        await self.settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, fut = heapq.heappop(self._sleepers)
            self._mono = max(self._mono, deadline)
            if not fut.done():
                fut.set_result(None)
            await self.settle()
        self._mono = target
        await self.settle()
