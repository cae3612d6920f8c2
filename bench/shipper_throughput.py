"""1,000,000 json-file lines -> Kafka: hostwatch ship next to rsyslog (imfile -> omkafka), same file,
same broker (noida-db), same run. Prints lines/s end to end, CPU microseconds per line and peak RSS.

    .venv/bin/python bench/shipper_throughput.py [--lines 1000000] [--only hostwatch|rsyslog] [--repeat N]
        [--flag=--kafka.linger-ms=20 ...]

CPU per line is the process's whole CPU (every thread) from its start until Kafka holds every line;
"net" leaves out what it used until its first line was in Kafka (start-up: imports, connecting), over
the lines after it; "librdkafka" is the part of CPU per line in the Kafka client's own threads. On a
shared machine figures move from run to run: --repeat alternates the two N times (fresh topics and
state) and prints the medians.

Needs Debian's rsyslog and rsyslog-kafka (scripts/setup.sh --test installs them). Debian's librdkafka
2.0.2 fails against some brokers, so rsyslog runs with the librdkafka bundled in the confluent-kafka
wheel first on its library path. The clock stops when the topic's end offsets reach the line count.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import confluent_kafka
from confluent_kafka import Consumer, TopicPartition

ROOT = Path(__file__).resolve().parent.parent
CID = "b" * 64


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def write_log(path: Path, n: int) -> int:
    """Docker json-file lines, ~120 bytes each, with nanosecond times."""
    path.parent.mkdir(parents=True, exist_ok=True)
    base = 1796112000
    with open(path, "w") as f:
        chunk = []
        for i in range(n):
            sec, ns = divmod(i * 1000, 1_000_000_000)
            t = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(base + sec))
            chunk.append(f'{{"log":"GET /api/items/{i} 200 {i % 997}ms user=u{i % 50} n={i:07d}\\n",'
                         f'"stream":"stdout","time":"{t}.{ns:09d}Z"}}\n')
            if len(chunk) == 10000:
                f.write("".join(chunk))
                chunk.clear()
        f.write("".join(chunk))
    return path.stat().st_size


def topic_count(c: Consumer, topic: str) -> int:
    md = c.list_topics(topic, timeout=5)
    t = md.topics.get(topic)
    if t is None or t.error is not None:
        return 0
    total = 0
    for p in t.partitions:
        lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=5, cached=False)
        total += hi - lo
    return total


def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick  # utime + stime, all threads


def librdkafka_cpu(pid: int) -> float:
    """CPU seconds of the process's librdkafka threads (named rdk:...), the Kafka client's own work."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                if not f.read().startswith("rdk:"):
                    continue
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def measure(name: str, cmd: list[str], bootstrap: str, topic: str, n: int, env: dict[str, str] | None = None,
            log: Path | None = None, timeout: float = 300.0) -> dict[str, float]:
    out = open(log, "wb") if log else subprocess.DEVNULL
    counter = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-count", "enable.auto.commit": False})
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        count, cpu, rss = 0, 0.0, 0.0
        first: tuple[int, float] | None = None  # lines and CPU when the first lines were in Kafka
        while time.monotonic() - t0 < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited {proc.returncode}; see {log}")
            count = topic_count(counter, topic)
            cpu, rss = proc_cpu(proc.pid), peak_rss_mb(proc.pid)
            if count and first is None:
                first = (count, cpu)
            if count >= n:
                break
            time.sleep(0.05)
        elapsed = time.monotonic() - t0
        if first is None:
            raise RuntimeError(f"{name}: no line in Kafka after {timeout:g} s; see {log}")
        if count < n:  # a shipper that lost lines: its figures over what it delivered, and said so
            print(f"!! {name}: only {count} of {n} lines in Kafka after {timeout:g} s", flush=True)
        net = (cpu - first[1]) / max(count - first[0], 1) * 1e6
        return {"seconds": elapsed, "lines_per_s": count / elapsed, "cpu_us_per_line": cpu / count * 1e6,
                "net_us_per_line": net, "rdkafka_us_per_line": librdkafka_cpu(proc.pid) / count * 1e6,
                "startup_cpu_s": first[1], "rss_mb": rss, "lines": count}
    finally:
        counter.close()
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        if log:
            out.close()  # type: ignore[union-attr]


RSYSLOG_CONF = """
global(workDirectory="{work}")
module(load="imfile" mode="inotify")
module(load="omkafka")
template(name="raw" type="string" string="%msg%")
input(type="imfile" File="{file}" Tag="bench" readMode="0" freshStartTail="off" MaxLinesAtOnce="0")
action(type="omkafka" broker=["{bootstrap}"] topic="{topic}" template="raw" partitions.auto="on"
       confParam=["compression.codec=lz4", "request.required.acks=-1", "queue.buffering.max.ms=5"])
"""


def rsyslog_env(work: Path) -> dict[str, str]:
    """librdkafka from the confluent-kafka wheel under the soname rsyslog's omkafka links."""
    libs = Path(confluent_kafka.__file__).parent.parent / "confluent_kafka.libs"
    found = glob.glob(str(libs / "librdkafka-*.so.1"))
    env = dict(os.environ)
    if found:
        d = work / "lib"
        d.mkdir(exist_ok=True)
        link = d / "librdkafka.so.1"
        if not link.exists():
            link.symlink_to(found[0])
        for dep in libs.iterdir():
            if not (d / dep.name).exists():
                (d / dep.name).symlink_to(dep)
        env["LD_LIBRARY_PATH"] = str(d)
    return env


COLUMNS = (("lines/s", "lines_per_s", ".0f"), ("CPU us/line", "cpu_us_per_line", ".2f"),
           ("net us/line", "net_us_per_line", ".2f"), ("librdkafka", "rdkafka_us_per_line", ".2f"),
           ("start CPU s", "startup_cpu_s", ".2f"),
           ("peak RSS MB", "rss_mb", ".1f"), ("seconds", "seconds", ".2f"))


def report(label: str, name: str, r: dict[str, float]) -> None:
    print(f"{label:8} {name:10} " + " ".join(f"{format(r[key], fmt):>12}" for _, key, fmt in COLUMNS), flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--only", choices=("hostwatch", "rsyslog"), default=None, help="run one of the two")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each, alternating; medians at the end")
    ap.add_argument("--flag", action="append", default=[], help="one more flag for hostwatch ship (repeatable)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hw-shipbench-"))
    kport, eport = free_port(), free_port()
    noida = subprocess.Popen([str(Path(sys.executable).with_name("noida-db")), "start", "--data-dir",
                              str(work / "noida"), "--host", "127.0.0.1", "--only", "kafka,elasticsearch",
                              "--kafka-port", str(kport), "--elasticsearch-port", str(eport)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    bootstrap = f"127.0.0.1:{kport}"
    results: dict[str, list[dict[str, float]]] = {}
    names = [n for n in ("hostwatch", "rsyslog") if args.only in (None, n)]
    try:
        wait_port(kport)
        log = work / "containers" / CID / f"{CID}-json.log"
        size = write_log(log, args.lines)
        print(f"{args.lines} lines, {size / 1e6:.1f} MB, into noida-db at {bootstrap}", flush=True)
        print(f"{'':19} " + " ".join(f"{title:>12}" for title, _, _ in COLUMNS))
        for run in range(args.repeat):
            for name in names:
                topic = f"bench-{name}-{run}"
                if name == "hostwatch":
                    cmd = [str(Path(sys.executable).with_name("hostwatch")), "ship", "--kafka.brokers", bootstrap,
                           "--kafka.topic", topic, "--docker.logs-glob", str(log), "--state.dir",
                           str(work / f"hw-{run}"), "--forward.enabled", "false", "--gelf.enabled", "false",
                           "--web.listen-address", "127.0.0.1:0", *args.flag]
                    r = measure(name, cmd, bootstrap, topic, args.lines, log=work / f"hostwatch-{run}.log")
                else:
                    rs = work / f"rsyslog-{run}"
                    (rs / "work").mkdir(parents=True)
                    conf = rs / "rsyslog.conf"
                    conf.write_text(RSYSLOG_CONF.format(work=rs / "work", file=log, bootstrap=bootstrap, topic=topic))
                    cmd = [shutil.which("rsyslogd") or "/usr/sbin/rsyslogd", "-n", "-f", str(conf), "-i",
                           str(rs / "pid")]
                    r = measure(name, cmd, bootstrap, topic, args.lines, env=rsyslog_env(rs),
                                log=work / f"rsyslog-{run}.log")
                results.setdefault(name, []).append(r)
                report(f"run {run + 1}", name, r)
    finally:
        os.killpg(noida.pid, signal.SIGTERM)  # the launcher runs the server as a child: stop the group
        noida.wait(20)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    medians = {name: {key: statistics.median(r[key] for r in runs) for _, key, _ in COLUMNS}
               for name, runs in results.items()}
    for name, m in medians.items():
        report("median" if args.repeat > 1 else "", name, m)
    if len(medians) == 2:
        h, r = medians["hostwatch"], medians["rsyslog"]
        print(f"hostwatch / rsyslog: throughput {h['lines_per_s'] / r['lines_per_s']:.2f}x, "
              f"CPU per line {h['cpu_us_per_line'] / r['cpu_us_per_line']:.2f}x "
              f"(net of start-up {h['net_us_per_line'] / r['net_us_per_line']:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
