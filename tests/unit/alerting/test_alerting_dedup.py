"""Dedup decisions (DedupStage.needsUpdate) and inhibition, table-driven with an injected clock."""

from __future__ import annotations

import asyncio

import pytest

from alerting.config import loads
from alerting.inhibit import Inhibitor
from alerting.model import Alert
from alerting.nflog import Entry, NotificationLog, needs_update
from alerting.stages import DedupStage, Integration, NotifyContext

S = 10**9
NOW = 1_000_000 * S
REPEAT = 3600 * S


def entry(firing: set[int], resolved: set[int] = frozenset(), age: int = 60) -> Entry:  # type: ignore[assignment]
    return Entry("g", "r/x/0", NOW - age * S, frozenset(firing), frozenset(resolved), NOW + REPEAT)


NEEDS = [
    # (entry, firing now, resolved now, send_resolved) -> notify?
    (None, {1}, set(), True, True),  # first notification
    (None, set(), {1}, True, False),  # nothing ever fired: nothing to say
    (entry({1}), {1}, set(), True, False),  # unchanged, repeat not due
    (entry({1}), {1, 2}, set(), True, True),  # a new firing alert
    (entry({1, 2}), {1}, set(), False, False),  # one resolved, send_resolved off: not worth a message
    (entry({1, 2}), {1}, {2}, True, True),  # one resolved, send_resolved on
    (entry({1, 2}, {2}), {1}, {2}, True, False),  # that resolve was already sent
    (entry({1}), set(), {1}, False, True),  # all resolved: notify even without send_resolved
    (entry(set(), {1}), set(), {1}, True, False),  # all resolved, already told
    (entry({1}, age=3601), {1}, set(), True, True),  # repeat_interval passed
    (entry({1}, age=3600), {1}, set(), True, False),  # exactly at repeat_interval: not yet (strict)
]


@pytest.mark.parametrize(("prev", "firing", "resolved", "send_resolved", "want"), NEEDS)
def test_needs_update(prev: Entry | None, firing: set[int], resolved: set[int], send_resolved: bool,
                      want: bool) -> None:
    assert needs_update(prev, firing, resolved, send_resolved, REPEAT, NOW) is want


def test_dedup_stage_uses_the_injected_clock_and_hash() -> None:
    async def main() -> None:
        now = [NOW]
        nflog = NotificationLog(lambda: now[0])
        stage = DedupStage(nflog, lambda: now[0], hash_alert=lambda a: len(a.labels["n"]))
        integ = Integration("r", "x", 0, notifier=None, send_resolved=True)  # type: ignore[arg-type]
        alerts = [Alert({"n": "aaa"}, ends_at=NOW + S), Alert({"n": "b"}, ends_at=NOW - S)]
        ctx = NotifyContext("g", {}, "r", 3600.0, NOW, 0.0, integration=integ)
        assert await stage.exec(ctx, alerts) == alerts
        assert (ctx.firing, ctx.resolved) == (frozenset({3}), frozenset({1}))
        nflog.log("g", integ.key, ctx.firing, ctx.resolved, REPEAT)
        assert await stage.exec(ctx, alerts) == []
        now[0] += REPEAT + S
        assert await stage.exec(ctx, alerts) == alerts
    asyncio.run(main())


RULES = loads("""
route: {receiver: r}
receivers: [{name: r}]
inhibit_rules:
  - source_matchers: [severity=critical]
    target_matchers: [severity=~"warning|critical"]
    equal: [cluster]
""").inhibit_rules

INHIBIT = [
    # (sources in the store, target labels) -> inhibited by?
    ([{"severity": "critical", "cluster": "a"}], {"severity": "warning", "cluster": "a"}, True),
    ([{"severity": "critical", "cluster": "a"}], {"severity": "warning", "cluster": "b"}, False),
    ([{"severity": "critical"}], {"severity": "warning"}, True),  # both lack `cluster`: equal ("" == "")
    ([{"severity": "critical", "cluster": "a"}], {"severity": "warning"}, False),
    ([{"severity": "critical", "cluster": "a", "x": "1"}], {"severity": "critical", "cluster": "a"}, False),
    ([{"severity": "info", "cluster": "a"}], {"severity": "warning", "cluster": "a"}, False),
]


@pytest.mark.parametrize(("sources", "target", "want"), INHIBIT)
def test_inhibition(sources: list[dict[str, str]], target: dict[str, str], want: bool) -> None:
    inh = Inhibitor(RULES)
    for labels in sources:
        inh.observe(Alert(labels, ends_at=NOW + S))
    assert bool(inh.mutes(target, NOW)) is want


def test_a_resolved_source_no_longer_inhibits() -> None:
    inh = Inhibitor(RULES)
    src = Alert({"severity": "critical", "cluster": "a"}, ends_at=NOW + S)
    inh.observe(src)
    target = {"severity": "warning", "cluster": "a"}
    assert inh.mutes(target, NOW) == [f"{src.fp:016x}"]
    assert inh.mutes(target, NOW + 2 * S) == []
    inh.forget(src)
    assert inh.mutes(target, NOW) == []
