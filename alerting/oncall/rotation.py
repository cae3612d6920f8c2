"""One schedule layer: users taking turns from a first hand-off, in a time zone, maybe restricted.

The rules, written down once (PagerDuty's behaviour, made explicit where its docs are silent):

- Intervals are half-open, [start, end): at a hand-off instant the next person is on call and the
  previous one is not, so a hand-off has neither a gap nor a double page.
- A turn length in whole days or weeks (`1d`, `2d`, `1w`) is a *calendar* turn: every hand-off is at
  the local wall time of `start` in the layer's zone, so a daily 09:00 hand-off stays at 09:00 across
  DST (the spring-forward day's turn lasts 23 real hours, the fall-back day's 25).
- A turn length in hours or minutes (`8h`, `12h`, even `24h`) is an *elapsed* turn: hand-off k is
  exactly k x length after `start` in real time, so on-call time is shared fairly and the local
  hand-off time moves by the offset change across DST. Mixing the two (`1d12h`) is rejected.
- A local time that does not exist (the spring-forward gap) moves forward by the gap (02:30 ->
  03:30 in Europe/Berlin); one that occurs twice (fall-back) is its first occurrence. That is
  zoneinfo's fold=0 and what most calendars do (target/goalert#1252 starts at the first occurrence).
- Restrictions are windows of local wall-clock time (a daily 09:00-17:00 is 09:00-17:00 local on
  every day, DST or not); the layer has someone only inside the union of its windows. The rotation
  keeps turning underneath: a restricted stretch does not delay the next hand-off (as in PagerDuty).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
ALL_DAYS = frozenset(range(7))
DAY = timedelta(days=1)
WEEK = timedelta(days=7)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def require_aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"a time with a zone is required, got naive {at.isoformat()}")
    return at.astimezone(UTC)


def resolve_local(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a naive local wall time: gaps move forward by the gap, folds take the first."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def local_wall(at: datetime, zone: ZoneInfo) -> datetime:
    return at.astimezone(zone).replace(tzinfo=None)


def to_ns(at: datetime) -> int:
    return (require_aware(at) - EPOCH) // timedelta(microseconds=1) * 1000


def from_ns(ns: int) -> datetime:
    return EPOCH + timedelta(microseconds=ns // 1000)


def duration_ns(td: timedelta) -> int:
    return td // timedelta(microseconds=1) * 1000


@dataclass(frozen=True)
class TurnLength:
    """Either calendar days (hand-offs at a fixed local time) or elapsed seconds; exactly one is set."""

    days: int = 0
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if (self.days > 0) == (self.seconds > 0) or self.days < 0 or self.seconds < 0:
            raise ValueError("a turn length is a positive number of days or of seconds")

    def __str__(self) -> str:
        if self.days:
            return f"{self.days // 7}w" if self.days % 7 == 0 else f"{self.days}d"
        s = self.seconds
        return f"{s / 3600:g}h" if s % 3600 == 0 else f"{s / 60:g}m" if s % 60 == 0 else f"{s:g}s"


@dataclass(frozen=True)
class Restriction:
    """Windows of local wall time: on each day in `days`, from `start` for `duration` (wall-clock).

    PagerDuty's daily_restriction is all seven days with a duration up to 24h; its weekly_restriction
    is one start day with a duration up to a week (e.g. Fri 17:00 for 64h is the weekend)."""

    start: time
    duration: timedelta
    days: frozenset[int] = ALL_DAYS

    def __post_init__(self) -> None:
        if not timedelta(0) < self.duration <= WEEK:
            raise ValueError("a restriction lasts more than 0 and at most 7 days")
        if not self.days or not self.days <= ALL_DAYS:
            raise ValueError("a restriction needs at least one day of the week")

    def windows(self, zone: ZoneInfo, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
        """The UTC windows overlapping [start, end), in order (possibly overlapping each other)."""
        first = local_wall(start, zone).date() - timedelta(days=self.duration.days + 1)
        last = local_wall(end, zone).date() + DAY
        out = []
        d = first
        while d <= last:
            if d.weekday() in self.days:
                wall = datetime.combine(d, self.start)
                s, e = resolve_local(wall, zone), resolve_local(wall + self.duration, zone)
                if s < e and e > start and s < end:
                    out.append((s, e))
            d += DAY
        return out


def merge_windows(windows: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    out: list[tuple[datetime, datetime]] = []
    for s, e in sorted(windows):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


@dataclass(frozen=True)
class Slot:
    """Someone on call in one layer (or an override) over [start, end), in UTC."""

    start: datetime
    end: datetime
    user: str


@dataclass(frozen=True)
class Layer:
    name: str
    users: tuple[str, ...]
    turn: TurnLength
    start: datetime  # the first hand-off (aware); before it this layer has nobody
    zone: ZoneInfo
    restrictions: tuple[Restriction, ...] = ()
    end: datetime | None = None  # the layer has nobody from then on

    def __post_init__(self) -> None:
        if not self.users:
            raise ValueError("a layer needs at least one user")
        object.__setattr__(self, "start", require_aware(self.start))
        if self.end is not None:
            object.__setattr__(self, "end", require_aware(self.end))
            if self.end <= self.start:
                raise ValueError("a layer's end must be after its start")

    def handoff(self, k: int) -> datetime:
        """The instant turn k begins (turn 0 at `start`)."""
        if self.turn.days:
            return resolve_local(local_wall(self.start, self.zone) + k * self.turn.days * DAY, self.zone)
        return self.start + timedelta(seconds=k * self.turn.seconds)

    def turn_index(self, at: datetime) -> int:
        """The turn `at` falls in: handoff(k) <= at < handoff(k + 1); negative before `start`."""
        if self.turn.days:
            k = (local_wall(at, self.zone) - local_wall(self.start, self.zone)) // (self.turn.days * DAY)
        else:
            k = int((at - self.start) // timedelta(seconds=self.turn.seconds))
        while self.handoff(k + 1) <= at:  # the wall-clock guess is off by one around a fold
            k += 1
        while self.handoff(k) > at:
            k -= 1
        return k

    def user_at(self, at: datetime) -> str | None:
        at = require_aware(at)
        if at < self.start or (self.end is not None and at >= self.end):
            return None
        if self.restrictions and not any(s <= at < e for r in self.restrictions
                                         for s, e in r.windows(self.zone, at, at + timedelta(microseconds=1))):
            return None
        return self.users[self.turn_index(at) % len(self.users)]

    def slots(self, start: datetime, end: datetime) -> list[Slot]:
        """Who this layer has on call over [start, end): sorted, disjoint, same-user neighbours merged."""
        start, end = max(require_aware(start), self.start), require_aware(end)
        if self.end is not None:
            end = min(end, self.end)
        if end <= start:
            return []
        turns: list[Slot] = []
        k = self.turn_index(start)
        while True:
            s, e = self.handoff(k), self.handoff(k + 1)
            if s >= end:
                break
            turns.append(Slot(max(s, start), min(e, end), self.users[k % len(self.users)]))
            k += 1
        if self.restrictions:
            windows = merge_windows(w for r in self.restrictions for w in r.windows(self.zone, start, end))
            turns = _intersect(turns, windows)
        return merge_slots(turns)


def _intersect(slots: list[Slot], windows: list[tuple[datetime, datetime]]) -> list[Slot]:
    out, i = [], 0
    for slot in slots:
        while i < len(windows) and windows[i][1] <= slot.start:
            i += 1
        j = i
        while j < len(windows) and windows[j][0] < slot.end:
            s, e = max(slot.start, windows[j][0]), min(slot.end, windows[j][1])
            if s < e:
                out.append(Slot(s, e, slot.user))
            j += 1
    return out


def merge_slots(slots: Iterable[Slot]) -> list[Slot]:
    out: list[Slot] = []
    for s in slots:
        if out and out[-1].user == s.user and out[-1].end == s.start:
            out[-1] = Slot(out[-1].start, s.end, s.user)
        else:
            out.append(s)
    return out


def parse_weekday(value: object) -> int:
    text = str(value).strip().lower()[:3]
    if text not in WEEKDAYS:
        raise ValueError(f"unknown day {value!r} (expected one of {', '.join(WEEKDAYS)})")
    return WEEKDAYS.index(text)

