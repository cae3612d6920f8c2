"""Claims: how replicas that share only the replicated log notify exactly once.

A notification is identified by (group key, receiver integration, basis = the notification-log entry
the dedup decision was made against, epoch). Every replica that wants to send it appends a CLAIM; the
log's order is the same for all, so the first claimant is the owner everywhere. The owner delivers,
retrying as long as needed, while its replica heartbeat keeps its claims alive (one `member:` record
every lease/4 renews all of them: the log carries O(replicas) beats, not O(claims)). Its completion is
the notification-log entry, which names the claim (DONE). If the owner is silent for a lease
(`--cluster.peer-timeout`), the next claimant in log order (cyclically, one lease later per place)
appends a TAKEOVER and carries on. An owner starts an attempt only while its last confirmed heartbeat
is younger than lease/2 and abandons one in flight once it is 0.9 lease old, so an owner cut off from
the log stops before anyone takes over: a retried notification is never delivered by two replicas.
An owner that gives up appends RELEASE, and the next flush claims a new epoch. Times are each
replica's own monotonic clock; no clock is compared across replicas (a record's `sent` is read only
by its writer). The one unavoidable window: an owner killed after the receiver took the notification
but before its completion reached the log; the next owner then sends it again (with the same
`Idempotency-Key` header, the claim id).
"""
from __future__ import annotations

import asyncio
import hashlib
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from alerting.clock import Clock, wait_or_timeout
from alerting.metrics import AlertingMetrics
from alerting.model import Alert
from alerting.nflog import NotificationLog
from alerting.stages import NotifyContext, NotifyError, Stage

CLAIM, BEAT, TAKEOVER, RELEASE, DONE = "claim", "beat", "takeover", "release", "done"
FINAL_TTL = 6 * 3600.0  # seconds a finished claim is remembered (late claims for it must lose)
ATTEMPT_MARGIN = 0.1  # fraction of the lease an attempt keeps free before the lease ends
DELIVERY_SLOTS = 32  # deliveries in flight at once per replica
# A replica that is not a group's preferred owner waits this long (or until the preferred replica's claim
# is in the log) before it claims too, so that the replicas share a burst of notifications instead of
# the fastest one taking every claim. Order in the log still decides: this only moves who is first.
CLAIM_DEFER = 0.05

Append = Callable[[str, dict[str, Any]], None]


def claim_key(group_key: str, receiver: str, basis: str, epoch: int) -> str:
    raw = f"{group_key}\x00{receiver}\x00{basis}\x00{epoch}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


@dataclass
class ClaimState:
    group_key: str
    receiver: str
    basis: str
    claimants: list[str] = field(default_factory=list)
    owner: int = 0
    beat_seen: float = 0.0  # local monotonic time the owner's last claim/beat/takeover was applied
    owner_sent: float = 0.0  # that record's `sent` (meaningful to the owner only)
    final: str = ""  # "", DONE or RELEASE
    final_at: float = 0.0

    @property
    def owner_id(self) -> str:
        return self.claimants[self.owner] if self.claimants else ""


class ClaimTable:
    """The claims as the log says they stand; `apply` is called for every record in log order."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.claims: dict[str, ClaimState] = {}
        self.epochs: dict[tuple[str, str, str], int] = {}
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}
        self.beats: dict[str, tuple[float, float]] = {}  # replica -> (seen locally, its own `sent`)

    def epoch(self, group_key: str, receiver: str, basis: str) -> int:
        return self.epochs.get((group_key, receiver, basis), 0)

    def get(self, key: str) -> ClaimState | None:
        return self.claims.get(key)

    def beat(self, replica: str, sent: float) -> None:
        """A replica heartbeat: it renews every claim that replica owns."""
        self.beats[replica] = (self.clock.monotonic(), sent)

    def owner_seen(self, st: ClaimState) -> float:
        """When the owner was last heard from (its claim, takeover, or heartbeat), locally."""
        return max(st.beat_seen, self.beats.get(st.owner_id, (0.0, 0.0))[0])

    def owner_sent(self, st: ClaimState) -> float:
        """The owner's own send time of the latest record renewing the claim (meaningful to the owner only)."""
        return max(st.owner_sent, self.beats.get(st.owner_id, (0.0, 0.0))[1])

    def apply(self, rec: dict[str, Any]) -> None:
        op, key, who = rec.get("op"), str(rec.get("key", "")), str(rec.get("replica", ""))
        now = self.clock.monotonic()
        st = self.claims.get(key)
        if op == CLAIM:
            if st is None:
                st = self.claims[key] = ClaimState(str(rec["groupKey"]), str(rec["receiver"]), str(rec["basis"]),
                                                   [who], 0, now, float(rec.get("sent", 0.0)))
            elif not st.final and who not in st.claimants:
                st.claimants.append(who)
        elif st is None or st.final:
            if op == DONE and st is None:
                self.claims[key] = ClaimState("", "", "", [who], 0, now, 0.0, DONE, now)
            return self._wake(key)
        elif op == BEAT and st.owner_id == who:
            st.beat_seen, st.owner_sent = now, float(rec.get("sent", 0.0))
        elif op == TAKEOVER and st.owner_id == rec.get("from") and who in st.claimants:
            st.owner, st.beat_seen, st.owner_sent = st.claimants.index(who), now, float(rec.get("sent", 0.0))
        elif op == RELEASE and st.owner_id == who:
            st.final, st.final_at = RELEASE, now
            k = (st.group_key, st.receiver, st.basis)
            self.epochs[k] = self.epochs.get(k, 0) + 1
        elif op == DONE:
            st.final, st.final_at = DONE, now
        self._wake(key)

    def takeover_at(self, key: str, me: str, lease: float) -> float | None:
        """When `me` may take the claim over (monotonic), or None if it is not a waiting claimant."""
        st = self.claims.get(key)
        if st is None or st.final or me not in st.claimants or st.owner_id == me:
            return None
        distance = (st.claimants.index(me) - st.owner) % len(st.claimants)
        return self.owner_seen(st) + distance * lease

    async def changed(self, key: str, timeout: float) -> None:
        """Until the claim changes or `timeout` passes on the clock."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(key, []).append(fut)
        try:
            await wait_or_timeout(self.clock, fut, timeout)
        finally:
            waiters = self._waiters.get(key)
            if waiters and fut in waiters:
                waiters.remove(fut)
                if not waiters:
                    del self._waiters[key]

    def _wake(self, key: str) -> None:
        for fut in self._waiters.pop(key, []):
            if not fut.done():
                fut.set_result(None)

    def gc(self) -> int:
        now = self.clock.monotonic()
        old = [k for k, st in self.claims.items() if (st.final and now - st.final_at > FINAL_TTL)
               or (not st.final and now - self.owner_seen(st) > FINAL_TTL)]  # abandoned by every replica
        for k in old:
            st = self.claims.pop(k)
            self.epochs.pop((st.group_key, st.receiver, st.basis), None)
        return len(old)


class _Lease:
    def __init__(self, table: ClaimTable, key: str, me: str, lease: float, clock: Clock,
                 healthy: Callable[[], bool]) -> None:
        self.table, self.key, self.me, self.lease, self.clock = table, key, me, lease, clock
        self.healthy = healthy

    def window(self) -> float | None:
        st = self.table.get(self.key)
        if st is None or st.final or st.owner_id != self.me:
            return None
        age = self.clock.monotonic() - self.table.owner_sent(st)
        if age >= self.lease and not self.healthy():
            return None  # cut off from the log for a whole lease: fail open (see ClaimStage._own)
        if age >= self.lease / 2:
            return 0.0
        return max(0.0, self.lease * (1 - ATTEMPT_MARGIN) - age)

    def expiring(self) -> bool:
        st = self.table.get(self.key)
        if st is None or st.owner_id != self.me:
            return True
        if st.final:
            return False  # done: the attempt that completed it is finishing
        return self.clock.monotonic() - self.table.owner_sent(st) >= self.lease * (1 - ATTEMPT_MARGIN)


class ClaimStage:
    """Claim the notification through the log; only the owner runs `inner` (retry, notify, set-notifies).
    When the log is unreachable, fall back to Alertmanager's behaviour (`fallback`: wait position x
    peer_timeout, dedup again) and notify: a duplicate page is better than a missed one."""

    def __init__(self, inner: Stage, fallback: Stage, table: ClaimTable, nflog: NotificationLog, append: Append,
                 replica: str, lease: float, clock: Clock, healthy: Callable[[], bool],
                 metrics: AlertingMetrics | None = None, slots: asyncio.Semaphore | None = None,
                 live: Callable[[], list[str]] = list) -> None:
        self.inner, self.fallback, self.table, self.nflog = inner, fallback, table, nflog
        self.live = live  # the live replicas' ids, sorted (the same list on every replica)
        self.append, self.me, self.lease, self.clock, self.healthy = append, replica, lease, clock, healthy
        self.metrics = metrics
        # Deliveries in flight at once: a burst of flushes (1,000 groups at once) must not crowd the
        # event loop so much that this replica's own heartbeats come back late and its leases expire.
        self.slots = slots or asyncio.Semaphore(DELIVERY_SLOTS)

    def _count(self, outcome: str) -> None:
        if self.metrics is not None:
            self.metrics.child(self.metrics.claims, outcome).inc()

    def _preferred(self, group_key: str) -> bool:
        """Whether this replica is the group's preferred owner: groups spread over the live replicas by a
        hash of the group key (every replica computes the same)."""
        ids = self.live()
        if len(ids) < 2 or self.me not in ids:
            return True
        return ids[zlib.crc32(group_key.encode()) % len(ids)] == self.me

    def _send(self, op: str, key: str, **fields: Any) -> None:
        self.append(f"claim:{key}:{self.me}", {"op": op, "key": key, "replica": self.me,
                                               "sent": self.clock.monotonic(), **fields})

    async def exec(self, ctx: NotifyContext, alerts: list[Alert]) -> list[Alert]:
        assert ctx.integration is not None
        recv = ctx.integration.key
        entry = self.nflog.query(ctx.group_key, recv)
        basis = f"{entry.timestamp}:{entry.replica}" if entry is not None else "-"
        key = claim_key(ctx.group_key, recv, basis, self.table.epoch(ctx.group_key, recv, basis))
        ctx.claim = key
        st = self.table.get(key)
        if st is not None and st.final:
            self._count("lost")
            return []
        if not self.healthy():
            return await self._fail_open(ctx, alerts)
        if not self._preferred(ctx.group_key):
            await self.table.changed(key, CLAIM_DEFER)  # ends early once the preferred owner's claim is in
            st = self.table.get(key)
            if st is not None and st.final:
                self._count("lost")
                return []
        self._send(CLAIM, key, groupKey=ctx.group_key, receiver=recv, basis=basis)
        confirm_by = self.clock.monotonic() + self.lease
        while True:
            st = self.table.get(key)
            now = self.clock.monotonic()
            if st is None or self.me not in st.claimants:
                if st is not None and st.final:
                    self._count("lost")
                    return []
                if now >= confirm_by:
                    return await self._fail_open(ctx, alerts)
                await self.table.changed(key, confirm_by - now)
                continue
            if st.final:
                self._count("lost")
                return []
            if st.owner_id == self.me:
                return await self._own(ctx, alerts, key, took_over=st.claimants[0] != self.me)
            if now >= ctx.deadline:
                return []  # this flush gives up waiting; the next one claims again
            if not self.healthy():
                return await self._fail_open(ctx, alerts)
            due = self.table.takeover_at(key, self.me, self.lease)
            if due is not None and now >= due:
                self._send(TAKEOVER, key, **{"from": st.owner_id})
                await self.table.changed(key, self.lease)
                continue
            wait = (due if due is not None else ctx.deadline) - now
            await self.table.changed(key, min(max(wait, 0.0), ctx.deadline - now))

    async def _own(self, ctx: NotifyContext, alerts: list[Alert], key: str, took_over: bool) -> list[Alert]:
        self._count("takeover" if took_over else "won")
        # The flush's own context carries the lease while this owner delivers (no copy per notification).
        ctx.lease = _Lease(self.table, key, self.me, self.lease, self.clock, self.healthy)
        try:
            async with self.slots:
                return await self.inner.exec(ctx, alerts)
        except NotifyError:
            ctx.lease = None
            st = self.table.get(key)
            if st is not None and not st.final and st.owner_id == self.me:
                self._send(RELEASE, key)
                self._count("released")
            if not self.healthy() and self.clock.monotonic() < ctx.deadline:
                return await self._fail_open(ctx, alerts)
            raise
        finally:
            ctx.lease = None

    async def _fail_open(self, ctx: NotifyContext, alerts: list[Alert]) -> list[Alert]:
        self._count("unavailable")
        alerts = await self.fallback.exec(ctx, alerts)
        if not alerts:
            return []
        async with self.slots:
            return await self.inner.exec(ctx, alerts)
