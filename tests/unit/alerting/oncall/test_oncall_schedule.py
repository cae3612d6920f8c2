"""Schedules: rotations, hand-offs at the boundary, DST in Europe/Berlin and America/New_York,
restrictions, layer precedence, overrides, gaps, timeline and next hand-off.

Expected instants are written out in UTC from the zones' rules (Berlin 2024: CET->CEST on
Mar 31 at 02:00, back on Oct 27 at 03:00; New York 2024: EST->EDT on Mar 10 at 02:00, back on
Nov 3 at 02:00), not computed by the code under test.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from alerting.oncall.rotation import ALL_DAYS, Layer, Restriction, TurnLength
from alerting.oncall.schedule import Override, Schedule

BERLIN, NEW_YORK = ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")
US = timedelta(microseconds=1)
WEEKDAYS = frozenset(range(5))


def z(text: str) -> datetime:
    """A UTC instant from 'YYYY-MM-DDTHH:MM'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(text: str, zone: ZoneInfo) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def layer(users: str, turn: TurnLength, start: datetime, zone: ZoneInfo, *restrictions: Restriction,
          end: datetime | None = None) -> Layer:
    return Layer("l", tuple(users.split(",")), turn, start, zone, restrictions, end)


def sched(*layers: Layer, overrides: tuple[Override, ...] = (), zone: ZoneInfo = BERLIN) -> Schedule:
    return Schedule("s", zone, layers, overrides)


DAILY, WEEKLY = TurnLength(days=1), TurnLength(days=7)


def handoffs(s: Schedule, start: datetime, end: datetime) -> list[datetime]:
    return [sh.start for sh in s.timeline(start, end)[1:]]


# (name, zone, local start of the rotation, turn, window start/end (UTC), expected hand-offs (UTC))
HANDOFF_CASES = [
    ("berlin daily 09:00 over spring-forward", BERLIN, "2024-03-29T09:00", DAILY, "2024-03-29T12:00",
     "2024-04-01T12:00", ["2024-03-30T08:00", "2024-03-31T07:00", "2024-04-01T07:00"]),
    ("berlin daily 09:00 over fall-back", BERLIN, "2024-10-25T09:00", DAILY, "2024-10-25T12:00",
     "2024-10-28T12:00", ["2024-10-26T07:00", "2024-10-27T08:00", "2024-10-28T08:00"]),
    ("new york daily 09:00 over spring-forward", NEW_YORK, "2024-03-08T09:00", DAILY, "2024-03-08T18:00",
     "2024-03-11T18:00", ["2024-03-09T14:00", "2024-03-10T13:00", "2024-03-11T13:00"]),
    ("new york daily 09:00 over fall-back", NEW_YORK, "2024-11-01T09:00", DAILY, "2024-11-01T18:00",
     "2024-11-04T18:00", ["2024-11-02T13:00", "2024-11-03T14:00", "2024-11-04T14:00"]),
    ("berlin weekly monday 09:00 over spring-forward", BERLIN, "2024-03-18T09:00", WEEKLY, "2024-03-20T00:00",
     "2024-04-03T00:00", ["2024-03-25T08:00", "2024-04-01T07:00"]),
    ("new york weekly sunday 12:00 over fall-back", NEW_YORK, "2024-10-20T12:00", WEEKLY, "2024-10-21T00:00",
     "2024-11-11T00:00", ["2024-10-27T16:00", "2024-11-03T17:00", "2024-11-10T17:00"]),
    # Elapsed turns count real hours: the local hand-off moves from 09:00/21:00 to 10:00/22:00.
    ("berlin 12h elapsed over spring-forward", BERLIN, "2024-03-30T09:00", TurnLength(seconds=12 * 3600),
     "2024-03-30T09:00", "2024-03-31T21:00", ["2024-03-30T20:00", "2024-03-31T08:00", "2024-03-31T20:00"]),
    ("new york 24h elapsed over fall-back", NEW_YORK, "2024-11-02T09:00", TurnLength(seconds=24 * 3600),
     "2024-11-02T14:00", "2024-11-04T15:00", ["2024-11-03T13:00", "2024-11-04T13:00"]),
    # A hand-off time in the spring-forward gap moves forward by the gap, on that day only.
    ("berlin daily 02:30 (nonexistent on Mar 31)", BERLIN, "2024-03-29T02:30", DAILY, "2024-03-29T12:00",
     "2024-04-01T12:00", ["2024-03-30T01:30", "2024-03-31T01:30", "2024-04-01T00:30"]),
    # A hand-off time that occurs twice is its first occurrence.
    ("berlin daily 02:30 (twice on Oct 27)", BERLIN, "2024-10-25T02:30", DAILY, "2024-10-25T12:00",
     "2024-10-28T12:00", ["2024-10-26T00:30", "2024-10-27T00:30", "2024-10-28T01:30"]),
    ("new york daily 01:30 (twice on Nov 3)", NEW_YORK, "2024-11-01T01:30", DAILY, "2024-11-01T12:00",
     "2024-11-04T12:00", ["2024-11-02T05:30", "2024-11-03T05:30", "2024-11-04T06:30"]),
]


@pytest.mark.parametrize("case", HANDOFF_CASES, ids=[c[0] for c in HANDOFF_CASES])
def test_handoffs_across_dst(case: tuple) -> None:
    _, zone, start, turn, w0, w1, expected = case
    s = sched(layer("a,b", turn, local(start, zone), zone), zone=zone)
    assert handoffs(s, z(w0), z(w1)) == [z(t) for t in expected]
    for t in expected:  # half-open: the new person at the instant, the old one a microsecond before
        before, after = s.on_call(z(t) - US), s.on_call(z(t))
        assert before != after and len(before) == len(after) == 1


def test_daily_handoff_keeps_local_time_for_a_year() -> None:
    for zone in (BERLIN, NEW_YORK):
        s = sched(layer("a,b,c", DAILY, local("2024-01-01T09:00", zone), zone), zone=zone)
        shifts = s.timeline(z("2024-01-02T00:00"), z("2025-01-02T00:00"))
        assert len(shifts) == 367
        assert {sh.start.astimezone(zone).time() for sh in shifts[1:]} == {time(9, 0)}
        hours = sorted({(sh.end - sh.start) / timedelta(hours=1) for sh in shifts[1:-1]})
        assert hours == [23.0, 24.0, 25.0]


def test_weekly_rotation_order_and_boundary() -> None:
    s = sched(layer("ann,bob,cat", WEEKLY, local("2024-03-18T09:00", BERLIN), BERLIN))
    table = [("2024-03-18T08:00", ["ann"]), ("2024-03-25T07:59", ["ann"]), ("2024-03-25T08:00", ["bob"]),
             ("2024-04-01T06:59", ["bob"]), ("2024-04-01T07:00", ["cat"]), ("2024-04-08T07:00", ["ann"]),
             ("2024-03-18T07:59", [])]  # before the layer's start
    for at, who in table:
        assert s.on_call(z(at)) == who, at


def test_timeline_has_no_gap_and_no_overlap_at_handoffs() -> None:
    s = sched(layer("a,b", TurnLength(seconds=8 * 3600), local("2024-03-30T06:00", BERLIN), BERLIN))
    start, end = z("2024-03-30T05:00"), z("2024-04-01T05:00")
    shifts = s.timeline(start, end)
    assert shifts[0].start == start and shifts[-1].end == end
    for a, b in zip(shifts, shifts[1:], strict=False):
        assert a.end == b.start and a.users != b.users
    assert all(sh.end - sh.start == timedelta(hours=8) for sh in shifts)
    assert [sh.users for sh in shifts[:3]] == [("a",), ("b",), ("a",)]


def test_one_person_rotation_merges_into_one_shift_without_handoff() -> None:
    s = sched(layer("solo", DAILY, local("2024-01-01T09:00", BERLIN), BERLIN))
    assert len(s.timeline(z("2024-02-01T00:00"), z("2024-05-01T00:00"))) == 1
    assert s.next_handoff(z("2024-02-01T00:00")) is None


BUSINESS = Restriction(time(9), timedelta(hours=8), WEEKDAYS)
WEEKEND = Restriction(time(17), timedelta(hours=64), frozenset({4}))  # Fri 17:00 -> Mon 09:00
NIGHTS = Restriction(time(22), timedelta(hours=8), ALL_DAYS)  # 22:00 -> 06:00


@pytest.mark.parametrize(("restriction", "at", "expected"), [
    (BUSINESS, "2024-03-25T07:59", []),  # Mon 08:59 CET
    (BUSINESS, "2024-03-25T08:00", ["biz"]),  # Mon 09:00 CET
    (BUSINESS, "2024-03-25T15:59", ["biz"]),
    (BUSINESS, "2024-03-25T16:00", []),  # 17:00 CET: half-open
    (BUSINESS, "2024-03-30T10:00", []),  # Saturday
    (BUSINESS, "2024-04-01T06:59", []),  # Mon 08:59 CEST: wall clock, not a fixed offset
    (BUSINESS, "2024-04-01T07:00", ["biz"]),  # Mon 09:00 CEST
    (BUSINESS, "2024-04-01T15:00", []),  # 17:00 CEST
    (WEEKEND, "2024-03-29T15:59", []),  # Fri 16:59 CET
    (WEEKEND, "2024-03-29T16:00", ["biz"]),
    (WEEKEND, "2024-03-31T12:00", ["biz"]),  # Sunday, over the DST change
    (WEEKEND, "2024-04-01T06:59", ["biz"]),  # Mon 08:59 CEST: 64 wall-clock hours, 63 real ones
    (WEEKEND, "2024-04-01T07:00", []),
    (WEEKEND, "2024-04-03T12:00", []),
    (NIGHTS, "2024-03-26T21:00", ["biz"]),  # Tue 22:00 CET
    (NIGHTS, "2024-03-27T04:59", ["biz"]),  # Wed 05:59
    (NIGHTS, "2024-03-27T05:00", []),
    (NIGHTS, "2024-03-27T12:00", []),
])
def test_restrictions(restriction: Restriction, at: str, expected: list[str]) -> None:
    s = sched(layer("biz", WEEKLY, local("2024-01-01T00:00", BERLIN), BERLIN, restriction))
    assert s.on_call(z(at)) == expected
    window = s.timeline(z(at), z(at) + US)
    assert list(window[0].users) == expected


def test_restricted_higher_layer_overrides_base_layer_only_inside_its_windows() -> None:
    base = layer("night1,night2", DAILY, local("2024-03-24T09:00", BERLIN), BERLIN)
    day = layer("day1,day2", WEEKLY, local("2024-03-25T00:00", BERLIN), BERLIN, BUSINESS)
    s = sched(base, day)
    shifts = s.timeline(z("2024-03-25T07:00"), z("2024-03-26T09:00"))
    assert [(sh.start, sh.end, sh.users) for sh in shifts] == [
        (z("2024-03-25T07:00"), z("2024-03-25T08:00"), ("night1",)),  # Sunday's turn until Mon 09:00
        (z("2024-03-25T08:00"), z("2024-03-25T16:00"), ("day1",)),  # Mon 09-17 business hours win
        (z("2024-03-25T16:00"), z("2024-03-26T08:00"), ("night2",)),  # Monday's base turn shows again
        (z("2024-03-26T08:00"), z("2024-03-26T09:00"), ("day1",)),
    ]
    assert sched(day, base).on_call(z("2024-03-25T10:00")) == ["night2"]  # order decides: last wins


def test_gap_when_no_layer_has_anyone() -> None:
    s = sched(layer("biz", WEEKLY, local("2024-01-01T00:00", BERLIN), BERLIN, BUSINESS))
    shifts = s.timeline(z("2024-03-29T12:00"), z("2024-04-01T12:00"))  # Fri noon .. Mon noon
    assert [(sh.start, sh.users) for sh in shifts] == [
        (z("2024-03-29T12:00"), ("biz",)), (z("2024-03-29T16:00"), ()), (z("2024-04-01T07:00"), ("biz",))]
    assert s.on_call(z("2024-03-30T12:00")) == []
    assert s.next_handoff(z("2024-03-30T12:00")) == z("2024-04-01T07:00")  # from nobody to someone


def test_overrides_sit_on_top_and_the_later_one_wins() -> None:
    base = layer("a,b", DAILY, local("2024-03-25T09:00", BERLIN), BERLIN)
    o1 = Override("ovr", local("2024-03-26T12:00", BERLIN), local("2024-03-27T12:00", BERLIN))
    o2 = Override("late", local("2024-03-27T00:00", BERLIN), local("2024-03-27T06:00", BERLIN))
    s = sched(base, overrides=(o1, o2))
    table = [("2024-03-26T10:59", ["b"]), ("2024-03-26T11:00", ["ovr"]), ("2024-03-26T22:59", ["ovr"]),
             ("2024-03-26T23:00", ["late"]), ("2024-03-27T04:59", ["late"]), ("2024-03-27T05:00", ["ovr"]),
             ("2024-03-27T10:59", ["ovr"]), ("2024-03-27T11:00", ["a"])]
    for at, who in table:
        assert s.on_call(z(at)) == who, at
    assert handoffs(s, z("2024-03-26T00:00"), z("2024-03-28T00:00")) == [
        z("2024-03-26T08:00"), z("2024-03-26T11:00"), z("2024-03-26T23:00"), z("2024-03-27T05:00"),
        z("2024-03-27T11:00")]


def test_layer_end_and_next_handoff() -> None:
    s = sched(layer("a,b", DAILY, local("2024-03-25T09:00", BERLIN), BERLIN, end=local("2024-03-27T09:00", BERLIN)))
    assert s.on_call(z("2024-03-27T07:59")) == ["b"] and s.on_call(z("2024-03-27T08:00")) == []
    assert s.next_handoff(z("2024-03-25T10:00")) == z("2024-03-26T08:00")
    assert s.next_handoff(z("2024-03-26T08:00")) == z("2024-03-27T08:00")  # to nobody
    assert s.next_handoff(z("2024-03-27T08:00")) is None
    st = s.status(z("2024-03-26T07:59"))
    assert (st.users, st.next_handoff, st.next_users) == (("a",), z("2024-03-26T08:00"), ("b",))


def test_naive_times_are_refused() -> None:
    s = sched(layer("a", DAILY, local("2024-03-25T09:00", BERLIN), BERLIN))
    with pytest.raises(ValueError, match="naive"):
        s.on_call(datetime(2024, 3, 26, 12, 0))


def test_on_call_agrees_with_timeline_everywhere() -> None:
    """A busy schedule (three layers, restrictions, overrides, an elapsed rotation, DST inside):
    on_call at random instants and at every edge equals the timeline's shift there."""
    s = Schedule("busy", NEW_YORK, (
        layer("a,b,c", DAILY, local("2024-10-28T08:30", NEW_YORK), NEW_YORK),
        layer("d,e", TurnLength(seconds=7 * 3600), local("2024-10-30T01:00", NEW_YORK), NEW_YORK, NIGHTS),
        layer("f", WEEKLY, local("2024-10-28T00:00", BERLIN), BERLIN, BUSINESS, WEEKEND),
    ), (Override("g", z("2024-11-03T05:00"), z("2024-11-03T07:30")),
        Override("h", z("2024-11-05T00:00"), z("2024-11-05T00:00") + timedelta(minutes=1))))
    start, end = z("2024-10-27T00:00"), z("2024-11-12T00:00")
    shifts = s.timeline(start, end)
    assert shifts[0].start == start and shifts[-1].end == end
    assert all(a.end == b.start and a.users != b.users for a, b in zip(shifts, shifts[1:], strict=False))
    rng = random.Random(9)
    probes = [start + (end - start) * rng.random() for _ in range(2000)]
    probes += [t for sh in shifts for t in (sh.start, sh.end - US)]
    for t in probes:
        shift = next(sh for sh in shifts if sh.start <= t < sh.end)
        assert s.on_call(t) == list(shift.users), t
    assert {u for sh in shifts for u in sh.users} == set("abcdefgh")
