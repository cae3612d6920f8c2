"""`AlertingService`: the running thing (`hostwatch alerting`, or embedded by `hostwatch up`).

API -> alert store -> dispatcher -> notify pipeline, with silences, acks, the notification log and
claims shared through the replicated log (Kafka with --kafka.brokers; else a journal in --state.dir;
else memory). The state is rebuilt from the log before the dispatcher starts, so a restarted replica
keeps its alerts, silences and notification state and does not notify again what was notified.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import platform
import socket
import uuid
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from alerting import config as amconfig
from alerting.acks import Acks
from alerting.api import Api
from alerting.claims import ClaimTable
from alerting.clock import Clock, SystemClock
from alerting.dispatch import AggregationGroup, Dispatcher
from alerting.httpclient import HTTPClient
from alerting.inhibit import Inhibitor
from alerting.metrics import AlertingMetrics
from alerting.model import Alert, format_time_ms
from alerting.nflog import NotificationLog
from alerting.oncall.config import EXTENSIONS as ONCALL_EXTENSIONS
from alerting.oncall.escalation import ACKNOWLEDGED, RESOLVED, TRIGGERED
from alerting.paging import Paging
from alerting.pipeline import ESCALATION_POLICY, IntegrationFactory, PipelineDeps, build_pipeline
from alerting.replog import FileLog, KafkaLog, MemoryBroker, ReplicatedLog
from alerting.route import Route
from alerting.settings import AlertingConfig
from alerting.silences import ACTIVE, EXPIRED, PENDING, Silences
from alerting.state import REPLAY_RESOLVED_MAX_NS, ReplicatedState
from alerting.store import AlertStore
from alerting.web import WebUI
from hostwatch.core.addresses import parse_listen_address as core_parse_listen_address
from hostwatch.core.config import ConfigError

log = logging.getLogger("hostwatch.alerting")

API_VERSION = "0.25.0"  # the Alertmanager API this serves; amtool compares versions
GC_INTERVAL = 60.0
MAX_HEARTBEAT = 2.0  # seconds between member heartbeats at most (they also prove the log is live)
JOURNAL = "alerting.journal"
SYNC_TIMEOUT = 5.0  # seconds a silence/ack API call waits for the log to acknowledge it

# Without --config.file: one receiver that notifies nobody (alerts are still grouped, listed, silenced).
DEFAULT_CONFIG = """route:
  receiver: default
  group_by: [alertname]
receivers:
  - name: default
"""


def parse_listen_address(addr: str) -> tuple[str | None, int]:
    try:
        return core_parse_listen_address(addr, "--web.listen-address")
    except ValueError as e:
        raise ConfigError(str(e)) from None


class AlertingService:
    def __init__(self, config: AlertingConfig, *, clock: Clock | None = None, replog: ReplicatedLog | None = None,
                 factories: Mapping[str, IntegrationFactory] | None = None,
                 extensions: Mapping[str, amconfig.Extension] | None = None) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.metrics = AlertingMetrics()
        self.replica = config.cluster.replica_id or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        self.store = AlertStore()
        self.silences = Silences(self.clock.time_ns)
        self.nflog = NotificationLog(self.clock.time_ns)
        self.claims = ClaimTable(self.clock)
        self.acks = Acks(self.clock.time_ns)
        self.replog = replog or self._default_log()
        self.state = ReplicatedState(self.replica, self.clock, self.store, self.silences, self.nflog, self.claims,
                                     self.acks, self._append)
        # On-call is built in: people/schedules/escalation_policies sections and receivers that name an
        # escalation_policy work with no wiring; a caller's own "escalation_policy" factory replaces it.
        self.paging = Paging(self)
        self._own_paging = ESCALATION_POLICY not in (factories or {})
        self.factories = {ESCALATION_POLICY: self.paging.integrations, **(factories or {})}
        self.extensions = {**ONCALL_EXTENSIONS, **(extensions or {})}
        self.am_config = self._load()
        self.paging.configure(self.am_config, check_receivers=self._own_paging)
        self.store.subscribe(self._on_alert)
        self.route = Route(self.am_config.route)
        self.inhibitor = Inhibitor(self.am_config.inhibit_rules)
        self.dispatcher: Dispatcher | None = None
        self._runner: web.AppRunner | None = None
        self._http: HTTPClient | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._started_ns = 0
        self.external_url = config.web.external_url or ""

    def _load(self) -> amconfig.AlertmanagerConfig:
        path = self.config.config.file
        if path is None:
            return amconfig.loads(DEFAULT_CONFIG, "<built-in config>", self.extensions)
        return amconfig.load(path, self.extensions)

    def _default_log(self) -> ReplicatedLog:
        if self.config.kafka.brokers:
            return KafkaLog(",".join(self.config.kafka.brokers), self.config.kafka.topic, self.metrics)
        if self.config.state.dir is not None:
            return FileLog(self.config.state.dir / JOURNAL, self.metrics)
        return MemoryBroker().log()

    def _append(self, key: str, value: dict[str, Any] | None) -> None:
        self.replog.append(key, value)

    def _on_alert(self, alert: Alert, changed: bool) -> None:
        self.inhibitor.observe(alert)
        if self.dispatcher is not None:
            self.dispatcher.process(alert)

    @property
    def heartbeat_interval(self) -> float:
        return min(MAX_HEARTBEAT, self.config.cluster.peer_timeout / 4)

    def healthy(self) -> bool:
        """Whether the replicated log is live: reachable, and records (at least heartbeats) flow back."""
        fresh = self.clock.monotonic() - self.state.last_applied < max(3 * self.heartbeat_interval,
                                                                         self.config.cluster.peer_timeout)
        return self.replog.reachable() and fresh

    def ready(self) -> bool:
        return self._runner is not None and self.replog.caught_up()

    def _build_dispatcher(self) -> Dispatcher:
        assert self._http is not None
        lease = self.config.cluster.peer_timeout
        within = 3 * max(self.heartbeat_interval, lease)
        deps = PipelineDeps(self.clock, self.silences, self.inhibitor, self.nflog, self.claims, self._append,
                            self.replica, lease, self.healthy, lambda: self.state.position(within),
                            self._http, self.external_url, self.metrics,
                            # Sharing claims only with replicas heard from in the last two heartbeats: a
                            # replica that just died must not delay the groups it would have taken.
                            live=lambda: [m.replica for m in self.state.live_members(2 * self.heartbeat_interval)])
        pipeline = build_pipeline(self.am_config, deps, self.factories)
        self.paging.bind(deps)
        # Waiting claimants may need two leases to take over a silent owner's claim.
        dispatcher = Dispatcher(self.route, pipeline.exec, self.clock, lambda: 2 * lease)
        dispatcher.on_drop.append(self._group_gone)
        return dispatcher

    def _group_gone(self, group: AggregationGroup) -> None:
        """Every alert of the group resolved: its acknowledgement ends with it (a new firing starts afresh)."""
        self.acks.clear(group.id)

    async def start(self) -> None:
        host, port = parse_listen_address(self.config.web.listen_address)
        self._started_ns = self.clock.time_ns()
        self._http = HTTPClient()
        await self.replog.start(self.state.apply)
        app = web.Application(client_max_size=64 << 20)
        app.add_routes(Api(self).routes())
        app.add_routes(WebUI(self).routes())
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port, reuse_address=True).start()
        if not self.external_url:
            self.external_url = f"http://{socket.gethostname()}:{self.port}"
        self.dispatcher = self._build_dispatcher()
        for a in self.store:
            self.dispatcher.process(a)
        await self.dispatcher.start()
        await self.paging.start()
        self.state.heartbeat(self.address)
        await self.replog.synced(SYNC_TIMEOUT)
        self._tasks = [asyncio.ensure_future(self._every(self.heartbeat_interval, self._heartbeat)),
                       asyncio.ensure_future(self._every(GC_INTERVAL, self._gc))]
        self.metrics.replica_up.set(1)
        log.info("alerting replica %s listening on %s", self.replica, self.address)

    @property
    def started_ns(self) -> int:
        return self._started_ns

    @property
    def address(self) -> str:
        return f"{self.addresses[0][0]}:{self.port}" if self.addresses else ""

    @property
    def addresses(self) -> list[Any]:
        return list(self._runner.addresses) if self._runner is not None else []

    @property
    def port(self) -> int:
        return int(self.addresses[0][1])

    async def _every(self, interval: float, fn: Any) -> None:
        while True:
            await self.clock.sleep(interval)
            try:
                fn()
            except Exception:  # noqa: BLE001 - a housekeeping failure must not stop the service
                log.exception("alerting housekeeping failed")

    def _heartbeat(self) -> None:
        self.state.heartbeat(self.address)
        m = self.metrics
        m.kafka_up.set(1 if self.healthy() else 0)
        m.replicas.set(len(self.state.live_members(3 * max(self.heartbeat_interval, self.config.cluster.peer_timeout))))
        m.alerts.set(len(self.store))
        now = self.clock.time_ns()
        counts = {PENDING: 0, ACTIVE: 0, EXPIRED: 0}
        for s in self.silences:
            counts[s.state(now)] += 1
        for state, n in counts.items():
            m.silences.labels(state).set(n)
        incidents = {TRIGGERED: 0, ACKNOWLEDGED: 0, RESOLVED: 0}
        for inc in self.paging.escalator.incidents.values():
            incidents[inc.status] += 1
        for status, n in incidents.items():
            m.oncall_incidents.labels(status).set(n)

    def _gc(self) -> None:
        # Resolved alerts stay (and stay in the log) for as long as Alertmanager's GC keeps them, so a
        # replica restarted before the resolved notification still sends it.
        for a in self.store.gc(self.clock.time_ns(), REPLAY_RESOLVED_MAX_NS):
            self.inhibitor.forget(a)
            self.state.forget_alert(a)
        self.silences.gc()
        self.nflog.gc()
        self.claims.gc()
        self.paging.gc(self.clock.time_ns())

    async def reload(self) -> None:
        """POST /-/reload: a new route tree, inhibit rules and receivers; groups are rebuilt from the store
        (Alertmanager does the same) and dedup against the notification log keeps them from re-notifying."""
        new = self._load()
        old_cfg, old_route, old_inhibitor = self.am_config, self.route, self.inhibitor
        self.paging.configure(new, check_receivers=self._own_paging)
        self.am_config, self.route = new, Route(new.route)
        self.inhibitor = Inhibitor(new.inhibit_rules)
        try:
            dispatcher = self._build_dispatcher()
        except ConfigError:
            self.am_config, self.route, self.inhibitor = old_cfg, old_route, old_inhibitor
            self.paging.configure(old_cfg, check_receivers=self._own_paging)
            raise
        self.inhibitor.load(self.store)
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        self.dispatcher = dispatcher
        for a in self.store:
            dispatcher.process(a)
        await dispatcher.start()
        log.info("alerting: configuration reloaded from %s", new.source)

    def status(self) -> dict[str, Any]:
        if isinstance(self.replog, KafkaLog):
            cluster_state = "ready" if self.replog.caught_up() and self.healthy() else "settling"
        else:
            cluster_state = "disabled"
        within = 3 * max(self.heartbeat_interval, self.config.cluster.peer_timeout)
        return {
            "cluster": {"name": self.replica, "status": cluster_state,
                        "peers": [{"name": m.replica, "address": m.address} for m in self.state.live_members(within)]},
            "config": {"original": self.am_config.original()},
            "uptime": format_time_ms(self._started_ns),
            "versionInfo": {"branch": "hostwatch", "buildDate": "", "buildUser": "hostwatch",
                            "goVersion": f"python{platform.python_version()}", "revision": "hostwatch-alerting",
                            "version": API_VERSION},
        }

    async def durable(self) -> None:
        """Wait (bounded) until what was appended so far is in the log: a silence or ack the API confirmed
        survives a crash right after. Past the bound it stays queued and the API still answers (fail-open)."""
        if not await self.replog.synced(SYNC_TIMEOUT):
            log.warning("alerting: the replicated log did not acknowledge within %.0fs; kept in memory and queued",
                        SYNC_TIMEOUT)

    def groups(self) -> list[AggregationGroup]:
        return self.dispatcher.list_groups() if self.dispatcher is not None else []

    def exposition(self) -> bytes:
        return self.metrics.exposition()

    async def stop(self) -> None:
        self.metrics.replica_up.set(0)
        await self.paging.stop()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self.dispatcher is not None:
            await self.dispatcher.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        with contextlib.suppress(Exception):
            await self.replog.stop()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def __aenter__(self) -> AlertingService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
