"""A schedule: layers painted over each other, overrides on top, the final answer to "who is on call".

Layers are listed lowest first and a later layer wins wherever it has someone (PagerDuty: "the last
layer essentially acts as an override for all layers it overlaps"); where it has nobody (outside
its restrictions, before its start) the layers below show through. Overrides (a person for a time
range) sit on top of every layer; of overlapping overrides the later one in the list wins. One
person is on call at a time, as in PagerDuty; `on_call` returns a list (empty in a gap) so callers
need no special case for nobody.

`timeline(start, end)` covers [start, end) exactly, in order, with neighbouring shifts of the same
people merged and gaps as shifts with no users, so "no gap, no overlap" is checkable. A hand-off is
any instant where the set of people on call changes, including to or from nobody.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from alerting.oncall.rotation import Layer, Slot, require_aware

FIRST_LOOKAHEAD = timedelta(days=1)
MAX_LOOKAHEAD = timedelta(days=800)  # longer than any turn (<= 1 year, as PagerDuty) plus an override


@dataclass(frozen=True)
class Override:
    user: str
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", require_aware(self.start))
        object.__setattr__(self, "end", require_aware(self.end))
        if self.end <= self.start:
            raise ValueError("an override's end must be after its start")


@dataclass(frozen=True)
class Shift:
    """Who is on call over [start, end) (UTC); `users` is empty in a gap."""

    start: datetime
    end: datetime
    users: tuple[str, ...]


@dataclass(frozen=True)
class OnCallNow:
    """What `who-is-on-call` and the web page show for one schedule at one time."""

    schedule: str
    at: datetime
    users: tuple[str, ...]
    next_handoff: datetime | None  # None: nothing changes within MAX_LOOKAHEAD
    next_users: tuple[str, ...]


@dataclass(frozen=True)
class Schedule:
    name: str
    zone: ZoneInfo
    layers: tuple[Layer, ...]  # lowest first
    overrides: tuple[Override, ...] = ()

    def on_call(self, at: datetime) -> list[str]:
        at = require_aware(at)
        for o in reversed(self.overrides):
            if o.start <= at < o.end:
                return [o.user]
        for layer in reversed(self.layers):
            user = layer.user_at(at)
            if user is not None:
                return [user]
        return []

    def timeline(self, start: datetime, end: datetime) -> list[Shift]:
        start, end = require_aware(start), require_aware(end)
        if end <= start:
            return []
        levels = [layer.slots(start, end) for layer in self.layers]
        levels += [[Slot(max(o.start, start), min(o.end, end), o.user)] for o in self.overrides
                   if o.start < end and o.end > start]
        return _paint(levels, start, end)

    def next_handoff(self, at: datetime) -> datetime | None:
        """The first instant after `at` at which the people on call change; None if none is near."""
        at = require_aware(at)
        horizon = FIRST_LOOKAHEAD
        while True:
            shifts = self.timeline(at, at + horizon)
            if len(shifts) > 1:
                return shifts[1].start
            if horizon >= MAX_LOOKAHEAD:
                return None
            horizon = min(horizon * 2, MAX_LOOKAHEAD)

    def status(self, at: datetime) -> OnCallNow:
        nxt = self.next_handoff(at)
        return OnCallNow(self.name, require_aware(at), tuple(self.on_call(at)), nxt,
                         tuple(self.on_call(nxt)) if nxt is not None else ())


def _paint(levels: Sequence[Sequence[Slot]], start: datetime, end: datetime) -> list[Shift]:
    """The top-most level that has someone, for every piece of [start, end) (each level disjoint)."""
    starts = [[s.start for s in level] for level in levels]
    edges = sorted({start, end} | {t for level in levels for s in level for t in (s.start, s.end)})
    out: list[Shift] = []
    for a, b in zip(edges, edges[1:], strict=False):
        users: tuple[str, ...] = ()
        for level, level_starts in zip(reversed(levels), reversed(starts), strict=True):
            i = bisect_right(level_starts, a) - 1
            if i >= 0 and level[i].end > a:
                users = (level[i].user,)
                break
        if out and out[-1].users == users:
            out[-1] = Shift(out[-1].start, b, users)
        else:
            out.append(Shift(a, b, users))
    return out
