"""Alertmanager API v2 (what Prometheus and amtool call), health, reload, /metrics, and acks.

Beyond Alertmanager: `POST /api/v2/alerts/groups/{groupID}/ack` (body optional:
`{"createdBy": "...", "comment": "..."}`) acknowledges a group, `DELETE` on the same path clears it,
`GET /api/v2/acks` lists them; groupID is sha256(groupKey) hex, given as `id` in each group of
GET /api/v2/alerts/groups. A form POST (the ack link's confirmation page, alerting/web) answers a page.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from alerting.matchers import Matcher, MatcherError, all_match, parse_matcher
from alerting.model import Alert, format_time_ms, fp_hex, labels_before
from alerting.silences import SilenceError, silence_from_api
from alerting.store import alert_from_api
from alerting.web import ackpage

if TYPE_CHECKING:
    from alerting.service import AlertingService

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(obj, option=orjson.OPT_SORT_KEYS), status=status, content_type=JSON)


def _error(message: str, status: int = 400) -> web.Response:
    return _json(message, status)


def _bool(q: Mapping[str, str], key: str, default: bool = True) -> bool:
    v = q.get(key)
    return default if v is None else v.lower() in ("true", "1")


class _Filter:
    """The API's alert filter: active/silenced/inhibited/unprocessed flags, label matchers, receiver."""

    def __init__(self, request: web.Request) -> None:
        q = request.query
        self.active, self.silenced = _bool(q, "active"), _bool(q, "silenced")
        self.inhibited, self.unprocessed = _bool(q, "inhibited"), _bool(q, "unprocessed")
        self.matchers: list[Matcher] = [parse_matcher(f) for f in q.getall("filter", [])]
        rx = q.get("receiver")
        try:
            self.receiver = re.compile("(?:" + rx + ")") if rx else None
        except re.error as e:
            raise MatcherError(f"failed to parse receiver param: {e}") from None


class Api:
    def __init__(self, svc: AlertingService) -> None:
        self.svc = svc

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/api/v2/alerts", self.post_alerts), web.get("/api/v2/alerts", self.get_alerts),
            web.get("/api/v2/alerts/groups", self.get_groups), web.get("/api/v2/silences", self.get_silences),
            web.post("/api/v2/silences", self.post_silence), web.get("/api/v2/silence/{id}", self.get_silence),
            web.delete("/api/v2/silence/{id}", self.delete_silence), web.get("/api/v2/status", self.status),
            web.get("/api/v2/receivers", self.receivers),
            web.post("/api/v2/alerts/groups/{gid}/ack", self.ack), web.delete("/api/v2/alerts/groups/{gid}/ack",
                                                                              self.unack),
            web.get("/api/v2/acks", self.get_acks),
            web.get("/-/healthy", self.healthy), web.get("/-/ready", self.ready), web.post("/-/reload", self.reload),
            web.get("/metrics", self.metrics),
        ]

    async def post_alerts(self, request: web.Request) -> web.Response:
        svc = self.svc
        try:
            items = orjson.loads(await request.read())
        except orjson.JSONDecodeError as e:
            return _json({"code": 400, "message": f"parsing alerts body failed: {e}"}, 400)
        if not isinstance(items, list):
            return _json({"code": 400, "message": "parsing alerts body failed: expected an array"}, 400)
        now = svc.clock.time_ns()
        timeout_ns = int(svc.am_config.resolve_timeout * 1e9)
        errors: list[str] = []
        firing = resolved = 0
        for obj in items:
            try:
                alert = alert_from_api(obj, now, timeout_ns)
            except ValueError as e:
                errors.append(str(e))
                continue
            if alert.ends_at > now:
                firing += 1
            else:
                resolved += 1
            svc.store.put(alert, now)
        m = svc.metrics
        m.alerts_received.labels("firing").inc(firing)
        m.alerts_received.labels("resolved").inc(resolved)
        if errors:
            m.alerts_invalid.inc(len(errors))
            return _error("; ".join(errors))
        return web.Response(status=200)

    def _status(self, a: Alert, now: int) -> dict[str, Any]:
        silenced = self.svc.silences.mutes(a.labels, now)
        inhibited = self.svc.inhibitor.mutes(a.labels, now)
        state = "suppressed" if silenced or inhibited else "active"
        return {"inhibitedBy": inhibited, "silencedBy": silenced, "state": state}

    def _gettable(self, a: Alert, status: dict[str, Any], receivers: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {"annotations": a.annotations, "endsAt": format_time_ms(a.ends_at),
                               "fingerprint": fp_hex(a.fp), "receivers": [{"name": r} for r in receivers],
                               "startsAt": format_time_ms(a.starts_at), "status": status,
                               "updatedAt": format_time_ms(a.updated_at)}
        if a.generator_url:
            out["generatorURL"] = a.generator_url
        out["labels"] = a.labels
        return out

    def _keep(self, f: _Filter, a: Alert, now: int) -> dict[str, Any] | None:
        if a.ends_at and a.ends_at < now:
            return None
        st = self._status(a, now)
        if not f.active and st["state"] == "active":
            return None
        if not f.silenced and st["silencedBy"]:
            return None
        if not f.inhibited and st["inhibitedBy"]:
            return None
        if not all_match(f.matchers, a.labels):
            return None
        return st

    async def get_alerts(self, request: web.Request) -> web.Response:
        try:
            f = _Filter(request)
        except MatcherError as e:
            return _error(str(e))
        now = self.svc.clock.time_ns()
        out = []
        for a in self.svc.store:
            st = self._keep(f, a, now)
            if st is None:
                continue
            receivers = [r.opts.receiver for r in self.svc.route.match_cached(a.labels)]
            if f.receiver is not None and not any(f.receiver.fullmatch(r) for r in receivers):
                continue
            out.append(self._gettable(a, st, receivers))
        out.sort(key=lambda x: x["fingerprint"])
        return _json(out)

    async def get_groups(self, request: web.Request) -> web.Response:
        try:
            f = _Filter(request)
        except MatcherError as e:
            return _error(str(e))
        now = self.svc.clock.time_ns()
        groups = []
        for g in self.svc.groups():
            receiver = g.route.opts.receiver
            if f.receiver is not None and not f.receiver.fullmatch(receiver):
                continue
            alerts = []
            for a in g.alerts.values():
                stored = self.svc.store.get(a.fp) or a
                st = self._keep(f, stored, now)
                if st is not None:
                    receivers = [r.opts.receiver for r in self.svc.route.match_cached(a.labels)]
                    alerts.append(self._gettable(stored, st, receivers))
            if not alerts:
                continue
            ack = self.svc.acks.get(g.id)
            groups.append((g, {"alerts": alerts, "labels": g.labels, "receiver": {"name": receiver},
                               "groupKey": g.key, "id": g.id, "acknowledged": ack.api() if ack else None}))
        groups.sort(key=_GroupOrder)
        return _json([body for _, body in groups])

    async def get_silences(self, request: web.Request) -> web.Response:
        try:
            filters = [parse_matcher(x) for x in request.query.getall("filter", [])]
        except MatcherError as e:
            return _error(str(e))
        now = self.svc.clock.time_ns()
        return _json([s.api(now) for s in self.svc.silences.query(filters)])

    async def post_silence(self, request: web.Request) -> web.Response:
        try:
            obj = orjson.loads(await request.read())
            sid, sil = silence_from_api(obj)
            new_id = self.svc.silences.set(sil, sid)
        except orjson.JSONDecodeError as e:
            return _json({"code": 400, "message": f"parsing silence body failed: {e}"}, 400)
        except SilenceError as e:
            return _error(str(e), 404 if e.not_found else 400)
        await self.svc.durable()
        return _json({"silenceID": new_id})

    @staticmethod
    def _silence_id(request: web.Request) -> str | web.Response:
        sid = request.match_info["id"]
        try:
            uuid.UUID(sid)
        except ValueError:
            return _json({"code": 601, "message": f"silenceID in path must be of type uuid: {sid!r}"}, 422)
        return sid

    async def get_silence(self, request: web.Request) -> web.Response:
        sid = self._silence_id(request)
        if isinstance(sid, web.Response):
            return sid
        sil = self.svc.silences.get(sid)
        if sil is None:
            return web.Response(status=404)
        return _json(sil.api(self.svc.clock.time_ns()))

    async def delete_silence(self, request: web.Request) -> web.Response:
        sid = self._silence_id(request)
        if isinstance(sid, web.Response):
            return sid
        try:
            self.svc.silences.expire(sid)
        except SilenceError as e:
            return _error(str(e), 404)
        await self.svc.durable()
        return web.Response(status=200)

    async def status(self, request: web.Request) -> web.Response:
        return _json(self.svc.status())

    async def receivers(self, request: web.Request) -> web.Response:
        return _json([{"name": r.name} for r in self.svc.am_config.receivers])

    async def ack(self, request: web.Request) -> web.Response:
        """JSON (`{"createdBy", "comment"}`, both optional) answers JSON; a form body (the ack link's
        confirmation page) answers a page. `?by=` names who acknowledges when the body does not."""
        gid = request.match_info["gid"]
        form = request.content_type in (FORM, "multipart/form-data")
        group = ackpage.find_group(self.svc, gid)
        if group is None:
            return ackpage.not_found() if form else _error("alert group not found", 404)
        body: Any = {}
        if form:
            data = await request.post()
            body = {"createdBy": str(data.get("by", "")), "comment": str(data.get("comment", ""))}
        else:
            raw = await request.read()
            if raw.strip():
                try:
                    body = orjson.loads(raw)
                except orjson.JSONDecodeError as e:
                    return _error(f"parsing ack body failed: {e}")
            if not isinstance(body, dict):
                return _error("ack body must be an object")
        by = str(body.get("createdBy") or request.query.get("by", ""))
        ack = self.svc.acks.ack(gid, group.key, by, str(body.get("comment", "")))
        await self.svc.durable()
        return ackpage.done(self.svc, group, ack) if form else _json(ack.api())

    async def unack(self, request: web.Request) -> web.Response:
        ack = self.svc.acks.clear(request.match_info["gid"])
        if ack is None:
            return _error("no active acknowledgement for this group", 404)
        await self.svc.durable()
        return _json(ack.api())

    async def get_acks(self, request: web.Request) -> web.Response:
        return _json([a.api() for a in self.svc.acks.active()])

    async def healthy(self, request: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def ready(self, request: web.Request) -> web.Response:
        if self.svc.ready():
            return web.Response(text="OK")
        return web.Response(status=503, text="Service Unavailable")

    async def reload(self, request: web.Request) -> web.Response:
        try:
            await self.svc.reload()
        except ValueError as e:
            return web.Response(status=500, text=f"failed to reload config: {e}\n")
        return web.Response(status=200)

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.svc.metrics.exposition(),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


class _GroupOrder:
    """dispatch.AlertGroups order: by labels, then receiver name."""

    def __init__(self, item: tuple[Any, dict[str, Any]]) -> None:
        self.labels, self.receiver = item[1]["labels"], item[1]["receiver"]["name"]

    def __lt__(self, other: _GroupOrder) -> bool:
        if self.labels == other.labels:
            return bool(self.receiver < other.receiver)
        return labels_before(self.labels, other.labels)
