"""Silences: states, Alertmanager's update/expire rules, validation messages, muting, query order."""

from __future__ import annotations

from dataclasses import replace

import pytest

from alerting.matchers import parse_matchers
from alerting.silences import ACTIVE, EXPIRED, PENDING, Silence, SilenceError, Silences, silence_from_api

S = 10**9
T0 = 1_700_000_000 * S


class Now:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> int:
        return self.t


def sil(matchers: str = "a=b", start: int = T0, end: int = T0 + 3600 * S) -> Silence:
    return Silence("", tuple(parse_matchers(matchers)), start, end, "me", "why", 0)


def test_states_and_muting_follow_the_clock() -> None:
    now = Now()
    s = Silences(now)
    sid = s.set(sil(start=T0 + 60 * S, end=T0 + 120 * S))
    got = s.get(sid)
    assert got is not None and len(sid) == 36 and sid[14] == "4"  # a UUIDv4
    assert got.state(now()) == PENDING and s.mutes({"a": "b"}) == []
    now.t = T0 + 60 * S
    assert got.state(now()) == ACTIVE and s.mutes({"a": "b", "c": "d"}) == [sid]
    assert s.mutes({"a": "x"}) == []
    now.t = T0 + 121 * S
    assert got.state(now()) == EXPIRED and s.mutes({"a": "b"}) == []


def test_a_start_in_the_past_becomes_now() -> None:
    now = Now()
    s = Silences(now)
    sid = s.set(sil(start=T0 - 100 * S))
    assert s.get(sid).starts_at == T0  # type: ignore[union-attr]


@pytest.mark.parametrize(("silence", "error"), [
    (sil(start=T0 + 10 * S, end=T0 + 10 * S), "start time must be before end time"),
    (sil(start=T0 - 20 * S, end=T0 - 10 * S), "end time can't be in the past"),
    (sil("a=~.*"), "at least one matcher must not match the empty string"),
    (sil("a!=x"), "at least one matcher must not match the empty string"),
])
def test_invalid_silences_are_rejected(silence: Silence, error: str) -> None:
    with pytest.raises(SilenceError, match=error):
        Silences(Now()).set(silence)


def test_update_in_place_or_replace_as_alertmanager() -> None:
    now = Now()
    s = Silences(now)
    sid = s.set(sil())
    now.t += 10 * S
    active = s.get(sid)
    assert active is not None
    # Same matchers, same start, later end: updated in place.
    assert s.set(replace(active, ends_at=T0 + 7200 * S, comment="longer"), sid) == sid
    assert s.get(sid).comment == "longer"  # type: ignore[union-attr]
    # New matchers: a new silence; the old one is expired.
    new = s.set(replace(active, matchers=tuple(parse_matchers("a=c"))), sid)
    now.t += 1  # expired means "now after endsAt", as in Alertmanager
    assert new != sid and s.get(sid).state(now()) == EXPIRED  # type: ignore[union-attr]
    with pytest.raises(SilenceError) as e:
        s.set(sil(), "6b0b0a2c-3e0e-4a53-9f4c-000000000000")
    assert e.value.not_found


def test_expire_active_and_pending() -> None:
    now = Now()
    s = Silences(now)
    active, pending = s.set(sil()), s.set(sil(start=T0 + 600 * S, end=T0 + 900 * S))
    now.t += 5 * S
    s.expire(active)
    s.expire(pending)
    a, p = s.get(active), s.get(pending)
    assert a is not None and p is not None
    assert a.ends_at == now.t and (p.starts_at, p.ends_at) == (now.t, now.t)
    now.t += 1
    assert a.state(now()) == p.state(now()) == EXPIRED
    s.expire(active)  # idempotent
    with pytest.raises(SilenceError):
        s.expire("6b0b0a2c-3e0e-4a53-9f4c-000000000000")


def test_query_order_and_identical_matcher_filter() -> None:
    now = Now()
    s = Silences(now)
    late = s.set(sil("a=b", end=T0 + 900 * S))
    soon = s.set(sil("a=b,c=d", end=T0 + 300 * S))
    pend = s.set(sil("c=d", start=T0 + 60 * S))
    gone = s.set(sil("a=b", end=T0 + 1 * S))
    now.t += 2 * S
    assert [x.id for x in s.query()] == [soon, late, pend, gone]
    assert [x.id for x in s.query(parse_matchers("c=d"))] == [soon, pend]


def test_replication_keeps_the_newest_and_api_form_parses() -> None:
    now = Now()
    s = Silences(now)
    sid = s.set(sil())
    cur = s.get(sid)
    assert cur is not None
    assert not s.merge(replace(cur, comment="older", updated_at=cur.updated_at - 1))
    assert s.merge(replace(cur, comment="newer", updated_at=cur.updated_at + 1))
    assert Silence.from_record(s.get(sid).record()) == s.get(sid)  # type: ignore[union-attr]
    _, parsed = silence_from_api(cur.api(now()))
    assert parsed.matchers == cur.matchers
    with pytest.raises(SilenceError, match="createdBy in body is required"):
        silence_from_api({"matchers": [], "startsAt": "", "endsAt": "", "comment": ""})
