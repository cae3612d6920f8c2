"""The notification pipeline (notify/notify.go): stages with one interface, `exec(ctx, alerts) -> alerts`.

A flush of an aggregation group runs RoutingStage -> the receiver's stages: InhibitStage, SilenceStage,
then per integration: DedupStage -> ClaimStage(RetryStage(NotifyStage) -> SetNotifiesStage), with
WaitStage (position x peer_timeout) as ClaimStage's fail-open fallback when the log is unreachable.
Each stage returns the alerts that go on; an empty list ends the flush. Time and hashing are
parameters so each stage is table-testable.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from alerting.clock import Clock, Timer
from alerting.inhibit import Inhibitor
from alerting.metrics import AlertingMetrics
from alerting.model import Alert
from alerting.nflog import NotificationLog, needs_update
from alerting.silences import Silences

log = logging.getLogger("hostwatch.alerting")

MIN_TIMEOUT = 10.0  # notify.MinTimeout: a flush gets at least this long


class NotifyError(Exception):
    def __init__(self, message: str, retriable: bool = True) -> None:
        super().__init__(message)
        self.retriable = retriable


class Lease(Protocol):
    """Ownership of a claimed notification."""

    def window(self) -> float | None:
        """Whether an attempt may start now: None (lost), 0 (not now: wait for a heartbeat), else > 0."""
        ...

    def expiring(self) -> bool:
        """True once the others could soon take over: an attempt in flight must be abandoned."""
        ...


class Notifier(Protocol):
    """One way of telling someone (a webhook today; an escalation policy later). Raises NotifyError."""

    async def notify(self, ctx: NotifyContext, alerts: Sequence[Alert]) -> None: ...


@dataclass(frozen=True)
class Integration:
    receiver: str
    name: str  # "webhook", or what an extension registers (e.g. "escalation")
    index: int
    notifier: Notifier
    send_resolved: bool = True

    @property
    def key(self) -> str:
        return f"{self.receiver}/{self.name}/{self.index}"


@dataclass
class NotifyContext:
    group_key: str
    group_labels: dict[str, str]
    receiver: str
    repeat_interval: float
    now_ns: int  # the flush's tick
    deadline: float  # monotonic; the flush gives up then
    integration: Integration | None = None
    firing: frozenset[int] = frozenset()
    resolved: frozenset[int] = frozenset()
    claim: str = ""
    lease: Lease | None = None
    attempt_timeout: float = 0.0
    extra: dict[str, object] = field(default_factory=dict)


class Stage(Protocol):
    async def exec(self, ctx: NotifyContext, alerts: list[Alert]) -> list[Alert]: ...


class MultiStage:
    def __init__(self, *stages: Stage) -> None:
        self.stages = list(stages)

    async def exec(self, ctx: NotifyContext, alerts: list[Alert]) -> list[Alert]:
        for s in self.stages:
            if not alerts:
                break
            alerts = await s.exec(ctx, alerts)
        return alerts


class FanoutStage:
    """Each integration of a receiver on its own copy of the context, concurrently."""

    def __init__(self, stages: Sequence[tuple[Integration, Stage]]) -> None:
        self.stages = list(stages)

    async def exec(self, ctx: NotifyContext, alerts: list[Alert]) -> list[Alert]:
        if len(self.stages) == 1:  # the common receiver: no task to gather
            ctx.integration, s = self.stages[0]  # the flush's own context: no copy needed
            await s.exec(ctx, list(alerts))
            return alerts
        results = await asyncio.gather(*(s.exec(replace(ctx, integration=i), list(alerts)) for i, s in self.stages),
                                       return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        for e in errors:
            if not isinstance(e, NotifyError):
                raise e
        if errors:
            raise errors[0]
        return alerts


class RoutingStage:
    def __init__(self, receivers: Mapping[str, Stage]) -> None:
        self.receivers = dict(receivers)

    async def exec(self, ctx: NotifyContext, alerts: list[Alert]) -> list[Alert]:
        stage = self.receivers.get(ctx.receiver)
        if stage is None:
            raise NotifyError(f"stage for receiver missing: {ctx.receiver}", retriable=False)
        return await stage.exec(ctx, alerts)


class InhibitStage:
    def __init__(self, inhibitor: Inhibitor, now_ns: Callable[[], int]) -> None:
        self.inhibitor, self.now = inhibitor, now_ns

    async def exec(self, ctx: NotifyContext, alerts: list[Alert]) -> list[Alert]:
        if not self.inhibitor.rules:
            return alerts
        now = self.now()
        return [a for a in alerts if not self.inhibitor.mutes(a.labels, now)]


class SilenceStage:
    def __init__(self, silences: Silences, now_ns: Callable[[], int]) -> None:
        self.silences, self.now = silences, now_ns

    async def exec(self, ctx: NotifyContext, alerts: list[Alert]) -> list[Alert]:
        now = self.now()
        return [a for a in alerts if not self.silences.mutes(a.labels, now)]


class WaitStage:
    """Alertmanager's HA wait: position x peer_timeout, so the first replica notifies and the others
    find its notification in the log. Here only the fail-open path uses it."""

    def __init__(self, wait: Callable[[], float], clock: Clock) -> None:
        self.wait, self.clock = wait, clock

    async def exec(self, ctx: NotifyContext, alerts: list[Alert]) -> list[Alert]:
        delay = min(self.wait(), max(0.0, ctx.deadline - self.clock.monotonic()))
        if delay > 0:
            await self.clock.sleep(delay)
        return alerts


class DedupStage:
    def __init__(self, nflog: NotificationLog, now_ns: Callable[[], int],
                 hash_alert: Callable[[Alert], int] = lambda a: a.fp, metrics: AlertingMetrics | None = None) -> None:
        self.nflog, self.now, self.hash, self.metrics = nflog, now_ns, hash_alert, metrics

    async def exec(self, ctx: NotifyContext, alerts: list[Alert]) -> list[Alert]:
        assert ctx.integration is not None
        now = self.now()
        firing = frozenset(self.hash(a) for a in alerts if not a.resolved_at(now))
        resolved = frozenset(self.hash(a) for a in alerts if a.resolved_at(now))
        ctx.firing, ctx.resolved = firing, resolved
        entry = self.nflog.query(ctx.group_key, ctx.integration.key)
        if needs_update(entry, firing, resolved, ctx.integration.send_resolved, int(ctx.repeat_interval * 1e9), now):
            return alerts
        if self.metrics is not None:
            self.metrics.dedup_skips.inc()
        return []


def default_backoff(attempt: int) -> float:
    """cenkalti/backoff's defaults as Alertmanager uses them: 0.5 s x 1.5^n, +-50 %, at most 60 s."""
    base = min(60.0, 0.5 * 1.5 ** attempt)
    return base * random.uniform(0.5, 1.5)


class RetryStage:
    """Retry the inner stage until it succeeds, fails permanently, the flush deadline passes or the lease
    is lost. Without send_resolved, resolved alerts are dropped and an all-resolved flush "succeeds"
    without sending, so the notification log still records it."""

    MIN_ATTEMPT = 0.2  # seconds; a lease window shorter than this waits for the next heartbeat

    def __init__(self, inner: Stage, clock: Clock, backoff: Callable[[int], float] = default_backoff,
                 metrics: AlertingMetrics | None = None) -> None:
        self.inner, self.clock, self.backoff, self.metrics = inner, clock, backoff, metrics

    async def exec(self, ctx: NotifyContext, alerts: list[Alert]) -> list[Alert]:
        assert ctx.integration is not None
        sent = alerts
        if not ctx.integration.send_resolved:
            if not ctx.firing:
                return alerts
            now = self.clock.time_ns()
            sent = [a for a in alerts if not a.resolved_at(now)]
        attempt = 0
        while True:
            remaining = ctx.deadline - self.clock.monotonic()
            if remaining <= 0:
                raise NotifyError(f"{ctx.integration.key}: gave up at the flush deadline", retriable=False)
            if ctx.lease is not None:
                lease_window = ctx.lease.window()
                if lease_window is None:
                    raise NotifyError(f"{ctx.integration.key}: lost the claim", retriable=False)
                if lease_window < self.MIN_ATTEMPT:
                    await self.clock.sleep(self.MIN_ATTEMPT)
                    continue
            ctx.attempt_timeout = remaining
            try:
                await self._attempt(ctx, sent)
                return alerts
            except NotifyError as e:
                if self.metrics is not None:
                    reason = "retriable" if e.retriable else "permanent"
                    self.metrics.notifications_failed.labels(ctx.integration.name, reason).inc()
                if not e.retriable:
                    raise
                log.info("notify %s %s failed (attempt %d): %s", ctx.integration.key, ctx.group_key, attempt + 1, e)
            delay = self.backoff(attempt)
            attempt += 1
            await self.clock.sleep(min(delay, max(0.0, ctx.deadline - self.clock.monotonic())))

    async def _attempt(self, ctx: NotifyContext, alerts: list[Alert]) -> None:
        """One attempt; under a lease, abandoned as soon as the lease is expiring (the owner stopped hearing
        its own heartbeats), so it never overlaps another replica's takeover. A slow receiver alone never
        cuts an attempt short while the heartbeats flow (that would re-deliver what it did receive)."""
        if ctx.lease is None:
            await self.inner.exec(ctx, alerts)
            return
        lease = ctx.lease
        task = asyncio.current_task()
        assert task is not None
        abandoned = False
        timer: Timer | None = None

        def watch() -> None:  # a timer on this task, not a polling task per attempt: bursts have many
            nonlocal abandoned, timer
            if lease.expiring():
                abandoned = True
                task.cancel()
            else:
                timer = self.clock.call_later(self.MIN_ATTEMPT / 2, watch)

        timer = self.clock.call_later(self.MIN_ATTEMPT / 2, watch)
        try:
            await self.inner.exec(ctx, alerts)
        except asyncio.CancelledError:
            if not abandoned or task.uncancel() > 0:
                raise  # we are being cancelled ourselves (too)
            raise NotifyError(f"{ctx.integration.key if ctx.integration else ''}: abandoned: the claim's lease "
                              "is expiring", retriable=True) from None
        finally:
            timer.cancel()


class NotifyStage:
    """One delivery attempt through the integration's notifier."""

    def __init__(self, clock: Clock, metrics: AlertingMetrics | None = None) -> None:
        self.clock, self.metrics = clock, metrics

    async def exec(self, ctx: NotifyContext, alerts: list[Alert]) -> list[Alert]:
        assert ctx.integration is not None
        await ctx.integration.notifier.notify(ctx, alerts)
        if self.metrics is not None:
            self.metrics.child(self.metrics.notifications, ctx.integration.name).inc()
            self.metrics.child(self.metrics.notification_latency, ctx.integration.name).observe(
                max(0.0, (self.clock.time_ns() - ctx.now_ns) / 1e9))
        return alerts


class SetNotifiesStage:
    """Record the delivered notification in the log (the claim's completion in HA)."""

    def __init__(self, nflog: NotificationLog, replica: str = "") -> None:
        self.nflog, self.replica = nflog, replica

    async def exec(self, ctx: NotifyContext, alerts: list[Alert]) -> list[Alert]:
        assert ctx.integration is not None
        self.nflog.log(ctx.group_key, ctx.integration.key, ctx.firing, ctx.resolved, int(ctx.repeat_interval * 1e9),
                       ctx.claim, self.replica)
        return alerts
