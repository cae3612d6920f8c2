"""Builds the notify pipeline from the configuration: receivers -> integrations -> stages.

Extension point: `factories` maps a receiver key to an IntegrationFactory. The core provides webhook
integrations; a receiver with `escalation_policy: NAME` needs the factory registered under
"escalation_policy" (alerting/oncall provides it): its Integration's Notifier pages the policy. Every
integration, whatever its kind, runs behind the same dedup and claim stages, so escalation notices are
HA-deduplicated like webhooks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from alerting.claims import DELIVERY_SLOTS, ClaimStage, ClaimTable
from alerting.clock import Clock
from alerting.config import AlertmanagerConfig, ReceiverConfig
from alerting.httpclient import HTTPClient
from alerting.inhibit import Inhibitor
from alerting.metrics import AlertingMetrics
from alerting.nflog import NotificationLog
from alerting.silences import Silences
from alerting.stages import (
    DedupStage,
    FanoutStage,
    InhibitStage,
    Integration,
    MultiStage,
    NotifyStage,
    RetryStage,
    RoutingStage,
    SetNotifiesStage,
    SilenceStage,
    Stage,
    WaitStage,
    default_backoff,
)
from alerting.webhook import WebhookNotifier
from hostwatch.core.config import ConfigError

ESCALATION_POLICY = "escalation_policy"


@dataclass
class PipelineDeps:
    clock: Clock
    silences: Silences
    inhibitor: Inhibitor
    nflog: NotificationLog
    claims: ClaimTable
    append: Callable[[str, dict[str, object]], None]
    replica: str
    peer_timeout: float
    healthy: Callable[[], bool]
    position: Callable[[], int]
    http: HTTPClient | None
    external_url: str
    metrics: AlertingMetrics | None = None
    backoff: Callable[[int], float] = default_backoff
    slots: asyncio.Semaphore | None = None  # shared by every integration of the replica
    live: Callable[[], list[str]] = list  # the live replicas' ids, sorted (claims spread groups over them)


IntegrationFactory = Callable[[ReceiverConfig, PipelineDeps], list[Integration]]


def webhook_integrations(rc: ReceiverConfig, deps: PipelineDeps) -> list[Integration]:
    if not rc.webhook_configs:
        return []
    assert deps.http is not None
    return [Integration(rc.name, "webhook", i, WebhookNotifier(w, deps.http, deps.external_url,
                                                               deps.clock.time_ns), w.send_resolved)
            for i, w in enumerate(rc.webhook_configs)]


def integration_stage(deps: PipelineDeps) -> Stage:
    c = deps.clock
    deliver = MultiStage(RetryStage(NotifyStage(c, deps.metrics), c, deps.backoff, deps.metrics),
                         SetNotifiesStage(deps.nflog, deps.replica))
    fallback = MultiStage(WaitStage(lambda: deps.position() * deps.peer_timeout, c),
                          DedupStage(deps.nflog, c.time_ns, metrics=deps.metrics))
    claim = ClaimStage(deliver, fallback, deps.claims, deps.nflog, deps.append, deps.replica, deps.peer_timeout, c,
                       deps.healthy, deps.metrics, deps.slots, deps.live)
    return MultiStage(DedupStage(deps.nflog, c.time_ns, metrics=deps.metrics), claim)


def build_pipeline(cfg: AlertmanagerConfig, deps: PipelineDeps,
                   factories: Mapping[str, IntegrationFactory] | None = None) -> RoutingStage:
    factories = dict(factories or {})
    if deps.slots is None:
        deps.slots = asyncio.Semaphore(DELIVERY_SLOTS)
    receivers: dict[str, Stage] = {}
    for rc in cfg.receivers:
        integrations = webhook_integrations(rc, deps)
        if rc.escalation_policy:
            factory = factories.get(ESCALATION_POLICY)
            if factory is None:
                raise ConfigError(f"{cfg.source}: receiver {rc.name!r} names escalation_policy "
                                  f"{rc.escalation_policy!r}, but no on-call module is installed to page it")
            integrations += factory(rc, deps)
        fanout = FanoutStage([(i, integration_stage(deps)) for i in integrations])
        receivers[rc.name] = MultiStage(InhibitStage(deps.inhibitor, deps.clock.time_ns),
                                        SilenceStage(deps.silences, deps.clock.time_ns), fanout)
    return RoutingStage(receivers)
