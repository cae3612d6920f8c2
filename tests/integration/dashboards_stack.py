"""A running agent with everything its dashboards show, for the dashboard and rule tests:

- `hostwatch up` (exporter, shipper, indexer, demo workloads) on free ports, with a one-event GELF
  UDP queue so a burst really drops events, against a noida-db (Kafka + Elasticsearch) started first
  with the shipper's topic already created (an indexer subscribed before the topic exists may wait
  minutes for librdkafka's next metadata refresh);
- runtime workloads that make the container panels and rules real: a CPU-throttled burner, one near
  its memory limit, one whose children the OOM killer ends, one on the bridge network doing I/O;
- two alerting replicas sharing the embedded Kafka, notifying a webhook receiver here and a dead one;
- traffic, all along: GELF bursts (some dropped), malformed GELF (rejected), forward-protocol events, a
  non-JSON and a mapping-conflict record in the shipper's topic (dead letters);
- Debian's Prometheus scraping the agent and the replicas every second, with the compose stack's alert
  rules loaded and the replicas as its alertmanagers.

Every process is started by PID and stopped by PID.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from localhttp import LocalHTTPServer

from dashboards.sources import Prometheus

from hostwatch_cli import HW
from peers import NoidaDB, free_port, stop_process, wait_http

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "compose" / "prometheus" / "rules" / "hostwatch.rules.yml"
SCRAPE_INTERVAL = 1.0
READY_TIMEOUT = 90.0
TRAFFIC_EVERY = 4.0
GELF_BURST = 150  # datagrams at once: far more than the one-event UDP queue holds
FORWARD_EVENTS = 5
BAD_RECORDS_EVERY = 4  # rounds
TOPIC = "hostwatch-logs"
GATEWAY = "10.88.0.1"  # the bridge's address (the runtime keeps the subnet's first host for it)

BURN = "while True: pass"
# Holds 95 % of its limit in anonymous memory (what the cgroup is charged for), then sleeps.
FILL = ("import sys,time\nlimit=int(sys.argv[1])<<20\n"
        "anon=int([l.split()[1] for l in open('/proc/self/status') if l.startswith('RssAnon')][0])*1024\n"
        "blob=b'x'*max(0,int(limit*0.95)-anon)\nprint('holding',len(blob)>>20,'MiB',flush=True)\n"
        "while True: time.sleep(1)")
OOM = "while true; do python3 -c \"b=b'x'*(96<<20)\"; echo killed; sleep 2; done"
NET_IO = (f"while true; do ping -c 3 -i 0.2 {GATEWAY} >/dev/null 2>&1; echo tick; "
          "dd if=/dev/zero of=/tmp/io bs=64k count=8 conv=fsync 2>/dev/null; sleep 1; done")

ALERTING_CONFIG = """route:
  receiver: team
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 10s
receivers:
  - name: team
    webhook_configs:
      - url: {ok}
      - url: {dead}
"""


class Webhook:
    """Accepts Alertmanager webhook posts and counts them."""

    def __init__(self) -> None:
        self.posts: list[dict[str, object]] = []
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hook.posts.append(json.loads(body or b"{}"))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = LocalHTTPServer(Handler)
        self.url = f"http://127.0.0.1:{self.server.port}/hook"

    def close(self) -> None:
        self.server.close()


@dataclass
class Stack:
    workdir: Path
    prometheus: Prometheus
    agent: str  # host:port of the agent's /metrics
    replicas: list[str]
    es_url: str
    kafka: str
    hw: HW
    webhook: Webhook
    traffic: Traffic
    started: float  # when Prometheus began scraping
    logs: dict[str, Path] = field(default_factory=dict)

    def log_tail(self, name: str, chars: int = 3000) -> str:
        try:
            return self.logs[name].read_text(errors="replace")[-chars:]
        except OSError:
            return f"(no log {name})"


class Processes:
    """Popen'd processes with their logs; stopped by PID, last started first."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.logs: dict[str, Path] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = self.workdir / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        self.procs.append((name, proc))
        self.logs[name] = log
        return proc

    def tail(self, name: str) -> str:
        return self.logs[name].read_text(errors="replace")[-3000:]

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        for n, proc in self.procs:
            if n == name and proc.poll() is None:
                os.kill(proc.pid, sig)
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait()

    def close(self) -> None:
        for _, proc in reversed(self.procs):
            stop_process(proc)


def wait_until(what: str, done: Callable[[], bool], timeout: float, tail: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen within {timeout:.0f} s: {tail()}")
        time.sleep(0.5)


def _prometheus_config(workdir: Path, agent: str, replicas: list[str]) -> Path:
    rules = workdir / "rules.yml"
    shutil.copy(RULES, rules)
    config = workdir / "prometheus.yml"
    config.write_text(
        f"global:\n  scrape_interval: {SCRAPE_INTERVAL:g}s\n  evaluation_interval: {SCRAPE_INTERVAL:g}s\n"
        f"rule_files: [{json.dumps(str(rules))}]\n"
        f"alerting:\n  alertmanagers:\n    - api_version: v2\n      static_configs:\n"
        f"        - targets: {json.dumps(replicas)}\n"
        f"scrape_configs:\n"
        f"  - job_name: hostwatch\n    static_configs:\n      - targets: {json.dumps([agent])}\n"
        f"  - job_name: hostwatch-alerting\n    static_configs:\n      - targets: {json.dumps(replicas)}\n")
    return config


def _create_topic(bootstrap: str) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the futures resolve
    for f in admin.create_topics([NewTopic(TOPIC, 1, 1)]).values():
        f.result(30)


def _send_gelf(port: int, burst: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i in range(burst):
            msg = {"version": "1.1", "host": "dashboards-test", "short_message": f"gelf burst {i}",
                   "_container_name": "gelf-client"}
            s.sendto(json.dumps(msg).encode(), ("127.0.0.1", port))
        for _ in range(3):
            s.sendto(b"this is not GELF", ("127.0.0.1", port))


def _send_forward(port: int, n: int) -> None:
    from fluent import sender

    logger = sender.FluentSender("dashboards", host="127.0.0.1", port=port)
    try:
        for i in range(n):
            logger.emit("test", {"log": f"forward line {i}", "container_name": "forward-client"})
    finally:
        logger.close()


def _bad_records(bootstrap: str) -> None:
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap})
    p.produce(TOPIC, b"this record is not JSON")
    conflict = {"@timestamp": "not a date at all", "message": "mapping conflict",
                "event": {"id": f"dashboards-bad-{time.time_ns()}"}}
    p.produce(TOPIC, json.dumps(conflict).encode())
    if p.flush(30):
        raise RuntimeError("could not produce the bad records to Kafka")


class Traffic:
    """Log traffic every few seconds until closed, so rates and increases stay non-zero."""

    def __init__(self, gelf_port: int, forward_port: int, bootstrap: str, every: float = TRAFFIC_EVERY) -> None:
        self._stop = threading.Event()
        self.rounds = 0
        self.errors: list[str] = []

        def loop() -> None:
            while not self._stop.is_set():
                try:
                    _send_gelf(gelf_port, GELF_BURST)
                    _send_forward(forward_port, FORWARD_EVENTS)
                    if self.rounds % BAD_RECORDS_EVERY == 0:
                        _bad_records(bootstrap)
                except Exception as e:  # noqa: BLE001 - kept for the failure message; traffic goes on
                    self.errors.append(repr(e))
                self.rounds += 1
                self._stop.wait(every)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(60)


@contextlib.contextmanager
def running_stack(workdir: Path) -> Iterator[Stack]:
    if os.geteuid() != 0:
        pytest.fail("the dashboards integration test needs root (the runtime's workloads)")
    procs = Processes(workdir)
    data = workdir / "data"
    hw = HW(data / "containers")
    webhook = Webhook()
    ports = {k: free_port() for k in ("agent", "forward", "gelf", "a1", "a2", "dead")}
    agent = f"127.0.0.1:{ports['agent']}"
    noida = NoidaDB(workdir / "noida")
    traffic: Traffic | None = None
    try:
        noida.start()
        kafka = noida.bootstrap
        _create_topic(kafka)
        up = procs.start("up", [sys.executable, "-m", "hostwatch", "up", "--data-dir", str(data),
                                "--web.listen-address", agent, "--kafka.brokers", kafka,
                                "--elasticsearch.hosts", noida.es_url,
                                "--forward.listen-address", f"127.0.0.1:{ports['forward']}",
                                "--gelf.listen-address", f"127.0.0.1:{ports['gelf']}",
                                "--gelf.udp-queue-events", "1"])
        wait_until("hostwatch up", lambda: "Ctrl-C" in procs.tail("up") or up.poll() is not None, READY_TIMEOUT,
                   lambda: procs.tail("up"))
        if up.poll() is not None:
            pytest.fail(f"hostwatch up exited: {procs.tail('up')}")
        busybox = str(data / "images" / "busybox")
        for args in (["--name", "throttled", "--cpus", "0.1", "--memory", "64m", "--", sys.executable, "-c", BURN],
                     ["--name", "full", "--cpus", "0.2", "--memory", "64m", "--", sys.executable, "-c", FILL, "64"],
                     ["--name", "oomer", "--cpus", "0.5", "--memory", "32m", "--", "sh", "-c", OOM],
                     ["--name", "web", "--cpus", "0.3", "--memory", "64m", "--net", "bridge", "--rootfs", busybox,
                      "--", "sh", "-c", NET_IO]):
            hw("run", "-d", *args, check=True)
        am_config = workdir / "alerting.yml"
        am_config.write_text(ALERTING_CONFIG.format(ok=webhook.url, dead=f"http://127.0.0.1:{ports['dead']}/hook"))
        replicas = []
        for key in ("a1", "a2"):
            addr = f"127.0.0.1:{ports[key]}"
            replicas.append(addr)
            proc = procs.start(f"alerting-{key}", [
                sys.executable, "-m", "alerting", "alerting", "--web.listen-address", addr,
                "--config.file", str(am_config), "--kafka.brokers", kafka, "--cluster.replica-id", key,
                "--cluster.peer-timeout", "4s"])
            wait_http(f"http://{addr}/-/healthy", proc, f"alerting replica {key}",
                      lambda k=key: procs.tail(f"alerting-{k}"), timeout=60)
        config = _prometheus_config(workdir, agent, replicas)
        prom_port = free_port()
        prom = procs.start("prometheus", ["prometheus", f"--config.file={config}",
                                          f"--storage.tsdb.path={workdir / 'tsdb'}",
                                          f"--web.listen-address=127.0.0.1:{prom_port}"])
        prom_url = f"http://127.0.0.1:{prom_port}"
        wait_http(prom_url + "/-/ready", prom, "prometheus", lambda: procs.tail("prometheus"))
        started = time.time()
        traffic = Traffic(ports["gelf"], ports["forward"], kafka)
        stack = Stack(workdir, Prometheus(prom_url), agent, replicas, noida.es_url, kafka, hw, webhook, traffic,
                      started, procs.logs)
        yield stack
    finally:
        if traffic is not None:
            traffic.close()
        procs.stop("prometheus")
        for key in ("a1", "a2"):
            procs.stop(f"alerting-{key}")
        hw.cleanup()
        procs.stop("up", signal.SIGINT)
        procs.close()
        noida.stop()
        webhook.close()
