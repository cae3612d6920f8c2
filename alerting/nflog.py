"""The notification log (nflog/nflog.go): per (group key, receiver integration), what was last sent.

An entry holds the hashes of the firing and resolved alerts of the last successful notification, its
time, and the claim that produced it (the HA protocol's completion). Entries expire after
2 x repeat_interval, capped by the retention; replicas merge by the newer timestamp.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from alerting.silences import DEFAULT_RETENTION_NS


@dataclass(frozen=True)
class Entry:
    group_key: str
    receiver: str  # "<receiver name>/<integration>/<index>", as nflogpb.Receiver prints
    timestamp: int  # ns
    firing: frozenset[int]
    resolved: frozenset[int]
    expires_at: int
    claim: str = ""  # the claim this notification completed ("" when sent without one: fail-open)
    replica: str = ""

    def record(self) -> dict[str, Any]:
        return {"groupKey": self.group_key, "receiver": self.receiver, "timestamp": self.timestamp,
                "firing": sorted(self.firing), "resolved": sorted(self.resolved), "expiresAt": self.expires_at,
                "claim": self.claim, "replica": self.replica}

    @staticmethod
    def from_record(d: dict[str, Any]) -> Entry:
        return Entry(str(d["groupKey"]), str(d["receiver"]), int(d["timestamp"]), frozenset(map(int, d["firing"])),
                     frozenset(map(int, d["resolved"])), int(d["expiresAt"]), str(d.get("claim", "")),
                     str(d.get("replica", "")))


def entry_key(group_key: str, receiver: str) -> str:
    """nflog's state key: `<groupKey>:<receiver>`."""
    return f"{group_key}:{receiver}"


class NotificationLog:
    def __init__(self, now_ns: Callable[[], int], retention_ns: int = DEFAULT_RETENTION_NS) -> None:
        self._now = now_ns
        self._retention = retention_ns
        self._entries: dict[str, Entry] = {}
        self.on_change: list[Callable[[Entry], None]] = []

    def query(self, group_key: str, receiver: str) -> Entry | None:
        e = self._entries.get(entry_key(group_key, receiver))
        if e is not None and e.expires_at <= self._now():
            return None
        return e

    def log(self, group_key: str, receiver: str, firing: frozenset[int], resolved: frozenset[int],
            repeat_interval_ns: int, claim: str = "", replica: str = "") -> Entry:
        now = self._now()
        ttl = min(self._retention, 2 * repeat_interval_ns) if repeat_interval_ns > 0 else self._retention
        entry = Entry(group_key, receiver, now, firing, resolved, now + ttl, claim, replica)
        self._entries[entry_key(group_key, receiver)] = entry
        for fn in self.on_change:
            fn(entry)
        return entry

    def merge(self, entry: Entry) -> bool:
        key = entry_key(entry.group_key, entry.receiver)
        cur = self._entries.get(key)
        if cur is not None and cur.timestamp >= entry.timestamp:
            return False
        self._entries[key] = entry
        return True

    def gc(self) -> int:
        now = self._now()
        old = [k for k, e in self._entries.items() if e.expires_at <= now]
        for k in old:
            del self._entries[k]
        return len(old)

    def __len__(self) -> int:
        return len(self._entries)


def needs_update(entry: Entry | None, firing: set[int] | frozenset[int], resolved: set[int] | frozenset[int],
                 send_resolved: bool, repeat_interval_ns: int, now_ns: int) -> bool:
    """DedupStage.needsUpdate, exactly: whether this flush must notify."""
    if entry is None:
        return len(firing) > 0
    if not firing <= entry.firing:
        return True
    if not firing:
        # All resolved: notify (whatever send_resolved says) only if the receiver was told they fired.
        return len(entry.firing) > 0
    if send_resolved and not resolved <= entry.resolved:
        return True
    return entry.timestamp < now_ns - repeat_interval_ns
