"""The non-blocking ring buffer in front of network drivers."""

from __future__ import annotations

import threading
import time

from runtime.logdrivers import LogMessage
from runtime.logdrivers.ring import Backoff, RingDriver


class FakeEndpoint:
    def __init__(self) -> None:
        self.dropped = 0
        self.got: list[bytes] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.down_until = 0.0
        self.closed = False
        self.fail_on: bytes | None = None

    def retry_at(self) -> float:
        return self.down_until

    def log(self, msg: LogMessage) -> None:
        self.entered.set()
        self.gate.wait()
        if msg.line == self.fail_on:
            raise RuntimeError("driver bug")
        self.got.append(msg.line)

    def close(self) -> None:
        self.closed = True


def msg(i: int, size: int = 10) -> LogMessage:
    return LogMessage(b"%0*d" % (size, i), "stdout", 0)


def test_everything_is_delivered_in_order_and_inner_closed() -> None:
    inner = FakeEndpoint()
    ring = RingDriver(inner, max_bytes=1_000_000)
    for i in range(1000):
        ring.log(msg(i))
    ring.close()
    assert inner.got == [msg(i).line for i in range(1000)]
    assert inner.closed and ring.dropped == 0


def test_full_buffer_drops_the_newest_and_counts() -> None:
    inner = FakeEndpoint()
    inner.gate.clear()
    ring = RingDriver(inner, max_bytes=100)
    ring.log(msg(0))
    assert inner.entered.wait(5)  # message 0 is inside the (stuck) driver
    for i in range(1, 51):
        ring.log(msg(i))
    assert ring.dropped == 40  # ten 10-byte messages fit in 100 bytes
    inner.gate.set()
    ring.close()
    assert inner.got == [msg(i).line for i in range(11)]
    assert ring.dropped == 40


def test_one_oversized_message_is_accepted_when_the_buffer_is_empty() -> None:
    inner = FakeEndpoint()
    ring = RingDriver(inner, max_bytes=10)
    ring.log(msg(1, size=500))
    ring.close()
    assert inner.got == [msg(1, size=500).line]


def test_messages_wait_in_the_ring_while_the_endpoint_backs_off() -> None:
    inner = FakeEndpoint()
    inner.down_until = time.monotonic() + 3600
    ring = RingDriver(inner, max_bytes=1_000_000)
    for i in range(5):
        ring.log(msg(i))
    time.sleep(0.2)
    assert inner.got == [] and ring.queued == 5
    inner.down_until = 0.0
    ring.log(msg(5))  # wakes the drain thread, which sees the endpoint ready again
    ring.close()
    assert inner.got == [msg(i).line for i in range(6)]


def test_close_while_the_endpoint_stays_down_drops_and_counts() -> None:
    inner = FakeEndpoint()
    inner.down_until = time.monotonic() + 3600
    ring = RingDriver(inner, max_bytes=1_000_000)
    for i in range(7):
        ring.log(msg(i))
    ring.close()
    assert inner.got == [] and ring.dropped == 7 and inner.closed


def test_close_returns_although_the_driver_hangs() -> None:
    inner = FakeEndpoint()
    inner.gate.clear()
    ring = RingDriver(inner, max_bytes=1_000_000)
    ring.log(msg(0))
    ring.log(msg(1))
    assert inner.entered.wait(5)
    ring.close()  # returns after its bounded join
    ring.log(msg(2))  # after close: refused and counted
    assert ring.dropped == 1
    inner.gate.set()  # let the drain thread finish


def test_a_raising_driver_is_counted_and_does_not_stop_the_ring() -> None:
    inner = FakeEndpoint()
    inner.fail_on = msg(1).line
    ring = RingDriver(inner, max_bytes=1_000_000)
    for i in range(3):
        ring.log(msg(i))
    ring.close()
    assert inner.got == [msg(0).line, msg(2).line] and ring.dropped == 1


def test_backoff_grows_and_resets() -> None:
    b = Backoff(base=1.0, factor=2.0, cap=5.0)
    assert not b.waiting()
    delays = []
    for _ in range(5):
        before = time.monotonic()
        b.fail()
        delays.append(round(b.until - before))
    assert delays == [1, 2, 4, 5, 5]
    assert b.waiting()
    b.ok()
    assert not b.waiting() and b.failures == 0
