"""Grouping and timers on an injected clock: group_wait, group_interval, repeat_interval, immediate flush
of old alerts, resolved notifications, dedup, inhibition and silences in the pipeline."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alerting_testkit import Recorder, firing, post, replica, resolved, write_config

from alerting.clock import ManualClock
from alerting.matchers import parse_matchers
from alerting.model import format_time_ns
from alerting.replog import MemoryBroker
from alerting.silences import Silence


def run(coro: object) -> None:
    asyncio.run(coro)  # type: ignore[arg-type]


def test_group_wait_then_group_interval_then_repeat(tmp_path: Path) -> None:
    async def main() -> None:
        clock = ManualClock()
        rec = Recorder(clock)
        cfg = write_config(tmp_path, group_wait="30s", group_interval="5m", repeat_interval="15m")
        async with replica("r1", cfg, clock, rec, MemoryBroker().log()) as svc:
            post(svc, clock, firing("A", clock, 7200, i="1"))
            await clock.advance(29.9)
            assert rec.sent == []
            await clock.advance(0.1)  # t=30: group_wait elapsed
            assert [(s.at, len(s.alerts)) for s in rec.sent] == [(30.0, 1)]
            post(svc, clock, firing("A", clock, 7200, i="2"))  # joins the group: waits for group_interval
            await clock.advance(299.9)
            assert len(rec.sent) == 1
            await clock.advance(0.1)  # t=330 = 30 + 5m
            assert [(s.at, len(s.alerts)) for s in rec.sent] == [(30.0, 1), (330.0, 2)]
            await clock.advance(300)  # t=630: nothing new, repeat_interval (15m) not yet passed
            assert len(rec.sent) == 2
            await clock.advance(600)  # t=1230: exactly 15m after the last one is not "before now - 15m"
            assert len(rec.sent) == 2
            await clock.advance(300)  # t=1530: the first flush past repeat_interval repeats, as in Alertmanager
            assert [s.at for s in rec.sent] == [30.0, 330.0, 1530.0]
            assert rec.sent[-1].alerts == rec.sent[1].alerts
    run(main())


def test_an_alert_older_than_group_wait_flushes_at_once(tmp_path: Path) -> None:
    async def main() -> None:
        clock = ManualClock()
        rec = Recorder(clock)
        async with replica("r1", write_config(tmp_path), clock, rec, MemoryBroker().log()) as svc:
            old = firing("A", clock)
            old["startsAt"] = format_time_ns(clock.time_ns() - 60 * 10**9)
            post(svc, clock, old)
            await clock.advance(0)
            assert [s.at for s in rec.sent] == [0.0]
    run(main())


def test_resolved_notification_once_then_group_is_gone(tmp_path: Path) -> None:
    async def main() -> None:
        clock = ManualClock()
        rec = Recorder(clock)
        async with replica("r1", write_config(tmp_path, "10s", "1m"), clock, rec, MemoryBroker().log()) as svc:
            post(svc, clock, firing("A", clock), firing("B", clock))
            await clock.advance(10)
            assert sorted(s.alerts[0][1] for s in rec.sent) == ["firing", "firing"]
            post(svc, clock, resolved("A", clock))
            await clock.advance(60)
            by = rec.by_group()
            assert [s.alerts[0][1] for s in by['{}:{alertname="A"}']] == ["firing", "resolved"]
            assert len(by['{}:{alertname="B"}']) == 1
            assert [g.key for g in svc.groups()] == ['{}:{alertname="B"}']  # A's group emptied and dropped
            await clock.advance(600)
            assert len(rec.by_group()['{}:{alertname="A"}']) == 2  # no second resolved notification
    run(main())


def test_a_failed_flush_keeps_resolved_alerts_and_the_next_flush_retries(tmp_path: Path) -> None:
    async def main() -> None:
        clock = ManualClock()
        rec = Recorder(clock)
        async with replica("r1", write_config(tmp_path, "10s", "10s"), clock, rec, MemoryBroker().log()) as svc:
            post(svc, clock, firing("A", clock))
            await clock.advance(10)
            post(svc, clock, resolved("A", clock))
            rec.failing = True
            await clock.advance(25)  # the flush at t=20 retries until its deadline (MIN_TIMEOUT) and fails
            assert len(rec.sent) == 1 and rec.attempts > 2
            assert svc.groups() and svc.groups()[0].alerts
            rec.failing = False
            await clock.advance(60)
            assert [s.alerts[0][1] for s in rec.sent] == ["firing", "resolved"]
    run(main())


def test_silenced_and_inhibited_alerts_are_not_sent(tmp_path: Path) -> None:
    async def main() -> None:
        clock = ManualClock()
        rec = Recorder(clock)
        async with replica("r1", write_config(tmp_path, "10s", "1m"), clock, rec, MemoryBroker().log()) as svc:
            now = clock.time_ns()
            svc.silences.set(Silence("", tuple(parse_matchers("alertname=Muted")), now, now + 120 * 10**9, "t", "c", 0))
            post(svc, clock, firing("Muted", clock), firing("X", clock, severity="page"),
                 firing("X", clock, severity="warn"))
            await clock.advance(10)
            by = rec.by_group()
            assert '{}:{alertname="Muted"}' not in by
            (x,) = by['{}:{alertname="X"}']
            assert len(x.alerts) == 1  # the warn alert is inhibited by the page alert
            await clock.advance(120)  # the silence expired: the next flush notifies
            assert len(rec.by_group()['{}:{alertname="Muted"}']) == 1
    run(main())
