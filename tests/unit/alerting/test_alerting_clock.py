"""The injectable clock's timers: what every wait in alerting/ (claims, dispatcher, lease watch) rests on."""

from __future__ import annotations

import asyncio

from alerting.clock import ManualClock, SystemClock, Wakeup, all_done, wait_or_timeout


def test_manual_timers_fire_in_deadline_order_and_cancelled_ones_never() -> None:
    async def main() -> list[tuple[str, float]]:
        clock = ManualClock()
        fired: list[tuple[str, float]] = []
        clock.call_later(2.0, lambda: fired.append(("b", clock.monotonic())))
        clock.call_later(1.0, lambda: fired.append(("a", clock.monotonic())))
        clock.call_later(1.5, lambda: fired.append(("never", clock.monotonic()))).cancel()
        await clock.advance(0.5)
        assert fired == []
        await clock.advance(5.0)
        return fired

    assert asyncio.run(main()) == [("a", 1.0), ("b", 2.0)]


def test_wait_or_timeout_ends_at_the_timeout_or_as_soon_as_the_future_is_done() -> None:
    async def main() -> None:
        clock = ManualClock()
        loop = asyncio.get_running_loop()
        timed = loop.create_future()
        waiter = asyncio.ensure_future(wait_or_timeout(clock, timed, 3.0))
        await clock.advance(2.9)
        assert not waiter.done()
        await clock.advance(0.2)
        assert waiter.done() and timed.done()

        early = loop.create_future()
        waiter = asyncio.ensure_future(wait_or_timeout(clock, early, 3.0))
        await clock.settle()
        early.set_result(None)
        await clock.settle()
        assert waiter.done() and clock.monotonic() == 3.1
        assert all(t.cancelled for _, _, t in clock._timers)  # the early return cancelled its timer

    asyncio.run(main())


def test_system_clock_timer_runs_on_the_loop() -> None:
    async def main() -> float:
        clock = SystemClock()
        fut = asyncio.get_running_loop().create_future()
        t0 = clock.monotonic()
        await wait_or_timeout(clock, fut, 0.05)
        return clock.monotonic() - t0

    assert 0.04 <= asyncio.run(main()) < 1.0


def test_all_done_waits_for_every_future_and_counts_cancelled_ones_as_done() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert all_done([]).done()
        a, b = loop.create_future(), loop.create_future()
        both = all_done([a, b])
        a.set_result(None)
        await asyncio.sleep(0)
        assert not both.done()
        b.cancel()
        await asyncio.sleep(0)
        assert both.done()

    asyncio.run(main())


def test_wakeup_ends_a_sleep_early_and_a_set_before_the_sleep_is_not_lost() -> None:
    async def main() -> None:
        clock = ManualClock()
        w = Wakeup()
        sleeper = asyncio.ensure_future(w.sleep(clock, 10.0))
        await clock.advance(1.0)
        assert not sleeper.done()
        w.set()
        await clock.settle()
        assert sleeper.done() and clock.monotonic() == 1.0
        await w.sleep(clock, 10.0)  # still set: returns at once
        assert clock.monotonic() == 1.0
        w.clear()
        sleeper = asyncio.ensure_future(w.sleep(clock, 10.0))
        await clock.advance(9.9)
        assert not sleeper.done()
        await clock.advance(0.2)
        assert sleeper.done()  # cleared: only the timeout ends it

    asyncio.run(main())
