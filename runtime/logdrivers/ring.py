"""Docker's "mode=non-blocking" ring buffer (moby daemon/logger/ring.go), plus a reconnect backoff.

``RingDriver.log`` only enqueues (bounded by the total size of the queued lines, like moby's
``max-buffer-size``) and drops the newest message when full. A daemon thread drains the queue into the
wrapped driver. While the wrapped driver reports a retry time in the future (its endpoint failed), the
thread waits and lets the queue absorb the burst instead of throwing messages at a dead endpoint.
``close`` drains for at most ``DRAIN_SECONDS``, counts what is left as dropped, closes the wrapped driver
and returns after at most ``CLOSE_SECONDS``.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Protocol

from .base import LogMessage

DRAIN_SECONDS = 1.0
CLOSE_SECONDS = 2.0


class Endpoint(Protocol):
    """A driver that talks to something that can be down."""

    @property
    def dropped(self) -> int: ...

    def log(self, msg: LogMessage) -> None: ...

    def close(self) -> None: ...

    def retry_at(self) -> float:
        """time.monotonic() before which sending is pointless (0.0 when ready)."""
        ...


class Backoff:
    """Exponential backoff after endpoint failures: base * factor**(n-1), capped."""

    def __init__(self, base: float = 1.0, factor: float = 1.5, cap: float = 10.0) -> None:
        self.base = base
        self.factor = factor
        self.cap = cap
        self.failures = 0
        self.until = 0.0

    def waiting(self) -> bool:
        return self.until > time.monotonic()

    def fail(self) -> None:
        self.failures += 1
        delay = min(self.base * self.factor ** min(self.failures - 1, 64), self.cap)
        self.until = time.monotonic() + delay

    def ok(self) -> None:
        self.failures = 0
        self.until = 0.0


class RingDriver:
    """Non-blocking front for an Endpoint driver."""

    def __init__(self, inner: Endpoint, max_bytes: int, name: str = "logdriver") -> None:
        self._inner = inner
        self._max_bytes = max_bytes
        self._queue: collections.deque[LogMessage] = collections.deque()
        self._size = 0
        self._cv = threading.Condition()
        self._closing = False
        self._deadline = 0.0
        self._dropped = 0
        self._thread = threading.Thread(target=self._run, name=f"{name}-ring", daemon=True)
        self._thread.start()

    @property
    def dropped(self) -> int:
        return self._dropped + self._inner.dropped

    @property
    def queued(self) -> int:
        return len(self._queue)

    def log(self, msg: LogMessage) -> None:
        size = len(msg.line)
        with self._cv:
            if self._closing or (self._queue and self._size + size > self._max_bytes):
                self._dropped += 1
                return
            self._queue.append(msg)
            self._size += size
            self._cv.notify()

    def close(self) -> None:
        with self._cv:
            if not self._closing:
                self._closing = True
                self._deadline = time.monotonic() + DRAIN_SECONDS
                self._cv.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(CLOSE_SECONDS)

    def _next(self) -> LogMessage | None:
        """The next message to hand to the inner driver; None when the thread must stop."""
        with self._cv:
            while True:
                now = time.monotonic()
                if self._closing and (not self._queue or now >= self._deadline):
                    self._dropped += len(self._queue)
                    self._queue.clear()
                    self._size = 0
                    return None
                if not self._queue:
                    self._cv.wait()
                    continue
                retry_at = self._inner.retry_at()
                if retry_at > now:
                    until = min(retry_at, self._deadline) if self._closing else retry_at
                    self._cv.wait(max(until - now, 0.001))
                    continue
                msg = self._queue.popleft()
                self._size -= len(msg.line)
                return msg

    def _run(self) -> None:
        while (msg := self._next()) is not None:
            try:
                self._inner.log(msg)
            except Exception:  # a driver bug must not kill the drain thread
                with self._cv:
                    self._dropped += 1
        try:
            self._inner.close()
        except Exception:
            pass
