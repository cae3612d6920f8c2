"""Alerting test harness: replicas of the real AlertingService on a ManualClock, sharing an in-process
log (MemoryBroker), notifying a Recorder through the escalation_policy extension point."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alerting.clock import ManualClock
from alerting.config import ReceiverConfig
from alerting.model import Alert, fp_hex
from alerting.pipeline import PipelineDeps
from alerting.replog import MemoryBroker, ReplicatedLog
from alerting.service import AlertingService
from alerting.settings import AlertingConfig, ClusterSection, ConfigSection, WebSection
from alerting.stages import Integration, NotifyContext, NotifyError
from alerting.store import alert_from_api


@dataclass
class Sent:
    at: float
    replica: str
    group_key: str
    alerts: list[tuple[str, str]]  # (fingerprint, firing|resolved)


@dataclass
class Recorder:
    clock: ManualClock
    sent: list[Sent] = field(default_factory=list)
    failing: bool = False  # True: every delivery fails with a retriable error (a receiver outage)
    attempts: int = 0

    def factory(self, replica: str) -> Any:
        recorder = self

        class _Notifier:
            async def notify(self, ctx: NotifyContext, alerts: Sequence[Alert]) -> None:
                recorder.attempts += 1
                if recorder.failing:
                    raise NotifyError("receiver down (503)")
                now = recorder.clock.time_ns()
                recorder.sent.append(Sent(recorder.clock.monotonic(), replica, ctx.group_key,
                                          [(fp_hex(a.fp), a.status(now)) for a in alerts]))

        def build(rc: ReceiverConfig, deps: PipelineDeps) -> list[Integration]:
            return [Integration(rc.name, "recorder", 0, _Notifier(), send_resolved=True)]

        return build

    def by_group(self) -> dict[str, list[Sent]]:
        out: dict[str, list[Sent]] = {}
        for s in self.sent:
            out.setdefault(s.group_key, []).append(s)
        return out


CONFIG = """
route:
  receiver: rec
  group_by: [alertname]
  group_wait: {group_wait}
  group_interval: {group_interval}
  repeat_interval: {repeat_interval}
receivers:
  - name: rec
    escalation_policy: recorder
inhibit_rules:
  - source_matchers: [severity=page]
    target_matchers: [severity=warn]
    equal: [alertname]
"""


def write_config(tmp: Path, group_wait: str = "30s", group_interval: str = "5m", repeat_interval: str = "4h",
                 text: str = CONFIG) -> Path:
    path = tmp / "am.yml"
    path.write_text(text.format(group_wait=group_wait, group_interval=group_interval,
                                repeat_interval=repeat_interval))
    return path


@contextlib.asynccontextmanager
async def replica(name: str, config_file: Path, clock: ManualClock, recorder: Recorder,
                  replog: ReplicatedLog, peer_timeout: float = 15.0) -> AsyncIterator[AlertingService]:
    cfg = AlertingConfig(config=ConfigSection(config_file), web=WebSection("127.0.0.1:0"),
                         cluster=ClusterSection(peer_timeout, name))
    svc = AlertingService(cfg, clock=clock, replog=replog,
                          factories={"escalation_policy": recorder.factory(name)})
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


def post(svc: AlertingService, clock: ManualClock, *alerts: dict[str, Any]) -> None:
    """What POST /api/v2/alerts does with each alert."""
    now = clock.time_ns()
    for obj in alerts:
        svc.store.put(alert_from_api(obj, now, int(svc.am_config.resolve_timeout * 1e9)), now)


def firing(name: str, clock: ManualClock, valid_for: float = 3600, **labels: str) -> dict[str, Any]:
    from alerting.model import format_time_ns

    now = clock.time_ns()
    return {"labels": {"alertname": name, **labels}, "startsAt": format_time_ns(now),
            "endsAt": format_time_ns(now + int(valid_for * 1e9))}


def resolved(name: str, clock: ManualClock, **labels: str) -> dict[str, Any]:
    from alerting.model import format_time_ns

    return {"labels": {"alertname": name, **labels}, "endsAt": format_time_ns(clock.time_ns())}


__all__ = ["MemoryBroker", "Recorder", "Sent", "firing", "post", "replica", "resolved", "write_config"]
