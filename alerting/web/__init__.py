"""The page at `GET /`: plain HTML, CSS and a little JS (static/, no build step) over the API.

It reads the Alertmanager API v2 (groups, silences, acks) and three views of its own under
/api/hostwatch/: who is on call now and next per schedule, escalation incidents, and this replica's
view of the replicas and the replicated log (Kafka). `GET` on an acknowledge link serves a
confirmation page whose button POSTs (ackpage.py), so a link previewer fetching the link acks nothing.
"""

from __future__ import annotations

from datetime import UTC
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from alerting.model import format_time_ms
from alerting.oncall.rotation import from_ns
from alerting.replog import FileLog, KafkaLog
from alerting.web import ackpage

if TYPE_CHECKING:
    from alerting.service import AlertingService

STATIC = {"app.js": "text/javascript", "style.css": "text/css"}
NO_CACHE = {"Cache-Control": "no-cache"}
STALE_SHOWN = 900.0  # seconds a replica that stopped beating is still listed (as not live)


def _json(obj: Any) -> web.Response:
    return web.Response(body=orjson.dumps(obj), content_type="application/json", headers=NO_CACHE)


def _asset(name: str) -> bytes:
    return files("alerting.web").joinpath("static", name).read_bytes()


class WebUI:
    def __init__(self, svc: AlertingService) -> None:
        self.svc = svc

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/", self.index), web.get("/static/{name}", self.static),
                web.get("/api/hostwatch/oncall", self.oncall), web.get("/api/hostwatch/escalations", self.escalations),
                web.get("/api/hostwatch/health", self.health),
                web.get("/api/v2/alerts/groups/{gid}/ack", self.ack_page)]

    async def index(self, request: web.Request) -> web.Response:
        return web.Response(body=_asset("index.html"), content_type="text/html", charset="utf-8", headers=NO_CACHE)

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in STATIC:
            raise web.HTTPNotFound()
        return web.Response(body=_asset(name), content_type=STATIC[name], charset="utf-8", headers=NO_CACHE)

    async def oncall(self, request: web.Request) -> web.Response:
        at = from_ns(self.svc.clock.time_ns()).astimezone(UTC)
        return _json({"at": at.isoformat(), "schedules": self.svc.paging.on_call(at),
                      "policies": sorted(self.svc.paging.config.policies)})

    async def escalations(self, request: web.Request) -> web.Response:
        return _json(self.svc.paging.incidents())

    async def health(self, request: web.Request) -> web.Response:
        return _json(health(self.svc))

    async def ack_page(self, request: web.Request) -> web.Response:
        return ackpage.confirm(self.svc, request)


def health(svc: AlertingService) -> dict[str, Any]:
    """This replica's view: itself, the replicas heard from in the log, and the log's transport."""
    log = svc.replog
    if isinstance(log, KafkaLog):
        transport: dict[str, Any] = {"kind": "kafka", "brokers": log.brokers.split(","), "topic": log.topic}
    elif isinstance(log, FileLog):
        transport = {"kind": "journal", "path": str(log.path)}
    else:
        transport = {"kind": "memory"}
    within = 3 * max(svc.heartbeat_interval, svc.config.cluster.peer_timeout)
    now = svc.clock.time_ns()
    live = {m.replica for m in svc.state.live_members(within)}
    replicas = []
    for m in sorted(svc.state.members.values(), key=lambda m: m.replica):
        age = max(0.0, (now - m.at_ns) / 1e9) if m.at_ns else 0.0
        if m.replica != svc.replica and age > STALE_SHOWN:
            continue  # gone long ago (a previous run's random id): the log still has its last beat
        replicas.append({"name": m.replica, "address": m.address, "self": m.replica == svc.replica,
                         "live": m.replica in live and age <= within, "lastSeenSeconds": round(age, 1)})
    return {"replica": svc.replica, "address": svc.address, "externalURL": svc.external_url,
            "startedAt": format_time_ms(svc.started_ns), "cluster": svc.status()["cluster"]["status"],
            "healthy": svc.healthy(), "ready": svc.ready(),
            "log": {**transport, "reachable": log.reachable(), "caughtUp": log.caught_up()},
            "replicas": replicas}
