"""The page's HTTP side in-process: `GET /` and its assets, the /api/hostwatch views (on call, escalations,
health), and the acknowledge link: GET shows a confirmation page and acknowledges nothing, its form POST
acknowledges (and stops escalation), JSON POSTs still answer JSON. `hostwatch alerting who-is-on-call`
reads the same file the service runs."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
from alerting_testkit import firing, post
from test_alerting_paging import CONFIG, GROUP, Phones, replica, write

from alerting.clock import ManualClock
from alerting.dispatch import group_id
from alerting.replog import MemoryBroker


def test_page_assets_views_and_the_ack_link(tmp_path: Path) -> None:
    async def main() -> None:
        clock, broker, phones = ManualClock(), MemoryBroker(), Phones()
        async with replica("r1", write(tmp_path), clock, broker.log(), phones) as svc, aiohttp.ClientSession() as s:
            base = f"http://127.0.0.1:{svc.port}"
            async with s.get(base + "/") as r:
                html = await r.text()
                assert r.status == 200 and r.content_type == "text/html"
                assert '<script src="/static/app.js">' in html and 'id="silence-dialog"' in html
            for name, ctype in (("app.js", "text/javascript"), ("style.css", "text/css")):
                async with s.get(f"{base}/static/{name}") as r:
                    assert (r.status, r.content_type) == (200, ctype) and len(await r.read()) > 1000
            async with s.get(base + "/static/../service.py") as r:
                assert r.status == 404

            post(svc, clock, firing("Down", clock, instance="db1"))
            await clock.advance(11)
            assert phones.got() == [("alice", 1)]
            async with s.get(base + "/api/hostwatch/oncall") as r:
                body = await r.json()
                assert [(x["schedule"], x["onCall"], x["next"]) for x in body["schedules"]] == [
                    ("primary", ["alice"], [])]  # one person in the rotation: nobody else is next
                assert body["policies"] == ["ops"]
            async with s.get(base + "/api/hostwatch/escalations") as r:
                [esc] = await r.json()
                assert (esc["groupID"], esc["status"], esc["paged"]) == (group_id(GROUP), "triggered", ["alice"])
            async with s.get(base + "/api/hostwatch/health") as r:
                health = await r.json()
                assert (health["replica"], health["log"]["kind"], health["healthy"]) == ("r1", "memory", True)
                assert [m["name"] for m in health["replicas"] if m["live"]] == ["r1"]

            link = urlsplit(phones.pages[0].body["oncall"]["ackURL"])
            path = f"{link.path}?{link.query}"
            async with s.get(base + path) as r:  # what a link previewer or a click in a mail client does
                page = await r.text()
                assert r.status == 200 and r.content_type == "text/html"
                assert '<form method="post"' in page and 'value="alice"' in page and "Down" in page
            await clock.advance(1)
            assert svc.acks.get(group_id(GROUP)) is None and svc.paging.incidents()[0]["status"] == "triggered"

            async with s.post(base + path, data={"by": "alice", "comment": "on it"}) as r:
                page = await r.text()
                assert r.status == 200 and "Acknowledged by <b>alice</b>" in page
            await clock.advance(1)
            ack = svc.acks.get(group_id(GROUP))
            assert ack is not None and (ack.by, ack.comment) == ("alice", "on it")
            assert svc.paging.incidents()[0]["status"] == "acknowledged"
            await clock.advance(600)
            assert phones.got() == [("alice", 1)]  # acknowledged: bob is never paged

            async with s.get(f"{base}/api/v2/alerts/groups/{'0' * 64}/ack") as r:
                assert r.status == 404 and "not found" in await r.text()
            async with s.post(f"{base}/api/v2/alerts/groups/{group_id(GROUP)}/ack?by=bob", json={}) as r:
                assert r.status == 200 and (await r.json())["acknowledgedBy"] == "bob"

    asyncio.run(main())


def test_who_is_on_call_reads_the_service_config_file(tmp_path: Path) -> None:
    path = write(tmp_path, CONFIG)
    for argv in (["alerting", "who-is-on-call", "--config.file", str(path), "--at", "2024-06-01T00:00:00Z"],
                 ["alerting", "--config.file", str(path), "who-is-on-call", "primary", "--at", "2024-06-01T00:00:00Z"]):
        p = subprocess.run([sys.executable, "-m", "hostwatch", *argv], capture_output=True, text=True, timeout=60)
        assert (p.returncode, p.stderr) == (0, "")
        assert p.stdout.splitlines()[1].split()[:2] == ["primary", "alice"]
