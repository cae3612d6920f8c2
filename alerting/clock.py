"""The one clock every timer and timestamp in alerting/ reads, so tests can drive time by hand."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from typing import Protocol


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def time_ns(self) -> int:
        """Wall time, ns since the epoch (alert and silence timestamps)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps (timers, leases)."""
        ...

    async def sleep(self, seconds: float) -> None: ...

    def call_later(self, seconds: float, fn: Callable[[], None]) -> Timer:
        """Run `fn` on the loop once `seconds` have passed on this clock (a timer, no task)."""
        ...


def resolver(fut: asyncio.Future[None]) -> Callable[[], None]:
    """A callback that resolves `fut` unless it is already done."""
    def resolve() -> None:
        if not fut.done():
            fut.set_result(None)
    return resolve


async def wait_or_timeout(clock: Clock, fut: asyncio.Future[None], timeout: float) -> None:
    """Until `fut` is done or `timeout` passes on `clock`; `fut` is the caller's own, and is resolved
    by the timeout. Cheaper than racing a sleeping task: thousands of flushes wait like this at once."""
    if fut.done():
        return
    timer = clock.call_later(max(0.0, timeout), resolver(fut))
    try:
        await fut
    finally:
        timer.cancel()


def all_done(futs: list[asyncio.Future[None]]) -> asyncio.Future[None]:
    """A future resolved once every one of `futs` is done (at once for none)."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    left = len(futs)
    if not left:
        done.set_result(None)

    def one(_: asyncio.Future[None]) -> None:
        nonlocal left
        left -= 1
        if not left and not done.done():
            done.set_result(None)

    for f in futs:
        f.add_done_callback(one)
    return done


class Wakeup:
    """A flag a loop sleeps on with a timeout: `set` wakes the sleeper or, if it is not asleep yet, makes
    its next `sleep` return at once; `clear` forgets earlier sets. No task per sleep (wait_or_timeout)."""

    def __init__(self) -> None:
        self._set = False
        self._fut: asyncio.Future[None] | None = None

    def set(self) -> None:
        self._set = True
        if self._fut is not None and not self._fut.done():
            self._fut.set_result(None)

    def clear(self) -> None:
        self._set = False

    async def sleep(self, clock: Clock, seconds: float) -> None:
        if self._set:
            return
        self._fut = asyncio.get_running_loop().create_future()
        try:
            await wait_or_timeout(clock, self._fut, seconds)
        finally:
            self._fut = None


class SystemClock:
    def time_ns(self) -> int:
        return time.time_ns()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def call_later(self, seconds: float, fn: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_later(max(0.0, seconds), fn)


class _ManualTimer:
    __slots__ = ("fn", "cancelled")

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn, self.cancelled = fn, False

    def cancel(self) -> None:
        self.cancelled = True


class ManualClock:
    """Time stands still until `advance()`; sleepers wake in deadline order as it passes them."""

    def __init__(self, start_ns: int = 1_700_000_000 * 1_000_000_000) -> None:
        self._wall0 = start_ns
        self._mono = 0.0
        self._timers: list[tuple[float, int, _ManualTimer]] = []
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
        self.call_later(seconds, resolver(fut))
        await fut

    def call_later(self, seconds: float, fn: Callable[[], None]) -> Timer:
        if seconds <= 0:
            return asyncio.get_running_loop().call_soon(fn)
        timer = _ManualTimer(fn)
        heapq.heappush(self._timers, (self._mono + seconds, next(self._seq), timer))
        return timer

    async def settle(self) -> None:
        """Let every runnable task run until all are blocked again."""
        for _ in range(50):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time forward, firing each timer at its own deadline (so timers chain correctly)."""
        target = self._mono + seconds
        await self.settle()
        while self._timers and self._timers[0][0] <= target:
            deadline, _, timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._mono = max(self._mono, deadline)
            timer.fn()
            await self.settle()
        self._mono = target
        await self.settle()
