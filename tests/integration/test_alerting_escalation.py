"""Escalation across two real `hostwatch alerting` replicas sharing a Kafka topic (noida-db): a receiver
with `escalation_policy:` pages whoever the schedule has on call through their webhook contact. An
unacknowledged page reaches level 2 after its timeout; one acknowledged through the link in the page
(GET shows a confirmation page, its button POSTs) does not; resolving tells everyone paged. Each
person's webhook gets exactly one page per group, whichever replica delivered it."""

from __future__ import annotations

import http.server
import json
import secrets
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import test_alerting_ha as ha
from localhttp import LocalHTTPServer
from test_alerting_ha import Replica

from peers import NoidaDB

noida = ha.noida
LEVEL1_TIMEOUT = 6.0

CONFIG = """
route:
  receiver: pager
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 4h
receivers:
  - name: pager
    escalation_policy: ops
people:
  - {{name: alice, contacts: [{{webhook_url: "{base}/alice"}}, {{email: alice@example.com}}]}}
  - {{name: bob, contacts: [{{webhook_url: "{base}/bob"}}]}}
schedules:
  - name: primary
    time_zone: Europe/Berlin
    layers: [{{users: [alice], rotation: 1w, start: 2024-01-01T09:00:00}}]
escalation_policies:
  - name: ops
    levels:
      - {{schedules: [primary], timeout: {timeout:g}s}}
      - {{users: [bob], timeout: 1m}}
"""


class Phones:
    """Every person's webhook on one server: POST /<person> is recorded with its body and headers."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self.lock = threading.Lock()
        phones = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with phones.lock:
                    phones.calls.append((self.path.strip("/"), body, dict(self.headers)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = LocalHTTPServer(Handler)
        self.base = f"http://127.0.0.1:{self.server.port}"

    def pages(self, kind: str = "page") -> dict[tuple[str, str], list[dict[str, Any]]]:
        """(person, alertname) -> the notifications of that kind."""
        out: dict[tuple[str, str], list[dict[str, Any]]] = {}
        with self.lock:
            for person, body, _ in self.calls:
                if body["oncall"]["kind"] == kind:
                    out.setdefault((person, body["groupLabels"]["alertname"]), []).append(body)
        return out

    def wait(self, cond: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not cond() and time.monotonic() < deadline:
            time.sleep(0.1)
        return cond()

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def phones() -> Iterator[Phones]:
    p = Phones()
    yield p
    p.close()


@pytest.fixture
def pair(tmp_path: Path, noida: NoidaDB, phones: Phones) -> Iterator[tuple[Replica, Replica, Path]]:
    cfg = tmp_path / "am.yml"
    cfg.write_text(CONFIG.format(base=phones.base, timeout=LEVEL1_TIMEOUT))
    topic = f"hostwatch-alerting-{secrets.token_hex(4)}"
    started: list[Replica] = []
    try:
        for name in ("r1", "r2"):
            r = Replica(tmp_path, name, cfg, noida.bootstrap, topic, command=("hostwatch", "alerting"))
            started.append(r)
            r.start()
        yield started[0], started[1], cfg
    finally:
        for r in started:
            r.stop()


def alert(name: str, resolved: bool = False) -> dict[str, Any]:
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
    ends = stamp if resolved else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 600))
    return {"labels": {"alertname": name, "severity": "page"}, "annotations": {"summary": f"{name} is down"},
            "startsAt": stamp if not resolved else "", "endsAt": ends}


def fetch(url: str, data: bytes | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, data=data, method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.read().decode()


def counts(pages: dict[tuple[str, str], list[dict[str, Any]]]) -> dict[tuple[str, str], int]:
    return {k: len(v) for k, v in sorted(pages.items())}


def test_unacked_page_escalates_acked_one_does_not_each_person_paged_once(
        pair: tuple[Replica, Replica, Path], phones: Phones) -> None:
    r1, r2, cfg = pair
    for r in (r1, r2):  # Prometheus sends to every replica
        r.post_alerts([alert("Unacked"), alert("Acked")])
    assert phones.wait(lambda: len(phones.pages()) == 2, timeout=20), phones.calls
    first = phones.pages()
    paged_at = time.monotonic()
    assert sorted(first) == [("alice", "Acked"), ("alice", "Unacked")]
    page = first[("alice", "Acked")][0]
    assert (page["version"], page["status"], page["receiver"]) == ("4", "firing", "pager")
    assert (page["oncall"]["level"], page["oncall"]["policy"], page["oncall"]["person"]) == (1, "ops", "alice")
    assert page["commonAnnotations"] == {"summary": "Acked is down"}
    assert all(headers.get("Idempotency-Key") for _, _, headers in phones.calls)

    # The ack link, opened on the other replica than the one that may have sent it.
    link = urllib.parse.urlsplit(page["oncall"]["ackURL"])
    assert link.path == f"/api/v2/alerts/groups/{page['oncall']['groupKeyHash']}/ack" and link.query == "by=alice"
    url = f"{r2.url}{link.path}?{link.query}"
    status, html = fetch(url)  # a link previewer does this: it must acknowledge nothing
    assert status == 200 and '<form method="post"' in html and "Acked is down" in html
    assert r1.request("GET", "/api/v2/acks") == []
    status, html = fetch(url, urllib.parse.urlencode({"by": "alice", "comment": "looking"}).encode())
    assert status == 200 and "Acknowledged by <b>alice</b>" in html
    for r in (r1, r2):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
                e["status"] == "acknowledged" for e in r.request("GET", "/api/hostwatch/escalations")):
            time.sleep(0.1)
        escalations = {e["groupKey"]: e for e in r.request("GET", "/api/hostwatch/escalations")}
        assert escalations['{}:{alertname="Acked"}']["status"] == "acknowledged", (r.name, escalations)
        assert escalations['{}:{alertname="Acked"}']["acknowledgedBy"] == "alice"

    assert phones.wait(lambda: ("bob", "Unacked") in phones.pages(), timeout=LEVEL1_TIMEOUT + 15), phones.pages()
    assert time.monotonic() - paged_at >= LEVEL1_TIMEOUT - 1.5  # not before level 1's timeout
    time.sleep(LEVEL1_TIMEOUT)  # the acked group's timeout passed too, and any duplicate would be here
    assert counts(phones.pages()) == {("alice", "Acked"): 1, ("alice", "Unacked"): 1, ("bob", "Unacked"): 1}
    level2 = phones.pages()[("bob", "Unacked")][0]["oncall"]
    assert (level2["level"], level2["person"], level2["contact"]["address"]) == (2, "bob", phones.base + "/bob")

    for r in (r1, r2):
        r.post_alerts([alert("Unacked", resolved=True), alert("Acked", resolved=True)])
    assert phones.wait(lambda: len(phones.pages("resolved")) == 3, timeout=20), phones.pages("resolved")
    time.sleep(4)  # two group intervals on both replicas
    assert counts(phones.pages("resolved")) == {("alice", "Acked"): 1, ("alice", "Unacked"): 1,
                                                ("bob", "Unacked"): 1}
    assert counts(phones.pages()) == {("alice", "Acked"): 1, ("alice", "Unacked"): 1, ("bob", "Unacked"): 1}

    who = subprocess.run([sys.executable, "-m", "hostwatch", "alerting", "who-is-on-call", "--config.file", str(cfg),
                          "-o", "json"], capture_output=True, text=True, timeout=60)
    assert who.returncode == 0, who.stderr
    assert [(s["schedule"], s["onCall"]) for s in json.loads(who.stdout)] == [("primary", ["alice"])]
