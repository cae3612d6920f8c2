"""Silences (silence/silence.go): matchers, a start and an end, who and why; pending, active, expired.

Ids are random UUIDv4. An update keeps the id only when Alertmanager's canUpdate allows it (same
matchers; an active silence keeps its start and does not end in the past; a pending one does not
start in the past); otherwise the old silence is expired and a new id issued. Expiring sets the end
(and for a pending silence the start too) to now. Silences replicate by newest `updated_at`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from alerting.matchers import Matcher, MatcherError, all_match
from alerting.model import format_time_ms, parse_time_ns

PENDING, ACTIVE, EXPIRED = "pending", "active", "expired"
DEFAULT_RETENTION_NS = 120 * 3600 * 1_000_000_000  # --data.retention


class SilenceError(ValueError):
    """Invalid silence (HTTP 400); `not_found` -> 404."""

    def __init__(self, message: str, not_found: bool = False) -> None:
        super().__init__(message)
        self.not_found = not_found


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at: int
    ends_at: int
    created_by: str
    comment: str
    updated_at: int

    def state(self, now_ns: int) -> str:
        if now_ns < self.starts_at:
            return PENDING
        if now_ns > self.ends_at:
            return EXPIRED
        return ACTIVE

    def api(self, now_ns: int) -> dict[str, Any]:
        return {"id": self.id, "status": {"state": self.state(now_ns)}, "updatedAt": format_time_ms(self.updated_at),
                "comment": self.comment, "createdBy": self.created_by, "endsAt": format_time_ms(self.ends_at),
                "matchers": [m.api() for m in self.matchers], "startsAt": format_time_ms(self.starts_at)}

    def record(self) -> dict[str, Any]:
        """The replicated form (exact ns times)."""
        return {"id": self.id, "matchers": [m.api() for m in self.matchers], "startsAt": self.starts_at,
                "endsAt": self.ends_at, "createdBy": self.created_by, "comment": self.comment,
                "updatedAt": self.updated_at}

    @staticmethod
    def from_record(d: Mapping[str, Any]) -> Silence:
        return Silence(str(d["id"]), tuple(Matcher.from_api(m) for m in d["matchers"]), int(d["startsAt"]),
                       int(d["endsAt"]), str(d.get("createdBy", "")), str(d.get("comment", "")), int(d["updatedAt"]))


def silence_from_api(obj: Any) -> tuple[str, Silence]:
    """A postableSilence -> (id or "", silence with no id yet). Raises SilenceError."""
    if not isinstance(obj, Mapping):
        raise SilenceError("silence must be an object")
    for key in ("matchers", "startsAt", "endsAt", "createdBy", "comment"):
        if key not in obj:
            raise SilenceError(f"{key} in body is required")
    try:
        matchers = tuple(Matcher.from_api(m) for m in obj["matchers"])
        starts, ends = parse_time_ns(str(obj["startsAt"])), parse_time_ns(str(obj["endsAt"]))
    except (MatcherError, TypeError, ValueError) as e:
        raise SilenceError(f"silence invalid: {e}") from None
    sid = obj.get("id") or ""
    return str(sid), Silence("", matchers, starts, ends, str(obj["createdBy"]), str(obj["comment"]), 0)


def validate(sil: Silence) -> None:
    if not sil.matchers:
        raise SilenceError("silence invalid: at least one matcher required")
    if all(m.matches("") for m in sil.matchers):
        raise SilenceError("silence invalid: at least one matcher must not match the empty string")
    if sil.ends_at < sil.starts_at:
        raise SilenceError("silence invalid: end time must not be before start time")


def _can_update(prev: Silence, new: Silence, now: int) -> bool:
    if prev.matchers != new.matchers:
        return False
    state = prev.state(now)
    if state == ACTIVE:
        return new.starts_at == prev.starts_at and new.ends_at >= now
    if state == PENDING:
        return new.starts_at >= now
    return False


class Silences:
    def __init__(self, now_ns: Callable[[], int], retention_ns: int = DEFAULT_RETENTION_NS,
                 new_id: Callable[[], str] = lambda: str(uuid.uuid4())) -> None:
        self._now = now_ns
        self._retention = retention_ns
        self._new_id = new_id
        self._by_id: dict[str, Silence] = {}
        self.on_change: list[Callable[[Silence], None]] = []  # replication appends each change

    def _store(self, sil: Silence) -> None:
        self._by_id[sil.id] = sil
        for fn in self.on_change:
            fn(sil)

    def set(self, sil: Silence, sid: str = "") -> str:
        """Create or update (the API's POST); returns the id it is stored under."""
        now = self._now()
        if sil.starts_at >= sil.ends_at:
            raise SilenceError("Failed to create silence: start time must be before end time")
        if sil.ends_at < now:
            raise SilenceError("Failed to create silence: end time can't be in the past")
        validate(sil)
        prev = self._by_id.get(sid) if sid else None
        if sid and prev is None:
            raise SilenceError("silence not found", not_found=True)
        if prev is not None:
            if _can_update(prev, sil, now):
                self._store(replace(sil, id=prev.id, updated_at=now))
                return prev.id
            if prev.state(now) != EXPIRED:
                self.expire(prev.id)
        new = replace(sil, id=self._new_id(), starts_at=max(sil.starts_at, now), updated_at=now)
        self._store(new)
        return new.id

    def expire(self, sid: str) -> None:
        now = self._now()
        sil = self._by_id.get(sid)
        if sil is None:
            raise SilenceError("silence not found", not_found=True)
        state = sil.state(now)
        if state == ACTIVE:
            self._store(replace(sil, ends_at=now, updated_at=now))
        elif state == PENDING:
            self._store(replace(sil, starts_at=now, ends_at=now, updated_at=now))

    def merge(self, sil: Silence) -> bool:
        """A replicated silence: kept if newer than ours (by updated_at). Returns whether it was."""
        cur = self._by_id.get(sil.id)
        if cur is not None and cur.updated_at >= sil.updated_at:
            return False
        self._by_id[sil.id] = sil
        return True

    def get(self, sid: str) -> Silence | None:
        return self._by_id.get(sid)

    def __iter__(self) -> Iterator[Silence]:
        return iter(list(self._by_id.values()))

    def mutes(self, labels: Mapping[str, str], now_ns: int | None = None) -> list[str]:
        """Ids of the active silences that match `labels`."""
        if not self._by_id:
            return []  # asked for every alert of every flush
        now = self._now() if now_ns is None else now_ns
        return sorted(s.id for s in self._by_id.values() if s.state(now) == ACTIVE and all_match(s.matchers, labels))

    def query(self, filters: Iterable[Matcher] = ()) -> list[Silence]:
        """The API's GET order: active (end asc), pending (start asc), expired (end desc); a filter keeps
        silences that contain an identical matcher."""
        now = self._now()
        wanted = list(filters)
        sils = [s for s in self._by_id.values() if all(f in s.matchers for f in wanted)]
        active = sorted((s for s in sils if s.state(now) == ACTIVE), key=lambda s: s.ends_at)
        pending = sorted((s for s in sils if s.state(now) == PENDING), key=lambda s: s.starts_at)
        expired = sorted((s for s in sils if s.state(now) == EXPIRED), key=lambda s: -s.ends_at)
        return active + pending + expired

    def gc(self) -> int:
        now = self._now()
        old = [sid for sid, s in self._by_id.items() if s.ends_at + self._retention < now]
        for sid in old:
            del self._by_id[sid]
        return len(old)
