"""The HTTP surface in-process: API v2 shapes and errors as Alertmanager 0.25 answers, acks, reload,
/metrics, a webhook delivered to a real HTTP server, and a --state.dir journal surviving a restart."""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from alerting import command
from alerting.service import AlertingService
from alerting.settings import AlertingConfig, ConfigSection, StateSection, WebSection
from alerting.webhook import go_json
from hostwatch.core.config import ConfigError

Body = Callable[[aiohttp.ClientSession, str, AlertingService], Awaitable[None]]


def config_text(hook: str) -> str:
    return f"""
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1m
receivers:
  - name: hook
    webhook_configs: [{{url: "{hook}", max_alerts: 5}}]
"""


def serve(tmp: Path, body: Body, hook_status: int = 200, state: Path | None = None,
          received: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    received = [] if received is None else received

    async def main() -> None:
        async def hook(request: web.Request) -> web.Response:
            received.append({"body": await request.json(), "headers": dict(request.headers)})
            return web.Response(status=hook_status)

        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        cfg_file = tmp / "am.yml"
        cfg_file.write_text(config_text(f"http://127.0.0.1:{port}/hook"))
        cfg = AlertingConfig(config=ConfigSection(cfg_file), web=WebSection("127.0.0.1:0"), state=StateSection(state))
        try:
            async with AlertingService(cfg) as svc, aiohttp.ClientSession() as s:
                await body(s, f"http://127.0.0.1:{svc.port}", svc)
        finally:
            await runner.cleanup()

    asyncio.run(main())
    return received


async def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if cond():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_alerts_groups_webhook_and_validation(tmp_path: Path) -> None:
    received: list[dict[str, Any]] = []

    async def body(s: aiohttp.ClientSession, base: str, svc: AlertingService) -> None:
        alerts = [{"labels": {"alertname": "A", "i": str(i)}, "annotations": {"s": "x"}} for i in range(7)]
        async with s.post(base + "/api/v2/alerts", json=alerts + [{"labels": {}}]) as r:
            assert r.status == 400 and await r.json() == "at least one label pair required"
        async with s.post(base + "/api/v2/alerts", data=b"nope") as r:
            assert r.status == 400 and (await r.json())["code"] == 400
        async with s.get(base + "/api/v2/alerts", params={"filter": "i=~[0-2]"}) as r:
            got = await r.json()
            assert [a["labels"]["i"] for a in got] == sorted(["0", "1", "2"], key=lambda i: [
                a["fingerprint"] for a in got if a["labels"]["i"] == i])
            assert got[0]["receivers"] == [{"name": "hook"}] and got[0]["status"]["state"] == "active"
            assert got[0]["endsAt"].endswith("Z") and len(got[0]["endsAt"]) == 24  # ms precision
        async with s.get(base + "/api/v2/alerts", params={"filter": "i"}) as r:
            assert r.status == 400 and await r.json() == "bad matcher format: i"
        async with s.get(base + "/api/v2/alerts/groups") as r:
            (group,) = await r.json()
            assert group["labels"] == {"alertname": "A"} and group["receiver"] == {"name": "hook"}
            assert len(group["alerts"]) == 7 and group["groupKey"] == '{}:{alertname="A"}'
        await wait_for(lambda: len(received) == 1)

    serve(tmp_path, body, received=received)
    msg = received[0]["body"]
    assert (msg["version"], msg["status"], msg["truncatedAlerts"], len(msg["alerts"])) == ("4", "firing", 2, 5)
    assert msg["groupKey"] == '{}:{alertname="A"}' and msg["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
    assert received[0]["headers"]["Content-Type"] == "application/json"


def test_silences_status_acks_reload_and_metrics(tmp_path: Path) -> None:
    async def body(s: aiohttp.ClientSession, base: str, svc: AlertingService) -> None:
        sil = {"matchers": [{"name": "alertname", "value": "A", "isRegex": False, "isEqual": True}],
               "startsAt": "2020-01-01T00:00:00Z", "endsAt": "2999-01-01T00:00:00Z", "createdBy": "me",
               "comment": "c"}
        async with s.post(base + "/api/v2/silences", json=sil) as r:
            sid = (await r.json())["silenceID"]
        async with s.get(base + f"/api/v2/silence/{sid}") as r:
            assert (await r.json())["status"] == {"state": "active"}
        async with s.get(base + "/api/v2/silence/nonuuid") as r:
            assert r.status == 422
        async with s.get(base + "/api/v2/silence/6b0b0a2c-3e0e-4a53-9f4c-000000000000") as r:
            assert r.status == 404
        past = {**sil, "startsAt": "2000-01-01T00:00:00Z", "endsAt": "2001-01-01T00:00:00Z"}
        async with s.post(base + "/api/v2/silences", json=past) as r:
            assert r.status == 400 and "end time can't be in the past" in await r.json()
        async with s.post(base + "/api/v2/alerts", json=[{"labels": {"alertname": "A"}}]) as r:
            assert r.status == 200
        async with s.get(base + "/api/v2/alerts", params={"silenced": "false"}) as r:
            assert await r.json() == []
        async with s.get(base + "/api/v2/alerts") as r:
            (a,) = await r.json()
            assert a["status"] == {"inhibitedBy": [], "silencedBy": [sid], "state": "suppressed"}
        async with s.delete(base + f"/api/v2/silence/{sid}") as r:
            assert r.status == 200
        async with s.get(base + "/api/v2/silences") as r:
            await asyncio.sleep(0.01)
            assert [x["id"] for x in await r.json()] == [sid]
        async with s.get(base + "/api/v2/status") as r:
            st = await r.json()
            assert st["versionInfo"]["version"] == "0.25.0" and st["cluster"]["status"] == "disabled"
            assert "receiver: hook" in st["config"]["original"]
        async with s.get(base + "/api/v2/alerts/groups") as r:
            gid = (await r.json())[0]["id"]
        async with s.post(base + f"/api/v2/alerts/groups/{gid}/ack", json={"createdBy": "oncall"}) as r:
            assert (await r.json())["acknowledgedBy"] == "oncall"
        async with s.get(base + "/api/v2/alerts/groups") as r:
            assert (await r.json())[0]["acknowledged"]["acknowledgedBy"] == "oncall"
        async with s.post(base + "/api/v2/alerts/groups/00/ack") as r:
            assert r.status == 404
        async with s.delete(base + f"/api/v2/alerts/groups/{gid}/ack") as r:
            assert r.status == 200
        async with s.get(base + "/api/v2/acks") as r:
            assert await r.json() == []
        (tmp_path / "am.yml").write_text((tmp_path / "am.yml").read_text().replace("1m", "2m"))
        async with s.post(base + "/-/reload") as r:
            assert r.status == 200 and svc.route.opts.group_interval == 120
        (tmp_path / "am.yml").write_text("route: {receiver: nobody}\nreceivers: []\n")
        async with s.post(base + "/-/reload") as r:
            assert r.status == 500 and "undefined receiver" in await r.text()
            assert svc.route.opts.group_interval == 120  # the running config stays
        for path in ("/-/healthy", "/-/ready"):
            async with s.get(base + path) as r:
                assert r.status == 200
        async with s.get(base + "/metrics") as r:
            text = await r.text()
            assert 'hostwatch_alerting_alerts_received_total{status="firing"} 1.0' in text
            assert "hostwatch_alerting_replica_up 1.0" in text
        assert svc.exposition().startswith(b"# HELP")

    serve(tmp_path, body)


def test_a_failing_webhook_is_retried_and_a_4xx_is_not(tmp_path: Path) -> None:
    async def body(s: aiohttp.ClientSession, base: str, svc: AlertingService) -> None:
        async with s.post(base + "/api/v2/alerts", json=[{"labels": {"alertname": "A"}}]) as r:
            assert r.status == 200
        await asyncio.sleep(2.0)

    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
    assert len(serve(tmp_path / "a", body, hook_status=500)) >= 2  # retried with backoff
    assert len(serve(tmp_path / "b", body, hook_status=400)) == 1  # permanent failure


def test_state_dir_journal_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ids: list[str] = []

    async def first(s: aiohttp.ClientSession, base: str, svc: AlertingService) -> None:
        sil = {"matchers": [{"name": "a", "value": "b", "isRegex": False}], "startsAt": "2020-01-01T00:00:00Z",
               "endsAt": "2999-01-01T00:00:00Z", "createdBy": "me", "comment": "kept"}
        async with s.post(base + "/api/v2/silences", json=sil) as r:
            ids.append((await r.json())["silenceID"])
        async with s.post(base + "/api/v2/alerts", json=[{"labels": {"alertname": "A"}}]) as r:
            assert r.status == 200
        await wait_for(lambda: len(svc.nflog) == 1)

    async def second(s: aiohttp.ClientSession, base: str, svc: AlertingService) -> None:
        async with s.get(base + f"/api/v2/silence/{ids[0]}") as r:
            assert (await r.json())["comment"] == "kept"
        async with s.get(base + "/api/v2/alerts") as r:
            assert [a["labels"] for a in await r.json()] == [{"alertname": "A"}]
        await asyncio.sleep(0.5)

    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
    assert len(serve(tmp_path / "a", first, state=state)) == 1
    assert serve(tmp_path / "b", second, state=state) == []  # the notification log came back too


def test_usage_errors_exit_125_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("route: {receiver: r, nope: 1}\nreceivers: [{name: r}]\n")
    for args, needle in ((["--config.file", str(bad)], "unknown key 'route.nope'"),
                         (["--cluster.peer-timeout", "soon"], "invalid duration"),
                         (["--no-such-flag"], "unrecognized arguments")):
        p = subprocess.run([sys.executable, "-m", "alerting", "alerting", *args], capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 125, p.stderr
        lines = [x for x in p.stderr.splitlines() if x.strip()]
        assert len(lines) == 1 and needle in lines[0]


def test_payload_json_is_html_safe_like_go() -> None:
    assert json.loads(go_json({"a": "<&>"})) == {"a": "<&>"}
    assert go_json({"a": "<&>"}) == b'{"a":"\\u003c\\u0026\\u003e"}\n'


def test_register_adds_alerting_and_lets_extensions_add_verbs() -> None:
    def who_is_on_call(verbs: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
        w = verbs.add_parser("who-is-on-call")
        w.add_argument("schedule", nargs="?")
        w.set_defaults(func=lambda a: 7)

    parser = argparse.ArgumentParser()
    command.register(parser.add_subparsers(dest="cmd"), [who_is_on_call])
    args = parser.parse_args(["alerting", "--kafka.brokers", "a:1,b:2", "--cluster.peer-timeout", "2s"])
    cfg = command.config_from_args(args)
    assert args.func is command.run and cfg.kafka.brokers == ("a:1", "b:2") and cfg.cluster.peer_timeout == 2.0
    assert parser.parse_args(["alerting", "who-is-on-call", "primary"]).func(None) == 7


def test_an_unknown_escalation_policy_is_a_config_error_naming_file_and_key(tmp_path: Path) -> None:
    cfg_file = tmp_path / "am.yml"
    cfg_file.write_text("route: {receiver: p}\nreceivers: [{name: p, escalation_policy: ops}]\n")
    with pytest.raises(ConfigError, match=r"am.yml: receivers\[0\].escalation_policy: unknown escalation policy 'ops'"):
        AlertingService(AlertingConfig(config=ConfigSection(cfg_file), web=WebSection("127.0.0.1:0")))
