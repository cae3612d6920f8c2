"""HA through the log on an injected clock: claims decide who notifies, takeover when the owner goes
silent, no double delivery of a retried notification, fail-open when the log is unreachable, restart."""

from __future__ import annotations

import asyncio
import zlib
from pathlib import Path
from typing import Any

import pytest
from alerting_testkit import Recorder, firing, post, replica, resolved, write_config

from alerting.claims import BEAT, CLAIM, DONE, RELEASE, TAKEOVER, ClaimTable
from alerting.clock import ManualClock
from alerting.matchers import parse_matchers
from alerting.replog import MemoryBroker, MemoryLog
from alerting.silences import Silence


def claim(who: str, key: str = "k") -> dict[str, Any]:
    return {"op": CLAIM, "key": key, "replica": who, "groupKey": "g", "receiver": "r", "basis": "-", "sent": 0.0}


def op(kind: str, who: str, key: str = "k", **kw: Any) -> dict[str, Any]:
    return {"op": kind, "key": key, "replica": who, "sent": 0.0, **kw}


TABLE = [
    # records in log order -> (owner, final, epoch of (g, r, -))
    ([claim("a")], ("a", "", 0)),
    ([claim("a"), claim("b")], ("a", "", 0)),
    ([claim("b"), claim("a")], ("b", "", 0)),  # the log's order, not the names, decides
    ([claim("a"), claim("b"), op(BEAT, "b")], ("a", "", 0)),  # only the owner's beats count
    ([claim("a"), claim("b"), op(TAKEOVER, "b", **{"from": "a"})], ("b", "", 0)),
    ([claim("a"), claim("b"), op(TAKEOVER, "c", **{"from": "a"})], ("a", "", 0)),  # not a claimant
    ([claim("a"), claim("b"), claim("c"), op(TAKEOVER, "b", **{"from": "a"}), op(TAKEOVER, "c", **{"from": "a"})],
     ("b", "", 0)),  # the second takeover names an owner that no longer is: ignored
    ([claim("a"), op(DONE, "a")], ("a", DONE, 0)),
    ([claim("a"), op(DONE, "a"), claim("b")], ("a", DONE, 0)),  # a claim after completion loses
    ([claim("a"), claim("b"), op(RELEASE, "b")], ("a", "", 0)),  # only the owner releases
    ([claim("a"), op(RELEASE, "a")], ("a", RELEASE, 1)),  # the next flush claims epoch 1
    ([op(DONE, "a"), claim("b")], ("a", DONE, 0)),  # a completion seen before any claim (fail-open) still wins
]


@pytest.mark.parametrize(("records", "want"), TABLE)
def test_claim_table(records: list[dict[str, Any]], want: tuple[str, str, int]) -> None:
    table = ClaimTable(ManualClock())
    for r in records:
        table.apply(r)
    st = table.get("k")
    assert st is not None
    assert (st.owner_id, st.final, table.epoch("g", "r", "-")) == want


def test_takeover_order_is_the_claim_order_one_lease_per_place() -> None:
    clock = ManualClock()
    table = ClaimTable(clock)
    for who in ("c", "a", "b"):
        table.apply(claim(who))
    assert table.takeover_at("k", "c", 15) is None  # the owner
    assert (table.takeover_at("k", "a", 15), table.takeover_at("k", "b", 15)) == (15.0, 30.0)


def groups(n: int, clock: ManualClock) -> list[dict[str, Any]]:
    return [firing(f"G{i:03d}", clock) for i in range(n)]


def test_two_replicas_same_alerts_notify_each_group_once(tmp_path: Path) -> None:
    async def main() -> None:
        clock, broker = ManualClock(), MemoryBroker()
        rec = Recorder(clock)
        cfg = write_config(tmp_path, "10s", "1m")
        async with replica("r1", cfg, clock, rec, broker.log()) as a, replica("r2", cfg, clock, rec, broker.log()) as b:
            alerts = groups(20, clock)
            post(a, clock, *alerts)
            await clock.advance(3)  # unaligned timers: r2 gets them 3 s later
            post(b, clock, *alerts)
            await clock.advance(120)
            by = rec.by_group()
            assert len(by) == 20 and all(len(v) == 1 for v in by.values())
            # The replicas share the groups: each is notified by its preferred owner (the other defers its
            # claim), by a hash of the group key over the live replicas sorted by id.
            assert all(s.replica == ["r1", "r2"][zlib.crc32(s.group_key.encode()) % 2] for s in rec.sent)
            assert {s.replica for s in rec.sent} == {"r1", "r2"}
            post(a, clock, *[resolved(f"G{i:03d}", clock) for i in range(20)])
            post(b, clock, *[resolved(f"G{i:03d}", clock) for i in range(20)])
            await clock.advance(120)
            by = rec.by_group()
            assert all([s.alerts[0][1] for s in v] == ["firing", "resolved"] for v in by.values())
    asyncio.run(main())


def test_a_retried_notification_is_delivered_by_one_replica_even_when_the_owner_dies(tmp_path: Path) -> None:
    async def main() -> None:
        clock, broker = ManualClock(), MemoryBroker()
        rec = Recorder(clock, failing=True)  # the receiver is down (Alertmanager #3865/#4108)
        cfg = write_config(tmp_path, "10s", "1m")
        log1 = broker.log()
        async with replica("r2", cfg, clock, rec, broker.log(), peer_timeout=5) as b:
            async with replica("r1", cfg, clock, rec, log1, peer_timeout=5) as a:
                post(a, clock, *groups(5, clock))
                await clock.advance(1)
                post(b, clock, *groups(5, clock))
                await clock.advance(30)  # both flushed; each owns its preferred groups' claims and retries
                owners = [st.owner_id for st in b.claims.claims.values() if not st.final]
                assert len(owners) == 5 and "r1" in owners and rec.sent == []
                log1.connected = False  # SIGKILL: r1 says nothing more
            await clock.advance(10)  # r1's lease (5 s) runs out: r2 takes over and retries
            owners = {st.owner_id for st in b.claims.claims.values() if not st.final}
            assert owners == {"r2"}
            rec.failing = False  # the receiver recovers
            await clock.advance(120)
            by = rec.by_group()
            assert len(by) == 5 and all(len(v) == 1 for v in by.values())
            assert {s.replica for s in rec.sent} == {"r2"}
    asyncio.run(main())


def test_kafka_unreachable_fails_open_with_position_waits(tmp_path: Path) -> None:
    async def main() -> None:
        clock, broker = ManualClock(), MemoryBroker()
        rec = Recorder(clock)
        cfg = write_config(tmp_path, "10s", "1m")
        l1, l2 = broker.log(), broker.log()
        async with replica("r1", cfg, clock, rec, l1, peer_timeout=5) as a, \
                replica("r2", cfg, clock, rec, l2, peer_timeout=5) as b:
            await clock.advance(3)  # heartbeats: both know the other (positions 0 and 1)
            l1.connected = l2.connected = False  # the broker is gone for both
            await clock.advance(20)  # long enough for both to see the log as dead
            post(a, clock, firing("A", clock))
            post(b, clock, firing("A", clock))
            await clock.advance(10)
            assert [(s.replica, s.at) for s in rec.sent] == [("r1", 33.0)]  # position 0: no wait
            await clock.advance(5)
            # position 1 waited 1 x peer_timeout and, seeing nothing in the log, notified too: a duplicate
            # is better than a missed page.
            assert [(s.replica, s.at) for s in rec.sent] == [("r1", 33.0), ("r2", 38.0)]
    asyncio.run(main())


def test_one_replica_cut_off_from_the_log_still_pages_when_the_other_is_gone(tmp_path: Path) -> None:
    async def main() -> None:
        clock, broker = ManualClock(), MemoryBroker()
        rec = Recorder(clock)
        cfg = write_config(tmp_path, "10s", "1m")
        lonely = broker.log()
        async with replica("r1", cfg, clock, rec, lonely, peer_timeout=5) as a:
            lonely.connected = False
            await clock.advance(20)
            post(a, clock, firing("A", clock))
            await clock.advance(15)
            assert len(rec.sent) == 1
    asyncio.run(main())


def test_restart_keeps_silences_and_notification_state(tmp_path: Path) -> None:
    async def main() -> None:
        clock, broker = ManualClock(), MemoryBroker()
        rec = Recorder(clock)
        cfg = write_config(tmp_path, "10s", "1m")
        async with replica("r1", cfg, clock, rec, broker.log()) as a:
            now = clock.time_ns()
            sid = a.silences.set(Silence("", tuple(parse_matchers("alertname=Muted")), now, now + 3600 * 10**9,
                                         "me", "maintenance", 0))
            post(a, clock, firing("A", clock), firing("Muted", clock))
            await clock.advance(15)
            assert len(rec.sent) == 1
        await clock.advance(5)
        async with replica("r1-again", cfg, clock, rec, broker.log()) as again:
            restored = again.silences.get(sid)
            assert restored is not None and restored.comment == "maintenance"
            assert len(again.store) == 2  # the alerts came back from the log too
            await clock.advance(120)
            assert len(rec.sent) == 1  # nothing notified twice, the silenced one still muted
            post(again, clock, resolved("A", clock))
            await clock.advance(70)
            assert [s.alerts[0][1] for s in rec.sent] == ["firing", "resolved"]
    asyncio.run(main())


def test_memory_log_is_shared_in_order() -> None:
    async def main() -> None:
        broker = MemoryBroker()
        seen: list[str] = []
        other: MemoryLog = broker.log()
        await other.start(lambda k, v: seen.append(k))
        broker.log().append("a", {})
        other.append("b", {})
        await asyncio.sleep(0)
        assert seen == ["a", "b"]
    asyncio.run(main())
