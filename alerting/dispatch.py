"""The dispatcher (dispatch/dispatch.go): alerts -> routes -> aggregation groups -> flushes on timers.

A group is (route, group labels). A new group flushes group_wait after its first alert (at once if
that alert started more than group_wait ago and the group never flushed), then every group_interval;
repeat_interval is decided by the dedup stage at those flushes. A flush sends the group's alerts
(firing ones with a zero endsAt), and after a successful pipeline run deletes the resolved alerts that
were not updated meanwhile; an empty group is dropped. One scheduler task drives every timer from the
injectable clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from alerting.clock import Clock, wait_or_timeout
from alerting.model import Alert, fingerprint, sort_alerts
from alerting.route import Route
from alerting.stages import MIN_TIMEOUT, NotifyContext, NotifyError

log = logging.getLogger("hostwatch.alerting")

Pipeline = Callable[[NotifyContext, list[Alert]], Awaitable[list[Alert]]]


def group_id(group_key: str) -> str:
    """sha256(groupKey) hex: Alertmanager's notify Key.Hash() (PagerDuty's dedup_key); the ack URL's id."""
    return hashlib.sha256(group_key.encode()).hexdigest()


@dataclass
class FlushResult:
    group_key: str
    ok: bool
    sent: int


class AggregationGroup:
    def __init__(self, route: Route, labels: dict[str, str], created: float) -> None:
        self.route = route
        self.labels = labels
        self.key = route.group_key(labels)
        self.id = group_id(self.key)
        self.alerts: dict[int, Alert] = {}
        self.next_flush = created + route.opts.group_wait
        self.has_flushed = False
        self.flushing: asyncio.Task[FlushResult] | None = None

    def insert(self, alert: Alert, now_ns: int, now: float) -> bool:
        """Store the alert; True if the group must now flush at once (an old alert, never flushed)."""
        self.alerts[alert.fp] = alert
        if not self.has_flushed and alert.starts_at + int(self.route.opts.group_wait * 1e9) < now_ns:
            self.next_flush = now
            return True
        return False

    def snapshot(self, now_ns: int) -> list[Alert]:
        out = []
        for a in self.alerts.values():
            c = a.copy()
            if not c.resolved_at(now_ns):
                c.ends_at = 0  # "ensure that alerts don't resolve as time moves forwards"
            out.append(c)
        return sort_alerts(out)


class Dispatcher:
    def __init__(self, route: Route, pipeline: Pipeline, clock: Clock,
                 extra_timeout: Callable[[], float] = lambda: 0.0) -> None:
        self.route, self.pipeline, self.clock, self.extra_timeout = route, pipeline, clock, extra_timeout
        self.groups: dict[tuple[int, int], AggregationGroup] = {}
        self._heap: list[tuple[float, int, AggregationGroup]] = []
        self._seq = itertools.count()
        self._wake: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._flushes: set[asyncio.Task[FlushResult]] = set()
        self.on_drop: list[Callable[[AggregationGroup], None]] = []  # a group emptied (all resolved) and gone

    def process(self, alert: Alert) -> None:
        now_ns, now = self.clock.time_ns(), self.clock.monotonic()
        for r, labels, gfp in self.route.groups_for(alert.labels, alert.fp):
            gk = (id(r), gfp)
            group = self.groups.get(gk)
            if group is None:
                group = self.groups[gk] = AggregationGroup(r, dict(labels), now)
                self._schedule(group)
            if group.insert(alert, now_ns, now):
                self._schedule(group)

    def _schedule(self, group: AggregationGroup) -> None:
        heapq.heappush(self._heap, (group.next_flush, next(self._seq), group))
        if self._heap[0][2] is group and self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    def list_groups(self) -> list[AggregationGroup]:
        return list(self.groups.values())

    async def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        for t in list(self._flushes):
            t.cancel()
        await asyncio.gather(*self._flushes, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            self.flush_due()
            now = self.clock.monotonic()
            delay = (self._heap[0][0] - now) if self._heap else 3600.0
            self._wake = asyncio.get_running_loop().create_future()
            await wait_or_timeout(self.clock, self._wake, delay)

    def flush_due(self) -> list[asyncio.Task[FlushResult]]:
        """Start the flush of every group whose timer has passed (the timers' tick)."""
        now = self.clock.monotonic()
        started = []
        while self._heap and self._heap[0][0] <= now:
            when, _, group = heapq.heappop(self._heap)
            if when != group.next_flush or self.groups.get(self._gkey(group)) is not group:
                continue  # superseded entry
            group.next_flush = when + group.route.opts.group_interval
            group.has_flushed = True
            heapq.heappush(self._heap, (group.next_flush, next(self._seq), group))
            t = asyncio.ensure_future(self._flush(group, group.flushing))
            group.flushing = t
            self._flushes.add(t)
            t.add_done_callback(self._flushes.discard)
            started.append(t)
        return started

    @staticmethod
    def _gkey(group: AggregationGroup) -> tuple[int, int]:
        return (id(group.route), fingerprint(group.labels))

    async def _flush(self, group: AggregationGroup, previous: asyncio.Task[FlushResult] | None) -> FlushResult:
        if previous is not None and not previous.done():
            await asyncio.gather(previous, return_exceptions=True)  # one flush of a group at a time
        if not group.alerts:
            self._drop(group)
            return FlushResult(group.key, True, 0)
        now_ns = self.clock.time_ns()
        alerts = group.snapshot(now_ns)
        opts = group.route.opts
        ctx = NotifyContext(group.key, dict(group.labels), opts.receiver, opts.repeat_interval, now_ns,
                            self.clock.monotonic() + max(opts.group_interval, MIN_TIMEOUT) + self.extra_timeout())
        try:
            sent = await self.pipeline(ctx, alerts)
        except NotifyError as e:
            log.warning("notify %s for group %s failed: %s", opts.receiver, group.key, e)
            return FlushResult(group.key, False, 0)
        for a in alerts:
            cur = group.alerts.get(a.fp)
            if cur is not None and a.resolved_at(self.clock.time_ns()) and cur.updated_at == a.updated_at:
                del group.alerts[a.fp]
        if not group.alerts:
            self._drop(group)
        return FlushResult(group.key, True, len(sent))

    def _drop(self, group: AggregationGroup) -> None:
        key = self._gkey(group)
        if self.groups.get(key) is group:
            del self.groups[key]
            for fn in self.on_drop:
                fn(group)
