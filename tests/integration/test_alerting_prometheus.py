"""Real clients against two hostwatch replicas sharing a Kafka topic (noida-db): Debian's Prometheus 2.42
with `alerting: alertmanagers:` pointing at both evaluates a rule that fires and later stops (exactly one
firing and one resolved notification per group), and Debian's amtool adds, queries and expires silences
(a silenced alert is not notified; expiring the silence, on the other replica, restores it)."""

from __future__ import annotations

import contextlib
import http.server
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import test_alerting_ha as ha
from localhttp import LocalHTTPServer
from test_alerting_ha import Receiver, ReplicaFactory

from peers import prometheus_alerting

# The HA module's fixtures, shared: noida-db for the module, a webhook receiver, replicas on a fresh topic.
noida, receiver, replicas = ha.noida, ha.receiver, ha.replicas


class Target:
    """A scrape target whose `hostwatch_test_value{shard=...}` values the test sets."""

    def __init__(self) -> None:
        self.values: dict[str, float] = {}
        target = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body = "".join(f'hostwatch_test_value{{shard="{k}"}} {v}\n' for k, v in target.values.items())
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = LocalHTTPServer(Handler)
        self.address = f"127.0.0.1:{self.server.port}"

    def close(self) -> None:
        self.server.close()


RULES = """
groups:
  - name: test
    interval: 1s
    rules:
      - alert: ValueHigh
        expr: hostwatch_test_value > 0
        labels: {severity: page}
        annotations: {summary: "shard {{ $labels.shard }} is high"}
"""


@pytest.fixture
def prometheus_to(tmp_path: Path) -> Iterator[Callable[[str, list[str]], str]]:
    with contextlib.ExitStack() as stack:
        def start(target: str, alertmanagers: list[str]) -> str:
            return stack.enter_context(prometheus_alerting(target, alertmanagers, RULES, tmp_path, job="test")).url

        yield start


def test_prometheus_alerts_two_replicas_one_notification_each_way(
        replicas: ReplicaFactory, receiver: Receiver, prometheus_to: Any) -> None:
    r1 = replicas("r1", group_wait="2s", group_interval="3s")
    r2 = replicas("r2", group_wait="2s", group_interval="3s")
    with contextlib.closing(Target()) as target:
        target.values = {"a": 1.0, "b": 1.0, "c": 0.0}
        prometheus_to(target.address, [r1.url.removeprefix("http://"), r2.url.removeprefix("http://")])
        groups = receiver.wait_groups(1, timeout=40)
        assert sorted(groups) == ['{}:{alertname="ValueHigh"}']  # one group: group_by [alertname]
        for r in (r1, r2):  # Prometheus sent to both replicas
            got = r.request("GET", "/api/v2/alerts?filter=alertname=ValueHigh")
            assert sorted(a["labels"]["shard"] for a in got) == ["a", "b"]
            assert all(a["annotations"]["summary"].startswith("shard ") for a in got)
        target.values = {"a": 0.0, "b": 0.0, "c": 0.0}  # the rule stops firing: Prometheus sends resolved
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and not any(n["status"] == "resolved" for n in receiver.notifications):
            time.sleep(0.2)
        time.sleep(8)  # several group intervals on both replicas: any duplicate would be here by now
        notes = receiver.notifications
        assert [n["status"] for n in notes] == ["firing", "resolved"]
        assert [sorted(a["labels"]["shard"] for a in n["alerts"]) for n in notes] == [["a", "b"], ["a", "b"]]
        last = notes[-1]
        assert last["version"] == "4" and all(a["status"] == "resolved" for a in last["alerts"])
        assert last["alerts"][0]["generatorURL"].startswith("http://")
        assert last["commonLabels"] == {"alertname": "ValueHigh", "job": "test",
                                        "instance": target.address, "severity": "page"}


def amtool(url: str, *args: str) -> str:
    p = subprocess.run(["amtool", f"--alertmanager.url={url}", *args], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, f"amtool {' '.join(args)}: {p.stderr}"
    assert "version" not in p.stderr.lower(), p.stderr  # amtool's version check found nothing to warn about
    return p.stdout


def test_amtool_silence_mutes_and_expiring_it_restores(replicas: ReplicaFactory,
                                                      receiver: Receiver) -> None:
    if shutil.which("amtool") is None:
        pytest.fail("amtool not installed (apt-get install prometheus-alertmanager)")
    r1 = replicas("r1", group_wait="1s", group_interval="2s")
    r2 = replicas("r2", group_wait="1s", group_interval="2s")
    sid = amtool(r1.url, "silence", "add", "alertname=Muted", "--comment=maintenance", "--author=test",
                 "--duration=1h").strip()
    assert len(sid) == 36
    deadline = time.monotonic() + 10
    while sid not in amtool(r2.url, "silence", "query", "-q") and time.monotonic() < deadline:
        time.sleep(0.1)  # replicated through Kafka
    assert sid in amtool(r2.url, "silence", "query", "-q")
    for r in (r1, r2):
        amtool(r.url, "alert", "add", "alertname=Muted", "instance=x", "--annotation=summary=quiet")
        amtool(r.url, "alert", "add", "alertname=Loud", "instance=x")
    receiver.wait_groups(1, timeout=20)
    time.sleep(4)  # two group intervals: the silenced group stays quiet
    assert sorted(receiver.by_group()) == ['{}:{alertname="Loud"}']
    assert "Muted" not in amtool(r1.url, "alert", "query")  # silenced alerts are hidden by default
    assert "Muted" in amtool(r1.url, "alert", "query", "--silenced")
    assert "Loud" in amtool(r2.url, "alert", "query", "alertname=Loud")
    amtool(r2.url, "silence", "expire", sid)  # on the other replica
    receiver.wait_groups(2, timeout=20)
    time.sleep(4)
    by = receiver.by_group()
    assert {k: len(v) for k, v in by.items()} == {'{}:{alertname="Loud"}': 1, '{}:{alertname="Muted"}': 1}
    assert by['{}:{alertname="Muted"}'][0]["commonAnnotations"] == {"summary": "quiet"}
    assert "Cluster Status:  ready" in amtool(r1.url, "cluster", "show")
    assert "receiver: hook" in amtool(r1.url, "config", "show")
