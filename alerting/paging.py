"""The `escalation_policy` integration: a receiver that pages whoever is on call (alerting/oncall).

The same on every replica:
- A flush of a group whose receiver names `escalation_policy: P` runs behind the usual dedup and claim
  stages, so one replica's `PolicyNotifier.notify` runs for it. It proposes on-call events (a page
  while something fires, a resolve once all resolved) and appends them to the replicated log
  (`oncall:` keys, Event.key), each with the group's webhook message beside it.
- Every replica applies every `oncall:` record in log order (`Escalator.apply`), and maps every `ack:`
  record (the API's acknowledgements) to an ack/unack event at its place in the log, so all hold the
  same incidents and compute the same notifications, ids included.
- A notification is delivered through the claim stages keyed by its id: every replica that applied
  it claims it, the first claim in log order delivers, a silent owner is taken over, and the
  completion (a notification-log entry) stops the others: one delivery per person and contact across
  replicas. Email contacts are data only: counted, not sent.
- Each replica ticks at `Escalator.next_due()` and appends the escalations due; two replicas proposing
  the same step write the same key, and applying the second is a no-op.
- At start the log is replayed and what it implies is not sent again, except notifications nobody
  delivered (no notification-log entry) that are still current (a page of the step the incident is at,
  within REDELIVER_WINDOW_NS): a page lost in a crash goes out late rather than never.
- Fail-open: events the log does not bring back within SUBMIT_TIMEOUT (Kafka unreachable) are applied
  locally at once, and deliveries fall back to position-ordered waits; a page may go out twice, never
  not at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from alerting.acks import Ack
from alerting.claims import ClaimStage
from alerting.clock import Wakeup, all_done, wait_or_timeout
from alerting.config import AlertmanagerConfig, ReceiverConfig
from alerting.dispatch import group_id
from alerting.model import FIRING, RESOLVED, Alert
from alerting.nflog import NotificationLog
from alerting.oncall.config import ONCALL_KEYS, OnCallConfig, from_alertmanager, parse_oncall
from alerting.oncall.contacts import DEFAULT_ACK_URL, KIND_PAGE, KIND_RESOLVED, WEBHOOK, Notification, ack_url
from alerting.oncall.escalation import ACK, UNACK, Event
from alerting.oncall.escalator import Escalator
from alerting.oncall.rotation import from_ns, to_ns
from alerting.pipeline import PipelineDeps
from alerting.stages import (
    Integration,
    MultiStage,
    NotifyContext,
    NotifyError,
    NotifyStage,
    RetryStage,
    SetNotifiesStage,
    Stage,
    WaitStage,
)
from alerting.webhook import go_json, post_json, webhook_message

if TYPE_CHECKING:
    from alerting.service import AlertingService

log = logging.getLogger("hostwatch.alerting")

LOG_KIND = "oncall"  # the replicated log's key prefix of escalation events (Event.key)
INTEGRATION = "escalation"  # the receiver integration's name (nflog receiver `<name>/escalation/0`)
DELIVERY_RECEIVER = "oncall"  # deliveries to people: nflog key `oncall:<notification id>`, `oncall/oncall-<kind>/0`
# The link in every notification; `by` names the person it was sent to (the ack page shows it).
ACK_URL_TEMPLATE = DEFAULT_ACK_URL + "?by={person}"
DELIVERY_REPEAT = 24 * 3600.0  # a delivery's nflog entry lives 2x this: long past any redelivery
DELIVERY_DEADLINE = 300.0  # seconds one delivery retries a failing webhook (escalation goes on meanwhile)
SUBMIT_TIMEOUT = 5.0  # seconds proposed events may take to come back from the log before applying them here
REDELIVER_WINDOW_NS = 3600 * 1_000_000_000  # undelivered notifications older than this are not sent at start
MESSAGE_MAX_ALERTS = 50  # alerts kept in the webhook message carried by an event record
TICK_IDLE = 60.0  # seconds between ticks with nothing due (a new event wakes the ticker earlier)
TICK_RETRY = 1.0  # seconds before proposing a due step again that did not take effect
ONE = frozenset({1})

Transport = Callable[[Notification, bytes, NotifyContext], Awaitable[None]]


def delivery_key(n: Notification) -> tuple[str, str]:
    """The notification-log (group key, receiver) under which a delivery is recorded."""
    return f"{DELIVERY_RECEIVER}:{n.id}", f"{DELIVERY_RECEIVER}/oncall-{n.kind}/0"


class OnceStage:
    """Dedup for one-off notifications: passes while the notification log holds no entry for it."""

    def __init__(self, nflog: NotificationLog) -> None:
        self.nflog = nflog

    async def exec(self, ctx: NotifyContext, alerts: list[Alert]) -> list[Alert]:
        assert ctx.integration is not None
        ctx.firing, ctx.resolved = ONE, frozenset()
        return [] if self.nflog.query(ctx.group_key, ctx.integration.key) is not None else alerts


class PolicyNotifier:
    """The receiver's integration: proposes page/resolve events for the group (never sends itself)."""

    def __init__(self, paging: Paging, policy: str) -> None:
        self.paging, self.policy = paging, policy

    async def notify(self, ctx: NotifyContext, alerts: Sequence[Alert]) -> None:
        p = self.paging
        now_ns = p.svc.clock.time_ns()
        now = from_ns(now_ns)
        message = webhook_message(ctx.receiver, ctx.group_key, ctx.group_labels, alerts, p.svc.external_url,
                                  MESSAGE_MAX_ALERTS, now_ns)
        if any(not a.resolved_at(now_ns) for a in alerts):
            try:
                events = p.escalator.propose_page(ctx.group_key, self.policy, now)
            except ValueError as e:  # the policy went away in a reload
                raise NotifyError(f"{ctx.group_key}: {e}", retriable=False) from None
            ack = p.svc.acks.get(group_id(ctx.group_key))
            if events and ack is not None:  # acknowledged before the first page: page, but do not escalate
                events.append(Event(ACK, ctx.group_key, events[0].incident, now_ns, by=ack.by, replica=p.svc.replica))
        else:
            events = p.escalator.propose_resolve(ctx.group_key, now)
        await p.submit([(e, message) for e in events])


class _PersonNotifier:
    def __init__(self, paging: Paging, n: Notification) -> None:
        self.paging, self.n = paging, n

    async def notify(self, ctx: NotifyContext, alerts: Sequence[Alert]) -> None:
        await self.paging.transport(self.n, self.paging.body(self.n), ctx)


class Paging:
    def __init__(self, svc: AlertingService) -> None:
        self.svc = svc
        self.config = OnCallConfig()
        self.escalator = Escalator(self.config, ack_url_template=ACK_URL_TEMPLATE, replica=svc.replica)
        self.messages: dict[str, dict[str, Any]] = {}  # group key -> the latest webhook message of its events
        self.live = False  # False while the log is replayed at start: notifications are held, not sent
        self.transport: Transport = self._post
        self._replayed: list[Notification] = []
        self._deps: PipelineDeps | None = None
        self._chain: Stage | None = None
        self._changed = Wakeup()
        self._waiting: dict[str, list[asyncio.Future[None]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ticker: asyncio.Task[None] | None = None
        svc.state.handlers[LOG_KIND] = self.apply_record
        svc.state.ack_applied.append(self.ack_applied)
        svc.acks.on_change.append(self._local_ack)

    # -- configuration ---------------------------------------------------------------------------
    def configure(self, am: AlertmanagerConfig, check_receivers: bool = True) -> None:
        """The on-call sections of the file; with `check_receivers`, every `escalation_policy:` a receiver
        names must exist (not when a caller brings its own escalation_policy integration)."""
        if check_receivers:
            cfg = from_alertmanager(am)
        else:
            cfg = parse_oncall({k: v for k, v in am.extensions.items() if k in ONCALL_KEYS}, am.source)
        self.config = self.escalator.config = cfg  # open incidents keep the policy they opened with
        self._changed.set()

    def integrations(self, rc: ReceiverConfig, deps: PipelineDeps) -> list[Integration]:
        """The IntegrationFactory registered under "escalation_policy"."""
        assert rc.escalation_policy is not None
        return [Integration(rc.name, INTEGRATION, 0, PolicyNotifier(self, rc.escalation_policy), send_resolved=True)]

    def bind(self, deps: PipelineDeps) -> None:
        """The delivery stages, on the pipeline's dependencies (rebuilt with them on reload)."""
        c = deps.clock
        once = OnceStage(deps.nflog)
        deliver = MultiStage(RetryStage(NotifyStage(c, deps.metrics), c, deps.backoff, deps.metrics),
                             SetNotifiesStage(deps.nflog, deps.replica))
        fallback = MultiStage(WaitStage(lambda: deps.position() * deps.peer_timeout, c), once)
        claim = ClaimStage(deliver, fallback, deps.claims, deps.nflog, deps.append, deps.replica, deps.peer_timeout,
                           c, deps.healthy, deps.metrics, deps.slots, deps.live)
        self._deps, self._chain = deps, MultiStage(once, claim)

    # -- the log ---------------------------------------------------------------------------------
    def apply_record(self, key: str, value: dict[str, Any] | None) -> None:
        """An `oncall:` record, in log order (or applied here first, fail-open)."""
        if value is None:
            return  # a tombstone of a forgotten incident
        try:
            notes = self.escalator.apply(value)
        except ValueError as e:
            self.svc.metrics.bad_records.inc()
            log.warning("alerting: skipping on-call record %s: %s", key, e)
            return
        msg = value.get("message")
        if isinstance(msg, dict):
            self.messages[str(value.get("groupKey", ""))] = msg
        for fut in self._waiting.pop(key, []):
            if not fut.done():
                fut.set_result(None)
        self._handle(notes)

    def ack_applied(self, ack: Ack) -> None:
        """An `ack:` record in log order: the escalation's ack or unack of the group's open incident."""
        ev = Event(UNACK if ack.cleared else ACK, ack.group_key, 0, ack.at, by=ack.by, replica=self.svc.replica)
        self._handle(self.escalator.apply(ev))

    def _local_ack(self, ack: Ack) -> None:
        if not self.svc.healthy():  # the record may not come back soon: stop escalating here at once
            self.ack_applied(ack)

    def _handle(self, notes: Iterable[Notification]) -> None:
        self._changed.set()
        for n in notes:
            if self.live:
                self._deliver(n)
            else:
                self._replayed.append(n)

    async def submit(self, events: Sequence[tuple[Event, dict[str, Any] | None]]) -> None:
        """Append events; those the log does not bring back within SUBMIT_TIMEOUT are applied here."""
        if not events:
            return
        records = []
        for ev, message in events:
            rec = ev.record()
            if message is not None:
                rec["message"] = message
            records.append((ev.key, rec))
        loop = asyncio.get_running_loop()
        futs: list[asyncio.Future[None]] = []
        for key, _ in records:
            fut = loop.create_future()
            self._waiting.setdefault(key, []).append(fut)
            futs.append(fut)
        for key, rec in records:
            self.svc.state.append(key, rec)
        if self.svc.healthy():
            await self._wait(futs, SUBMIT_TIMEOUT)
        for (key, rec), fut in zip(records, futs, strict=True):
            if not fut.done():
                fut.cancel()
                waiters = self._waiting.get(key, [])
                if fut in waiters:
                    waiters.remove(fut)
                if not waiters:
                    self._waiting.pop(key, None)
                log.warning("alerting: on-call event %s not back from the log in time; applied here", key)
                self.apply_record(key, rec)

    async def _wait(self, futs: list[asyncio.Future[None]], timeout: float) -> None:
        await wait_or_timeout(self.svc.clock, all_done(futs), timeout)

    # -- delivery --------------------------------------------------------------------------------
    def _deliver(self, n: Notification) -> None:
        if n.contact.type != WEBHOOK:
            self.svc.metrics.oncall_undelivered.labels(n.contact.type).inc()
            return
        t = asyncio.ensure_future(self._send(n))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _send(self, n: Notification) -> None:
        deps, chain = self._deps, self._chain
        if deps is None or chain is None:
            log.error("alerting: on-call notification %s before the pipeline was built", n.id)
            return
        group, receiver = delivery_key(n)
        integration = Integration(DELIVERY_RECEIVER, receiver.split("/")[1], 0, _PersonNotifier(self, n), True)
        now = deps.clock.time_ns()
        ctx = NotifyContext(group, {}, DELIVERY_RECEIVER, DELIVERY_REPEAT, now,
                            deps.clock.monotonic() + DELIVERY_DEADLINE, integration=integration)
        marker = Alert({"oncall_notification": n.id}, {}, n.at_ns, 0, "", now)
        try:
            await chain.exec(ctx, [marker])
        except NotifyError as e:
            log.warning("alerting: on-call %s to %s (%s) failed: %s", n.kind, n.person, n.contact.address, e)

    def body(self, n: Notification) -> bytes:
        """Alertmanager's webhook message of the group (version 4) with the `oncall` object beside it."""
        msg = self.messages.get(n.group_key)
        if msg is None:
            msg = webhook_message("", n.group_key, {}, [], self.svc.external_url, 0, n.at_ns)
        out = dict(msg)
        out["status"] = RESOLVED if n.kind == KIND_RESOLVED else FIRING
        out["oncall"] = n.payload()
        return go_json(out)

    async def _post(self, n: Notification, body: bytes, ctx: NotifyContext) -> None:
        assert self._deps is not None and self._deps.http is not None
        await post_json(self._deps.http, n.contact.address, body, ctx)

    # -- running ---------------------------------------------------------------------------------
    async def start(self) -> None:
        """After the replay: send what nobody delivered and is still current, then tick."""
        self.escalator.external_url = self.svc.external_url
        self.live = True
        replayed, self._replayed = self._replayed, []
        now = self.svc.clock.time_ns()
        for n in replayed:
            if self._still_current(n, now) and self.svc.nflog.query(*delivery_key(n)) is None:
                self._deliver(replace(n, ack_url=ack_url(ACK_URL_TEMPLATE, self.svc.external_url, n.group_key,
                                                         n.person, n.incident)))
        self._ticker = asyncio.ensure_future(self._run_ticks())

    def _still_current(self, n: Notification, now_ns: int) -> bool:
        if now_ns - n.at_ns > REDELIVER_WINDOW_NS:
            return False
        if n.kind != KIND_PAGE:
            return True
        inc = self.escalator.incident(n.group_key)
        return inc is not None and inc.number == n.incident and inc.step == n.step and inc.status == "triggered"

    async def _run_ticks(self) -> None:
        clock = self.svc.clock
        while True:
            self._changed.clear()
            wait = TICK_IDLE
            try:
                due = self.escalator.next_due()
                now_ns = clock.time_ns()
                if due is not None and to_ns(due) <= now_ns:
                    before = self.escalator.next_due()
                    events = self.escalator.propose_tick(from_ns(now_ns))
                    await self.submit([(e, self._group_message(e.group_key)) for e in events])
                    if self.escalator.next_due() != before:
                        continue
                    wait = TICK_RETRY
                elif due is not None:
                    wait = min(TICK_IDLE, (to_ns(due) - now_ns) / 1e9)
            except Exception:  # noqa: BLE001 - a failed tick must not stop escalation for good
                log.exception("alerting: on-call tick failed")
                wait = TICK_RETRY
            await self._changed.sleep(self.svc.clock, wait)

    def _group_message(self, group_key: str) -> dict[str, Any] | None:
        """The group's webhook message as this replica sees it now (None if it has no such group)."""
        group = next((g for g in self.svc.groups() if g.key == group_key), None)
        if group is None:
            return None
        now = self.svc.clock.time_ns()
        return webhook_message(group.route.opts.receiver, group.key, group.labels, group.snapshot(now),
                               self.svc.external_url, MESSAGE_MAX_ALERTS, now)

    def gc(self, now_ns: int) -> None:
        """Forget incidents resolved long ago; their events get tombstones so compaction drops them."""
        for inc in self.escalator.gc(from_ns(now_ns)):
            self.messages.pop(inc.group_key, None)
            for key in inc.event_keys():
                self.svc.state.append(key, None)

    async def stop(self) -> None:
        tasks = [t for t in (self._ticker, *self._tasks) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._ticker, self.live = None, False
        self._tasks.clear()

    # -- views (the web page, the API) -----------------------------------------------------------
    def on_call(self, at: datetime) -> list[dict[str, Any]]:
        out = []
        for s in self.config.schedules.values():
            st = s.status(at)
            out.append({"schedule": s.name, "timeZone": str(s.zone), "onCall": list(st.users),
                        "until": st.next_handoff.astimezone(s.zone).isoformat() if st.next_handoff else None,
                        "next": list(st.next_users)})
        return out

    def incidents(self) -> list[dict[str, Any]]:
        out = []
        for inc in self.escalator.incidents.values():
            policy = inc.policy
            levels = len(policy.levels) if policy is not None else 1
            due = inc.due_ns()
            out.append({"groupKey": inc.group_key, "groupID": group_id(inc.group_key), "incident": inc.number,
                        "policy": policy.name if policy is not None else "", "status": inc.status,
                        "level": max(inc.step, 0) % levels + 1, "step": inc.step,
                        "paged": list(dict.fromkeys(r.person for r in inc.paged)),
                        "acknowledgedBy": inc.acked_by, "nextEscalationAt": from_ns(due).isoformat() if due else None})
        return out
