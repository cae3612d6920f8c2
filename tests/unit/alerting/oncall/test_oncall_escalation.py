"""Escalation: timing with an injected clock (every call takes `now`), ack, unack, resolve, repeat,
empty slots, and the event-sourced form: replicas applying the same log reach the same state."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerting.oncall.config import OnCallConfig, parse_oncall
from alerting.oncall.contacts import KIND_ACKNOWLEDGED, KIND_PAGE, KIND_RESOLVED, Notification, group_key_hash
from alerting.oncall.escalation import ACKNOWLEDGED, ESCALATE, PAGE, RESOLVED, TRIGGERED, Event
from alerting.oncall.escalator import Escalator
from alerting.oncall.rotation import to_ns

T0 = datetime(2024, 3, 25, 10, 0, tzinfo=UTC)  # a Monday, 11:00 in Berlin
GK = '{}:{alertname="CPUThrottling"}'
MIN = timedelta(minutes=1)


def config(**policy_overrides: Any) -> OnCallConfig:
    policy: dict[str, Any] = {"name": "ops", "levels": [{"schedules": ["primary"], "timeout": "15m"},
                                                       {"users": ["carol"], "timeout": "30m"}]}
    policy.update(policy_overrides)
    return parse_oncall({
        "people": [
            {"name": "alice", "contacts": [{"webhook_url": "http://127.0.0.1:9/alice"}, {"email": "alice@ex.org"}]},
            {"name": "bob", "contacts": [{"webhook_url": "http://127.0.0.1:9/bob"}]},
            {"name": "carol", "contacts": [{"email": "carol@ex.org"}]},
            {"name": "dave", "contacts": [{"webhook_url": "http://127.0.0.1:9/dave"}]},
        ],
        "schedules": [
            # alice until Tue 09:00 Berlin (08:00Z), then bob, ...
            {"name": "primary", "time_zone": "Europe/Berlin",
             "layers": [{"users": ["alice", "bob"], "rotation": "1d", "start": "2024-03-25T09:00:00"}]},
            # Nobody outside Saturday 10:00-12:00 Berlin.
            {"name": "weekend", "time_zone": "Europe/Berlin",
             "layers": [{"users": ["dave"], "rotation": "1w", "start": "2024-03-18T00:00:00",
                         "restrictions": [{"type": "weekly", "start_day": "sat", "start_time": "10:00",
                                           "duration": "2h"}]}]},
        ],
        "escalation_policies": [policy],
    }, "test.yml")


def who(notes: list[Notification]) -> list[tuple[str, str, int, str]]:
    return [(n.kind, n.person, n.level, n.contact.address) for n in notes]


ALICE = [(KIND_PAGE, "alice", 1, "http://127.0.0.1:9/alice"), (KIND_PAGE, "alice", 1, "alice@ex.org")]
CAROL = [(KIND_PAGE, "carol", 2, "carol@ex.org")]


def test_unacknowledged_page_reaches_level_two_after_its_timeout() -> None:
    e = Escalator(config())
    assert who(e.page(GK, "ops", T0)) == ALICE
    assert e.tick(T0 + 15 * MIN - timedelta(microseconds=1)) == []
    notes = e.tick(T0 + 15 * MIN)
    assert who(notes) == CAROL
    assert notes[0].at_ns == to_ns(T0 + 15 * MIN)
    assert e.tick(T0 + 10 * 60 * MIN) == []  # last level, no repeat: nothing more
    inc = e.incident(GK)
    assert inc is not None and inc.status == TRIGGERED and inc.exhausted


def test_acknowledged_page_does_not_escalate() -> None:
    e = Escalator(config())
    e.page(GK, "ops", T0)
    assert e.ack(GK, "alice", T0 + 5 * MIN) == []
    assert e.tick(T0 + 15 * MIN) == [] and e.tick(T0 + 600 * MIN) == []
    inc = e.incident(GK)
    assert inc is not None and inc.status == ACKNOWLEDGED and inc.acked_by == "alice"
    assert e.next_due() is None
    assert e.ack(GK, "bob", T0 + 6 * MIN) == [] and inc.acked_by == "alice"  # the first ack stands


def test_resolve_stops_escalation_and_tells_everyone_paged_once_per_contact() -> None:
    e = Escalator(config(repeat=1))
    e.page(GK, "ops", T0)
    e.tick(T0 + 15 * MIN)  # carol
    e.tick(T0 + 45 * MIN)  # alice again (second pass): no second resolved notice for her
    notes = e.resolve(GK, T0 + 50 * MIN)
    assert [(n.kind, n.person, n.contact.address) for n in notes] == [
        (KIND_RESOLVED, "alice", "http://127.0.0.1:9/alice"), (KIND_RESOLVED, "alice", "alice@ex.org"),
        (KIND_RESOLVED, "carol", "carol@ex.org")]
    assert e.tick(T0 + 24 * 60 * MIN) == [] and e.resolve(GK, T0 + 51 * MIN) == []
    inc = e.incident(GK)
    assert inc is not None and inc.status == RESOLVED


def test_repeat_loops_the_policy_then_stops() -> None:
    e = Escalator(config(repeat=2))
    timeline = [(T0, "alice", 1, 0), (T0 + 15 * MIN, "carol", 2, 0), (T0 + 45 * MIN, "alice", 1, 1),
                (T0 + 60 * MIN, "carol", 2, 1), (T0 + 90 * MIN, "alice", 1, 2), (T0 + 105 * MIN, "carol", 2, 2)]
    seen = [(n.at_ns, n.person, n.level, n.cycle) for n in e.page(GK, "ops", T0)]
    t = T0
    while t < T0 + 300 * MIN:
        t += MIN
        seen += [(n.at_ns, n.person, n.level, n.cycle) for n in e.tick(t)]
    assert list(dict.fromkeys(seen)) == [(to_ns(at), p, lv, c) for at, p, lv, c in timeline]


def test_on_call_is_evaluated_when_each_step_runs() -> None:
    """The second pass of level 1 pages whoever is on call then: bob after Tuesday's 09:00 hand-off."""
    e = Escalator(config(repeat=1, levels=[{"schedules": ["primary"], "timeout": "23h"}]))
    assert [n.person for n in e.page(GK, "ops", T0)] == ["alice", "alice"]
    notes = e.tick(T0 + 23 * 60 * MIN)  # Tuesday 09:00Z = 10:00 Berlin
    assert [(n.person, n.level, n.cycle) for n in notes] == [("bob", 1, 1)]


def test_late_tick_pages_every_overdue_step_at_its_own_due_time() -> None:
    e = Escalator(config(repeat=1))
    e.page(GK, "ops", T0)
    notes = e.tick(T0 + 5 * 60 * MIN)
    assert [(n.person, n.step, n.at_ns) for n in notes] == [
        ("carol", 1, to_ns(T0 + 15 * MIN)), ("alice", 2, to_ns(T0 + 45 * MIN)), ("alice", 2, to_ns(T0 + 45 * MIN)),
        ("carol", 3, to_ns(T0 + 60 * MIN))]


def test_empty_slot_skips_to_the_next_level_at_once() -> None:
    e = Escalator(config(levels=[{"schedules": ["weekend"], "timeout": "15m"}, {"users": ["carol"]}]))
    notes = e.page(GK, "ops", T0)  # Monday: nobody in "weekend"
    assert who(notes) == CAROL and notes[0].at_ns == to_ns(T0)
    inc = e.incident(GK)
    assert inc is not None and [s.step for s in inc.steps] == [0, 1] and not inc.unrouted


def test_empty_slot_at_escalation_time_skips_on() -> None:
    cfg = config(levels=[{"users": ["bob"], "timeout": "10m"}, {"schedules": ["weekend"], "timeout": "10m"},
                         {"users": ["carol"], "timeout": "10m"}])
    e = Escalator(cfg)
    e.page(GK, "ops", T0)
    assert [(n.person, n.level) for n in e.tick(T0 + 10 * MIN)] == [("carol", 3)]
    sat = datetime(2024, 3, 30, 9, 30, tzinfo=UTC)  # 10:30 Berlin: dave is on call
    e2 = Escalator(cfg)
    e2.page(GK, "ops", sat - 10 * MIN)
    assert [(n.person, n.level) for n in e2.tick(sat)] == [("dave", 2)]


def test_nobody_reachable_at_all_is_unrouted() -> None:
    e = Escalator(config(repeat=3, levels=[{"schedules": ["weekend"], "timeout": "15m"}]))
    assert e.page(GK, "ops", T0) == []
    inc = e.incident(GK)
    assert inc is not None and inc.unrouted and inc.exhausted and len(inc.steps) == 4
    assert e.next_due() is None and e.tick(T0 + 600 * MIN) == []


def test_page_of_an_open_incident_is_folded_in_and_a_new_one_opens_after_resolve() -> None:
    e = Escalator(config())
    assert len(e.page(GK, "ops", T0)) == 2
    assert e.page(GK, "ops", T0 + MIN) == []
    e.ack(GK, "alice", T0 + 2 * MIN)
    assert e.page(GK, "ops", T0 + 3 * MIN) == []
    e.resolve(GK, T0 + 4 * MIN)
    notes = e.page(GK, "ops", T0 + 5 * MIN)
    assert [n.incident for n in notes] == [2, 2]
    assert notes[0].id != Escalator(config()).page(GK, "ops", T0)[0].id  # incident 2 differs from 1


def test_unack_restarts_the_current_levels_timeout() -> None:
    e = Escalator(config())
    e.page(GK, "ops", T0)
    e.ack(GK, "alice", T0 + 5 * MIN)
    e.unack(GK, "alice", T0 + 20 * MIN)
    assert e.tick(T0 + 34 * MIN) == []
    assert who(e.tick(T0 + 35 * MIN)) == CAROL


def test_notify_on_ack_tells_the_others_paged() -> None:
    e = Escalator(config(notify_on_ack=True))
    e.page(GK, "ops", T0)
    e.tick(T0 + 15 * MIN)
    notes = e.ack(GK, "carol", T0 + 16 * MIN)
    assert [(n.kind, n.person, n.acknowledged_by) for n in notes] == [(KIND_ACKNOWLEDGED, "alice", "carol")] * 2


def test_unknown_policy_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown escalation policy 'nope'"):
        Escalator(config()).page(GK, "nope", T0)


def test_notification_carries_person_contact_group_level_and_ack_link() -> None:
    e = Escalator(config(), external_url="http://am.example:9093/")
    n = e.page(GK, "ops", T0)[0]
    h = group_key_hash(GK)
    assert n.ack_url == f"http://am.example:9093/api/v2/alerts/groups/{h}/ack"
    assert e.group_key(h) == GK
    p = n.payload()
    assert (p["kind"], p["groupKey"], p["groupKeyHash"], p["person"], p["level"], p["policy"]) == (
        "page", GK, h, "alice", 1, "ops")
    assert p["contact"] == {"type": "webhook", "address": "http://127.0.0.1:9/alice"}
    assert p["time"] == "2024-03-25T10:00:00Z" and p["ackURL"] == n.ack_url
    custom = Escalator(config(), "http://x", "{external_url}/ack/{group_key_hash}?by={person}&i={incident}")
    assert custom.page(GK, "ops", T0)[0].ack_url == f"http://x/ack/{h}?by=alice&i=1"


def test_group_key_hash_is_the_cores_group_id() -> None:
    from alerting.dispatch import group_id

    assert group_key_hash(GK) == group_id(GK)


# -- the event-sourced form ---------------------------------------------------------------------

def through_json(events: list[Event]) -> list[dict[str, Any]]:
    return [json.loads(json.dumps(e.record())) for e in events]


def test_replicas_proposing_concurrently_agree_and_notify_once() -> None:
    """Both replicas page the same group before seeing each other, and both tick; the log holds every
    record; each replica and a fresh one applying the log in order reach the same state, and the
    notifications the log implies are one page per step."""
    a, b = Escalator(config(), replica="a"), Escalator(config(), replica="b")
    log = through_json(a.propose_page(GK, "ops", T0)) + through_json(b.propose_page(GK, "ops", T0 + 3 * MIN))
    notes: dict[str, list[Notification]] = {"a": [], "b": []}
    for rec in log:
        notes["a"] += a.apply(rec)
        notes["b"] += b.apply(rec)
    tick = through_json(a.propose_tick(T0 + 20 * MIN)) + through_json(b.propose_tick(T0 + 16 * MIN))
    assert tick[0] == {**tick[1], "replica": "a"}  # same due time, same recipients: the same event
    ack = through_json(b.propose_ack(GK, "carol", T0 + 21 * MIN))
    for rec in tick + ack:
        log.append(rec)
        notes["a"] += a.apply(rec)
        notes["b"] += b.apply(rec)
    fresh = Escalator(config())
    replayed = [n for rec in log for n in fresh.apply(rec)]
    assert a.to_dict() == b.to_dict() == fresh.to_dict()
    assert [n.id for n in notes["a"]] == [n.id for n in notes["b"]] == [n.id for n in replayed]
    assert who(replayed) == ALICE + CAROL
    inc = fresh.incident(GK)
    assert inc is not None and inc.acked_by == "carol" and inc.number == 1


def test_any_delivery_order_of_duplicates_and_late_records_gives_the_same_state() -> None:
    """Shuffled logs (compaction may reorder duplicates) converge on status, step and incident."""
    src = Escalator(config(repeat=1))
    log: list[dict[str, Any]] = []

    def run(events: list[Event]) -> None:
        for rec in through_json(events):
            log.append(rec)
            src.apply(rec)

    run(src.propose_page(GK, "ops", T0))
    run(src.propose_tick(T0 + 15 * MIN))
    log.append(dict(log[-1], replica="other"))  # a duplicate escalation from another replica
    run(src.propose_ack(GK, "carol", T0 + 20 * MIN))
    final = src.incident(GK)
    assert final is not None
    rng = random.Random(3)
    for _ in range(200):
        shuffled = log[:]
        rng.shuffle(shuffled)
        e = Escalator(config(repeat=1))
        for rec in shuffled:
            e.apply(rec)
        inc = e.incident(GK)
        assert inc is not None and (inc.number, inc.step, inc.status, inc.acked_by) == (1, 1, ACKNOWLEDGED, "carol")


def test_escalation_proposed_before_an_ack_it_had_not_seen_pages_nobody() -> None:
    a, b = Escalator(config(), replica="a"), Escalator(config(), replica="b")
    log = through_json(a.propose_page(GK, "ops", T0))
    for rec in log:
        a.apply(rec)
        b.apply(rec)
    late = through_json(b.propose_tick(T0 + 15 * MIN))  # b has not seen the ack yet
    log += through_json(a.propose_ack(GK, "alice", T0 + 14 * MIN)) + late
    fresh = Escalator(config())
    notes = [n for rec in log for n in fresh.apply(rec)]
    assert who(notes) == ALICE
    inc = fresh.incident(GK)
    assert inc is not None and inc.step == 1 and inc.paged == [r for s in inc.steps[:1] for r in s.recipients]
    assert [n.person for n in fresh.resolve(GK, T0 + 30 * MIN)] == ["alice", "alice"]  # not carol


def test_resolved_then_new_incident_replays_identically() -> None:
    e = Escalator(config())
    log: list[dict[str, Any]] = []
    for events in (e.propose_page(GK, "ops", T0),):
        log += through_json(events)
    for rec in log:
        e.apply(rec)
    for step in (lambda: e.propose_resolve(GK, T0 + MIN), lambda: e.propose_page(GK, "ops", T0 + 2 * MIN),
                 lambda: e.propose_tick(T0 + 20 * MIN), lambda: e.propose_resolve(GK, T0 + 21 * MIN)):
        recs = through_json(step())
        for rec in recs:
            e.apply(rec)
        log += recs
    stale = dict(log[0])  # a late page of incident 1 after incident 2 opened: ignored
    log.append(stale)
    fresh = Escalator(config())
    assert [n for rec in log for n in fresh.apply(rec)][-1].kind == KIND_RESOLVED
    assert fresh.to_dict() == e.to_dict()
    inc = fresh.incident(GK)
    assert inc is not None and inc.number == 2 and inc.status == RESOLVED


def test_ack_and_resolve_of_incident_zero_mean_the_open_one() -> None:
    e = Escalator(config())
    e.page(GK, "ops", T0)
    assert e.apply(Event("oncall.ack", GK, 0, to_ns(T0 + MIN), by="api")) == []
    inc = e.incident(GK)
    assert inc is not None and inc.acked_by == "api"
    assert len(e.apply(Event("oncall.resolve", GK, 0, to_ns(T0 + 2 * MIN)))) == 2
    assert e.apply(Event("oncall.ack", "other-group", 0, to_ns(T0))) == [] and e.incident("other-group") is None


def test_snapshot_round_trip_continues_identically() -> None:
    e = Escalator(config(repeat=1))
    e.page(GK, "ops", T0)
    e.page("g2", "ops", T0 + MIN)
    e.ack("g2", "alice", T0 + 2 * MIN)
    snap = json.loads(json.dumps(e.to_dict()))
    restored = Escalator.from_dict(snap, config(repeat=1))
    assert restored.to_dict() == e.to_dict() and restored.group_key(group_key_hash("g2")) == "g2"
    assert [n.id for n in restored.tick(T0 + 60 * MIN)] == [n.id for n in e.tick(T0 + 60 * MIN)] != []
    assert restored.next_due() == e.next_due()


def test_event_keys_and_gc() -> None:
    e = Escalator(config())
    events = e.propose_page(GK, "ops", T0)
    assert events[0].op == PAGE and events[0].key == f"oncall:{group_key_hash(GK)}:1:page:0"
    for ev in events:
        e.apply(ev)
    esc = e.propose_tick(T0 + 15 * MIN)
    assert [ev.op for ev in esc] == [ESCALATE]
    e.apply(esc[0])
    e.resolve(GK, T0 + 20 * MIN)
    inc = e.incident(GK)
    assert inc is not None and esc[0].key in inc.event_keys() and events[0].key in inc.event_keys()
    assert e.gc(T0 + timedelta(days=6)) == []
    assert [i.group_key for i in e.gc(T0 + timedelta(days=8))] == [GK] and e.incident(GK) is None


@pytest.mark.parametrize(("record", "message"), [
    ("not a dict", "must be an object"),
    ({"op": "oncall.page", "groupKey": GK, "incident": 1}, "malformed on-call event"),
    ({"op": "oncall.explode", "groupKey": GK, "incident": 1, "at": 0}, "unknown on-call event"),
    ({"op": "oncall.page", "groupKey": GK, "incident": 1, "at": 0}, "needs a policy"),
    ({"op": "oncall.ack", "groupKey": GK, "incident": -1, "at": 0}, "incident must be >= 0"),
    ({"op": "oncall.escalate", "groupKey": GK, "incident": 1, "at": 0, "step": 1,
      "recipients": [{"person": "x", "type": "pigeon", "address": "y"}],
      "policy": {"name": "p", "repeat": 0, "levels": [{"timeout": 60}]}}, "unknown contact type"),
])
def test_malformed_records_are_refused_and_change_nothing(record: Any, message: str) -> None:
    e = Escalator(config())
    e.page(GK, "ops", T0)
    before = e.to_dict()
    with pytest.raises(ValueError, match=message):
        e.apply(record)
    assert e.to_dict() == before
