"""On-call wired into the core, on an injected clock: a receiver with `escalation_policy:` pages the
person on call through the replicated log; replicas sharing the log deliver each notification once;
an unacknowledged page escalates after its level's timeout, an acknowledged one does not, a resolve
stops escalation and tells everyone paged; a dead owner's delivery is taken over; fail-open without
the log; a restart replays without paging again but sends what nobody delivered."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alerting_testkit import firing, post, resolved

from alerting.clock import ManualClock
from alerting.dispatch import group_id
from alerting.oncall.contacts import Notification
from alerting.replog import MemoryBroker, MemoryLog, ReplicatedLog
from alerting.service import AlertingService
from alerting.settings import AlertingConfig, ClusterSection, ConfigSection, WebSection
from alerting.stages import NotifyContext, NotifyError

GROUP = '{}:{alertname="Down"}'
LEASE = 15.0

CONFIG = """
route:
  receiver: pager
  group_by: [alertname]
  group_wait: 10s
  group_interval: 1m
  repeat_interval: 4h
receivers:
  - name: pager
    escalation_policy: ops
people:
  - {name: alice, contacts: [{webhook_url: "http://alice.example/hook"}, {email: alice@example.com}]}
  - {name: bob, contacts: [{webhook_url: "http://bob.example/hook"}]}
schedules:
  - name: primary
    layers: [{users: [alice], rotation: 1w, start: 2020-01-01T00:00:00}]
escalation_policies:
  - name: ops
    levels:
      - {schedules: [primary], timeout: 5m}
      - {users: [bob], timeout: 5s}
"""


@dataclass
class Page:
    replica: str
    person: str
    kind: str
    level: int
    body: dict[str, Any]


@dataclass
class Phones:
    """Every person's webhook, as the replicas' transports deliver to it."""

    pages: list[Page] = field(default_factory=list)
    down: set[str] = field(default_factory=set)  # replicas whose deliveries fail (retriable)
    attempts: int = 0

    def transport(self, replica: str) -> Any:
        async def send(n: Notification, body: bytes, ctx: NotifyContext) -> None:
            self.attempts += 1
            if replica in self.down:
                raise NotifyError("503 from the pager")
            self.pages.append(Page(replica, n.person, n.kind, n.level, json.loads(body)))

        return send

    def got(self, kind: str = "page") -> list[tuple[str, int]]:
        return [(p.person, p.level) for p in self.pages if p.kind == kind]


def write(tmp: Path, text: str = CONFIG) -> Path:
    path = tmp / "am.yml"
    path.write_text(text)
    return path


@contextlib.asynccontextmanager
async def replica(name: str, cfg: Path, clock: ManualClock, replog: ReplicatedLog,
                  phones: Phones) -> AsyncIterator[AlertingService]:
    svc = AlertingService(AlertingConfig(config=ConfigSection(cfg), web=WebSection("127.0.0.1:0"),
                                         cluster=ClusterSection(LEASE, name)), clock=clock, replog=replog)
    svc.paging.transport = phones.transport(name)
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


def incident_status(svc: AlertingService) -> str:
    inc = svc.paging.escalator.incident(GROUP)
    assert inc is not None
    return inc.status


def test_unacknowledged_page_reaches_level_2_once_across_two_replicas(tmp_path: Path) -> None:
    async def main() -> None:
        clock, broker, phones = ManualClock(), MemoryBroker(), Phones()
        cfg = write(tmp_path)
        async with replica("r1", cfg, clock, broker.log(), phones) as a, \
                replica("r2", cfg, clock, broker.log(), phones) as b:
            for svc in (a, b):
                post(svc, clock, firing("Down", clock, instance="db1"))
            await clock.advance(9)
            assert phones.pages == []  # group_wait
            await clock.advance(2)
            assert phones.got() == [("alice", 1)]  # one delivery for two replicas; the email contact is data only
            await clock.advance(295)
            assert phones.got() == [("alice", 1)]  # level 1's timeout (5m) has not passed
            await clock.advance(10)
            assert phones.got() == [("alice", 1), ("bob", 2)]
            await clock.advance(600)
            assert phones.got() == [("alice", 1), ("bob", 2)]  # the policy ran once (repeat: 0)
            for svc in (a, b):
                assert incident_status(svc) == "triggered"
                assert svc.metrics.oncall_undelivered.labels("email")._value.get() == 1
            page = phones.pages[0].body
            assert (page["version"], page["groupKey"], page["status"], page["receiver"]) == ("4", GROUP, "firing",
                                                                                            "pager")
            assert [al["labels"] for al in page["alerts"]] == [{"alertname": "Down", "instance": "db1"}]
            oncall = page["oncall"]
            assert (oncall["person"], oncall["level"], oncall["policy"], oncall["kind"]) == ("alice", 1, "ops", "page")
            assert oncall["contact"] == {"type": "webhook", "address": "http://alice.example/hook"}
            assert oncall["ackURL"].endswith(f"/api/v2/alerts/groups/{group_id(GROUP)}/ack?by=alice")

    asyncio.run(main())


def test_acknowledged_page_does_not_escalate(tmp_path: Path) -> None:
    async def main() -> None:
        clock, broker, phones = ManualClock(), MemoryBroker(), Phones()
        cfg = write(tmp_path)
        async with replica("r1", cfg, clock, broker.log(), phones) as a, \
                replica("r2", cfg, clock, broker.log(), phones) as b:
            for svc in (a, b):
                post(svc, clock, firing("Down", clock))
            await clock.advance(11)
            assert phones.got() == [("alice", 1)]
            b.acks.ack(group_id(GROUP), GROUP, "alice")  # what POST .../ack does, on the other replica
            await clock.advance(1)
            assert [incident_status(s) for s in (a, b)] == ["acknowledged", "acknowledged"]
            await clock.advance(900)
            assert phones.got() == [("alice", 1)]

    asyncio.run(main())


def test_an_ack_before_the_first_page_pages_level_1_and_stops_there(tmp_path: Path) -> None:
    async def main() -> None:
        clock, broker, phones = ManualClock(), MemoryBroker(), Phones()
        async with replica("r1", write(tmp_path), clock, broker.log(), phones) as a:
            post(a, clock, firing("Down", clock))
            await clock.advance(1)
            a.acks.ack(group_id(GROUP), GROUP, "carol")  # from the page, during group_wait
            await clock.advance(900)
            assert phones.got() == [("alice", 1)]
            assert incident_status(a) == "acknowledged"

    asyncio.run(main())


def test_resolve_stops_escalation_and_tells_everyone_paged_once(tmp_path: Path) -> None:
    async def main() -> None:
        clock, broker, phones = ManualClock(), MemoryBroker(), Phones()
        cfg = write(tmp_path)
        async with replica("r1", cfg, clock, broker.log(), phones) as a, \
                replica("r2", cfg, clock, broker.log(), phones) as b:
            for svc in (a, b):
                post(svc, clock, firing("Down", clock), firing("Slow", clock))
            await clock.advance(11)
            b.acks.ack(group_id('{}:{alertname="Slow"}'), '{}:{alertname="Slow"}', "alice")
            await clock.advance(305)
            assert sorted(phones.got()) == [("alice", 1), ("alice", 1), ("bob", 2)]  # Slow was acked: no bob
            for svc in (a, b):
                post(svc, clock, resolved("Down", clock), resolved("Slow", clock))
            await clock.advance(60)  # the next group_interval flush sends the resolve
            assert sorted(person for person, _ in phones.got("resolved")) == ["alice", "alice", "bob"]
            assert all(p.body["status"] == "resolved" for p in phones.pages if p.kind == "resolved")
            assert [incident_status(s) for s in (a, b)] == ["resolved", "resolved"]
            assert a.acks.get(group_id('{}:{alertname="Slow"}')) is None  # the ack ended with its group
            await clock.advance(900)
            assert len(phones.pages) == 6

    asyncio.run(main())


def test_a_resolve_before_the_timeout_means_level_2_is_never_paged(tmp_path: Path) -> None:
    async def main() -> None:
        clock, broker, phones = ManualClock(), MemoryBroker(), Phones()
        async with replica("r1", write(tmp_path), clock, broker.log(), phones) as a:
            post(a, clock, firing("Down", clock))
            await clock.advance(11)
            post(a, clock, resolved("Down", clock))
            await clock.advance(900)
            assert phones.got() == [("alice", 1)] and phones.got("resolved") == [("alice", 1)]

    asyncio.run(main())


def owner_of_delivery(svc: AlertingService) -> str:
    owners = {st.owner_id for st in svc.claims.claims.values() if st.group_key.startswith("oncall:") and not st.final}
    assert len(owners) == 1, owners
    return owners.pop()


def test_a_dead_owners_delivery_is_taken_over_and_delivered_once(tmp_path: Path) -> None:
    async def main() -> None:
        clock, broker, phones = ManualClock(), MemoryBroker(), Phones()
        cfg = write(tmp_path)
        logs = {"r1": broker.log(), "r2": broker.log()}
        async with contextlib.AsyncExitStack() as stack:
            svcs = {n: await stack.enter_async_context(replica(n, cfg, clock, logs[n], phones)) for n in logs}
            phones.down = {"r1", "r2"}  # the pager answers 503: the owner retries
            for svc in svcs.values():
                post(svc, clock, firing("Down", clock))
            await clock.advance(20)
            assert phones.attempts >= 2 and phones.pages == []
            owner = owner_of_delivery(svcs["r1"])
            other = "r2" if owner == "r1" else "r1"
            log = logs[owner]
            assert isinstance(log, MemoryLog)
            log.connected = False  # the owner is cut off (as if killed): no beats, no completion
            await svcs[owner].paging.stop()
            phones.down = set()
            await clock.advance(4 * LEASE)
            assert [(p.replica, p.person) for p in phones.pages] == [(other, "alice")]

    asyncio.run(main())


def test_fail_open_without_the_log_still_pages_and_escalates(tmp_path: Path) -> None:
    async def main() -> None:
        clock, broker, phones = ManualClock(), MemoryBroker(), Phones()
        log = broker.log()
        async with replica("r1", write(tmp_path), clock, log, phones) as a:
            log.connected = False  # Kafka unreachable from here on
            post(a, clock, firing("Down", clock))
            await clock.advance(40)  # group_wait, then the fail-open wait of the claim stage
            assert phones.got() == [("alice", 1)]
            await clock.advance(310)
            assert phones.got() == [("alice", 1), ("bob", 2)]
            a.acks.ack(group_id(GROUP), GROUP, "bob")  # applied here at once: the log cannot bring it back
            assert incident_status(a) == "acknowledged"

    asyncio.run(main())


def test_a_restart_replays_without_paging_again_and_escalation_goes_on(tmp_path: Path) -> None:
    async def main() -> None:
        clock, broker, phones = ManualClock(), MemoryBroker(), Phones()
        cfg = write(tmp_path)
        async with replica("r1", cfg, clock, broker.log(), phones) as a:
            post(a, clock, firing("Down", clock))
            await clock.advance(11)
        assert phones.got() == [("alice", 1)]
        async with replica("r1-again", cfg, clock, broker.log(), phones) as b:
            await clock.advance(60)
            assert phones.got() == [("alice", 1)]  # the replayed page is not sent again
            assert incident_status(b) == "triggered"
            await clock.advance(300)
            assert phones.got() == [("alice", 1), ("bob", 2)]  # the restarted replica's tick escalates

    asyncio.run(main())


def test_a_page_nobody_delivered_before_a_restart_is_sent_after_it(tmp_path: Path) -> None:
    async def main() -> None:
        clock, broker, phones = ManualClock(), MemoryBroker(), Phones()
        cfg = write(tmp_path)
        phones.down = {"r1"}
        async with replica("r1", cfg, clock, broker.log(), phones) as a:
            post(a, clock, firing("Down", clock))
            await clock.advance(15)
        assert phones.pages == [] and phones.attempts >= 1
        async with replica("r2", cfg, clock, broker.log(), phones):
            await clock.advance(2 * LEASE + 5)  # r1's open claim goes quiet; r2 takes it over
            assert [(p.replica, p.person, p.kind) for p in phones.pages] == [("r2", "alice", "page")]

    asyncio.run(main())


def test_level_timeouts_in_seconds_and_the_web_views(tmp_path: Path) -> None:
    async def main() -> None:
        clock, broker, phones = ManualClock(), MemoryBroker(), Phones()
        text = CONFIG.replace("timeout: 5m", "timeout: 5s")
        async with replica("r1", write(tmp_path, text), clock, broker.log(), phones) as a:
            post(a, clock, firing("Down", clock))
            await clock.advance(11)
            assert phones.got() == [("alice", 1)]
            [esc] = a.paging.incidents()
            assert (esc["policy"], esc["level"], esc["paged"], esc["status"]) == ("ops", 1, ["alice"], "triggered")
            await clock.advance(5)
            assert phones.got() == [("alice", 1), ("bob", 2)]
            [now] = a.paging.on_call(clock_at(clock))
            assert (now["schedule"], now["onCall"], now["timeZone"]) == ("primary", ["alice"], "UTC")

    asyncio.run(main())


def clock_at(clock: ManualClock) -> Any:
    from alerting.oncall.rotation import from_ns

    return from_ns(clock.time_ns())


def test_reload_takes_new_schedules_and_a_bad_policy_keeps_the_old_config(tmp_path: Path) -> None:
    import pytest

    from hostwatch.core.config import ConfigError

    async def main() -> None:
        clock, broker, phones = ManualClock(), MemoryBroker(), Phones()
        cfg = write(tmp_path)
        async with replica("r1", cfg, clock, broker.log(), phones) as a:
            post(a, clock, firing("Down", clock))
            await clock.advance(11)
            spare = "  - name: spare\n    layers: [{users: [bob], rotation: 1d, start: 2020-01-01T00:00:00}]\n"
            cfg.write_text(CONFIG.replace("{users: [bob], timeout: 5s}", "{users: [alice], timeout: 5s}")
                           .replace("escalation_policies:", spare + "escalation_policies:"))
            await a.reload()
            assert [s["schedule"] for s in a.paging.on_call(clock_at(clock))] == ["primary", "spare"]
            cfg.write_text(CONFIG.replace("escalation_policy: ops", "escalation_policy: nope"))
            with pytest.raises(ConfigError, match="unknown escalation policy 'nope'"):
                await a.reload()
            assert "spare" in a.paging.config.schedules and a.am_config.receiver("pager").escalation_policy == "ops"
            await clock.advance(300)
            assert phones.got() == [("alice", 1), ("bob", 2)]  # the open incident kept the policy it opened with

    asyncio.run(main())
