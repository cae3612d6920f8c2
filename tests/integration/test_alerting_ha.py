"""HA with real processes and a real Kafka (noida-db): two `hostwatch alerting` replicas that share only
a topic. Failover (SIGKILL mid-way), a receiver outage while the owner of the retries is killed
(Alertmanager #3865/#4108), replicas that never talk to each other, and a restart that keeps silences.

The helpers here (Replica, Receiver, noida fixture) are shared with test_alerting_prometheus.py."""

from __future__ import annotations

import http.server
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from localhttp import LocalHTTPServer

from peers import NoidaDB, free_port, stop_process, wait_http

CONFIG = """
route:
  receiver: hook
  group_by: [alertname]
  group_wait: {group_wait}
  group_interval: {group_interval}
  repeat_interval: 4h
receivers:
  - name: hook
    webhook_configs: [{{url: "{url}"}}]
"""


class Receiver:
    """A webhook receiver: records every delivered notification; `status` is what it answers (503: down,
    recording nothing)."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        self.attempts = 0
        self.status = 200
        self.lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.attempts += 1
                    status = receiver.status
                    if status == 200:
                        receiver.notifications.append(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = LocalHTTPServer(Handler)
        self.url = f"http://127.0.0.1:{self.server.port}/hook"

    def by_group(self) -> dict[str, list[dict[str, Any]]]:
        with self.lock:
            out: dict[str, list[dict[str, Any]]] = {}
            for n in self.notifications:
                out.setdefault(n["groupKey"], []).append(n)
            return out

    def wait_groups(self, n: int, timeout: float) -> dict[str, list[dict[str, Any]]]:
        deadline = time.monotonic() + timeout
        while len(self.by_group()) < n and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.by_group()

    def close(self) -> None:
        self.server.close()


class Replica:
    """`python -m alerting alerting` (what `hostwatch alerting` runs; `command=("hostwatch", "alerting")` runs
    that) on a free port, stopped by PID."""

    def __init__(self, workdir: Path, name: str, config: Path, brokers: str, topic: str,
                 peer_timeout: str = "2s", command: tuple[str, ...] = ("alerting", "alerting")) -> None:
        self.workdir, self.name, self.config, self.brokers, self.topic = workdir, name, config, brokers, topic
        self.peer_timeout, self.command = peer_timeout, command
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Replica:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", *self.command, f"--config.file={self.config}",
                 f"--web.listen-address=127.0.0.1:{self.port}", f"--kafka.brokers={self.brokers}",
                 f"--kafka.topic={self.topic}", f"--cluster.peer-timeout={self.peer_timeout}",
                 f"--cluster.replica-id={self.name}"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_http(self.url + "/-/ready", self.proc, self.name, self.log_tail, timeout=40)
        return self

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def post_alerts(self, alerts: list[dict[str, Any]]) -> None:
        for i in range(0, len(alerts), 100):
            self.request("POST", "/api/v2/alerts", alerts[i:i + 100])


@pytest.fixture(scope="module")
def noida(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NoidaDB]:
    with NoidaDB(tmp_path_factory.mktemp("noida") / "data") as db:
        yield db


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


ReplicaFactory = Callable[..., Replica]


@pytest.fixture
def replicas(tmp_path: Path, noida: NoidaDB, receiver: Receiver) -> Iterator[ReplicaFactory]:
    """replicas(name, group_wait=..., group_interval=...) -> a started Replica on this test's own topic."""
    topic = f"hostwatch-alerting-{secrets.token_hex(4)}"
    started: list[Replica] = []

    def make(name: str, group_wait: str = "2s", group_interval: str = "1m", peer_timeout: str = "2s") -> Replica:
        cfg = tmp_path / f"am-{name}.yml"
        cfg.write_text(CONFIG.format(group_wait=group_wait, group_interval=group_interval, url=receiver.url))
        r = Replica(tmp_path, name, cfg, noida.bootstrap, topic, peer_timeout)
        started.append(r)
        return r.start()

    yield make
    for r in started:
        r.stop()


def alert(name: str, valid_for: float = 600, **labels: str) -> dict[str, Any]:
    now = time.time()
    return {"labels": {"alertname": name, **labels},
            "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
            "endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + valid_for))}


def exactly_once(by_group: dict[str, list[dict[str, Any]]], n: int) -> None:
    counts = {k: len(v) for k, v in by_group.items()}
    assert len(counts) == n, f"{n - len(counts)} groups missed"
    dups = {k: c for k, c in counts.items() if c != 1}
    assert not dups, f"groups notified more than once: {dups}"


def test_failover_every_group_exactly_once(replicas: ReplicaFactory, receiver: Receiver) -> None:
    r1, r2 = replicas("r1", group_wait="3s"), replicas("r2", group_wait="3s")
    alerts = [alert(f"Group{i:03d}") for i in range(200)]
    for r in (r1, r2):
        r.post_alerts(alerts[:100])
    r1.kill()  # SIGKILL mid-way
    r2.post_alerts(alerts[100:])
    by = receiver.wait_groups(200, timeout=40)
    time.sleep(4)  # two leases: any late duplicate would be here by now
    exactly_once(receiver.by_group(), 200)
    assert len(by) == 200


def test_retries_during_an_outage_deliver_once_even_when_the_owner_is_killed(
        replicas: ReplicaFactory, receiver: Receiver) -> None:
    receiver.status = 503  # the receiver is down: Alertmanager HA pairs deliver twice when it recovers
    r1, r2 = replicas("r1", group_wait="1s"), replicas("r2", group_wait="1s")
    alerts = [alert(f"Outage{i:02d}") for i in range(30)]
    for r in (r1, r2):
        r.post_alerts(alerts)
    deadline = time.monotonic() + 20
    while receiver.attempts < 60 and time.monotonic() < deadline:
        time.sleep(0.1)  # both replicas alive, retries going on
    assert receiver.attempts >= 60 and receiver.notifications == []
    r1.kill()
    time.sleep(3)  # r1's claims go quiet; r2 takes them over after the lease (2 s)
    receiver.status = 200
    receiver.wait_groups(30, timeout=40)
    time.sleep(4)
    exactly_once(receiver.by_group(), 30)


def test_replicas_that_never_talk_to_each_other_still_notify_once(replicas: ReplicaFactory,
                                                                  receiver: Receiver) -> None:
    # There is no replica-to-replica channel at all (no --cluster.peer): a partition between them changes
    # nothing while both reach Kafka. Unaligned receipt (1.5 s apart) is Alertmanager's #4008 case.
    r1, r2 = replicas("r1", group_wait="2s"), replicas("r2", group_wait="2s")
    alerts = [alert(f"Part{i:02d}") for i in range(40)]
    r1.post_alerts(alerts)
    time.sleep(1.5)
    r2.post_alerts(alerts)
    receiver.wait_groups(40, timeout=30)
    time.sleep(4)
    exactly_once(receiver.by_group(), 40)
    status = r2.request("GET", "/api/v2/status")
    assert status["cluster"]["status"] == "ready"
    assert sorted(p["name"] for p in status["cluster"]["peers"]) == ["r1", "r2"]


def test_a_restarted_replica_keeps_silences_and_does_not_notify_again(replicas: ReplicaFactory,
                                                                      receiver: Receiver) -> None:
    r1 = replicas("r1", group_wait="1s", group_interval="2s")
    sil = {"matchers": [{"name": "alertname", "value": "Muted", "isRegex": False, "isEqual": True}],
           "startsAt": "2020-01-01T00:00:00Z", "endsAt": "2999-01-01T00:00:00Z", "createdBy": "test",
           "comment": "kept across restarts"}
    sid = r1.request("POST", "/api/v2/silences", sil)["silenceID"]
    r1.post_alerts([alert("Loud"), alert("Muted")])
    receiver.wait_groups(1, timeout=15)
    r1.kill()
    again = replicas("r1-again", group_wait="1s", group_interval="2s")
    assert again.request("GET", f"/api/v2/silence/{sid}")["comment"] == "kept across restarts"
    assert sorted(a["labels"]["alertname"] for a in again.request("GET", "/api/v2/alerts")) == ["Loud", "Muted"]
    time.sleep(5)  # several group intervals: the notification log came back too
    assert [(k, len(v)) for k, v in receiver.by_group().items()] == [('{}:{alertname="Loud"}', 1)]
