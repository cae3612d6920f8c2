"""The escalator: one incident per alert group, moved only by events applied in log order.

Two halves, so that replicas sharing a log agree:
- `propose_page/propose_tick/propose_ack/propose_unack/propose_resolve(..., now)` read the state
  and the config (who is on call, their contacts) and return the events to append; they change
  nothing. A page of a group whose incident is still open proposes nothing (PagerDuty folds a
  re-trigger into the open incident).
- `apply(event)` is the only writer: deterministic, using only what the event carries, and it
  returns the notifications the event implies (the same on every replica; ids included).
`page/tick/ack/unack/resolve` do both at once, for one replica or a test.

Timing: step s+1 is due `timeout(level of s)` after step s began. Its event is stamped with that
due time (not the tick's time) and its recipients are who is on call at the due time, so replicas
ticking at different moments propose identical events. A tick proposes every step due by `now`, so a
replica that was down pages the overdue levels at once (a late page beats a missed one).
Empty slot: a level that reaches nobody (no one on call, or only people no longer in the config)
is skipped at once, with no wait, to the next level (PagerDuty); if every step is empty the incident
is `unrouted`. An ack stops escalation; an unack restarts the current level's timeout (nobody is
re-paged at once); resolve sends a resolved notice to everyone paged, each contact once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from alerting.oncall.config import OnCallConfig
from alerting.oncall.contacts import (
    DEFAULT_ACK_URL,
    KIND_ACKNOWLEDGED,
    KIND_PAGE,
    KIND_RESOLVED,
    Notification,
    Recipient,
    ack_url,
    group_key_hash,
    notification_id,
)
from alerting.oncall.escalation import (
    ACK,
    ESCALATE,
    PAGE,
    RESOLVE,
    TRIGGERED,
    UNACK,
    EscalationPolicy,
    Event,
    Incident,
    Level,
    Step,
)
from alerting.oncall.rotation import duration_ns, from_ns, to_ns

DEFAULT_RETENTION = timedelta(days=7)  # resolved incidents are kept this long (acks, status, dedup)


class Escalator:
    def __init__(self, config: OnCallConfig, external_url: str = "", ack_url_template: str = DEFAULT_ACK_URL,
                 replica: str = "") -> None:
        self.config = config  # replace on reload: open incidents keep the policy they opened with
        self.external_url, self.ack_url_template, self.replica = external_url, ack_url_template, replica
        self.incidents: dict[str, Incident] = {}
        self._by_hash: dict[str, str] = {}

    # -- reading -----------------------------------------------------------------------------------
    def incident(self, group_key: str) -> Incident | None:
        return self.incidents.get(group_key)

    def group_key(self, group_key_hash_: str) -> str | None:
        """The group key an ack link's hash stands for (None if no incident for it is known)."""
        return self._by_hash.get(group_key_hash_)

    def next_due(self) -> datetime | None:
        """When a tick next has something to do (the core sleeps until then or a new event)."""
        due = [d for inc in self.incidents.values() if (d := inc.due_ns()) is not None]
        return from_ns(min(due)) if due else None

    def recipients(self, level: Level, at: datetime) -> tuple[Recipient, ...]:
        """Who a level reaches at `at`: schedules' on-call people then named users, each once, and
        each person through every contact they have."""
        users: list[str] = []
        for name in level.schedules:
            schedule = self.config.schedules.get(name)
            if schedule is not None:  # a schedule removed by a reload: nobody there
                users += schedule.on_call(at)
        users += level.users
        out = []
        for user in dict.fromkeys(users):
            person = self.config.people.get(user)
            if person is not None:
                out += [Recipient(user, c) for c in person.contacts]
        return tuple(out)

    # -- proposing ---------------------------------------------------------------------------------
    def propose_page(self, group_key: str, policy: str | EscalationPolicy, now: datetime) -> list[Event]:
        cur = self.incidents.get(group_key)
        if cur is not None and not cur.resolved_ns:
            return []
        if isinstance(policy, str):
            found = self.config.policies.get(policy)
            if found is None:
                raise ValueError(f"unknown escalation policy {policy!r}")
            policy = found
        number, at = (cur.number + 1 if cur is not None else 1), to_ns(now)
        first = self.recipients(policy.levels[0], now)
        page = Event(PAGE, group_key, number, at, 0, first, policy, replica=self.replica)
        return [page, *self._chain(group_key, number, policy, 0, at, bool(first), at)]

    def propose_tick(self, now: datetime) -> list[Event]:
        at = to_ns(now)
        out: list[Event] = []
        for inc in self.incidents.values():
            if inc.due_ns() is not None and inc.policy is not None:
                start = inc.opened_ns if inc.step < 0 else inc.step_ns
                out += self._chain(inc.group_key, inc.number, inc.policy, inc.step, start, inc.step_paged, at)
        return out

    def propose_ack(self, group_key: str, by: str, now: datetime) -> list[Event]:
        cur = self.incidents.get(group_key)
        if cur is None or cur.status != TRIGGERED:
            return []
        return [Event(ACK, group_key, cur.number, to_ns(now), by=by, replica=self.replica)]

    def propose_unack(self, group_key: str, by: str, now: datetime) -> list[Event]:
        cur = self.incidents.get(group_key)
        if cur is None or cur.resolved_ns or cur.acked_by is None:
            return []
        return [Event(UNACK, group_key, cur.number, to_ns(now), by=by, replica=self.replica)]

    def propose_resolve(self, group_key: str, now: datetime) -> list[Event]:
        cur = self.incidents.get(group_key)
        if cur is None or cur.resolved_ns:
            return []
        return [Event(RESOLVE, group_key, cur.number, to_ns(now), replica=self.replica)]

    def _chain(self, group_key: str, number: int, policy: EscalationPolicy, step: int, step_ns: int,
               paged: bool, now_ns: int) -> list[Event]:
        """The escalations due by now_ns after `step` began at step_ns (an empty step is due at once)."""
        out = []
        while step + 1 < policy.steps:
            due = step_ns + (duration_ns(policy.level(step).timeout) if paged and step >= 0 else 0)
            if due > now_ns:
                break
            step += 1
            recipients = self.recipients(policy.level(step), from_ns(due))
            out.append(Event(ESCALATE, group_key, number, due, step, recipients, policy, replica=self.replica))
            step_ns, paged = due, bool(recipients)
        return out

    # -- applying ----------------------------------------------------------------------------------
    def apply(self, event: Event | Mapping[str, Any]) -> list[Notification]:
        """Apply one event (or its log record; ValueError if malformed) and return what it notifies."""
        if not isinstance(event, Event):
            event = Event.from_record(dict(event) if isinstance(event, Mapping) else event)
        cur = self.incidents.get(event.group_key)
        number = event.incident
        if number == 0:  # ack/unack/resolve of "whatever is open"
            if cur is None:
                return []
            number = cur.number
        if cur is not None and number < cur.number:
            return []  # about an incident that is over
        if cur is None or number > cur.number:
            cur = self.incidents[event.group_key] = Incident(event.group_key, number, opened_ns=event.at_ns)
            self._by_hash[group_key_hash(event.group_key)] = event.group_key
        if event.op in (PAGE, ESCALATE):
            return self._step(cur, event)
        if event.op == ACK:
            if cur.status != TRIGGERED:
                return []
            cur.acked_by, cur.acked_ns = event.by, event.at_ns
            if cur.policy is None or not cur.policy.notify_on_ack:
                return []
            return self._notices(cur, KIND_ACKNOWLEDGED, [r for r in cur.paged if r.person != event.by], event.at_ns)
        if event.op == UNACK:
            if cur.resolved_ns or cur.acked_by is None:
                return []
            cur.acked_by, cur.acked_ns, cur.step_ns = None, 0, event.at_ns
            return []
        if cur.resolved_ns:  # RESOLVE
            return []
        cur.resolved_ns = event.at_ns
        return self._notices(cur, KIND_RESOLVED, cur.paged, event.at_ns)

    def _step(self, inc: Incident, event: Event) -> list[Notification]:
        """A step only moves forward; it notifies only while the incident is triggered (a step
        proposed before an ack it had not seen, or replayed after one, pages nobody)."""
        if inc.policy is None:
            inc.policy, inc.opened_ns = event.policy, event.at_ns
        if event.step <= inc.step:
            return []
        notify = inc.status == TRIGGERED
        inc.step, inc.step_ns, inc.step_paged = event.step, event.at_ns, bool(event.recipients)
        inc.steps.append(Step(event.step, event.at_ns, event.recipients if notify else (), notify))
        return self._notices(inc, KIND_PAGE, event.recipients, event.at_ns) if notify else []

    def _notices(self, inc: Incident, kind: str, recipients: Iterable[Recipient], at_ns: int) -> list[Notification]:
        policy = inc.policy
        name, levels = (policy.name, len(policy.levels)) if policy is not None else ("", 1)
        step = max(inc.step, 0)
        return [Notification(notification_id(inc.group_key, inc.number, kind, step, r), kind, inc.group_key,
                             inc.number, name, step, step % levels + 1, step // levels, r, at_ns,
                             ack_url(self.ack_url_template, self.external_url, inc.group_key, r.person, inc.number),
                             inc.acked_by or "")
                for r in recipients]

    # -- one replica at a time (propose + apply) --------------------------------------------------
    def _run(self, events: list[Event]) -> list[Notification]:
        return [n for e in events for n in self.apply(e)]

    def page(self, group_key: str, policy: str | EscalationPolicy, now: datetime) -> list[Notification]:
        return self._run(self.propose_page(group_key, policy, now))

    def tick(self, now: datetime) -> list[Notification]:
        return self._run(self.propose_tick(now))

    def ack(self, group_key: str, by: str, now: datetime) -> list[Notification]:
        return self._run(self.propose_ack(group_key, by, now))

    def unack(self, group_key: str, by: str, now: datetime) -> list[Notification]:
        return self._run(self.propose_unack(group_key, by, now))

    def resolve(self, group_key: str, now: datetime) -> list[Notification]:
        return self._run(self.propose_resolve(group_key, now))

    # -- state -------------------------------------------------------------------------------------
    def gc(self, now: datetime, retention: timedelta = DEFAULT_RETENTION) -> list[Incident]:
        """Forget incidents resolved more than `retention` ago; the core may tombstone their
        `event_keys()` so a compacted log forgets them too."""
        limit = to_ns(now) - duration_ns(retention)
        old = [inc for inc in self.incidents.values() if inc.resolved_ns and inc.resolved_ns < limit]
        for inc in old:
            del self.incidents[inc.group_key]
            self._by_hash.pop(group_key_hash(inc.group_key), None)
        return old

    def to_dict(self) -> dict[str, Any]:
        return {"incidents": [self.incidents[k].record() for k in sorted(self.incidents)]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], config: OnCallConfig, **kwargs: Any) -> Escalator:
        e = cls(config, **kwargs)
        e.load_dict(d)
        return e

    def load_dict(self, d: Mapping[str, Any]) -> None:
        """Replace the state with a `to_dict()` snapshot (a checkpoint, instead of replaying the log)."""
        self.incidents = {}
        for rec in d.get("incidents", ()):
            inc = Incident.from_record(rec)
            self.incidents[inc.group_key] = inc
        self._by_hash = {group_key_hash(k): k for k in self.incidents}

