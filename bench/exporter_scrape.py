"""Scrape cost of `hostwatch exporter` (default flags: every default-on cAdvisor kind) on this host's
real cgroup v1 hierarchy (root only).

For N = 100, 1000, 5000 hand-made cgroups, each with one sleeping process, prints: scrape latency
p50/p99 (over HTTP, Prometheus 2.42's Accept header, gzip), exporter CPU seconds per scrape and per
series, series count, files kept open, RSS and its peak, the exporter's idle CPU between scrapes;
and next to them, from the same run: the open/read/close floor (a tight os.open/os.read/os.close loop
over exactly the files one scrape read, recorded by wrapping exporter.readers.fsread and
FdCache.read, in this same Python: the cost of reading those files without the kept descriptors), and
Debian's node_exporter 1.5 CPU per series. Then what two concurrent scrapers cost: one collection.
Prints figures; asserts nothing.

    python bench/exporter_scrape.py [--sizes 100,1000,5000] [--scrapes 20]
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import os
import resource
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from exporter.config import ExporterConfig  # noqa: E402
from exporter.readers import fsread  # noqa: E402
from exporter.readers.fdcache import FdCache  # noqa: E402
from exporter.scrape import Exporter  # noqa: E402
from exporter.testing import CgroupSandbox  # noqa: E402

ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
          "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def nofile_limits(pid: int) -> str:
    """The process's RLIMIT_NOFILE as "soft/hard" (what caps the files it can keep open)."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return f"{soft}/{hard}"
    return "?"


def rss_mb(pid: int) -> tuple[float, float]:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def scrape(url: str) -> tuple[float, int]:
    req = urllib.request.Request(url, headers={"Accept": ACCEPT, "Accept-Encoding": "gzip"})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=60) as r:
        body = r.read()
        if r.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
    dt = time.perf_counter() - t
    series = sum(1 for line in body.split(b"\n") if line and not line.startswith(b"#"))
    return dt, series


def wait_http(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{proc.args!r} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{url} never answered")


def measure(url: str, pid: int, scrapes: int) -> dict[str, float]:
    scrape(url)  # warm-up: first sight of new cgroups fills the name/label caches
    lat = []
    c0 = cpu_seconds(pid)
    series = 0
    for _ in range(scrapes):
        dt, series = scrape(url)
        lat.append(dt)
    cpu = (cpu_seconds(pid) - c0) / scrapes
    lat.sort()
    return {
        "p50": statistics.median(lat),
        "p99": lat[min(len(lat) - 1, int(round(0.99 * (len(lat) - 1))))],
        "cpu": cpu,
        "series": series,
        "us_per_series": cpu / series * 1e6 if series else 0.0,
    }


# The fsread functions every scrape's file operations go through, and the op each records; the
# files kept open (FdCache.read: a pread) are recorded as reads too: the floor opens, reads and
# closes each of them, as an exporter without kept files would.
_TRACED = {"read_bytes": "read", "listdir": "listdir", "readlink": "readlink", "scandir": "scandir"}


@contextlib.contextmanager
def traced_reads(files: FdCache) -> Iterator[list[tuple[str, str]]]:
    """Record (op, path) for every file operation the exporter's readers make meanwhile (`files`: the
    exporter's kept files, whose reads are recorded as reads)."""
    ops: list[tuple[str, str]] = []
    originals = {name: getattr(fsread, name) for name in _TRACED}
    cached_read = files.read

    def recording(op: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(path: str, *args: Any, **kwargs: Any) -> Any:
            ops.append((op, path))
            return fn(path, *args, **kwargs)
        return wrapper

    def recording_cached(owner: str, path: str) -> bytes:
        ops.append(("read", path))
        return cached_read(owner, path)

    fd_counts = fsread.fd_counts

    def recording_fd_counts(path: str) -> tuple[int, int]:  # what it does: a listing, a readlink per entry
        ops.append(("listdir", path))
        ops.extend(("readlink", f"{path}/{name}") for name in os.listdir(path))
        return fd_counts(path)

    for name, op in _TRACED.items():
        setattr(fsread, name, recording(op, originals[name]))
    files.read = recording_cached  # type: ignore[assignment]
    fsread.fd_counts = recording_fd_counts
    try:
        yield ops
    finally:
        for name, fn in originals.items():
            setattr(fsread, name, fn)
        files.read = cached_read
        fsread.fd_counts = fd_counts


def replay(ops: list[tuple[str, str]]) -> int:
    """Perform the recorded operations as fast as Python can (the raw-read floor). Returns failures."""
    failures = 0
    flags = os.O_RDONLY | os.O_CLOEXEC
    for op, path in ops:
        try:
            if op == "read":
                fd = os.open(path, flags)
                os.read(fd, 65536)
                os.close(fd)
            elif op == "listdir":
                os.listdir(path)
            elif op == "readlink":
                os.readlink(path)
            elif op == "scandir":
                with os.scandir(path) as it:
                    for _ in it:
                        pass
        except OSError:
            failures += 1
    return failures


def raw_floor(scrapes: int, state_root: Path, docker_root: Path) -> tuple[float, int]:
    """CPU seconds per scrape of replaying exactly one steady-state scrape's file operations with
    open/read/close (an exporter of the same config, in this process, records them)."""
    exp = Exporter(ExporterConfig(state_root=state_root, docker_root=docker_root, self_process_metrics=False))
    try:
        exp.collect()
        files = exp.reader.files  # type: ignore[attr-defined]
        with traced_reads(files) as ops:
            exp.collect()
    finally:
        exp.close()
    replay(ops)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(scrapes):
        replay(ops)
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime) / scrapes
    return cpu, len(ops)


def metrics(url: str, *names: str) -> list[float]:
    """Values of the unlabelled series `names`, from one scrape."""
    req = urllib.request.Request(url, headers={"Accept": ACCEPT, "Accept-Encoding": "gzip"})  # as Prometheus asks
    with urllib.request.urlopen(req, timeout=60) as r:
        body = r.read()
        text = (gzip.decompress(body) if r.headers.get("Content-Encoding") == "gzip" else body).decode()
    values = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        values[name] = value
    return [float(values.get(n, "nan")) for n in names]


def concurrent_cost(url: str) -> tuple[float, float]:
    """(collections run, scrapes served) for two scrapes sent at once, as an HA pair of Prometheus
    servers sends them."""
    counters = ("hostwatch_exporter_collections_total", "hostwatch_exporter_scrapes_total")
    before = metrics(url, *counters)
    threads = [threading.Thread(target=scrape, args=(url,)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    after = metrics(url, *counters)
    # the scrape reading `after` counts itself (and its own collection)
    return after[0] - before[0] - 1, after[1] - before[1] - 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,1000,5000")
    ap.add_argument("--scrapes", type=int, default=20)
    ap.add_argument("--idle-seconds", type=float, default=5.0)
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root (creates cgroups under /sys/fs/cgroup)")
    sizes = [int(x) for x in args.sizes.split(",")]
    node_bin = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    logdir = Path(tempfile.mkdtemp(prefix="hostwatch-bench-"))
    state, docker = logdir / "state", logdir / "docker"
    procs: list[subprocess.Popen[bytes]] = []
    sb = CgroupSandbox(prefix="hostwatch-bench")
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (figures are CPU time, "
          "which contention inflates less than latency)", flush=True)
    try:
        port = free_port()
        exp = subprocess.Popen(
            [sys.executable, "-m", "exporter", "exporter", f"--web.listen-address=127.0.0.1:{port}",
             "--state-root", str(state), "--docker-root", str(docker)],
            cwd=REPO, stdout=open(logdir / "exporter.log", "wb"), stderr=subprocess.STDOUT)
        procs.append(exp)
        url = f"http://127.0.0.1:{port}/metrics"
        wait_http(url, exp)
        node_url = None
        if node_bin:
            nport = free_port()
            node = subprocess.Popen([node_bin, f"--web.listen-address=127.0.0.1:{nport}"],
                                    stdout=open(logdir / "node.log", "wb"), stderr=subprocess.STDOUT)
            procs.append(node)
            node_url = f"http://127.0.0.1:{nport}/metrics"
            wait_http(node_url, node)
        made = 0
        per_series = []
        for n in sizes:
            while made < n:
                cg = sb.make(f"c{made:05d}")
                sb.spawn(cg, ["sleep", "3600"])
                made += 1
            time.sleep(1.0)
            m = measure(url, exp.pid, args.scrapes)
            [files] = metrics(url, "hostwatch_exporter_open_files")
            c0 = cpu_seconds(exp.pid)
            time.sleep(args.idle_seconds)
            idle = (cpu_seconds(exp.pid) - c0) / args.idle_seconds * 100
            rss, hwm = rss_mb(exp.pid)
            nm = measure(node_url, procs[1].pid, args.scrapes) if node_url else None
            floor, ops = raw_floor(args.scrapes, state, docker)
            per_series.append(m["us_per_series"])
            node_txt = (f"node_exporter {nm['us_per_series']:.2f} us/series ({nm['series']:.0f} series, "
                        f"{nm['cpu'] * 1e3:.1f} ms CPU/scrape)") if nm else "node_exporter: not installed"
            print(f"N={n:5d}  p50 {m['p50'] * 1e3:7.1f} ms  p99 {m['p99'] * 1e3:7.1f} ms  "
                  f"CPU {m['cpu'] * 1e3:.1f} ms/scrape  {m['us_per_series']:.2f} us/series  series {m['series']:.0f}  "
                  f"files kept open {files:.0f} (RLIMIT_NOFILE {nofile_limits(exp.pid)})  "
                  f"RSS {rss:.1f} MB (peak {hwm:.1f})  idle CPU {idle:.2f}%", flush=True)
            ratio_floor = m["cpu"] / floor if floor else float("nan")
            ratio_node = m["us_per_series"] / nm["us_per_series"] if nm and nm["us_per_series"] else float("nan")
            print(f"         open/read/close floor {floor * 1e3:.1f} ms CPU/scrape ({ops} file ops); exporter/floor "
                  f"{ratio_floor:.2f}x", flush=True)
            print(f"         {node_txt}; exporter/node_exporter per series {ratio_node:.2f}x", flush=True)
        collections, served = concurrent_cost(url)
        print(f"two concurrent scrapes: {served:.0f} served, {collections:.0f} collection(s) run", flush=True)
        if len(per_series) > 1:
            print(f"cost per series from N={sizes[0]} to N={sizes[-1]}: "
                  + " -> ".join(f"{v:.2f}" for v in per_series) + " us", flush=True)
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.kill(p.pid, signal.SIGKILL)
                    p.wait()
        sb.close()
        shutil.rmtree(logdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
