"""What a replica shares through the replicated log, and how it rebuilds from it.

Keys: `alert:<fp>`, `silence:<id>`, `nflog:<groupKey>:<receiver>`, `claim:<claim>:<replica>`,
`ack:<groupID>`, `member:<replica>`, and extensions' own kinds (`oncall:` escalation events). Local
changes to silences, the notification log and acks are appended as they happen; records from the log
are merged (newest wins), so a replica's own records coming back are no-ops. Alerts are appended when
they are new or change, or when the stored endsAt is more than half used up, not on every identical
re-post, so the log stays small while a restarted replica still gets every alert back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alerting.acks import Ack, Acks
from alerting.claims import DONE, ClaimTable
from alerting.clock import Clock
from alerting.model import Alert, fp_hex
from alerting.nflog import Entry, NotificationLog, entry_key
from alerting.silences import Silence, Silences
from alerting.store import AlertStore

log = logging.getLogger("hostwatch.alerting")

REPLAY_RESOLVED_MAX_NS = 30 * 60 * 1_000_000_000  # Alertmanager's --alerts.gc-interval: resolved alerts kept

Append = Callable[[str, "dict[str, Any] | None"], None]


@dataclass
class Member:
    replica: str
    address: str
    seen: float  # local monotonic time of its last heartbeat
    at_ns: int = 0  # the heartbeat's own wall time (for display: a replayed old beat is not recent)


def alert_record(a: Alert, replica: str) -> dict[str, Any]:
    return {"labels": a.labels, "annotations": a.annotations, "startsAt": a.starts_at, "endsAt": a.ends_at,
            "generatorURL": a.generator_url, "updatedAt": a.updated_at, "timeout": a.timeout, "replica": replica}


def alert_from_record(d: dict[str, Any]) -> Alert:
    return Alert(dict(d["labels"]), dict(d.get("annotations") or {}), int(d["startsAt"]), int(d["endsAt"]),
                 str(d.get("generatorURL", "")), int(d["updatedAt"]), bool(d.get("timeout", False)))


class ReplicatedState:
    def __init__(self, replica: str, clock: Clock, store: AlertStore, silences: Silences, nflog: NotificationLog,
                 claims: ClaimTable, acks: Acks, append: Append) -> None:
        self.replica, self.clock, self.append = replica, clock, append
        self.store, self.silences, self.nflog, self.claims, self.acks = store, silences, nflog, claims, acks
        self.members: dict[str, Member] = {}
        self._persisted: dict[int, tuple[int, dict[str, str], str, int]] = {}  # fp -> what was last appended
        self._replaying = False
        self.last_applied = 0.0  # monotonic time of the last record applied (liveness of the log)
        # Extensions: records of their own kind (`oncall:` events), and every ack record as the log
        # orders it (escalation maps acks to its events in log order, the same on every replica).
        self.handlers: dict[str, Callable[[str, dict[str, Any] | None], None]] = {}
        self.ack_applied: list[Callable[[Ack], None]] = []
        silences.on_change.append(lambda s: append(f"silence:{s.id}", s.record()))
        nflog.on_change.append(self._log_entry)
        acks.on_change.append(lambda a: append(f"ack:{a.group_id}", a.record()))
        store.subscribe(self._persist_alert)

    def _log_entry(self, e: Entry) -> None:
        self.append(f"nflog:{entry_key(e.group_key, e.receiver)}", e.record())

    def _persist_alert(self, a: Alert, changed: bool) -> None:
        if self._replaying:
            return
        prev = self._persisted.get(a.fp)
        now = self.clock.time_ns()
        if (prev is not None and prev[0] == a.starts_at and a.ends_at >= prev[3]
                and (prev[3] - now) * 2 > (a.ends_at - now) and prev[2] == a.generator_url
                and prev[1] == a.annotations):
            return  # a re-post that only moves endsAt, with more than half of the stored validity left
        self._persisted[a.fp] = (a.starts_at, a.annotations, a.generator_url, a.ends_at)
        self.append(f"alert:{fp_hex(a.fp)}", alert_record(a, self.replica))

    def forget_alert(self, a: Alert) -> None:
        """The alert was garbage-collected: a tombstone lets compaction drop it."""
        self._persisted.pop(a.fp, None)
        self.append(f"alert:{fp_hex(a.fp)}", None)

    def heartbeat(self, address: str) -> None:
        """Announces this replica and renews all of its claims (`sent` is read back only by itself)."""
        self.append(f"member:{self.replica}", {"replica": self.replica, "address": address,
                                               "at": self.clock.time_ns(), "sent": self.clock.monotonic()})

    def live_members(self, within: float) -> list[Member]:
        """Replicas heard from within `within` of the last record: while the log is down, the membership
        it last showed (Alertmanager's positions stay put while its gossip is cut off too)."""
        ref = min(self.clock.monotonic(), self.last_applied)
        return sorted((m for m in self.members.values() if ref - m.seen <= within), key=lambda m: m.replica)

    def position(self, within: float) -> int:
        """This replica's place among the live replicas sorted by id (Alertmanager's peer position)."""
        ids = [m.replica for m in self.live_members(within)]
        return ids.index(self.replica) if self.replica in ids else len(ids)

    def apply(self, key: str, value: dict[str, Any] | None) -> None:
        self.last_applied = self.clock.monotonic()
        kind, _, rest = key.partition(":")
        if kind == "claim" and value is not None:
            self.claims.apply(value)
        elif kind == "nflog" and value is not None:
            entry = Entry.from_record(value)
            self.nflog.merge(entry)
            if entry.claim:
                self.claims.apply({"op": DONE, "key": entry.claim, "replica": entry.replica})
        elif kind == "alert":
            if value is not None and value.get("replica") != self.replica:
                a = alert_from_record(value)
                now = self.clock.time_ns()
                if not (a.resolved_at(now) and a.ends_at < now - REPLAY_RESOLVED_MAX_NS):
                    self._replaying = True
                    try:
                        stored = self.store.put(a, now)
                    finally:
                        self._replaying = False
                    self._persisted[a.fp] = (stored.starts_at, stored.annotations, stored.generator_url,
                                             stored.ends_at)
        elif kind == "silence" and value is not None:
            self.silences.merge(Silence.from_record(value))
        elif kind == "ack" and value is not None:
            ack = Ack.from_record(value)
            self.acks.merge(ack)
            for fn in self.ack_applied:
                fn(ack)
        elif kind == "member" and value is not None:
            self.members[rest] = Member(rest, str(value.get("address", "")), self.clock.monotonic(),
                                        int(value.get("at", 0)))
            self.claims.beat(rest, float(value.get("sent", 0.0)))
        elif kind in self.handlers:
            self.handlers[kind](key, value)
        elif value is not None:
            log.debug("alerting: ignoring log record %s", key)
