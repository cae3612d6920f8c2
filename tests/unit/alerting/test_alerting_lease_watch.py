"""RetryStage under a claim lease: an attempt in flight is abandoned once the lease is expiring (the owner
stopped hearing its own heartbeats), so it never overlaps another replica's takeover."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from alerting.clock import ManualClock
from alerting.model import Alert
from alerting.stages import Integration, NotifyContext, NotifyError, NotifyStage, RetryStage


class Lease:
    def __init__(self) -> None:
        self.expired = False
        self.lost = False

    def window(self) -> float | None:
        return None if self.lost else 10.0

    def expiring(self) -> bool:
        return self.expired


class Hung:
    """A receiver that takes every attempt and never answers."""

    def __init__(self) -> None:
        self.attempts = 0
        self.cancelled = 0

    async def notify(self, ctx: NotifyContext, alerts: Sequence[Alert]) -> None:
        self.attempts += 1
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


def context(lease: Lease, receiver: Hung) -> NotifyContext:
    ctx = NotifyContext("{}:{a=\"1\"}", {"a": "1"}, "hook", 3600.0, 0, deadline=1e9)
    ctx.integration = Integration("hook", "webhook", 0, receiver)
    ctx.firing = frozenset({1})
    ctx.lease = lease
    return ctx


def test_an_attempt_is_abandoned_when_the_lease_expires_and_the_lost_claim_ends_the_retries() -> None:
    async def main() -> None:
        clock, lease, hung = ManualClock(), Lease(), Hung()
        stage = RetryStage(NotifyStage(clock), clock, backoff=lambda n: 1.0)
        run = asyncio.ensure_future(stage.exec(context(lease, hung), [Alert({"a": "1"})]))
        await clock.advance(5.0)  # a slow receiver alone never cuts the attempt short
        assert not run.done() and hung.attempts == 1 and hung.cancelled == 0
        lease.expired = True
        await clock.advance(0.2)
        assert hung.cancelled == 1  # abandoned at the watch's next look (MIN_ATTEMPT / 2)
        assert not run.done()  # a retriable failure: backing off for the next attempt
        lease.lost = True  # meanwhile another replica took the claim over
        await clock.advance(2.0)
        with pytest.raises(NotifyError, match="lost the claim"):
            run.result()
        assert hung.attempts == 1

    asyncio.run(main())


def test_cancelling_the_flush_still_cancels_it() -> None:
    async def main() -> None:
        clock, lease, hung = ManualClock(), Lease(), Hung()
        stage = RetryStage(NotifyStage(clock), clock)
        run = asyncio.ensure_future(stage.exec(context(lease, hung), [Alert({"a": "1"})]))
        await clock.advance(1.0)
        run.cancel()
        await clock.settle()
        assert run.cancelled() and hung.cancelled == 1

    asyncio.run(main())
