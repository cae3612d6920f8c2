"""The Kafka sink with the disk buffer against real brokers, noida-db and tansu: every record arrives,
in order per key, acks run once Kafka has them; a broker outage loses nothing; a shipper killed with
SIGKILL, or stopped while the broker is down, leaves its undelivered batches in the disk buffer and
they are delivered after a reopen."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from logshipper.buffer import DiskBuffer
from logshipper.buffer.base import Record, RecordBatch
from logshipper.config import BufferConfig, KafkaConfig
from logshipper.sinks.kafka import KafkaSink, topic_for
from logshipper.telemetry import ShipperMetrics

from peers import KafkaRecord, NoidaDB, Tansu, read_topic

ROOT = Path(__file__).resolve().parents[2]
SOURCE = "docker_json"
TEMPLATE = "logs-{labels.app|none}"


@pytest.fixture(params=["noida-db", "tansu"])
def kafka(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NoidaDB | Tansu]:
    peer: NoidaDB | Tansu = NoidaDB(tmp_path / "noida") if request.param == "noida-db" else Tansu(tmp_path)
    with peer:
        yield peer


@pytest.fixture
def noida(tmp_path: Path) -> Iterator[NoidaDB]:
    with NoidaDB(tmp_path / "noida") as db:
        yield db


def make_batch(index: int, per_batch: int, keys: int, topic: str = "sink-test",
               acks: list[int] | None = None) -> RecordBatch:
    """Records `key:seq` where seq counts per key across all batches, so order per key is checkable."""
    records = []
    for j in range(per_batch):
        n = index * per_batch + j
        key = f"container-{n % keys}"
        records.append(Record(topic, key.encode(), f"{key}:{n // keys:08d}:".encode() + b"p" * 150))
    ack = (lambda: acks.append(index)) if acks is not None else None
    return RecordBatch(records, ack, SOURCE, time.time_ns()).sized()


def kafka_config(bootstrap: str, **kw: object) -> KafkaConfig:
    return KafkaConfig(brokers=(bootstrap,), **kw)  # type: ignore[arg-type]


def sample(metrics: ShipperMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def check_order_per_key(records: list[KafkaRecord]) -> None:
    """Every key's records sit in one partition of their topic, in offset order of their seq (a duplicate
    from a retried delivery may repeat an earlier record, but the first occurrences never go backwards)."""
    seqs: dict[bytes, list[int]] = defaultdict(list)
    parts: dict[bytes, set[int]] = defaultdict(set)
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        assert r.key is not None
        key, seq, _ = r.value.split(b":")
        assert key == r.key
        seqs[r.key].append(int(seq))
        parts[r.key].add(r.partition)
    for key, got in seqs.items():
        assert len(parts[key]) == 1, f"{key!r} spread over partitions {parts[key]}"
        first = list(dict.fromkeys(got))
        assert first == sorted(first), f"{key!r} out of order: {first[:20]}..."


async def wait_until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def deliver(batches: list[RecordBatch], config: KafkaConfig, metrics: ShipperMetrics, tmp_path: Path,
            done: Callable[[], bool]) -> None:
    """Push `batches` through a disk buffer and a sink until `done` (within 60 s), then stop both."""
    async def main() -> None:
        buf = DiskBuffer(BufferConfig(), tmp_path / "state", metrics)
        await buf.open()
        sink = KafkaSink(config, buf, metrics)
        await sink.start()
        try:
            for batch in batches:
                await buf.push(batch)
            await wait_until(done, 60, "every batch acked")
        finally:
            await sink.stop()
            await buf.close()

    asyncio.run(main())


def test_batches_through_the_disk_buffer_arrive_in_order_per_key_and_acks_run(
        kafka: NoidaDB | Tansu, tmp_path: Path) -> None:
    batches, per_batch, keys = 60, 100, 7
    acks: list[int] = []
    metrics = ShipperMetrics()

    async def main() -> list[str]:
        buf = DiskBuffer(BufferConfig(segment_bytes=256 << 10, sync_interval=0.05), tmp_path / "state", metrics)
        await buf.open()
        sink = KafkaSink(kafka_config(kafka.bootstrap, max_in_flight_events=1500), buf, metrics)
        await sink.start()
        try:
            for i in range(batches):
                topic = topic_for(TEMPLATE, {"app": "web"} if i % 2 else {})  # logs-web or logs-none
                await buf.push(make_batch(i, per_batch, keys, topic, acks))
            await wait_until(lambda: len(acks) == batches, 60, "every batch acked")
            await asyncio.sleep(0.2)  # one sync: the delivered position is saved, segments deleted
        finally:
            await sink.stop()
            await buf.close()
        return sorted(p.name for p in (tmp_path / "state" / "buffer").glob("*.seg"))

    segments_left = asyncio.run(main())
    assert sorted(acks) == list(range(batches))
    assert sample(metrics, "hostwatch_logshipper_sent_events_total", source=SOURCE) == batches * per_batch
    assert len(segments_left) == 1  # only the segment being written; the delivered ones are gone
    got = read_topic(kafka.bootstrap, "logs-none", expect=batches * per_batch // 2)
    got += read_topic(kafka.bootstrap, "logs-web", expect=batches * per_batch // 2)
    assert len(got) == batches * per_batch
    assert {r.value for r in got} == {r.value for i in range(batches) for r in make_batch(i, per_batch, keys).records}
    # the template sent odd batches to logs-web and even ones to logs-none; each topic keeps its keys in order
    check_order_per_key(got[:batches * per_batch // 2])
    check_order_per_key(got[batches * per_batch // 2:])


def test_a_record_kafka_can_never_take_is_dropped_and_counted_and_the_rest_delivered(
        kafka: NoidaDB | Tansu, tmp_path: Path) -> None:
    acks: list[int] = []
    metrics = ShipperMetrics()

    b = make_batch(0, 10, 2, "too-large", acks)
    b.records[4] = Record("too-large", b"container-0", b"x" * 2_000_000)  # over message.max.bytes
    deliver([b.sized(), make_batch(1, 10, 2, "too-large", acks)], kafka_config(kafka.bootstrap), metrics,
            tmp_path, lambda: len(acks) == 2)
    assert sorted(acks) == [0, 1]
    assert sample(metrics, "hostwatch_logshipper_dropped_events_total", source=SOURCE,
                  reason="msg_size_too_large") == 1
    assert sample(metrics, "hostwatch_logshipper_kafka_errors_total", retriable="false") >= 1
    assert sample(metrics, "hostwatch_logshipper_sent_events_total", source=SOURCE) == 19
    got = read_topic(kafka.bootstrap, "too-large", expect=19)
    assert len(got) == 19 and all(len(r.value) < 1000 for r in got)


def test_a_record_the_broker_refuses_mid_run_is_dropped_and_the_rest_of_its_run_delivered(
        noida: NoidaDB, tmp_path: Path) -> None:
    """The client lets a 2 MB record through (message_max_bytes 4 MB) and noida-db refuses it (its limit is
    ~1 MB of compressed batch, as Kafka's default; tansu takes any size, so this runs on noida-db). The
    producer turns fatal (gapless guarantee), the batch's runs are produced again record by record on a
    new producer: the record is dropped and counted, every other record arrives (some twice, with the
    retried run). Without the gapless guarantee the record vanished unreported (checked)."""
    acks: list[int] = []
    metrics = ShipperMetrics()
    first = make_batch(0, 10, 1, "refused", acks)  # one key: one run of 10, the refused record inside it
    first.records[4] = Record("refused", b"container-0", os.urandom(2_000_000))  # lz4 would shrink a repeated byte
    sent = [r.value for r in first.records if len(r.value) < 1000]
    sent += [r.value for r in make_batch(1, 10, 1, "refused").records]

    deliver([first.sized(), make_batch(1, 10, 1, "refused", acks)],
            kafka_config(noida.bootstrap, message_max_bytes=4_000_000), metrics, tmp_path, lambda: len(acks) == 2)
    got = read_topic(noida.bootstrap, "refused", idle=3.0)
    assert sorted(acks) == [0, 1]
    assert sample(metrics, "hostwatch_logshipper_dropped_events_total", source=SOURCE,
                  reason="msg_size_too_large") == 1
    assert sample(metrics, "hostwatch_logshipper_sent_events_total", source=SOURCE) == 19
    assert {r.value for r in got} == set(sent) and len(got) >= 19
    check_order_per_key(got)


def test_a_broker_outage_mid_stream_loses_nothing(noida: NoidaDB, tmp_path: Path) -> None:
    batches, per_batch, keys = 120, 50, 5
    acks: list[int] = []
    metrics = ShipperMetrics()
    seen: dict[str, int] = {}
    pushed = 0

    async def producer(buf: DiskBuffer) -> None:
        nonlocal pushed
        for i in range(batches):
            await buf.push(make_batch(i, per_batch, keys, "outage", acks))
            pushed += 1
            await asyncio.sleep(0.12)  # ~15 s of steady intake, the outage in its middle

    async def main() -> None:
        buf = DiskBuffer(BufferConfig(sync_interval=0.1), tmp_path / "state", metrics)
        await buf.open()
        sink = KafkaSink(kafka_config(noida.bootstrap, retry_backoff_max_ms=1000), buf, metrics)
        await sink.start()
        intake = asyncio.create_task(producer(buf))
        try:
            await wait_until(lambda: len(acks) >= 15, 30, "the first acks")
            await asyncio.to_thread(noida.stop)
            await asyncio.sleep(2)
            seen["acks_early_in_outage"] = len(acks)
            seen["pushed_early_in_outage"] = pushed
            await asyncio.sleep(8)
            seen["acks_late_in_outage"] = len(acks)
            seen["pushed_late_in_outage"] = pushed
            seen["buffered_in_outage"] = buf.events
            await asyncio.to_thread(noida.start)
            await intake
            await wait_until(lambda: len(acks) == batches, 60, "every batch acked after the outage")
        finally:
            intake.cancel()
            await sink.stop()
            await buf.close()

    asyncio.run(main())
    assert seen["acks_early_in_outage"] == seen["acks_late_in_outage"], seen  # nothing acked while it was down
    assert seen["pushed_late_in_outage"] - seen["pushed_early_in_outage"] >= 20, seen  # intake carried on
    assert seen["buffered_in_outage"] == (seen["pushed_late_in_outage"] - seen["acks_late_in_outage"]) * per_batch
    assert sorted(acks) == list(range(batches))
    got = read_topic(noida.bootstrap, "outage")  # duplicates possible: read until idle
    assert {r.value for r in got} == {r.value for i in range(batches) for r in make_batch(i, per_batch, keys).records}
    check_order_per_key(got)


CHILD = textwrap.dedent("""
    import asyncio, sys, time
    from pathlib import Path
    sys.path[:0] = [str(Path.cwd() / "tests"), str(Path.cwd() / "tests" / "integration")]
    from test_kafka_sink import make_batch
    from logshipper.buffer import DiskBuffer
    from logshipper.config import BufferConfig, KafkaConfig
    from logshipper.sinks.kafka import KafkaSink
    from logshipper.telemetry import ShipperMetrics

    async def main():
        state, bootstrap, batches = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
        metrics = ShipperMetrics()
        buf = DiskBuffer(BufferConfig(sync_interval=0.05), state, metrics)
        await buf.open()
        # a small in-flight bound keeps most batches waiting in the buffer when the kill comes
        sink = KafkaSink(KafkaConfig(brokers=(bootstrap,), max_in_flight_events=200, linger_ms=20), buf, metrics)
        acks = []
        for i in range(batches):
            await buf.push(make_batch(i, 100, 4, "killed", acks))
        print("pushed", flush=True)
        await sink.start()
        while True:
            await asyncio.sleep(0.01)
            if acks:
                print("acked", len(acks), flush=True)

    asyncio.run(main())
""")


def test_kill_9_of_a_shipping_process_replays_its_unreleased_batches(kafka: NoidaDB | Tansu, tmp_path: Path) -> None:
    batches, state = 100, tmp_path / "state"
    with subprocess.Popen([sys.executable, "-c", CHILD, str(state), kafka.bootstrap, str(batches)], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as child:
        assert child.stdout is not None
        lines: list[bytes] = []
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                line = child.stdout.readline()
                lines.append(line)
                if not line or (line.startswith(b"acked") and int(line.split()[1]) >= 10):
                    break
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
        tail = b"".join(lines[-5:]) + child.stdout.read()
    assert lines[0] == b"pushed\n" and lines[-1].startswith(b"acked"), tail
    acked_by_child = int(lines[-1].split()[1])
    metrics = ShipperMetrics()
    replayed: dict[str, int] = {}

    async def reopen() -> None:
        buf = DiskBuffer(BufferConfig(), state, metrics)
        await buf.open()
        replayed["events"] = buf.events
        sink = KafkaSink(kafka_config(kafka.bootstrap), buf, metrics)
        await sink.start()
        try:
            await wait_until(lambda: buf.events == 0, 60, "the replayed batches delivered")
        finally:
            await sink.stop()
            await buf.close()

    asyncio.run(reopen())
    assert 0 < replayed["events"] <= (batches - acked_by_child + 20) * 100  # the unreleased ones (and a few more)
    got = read_topic(kafka.bootstrap, "killed", timeout=60)  # duplicates possible: read until idle
    assert {r.value for r in got} == {r.value for i in range(batches) for r in make_batch(i, 100, 4).records}


def test_stop_while_the_broker_is_down_keeps_the_batches_for_the_next_run(noida: NoidaDB, tmp_path: Path) -> None:
    acks: list[int] = []
    metrics = ShipperMetrics()
    state = tmp_path / "state"
    noida.stop()

    async def while_down() -> float:
        buf = DiskBuffer(BufferConfig(), state, metrics)
        await buf.open()
        sink = KafkaSink(kafka_config(noida.bootstrap, flush_timeout=1.0), buf, metrics)
        await sink.start()
        for i in range(10):
            await buf.push(make_batch(i, 20, 3, "after-down", acks))
        await asyncio.sleep(0.5)
        started = time.monotonic()
        await sink.stop()
        stopped_in = time.monotonic() - started
        await buf.close()
        return stopped_in

    async def next_run() -> int:
        buf = DiskBuffer(BufferConfig(), state, metrics)
        await buf.open()
        pending = buf.events
        sink = KafkaSink(kafka_config(noida.bootstrap), buf, metrics)
        await sink.start()
        try:
            await wait_until(lambda: buf.events == 0, 30, "the kept batches delivered")
        finally:
            await sink.stop()
            await buf.close()
        return pending

    stopped_in = asyncio.run(while_down())
    assert acks == [] and stopped_in < 5  # the flush timeout bounds stop(); nothing was acked
    noida.start()
    assert asyncio.run(next_run()) == 200
    got = read_topic(noida.bootstrap, "after-down", expect=200)
    assert {r.value for r in got} == {r.value for i in range(10) for r in make_batch(i, 20, 3).records}
    check_order_per_key(got)
