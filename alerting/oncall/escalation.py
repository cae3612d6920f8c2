"""Escalation policies, the events that drive an incident, and an incident's state.

A policy is ordered levels, each with targets (the people on call in schedules, named users) and a
timeout; `repeat: N` runs the levels N more times after the last one (PagerDuty's num_loops), so a
policy has len(levels) x (1 + N) *steps*. An incident is one alert group's escalation: opened by a
page, it moves to the next step when its current step's timeout passes unacknowledged; an ack stops
it; a resolve ends it and tells everyone paged.

Events are the only way state changes (`Escalator.apply`), so replicas that apply the same log in
the same order hold the same state. Each event carries what applying it needs and nothing read from
the config or a clock: the policy as it was when the incident opened (PagerDuty snapshots it too)
and, for page/escalate, the recipients resolved by whoever proposed it. Applying is monotone, so a
duplicate (two replicas proposing the same step) or a late event is a no-op: an incident's number
only grows, its step only grows, ack/resolve only once (an unack restarts the current level's
timeout). Ack/unack/resolve with incident 0 mean "the incident open when applied".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from alerting.oncall.contacts import Recipient, group_key_hash
from alerting.oncall.rotation import duration_ns

PAGE, ESCALATE, ACK, UNACK, RESOLVE = "oncall.page", "oncall.escalate", "oncall.ack", "oncall.unack", "oncall.resolve"
OPS = (PAGE, ESCALATE, ACK, UNACK, RESOLVE)
TRIGGERED, ACKNOWLEDGED, RESOLVED = "triggered", "acknowledged", "resolved"
DEFAULT_LEVEL_TIMEOUT = timedelta(minutes=30)  # PagerDuty's default escalation delay
MAX_REPEAT = 9  # PagerDuty's limit on "repeat this policy"


@dataclass(frozen=True)
class Level:
    schedules: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    timeout: timedelta = DEFAULT_LEVEL_TIMEOUT

    def record(self) -> dict[str, Any]:
        return {"schedules": list(self.schedules), "users": list(self.users), "timeout": self.timeout.total_seconds()}

    @staticmethod
    def from_record(d: Any) -> Level:
        return Level(tuple(map(str, d.get("schedules", ()))), tuple(map(str, d.get("users", ()))),
                     timedelta(seconds=float(d["timeout"])))


@dataclass(frozen=True)
class EscalationPolicy:
    name: str
    levels: tuple[Level, ...]
    repeat: int = 0
    notify_on_ack: bool = False  # tell the others paged who acknowledged

    def __post_init__(self) -> None:
        if not self.levels:
            raise ValueError("an escalation policy needs at least one level")
        if not 0 <= self.repeat <= MAX_REPEAT:
            raise ValueError(f"repeat must be between 0 and {MAX_REPEAT}")

    @property
    def steps(self) -> int:
        return len(self.levels) * (1 + self.repeat)

    def level(self, step: int) -> Level:
        return self.levels[step % len(self.levels)]

    def record(self) -> dict[str, Any]:
        return {"name": self.name, "repeat": self.repeat, "notifyOnAck": self.notify_on_ack,
                "levels": [lv.record() for lv in self.levels]}

    @staticmethod
    def from_record(d: Any) -> EscalationPolicy:
        return EscalationPolicy(str(d["name"]), tuple(Level.from_record(x) for x in d["levels"]), int(d["repeat"]),
                                bool(d.get("notifyOnAck", False)))


@dataclass(frozen=True)
class Event:
    op: str
    group_key: str
    incident: int  # 1, 2, ... per group key; 0 (ack/unack/resolve only): the one open when applied
    at_ns: int
    step: int = 0  # page (always 0) and escalate
    recipients: tuple[Recipient, ...] = ()  # page and escalate; empty: nobody on call, skip on at once
    policy: EscalationPolicy | None = None  # page and escalate (either may be the first one applied)
    by: str = ""  # ack, unack
    replica: str = ""  # who proposed it (the core may let the proposer deliver)

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown on-call event {self.op!r}")
        if self.op in (PAGE, ESCALATE) and (self.policy is None or self.incident < 1 or self.step < 0):
            raise ValueError(f"{self.op} needs a policy, an incident >= 1 and a step >= 0")
        if self.incident < 0:
            raise ValueError("incident must be >= 0")

    @property
    def key(self) -> str:
        """A log key per logical event: two replicas proposing the same step write the same key, and
        an incident's events never share one (ack and unack alternate on two keys)."""
        base = f"oncall:{group_key_hash(self.group_key)}:{self.incident}:{self.op.removeprefix('oncall.')}"
        return f"{base}:{self.step}" if self.op in (PAGE, ESCALATE) else base

    def record(self) -> dict[str, Any]:
        d: dict[str, Any] = {"op": self.op, "groupKey": self.group_key, "incident": self.incident, "at": self.at_ns}
        if self.op in (PAGE, ESCALATE):
            assert self.policy is not None
            d.update(step=self.step, recipients=[r.record() for r in self.recipients], policy=self.policy.record())
        if self.by:
            d["by"] = self.by
        if self.replica:
            d["replica"] = self.replica
        return d

    @staticmethod
    def from_record(d: Any) -> Event:
        """The event a log record holds; ValueError (one line) for anything malformed."""
        if not isinstance(d, dict):
            raise ValueError("an on-call event must be an object")
        try:
            policy = EscalationPolicy.from_record(d["policy"]) if d.get("policy") is not None else None
            return Event(str(d["op"]), str(d["groupKey"]), int(d["incident"]), int(d["at"]), int(d.get("step", 0)),
                         tuple(Recipient.from_record(r) for r in d.get("recipients", ())), policy,
                         str(d.get("by", "")), str(d.get("replica", "")))
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"malformed on-call event: {type(e).__name__} {e}") from None


@dataclass(frozen=True)
class Step:
    step: int
    at_ns: int
    recipients: tuple[Recipient, ...]  # who was paged (empty: nobody on call, or not notified)
    notified: bool = True  # False: reached after an ack/resolve, so nobody was paged

    def record(self) -> dict[str, Any]:
        return {"step": self.step, "at": self.at_ns, "recipients": [r.record() for r in self.recipients],
                "notified": self.notified}

    @staticmethod
    def from_record(d: Any) -> Step:
        return Step(int(d["step"]), int(d["at"]), tuple(Recipient.from_record(r) for r in d["recipients"]),
                    bool(d.get("notified", True)))


@dataclass
class Incident:
    group_key: str
    number: int
    policy: EscalationPolicy | None = None  # None until a page/escalate event brings it
    opened_ns: int = 0
    step: int = -1  # -1: opened, nobody paged yet
    step_ns: int = 0  # when the current step began (or its timeout was restarted by an unack)
    step_paged: bool = False  # the current step reached someone; if not, the next is due at once
    acked_by: str | None = None
    acked_ns: int = 0
    resolved_ns: int = 0
    steps: list[Step] = field(default_factory=list)  # in the order applied

    @property
    def status(self) -> str:
        return RESOLVED if self.resolved_ns else ACKNOWLEDGED if self.acked_by is not None else TRIGGERED

    @property
    def paged(self) -> list[Recipient]:
        """Everyone notified so far, each once, in the order they were first paged."""
        return list(dict.fromkeys(r for s in self.steps for r in s.recipients))

    @property
    def exhausted(self) -> bool:
        return self.policy is not None and self.step >= self.policy.steps - 1

    @property
    def unrouted(self) -> bool:
        """Every step ran and nobody was reachable: the core should count (and log) this."""
        return self.exhausted and not self.paged

    def due_ns(self) -> int | None:
        """When the next escalation is due, or None (acked, resolved, exhausted, no policy yet)."""
        if self.policy is None or self.status != TRIGGERED or self.exhausted:
            return None
        if self.step < 0:
            return self.opened_ns
        return self.step_ns + (duration_ns(self.policy.level(self.step).timeout) if self.step_paged else 0)

    def event_keys(self) -> list[str]:
        """The log keys this incident's events may have used (to tombstone when it is forgotten)."""
        steps = self.policy.steps if self.policy is not None else max(self.step + 1, 1)
        base = [Event(PAGE, self.group_key, self.number, 0, 0, (), _ANY_POLICY).key]
        base += [Event(ESCALATE, self.group_key, self.number, 0, s, (), _ANY_POLICY).key for s in range(1, steps)]
        return base + [Event(op, self.group_key, self.number, 0).key for op in (ACK, UNACK, RESOLVE)]

    def record(self) -> dict[str, Any]:
        return {"groupKey": self.group_key, "number": self.number,
                "policy": self.policy.record() if self.policy is not None else None, "opened": self.opened_ns,
                "step": self.step, "stepAt": self.step_ns, "stepPaged": self.step_paged, "ackedBy": self.acked_by,
                "ackedAt": self.acked_ns, "resolvedAt": self.resolved_ns,
                "steps": [s.record() for s in self.steps]}

    @staticmethod
    def from_record(d: dict[str, Any]) -> Incident:
        return Incident(str(d["groupKey"]), int(d["number"]),
                        EscalationPolicy.from_record(d["policy"]) if d.get("policy") is not None else None,
                        int(d["opened"]), int(d["step"]), int(d["stepAt"]), bool(d["stepPaged"]),
                        None if d.get("ackedBy") is None else str(d["ackedBy"]), int(d["ackedAt"]),
                        int(d["resolvedAt"]),
                        [Step.from_record(x) for x in d["steps"]])


_ANY_POLICY = EscalationPolicy("-", (Level(),))

