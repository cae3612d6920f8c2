"""Acknowledgements of alert groups: who took a group on, replicated like silences.

Alertmanager has none. Here an ack marks a group (by its id, sha256 of the groupKey) as being handled;
it is cleared when the group resolves (every alert of it resolved and the group gone) or on request.
The notification pipeline does not change for an acked group (Alertmanager semantics stay intact);
escalation (paging.py) maps every `ack:` record, in log order, to an ack/unack of the group's incident.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from alerting.model import format_time_ms


@dataclass(frozen=True)
class Ack:
    group_id: str
    group_key: str
    by: str
    comment: str
    at: int  # ns; the newest record wins between replicas
    cleared: bool = False

    def api(self) -> dict[str, Any]:
        return {"groupID": self.group_id, "groupKey": self.group_key, "acknowledgedBy": self.by,
                "comment": self.comment, "acknowledgedAt": format_time_ms(self.at), "active": not self.cleared}

    def record(self) -> dict[str, Any]:
        return {"groupID": self.group_id, "groupKey": self.group_key, "by": self.by, "comment": self.comment,
                "at": self.at, "cleared": self.cleared}

    @staticmethod
    def from_record(d: dict[str, Any]) -> Ack:
        return Ack(str(d["groupID"]), str(d["groupKey"]), str(d.get("by", "")), str(d.get("comment", "")),
                   int(d["at"]), bool(d.get("cleared", False)))


class Acks:
    def __init__(self, now_ns: Callable[[], int]) -> None:
        self._now = now_ns
        self._by_group: dict[str, Ack] = {}
        self.on_change: list[Callable[[Ack], None]] = []  # local changes (replication appends them)
        self.observers: list[Callable[[Ack], None]] = []  # every change, local or replicated (escalation)

    def _store(self, ack: Ack) -> Ack:
        self._by_group[ack.group_id] = ack
        for fn in self.on_change + self.observers:
            fn(ack)
        return ack

    def ack(self, group_id: str, group_key: str, by: str, comment: str = "") -> Ack:
        return self._store(Ack(group_id, group_key, by, comment, self._now()))

    def clear(self, group_id: str, by: str = "") -> Ack | None:
        cur = self._by_group.get(group_id)
        if cur is None or cur.cleared:
            return None
        return self._store(replace(cur, cleared=True, at=max(self._now(), cur.at + 1), by=by or cur.by))

    def get(self, group_id: str) -> Ack | None:
        a = self._by_group.get(group_id)
        return a if a is not None and not a.cleared else None

    def merge(self, ack: Ack) -> bool:
        cur = self._by_group.get(ack.group_id)
        if cur is not None and cur.at >= ack.at:
            return False
        self._by_group[ack.group_id] = ack
        for fn in self.observers:
            fn(ack)
        return True

    def active(self) -> list[Ack]:
        return [a for a in self._by_group.values() if not a.cleared]
