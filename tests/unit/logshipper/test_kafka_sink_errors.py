"""The Kafka sink's error paths, through its `Producer` interface with a scripted producer: errors a
real broker cannot be made to give on demand (a retriable failure, an unknown topic, a fatal
idempotence error) and deliveries held back to see the in-flight bound and stop(). What a real
broker does give (delivery, order, a too-large record, an outage) is in
tests/integration/test_kafka_sink.py against noida-db and tansu."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from logshipper.buffer import MemoryBuffer
from logshipper.buffer.base import Record, RecordBatch, Run
from logshipper.config import BufferConfig, KafkaConfig
from logshipper.sinks import kafka as kafka_sink
from logshipper.sinks.kafka import DeliveryError, KafkaSink, OnDelivery
from logshipper.telemetry import ShipperMetrics


class Err:
    def __init__(self, code: int, name: str, retriable: bool = False, fatal: bool = False) -> None:
        self._code, self._name, self._retriable, self._fatal = code, name, retriable, fatal

    def code(self) -> int:
        return self._code

    def name(self) -> str:
        return self._name

    def retriable(self) -> bool:
        return self._retriable

    def fatal(self) -> bool:
        return self._fatal


class Msg:
    def __init__(self, r: Record) -> None:
        self.r = r

    def topic(self) -> str:
        return self.r.topic

    def key(self) -> bytes | None:
        return self.r.key

    def value(self) -> bytes:
        return self.r.value


Verdict = Callable[[Record, "Scripted"], Err | None]


class Scripted:
    """A producer whose every record's outcome comes from `verdict` (None: delivered)."""

    def __init__(self, verdict: Verdict, generation: int) -> None:
        self.verdict = verdict
        self.generation = generation
        self.queue: list[tuple[Record, OnDelivery]] = []
        self.delivered: list[Record] = []
        self.attempts: dict[bytes, int] = {}
        self.hold = threading.Event()  # set: deliver nothing yet
        self.lock = threading.Lock()
        self.poll_threads: set[int] = set()

    def produce(self, run: Run, start: int, on_delivery: OnDelivery) -> int:
        with self.lock:
            for v in run.values[start:]:
                self.queue.append((Record(run.topic, run.key, v), on_delivery))
        return len(run.values)

    def poll(self, timeout: float) -> None:
        self.poll_threads.add(threading.get_ident())
        if self.hold.is_set():
            time.sleep(timeout / 10)
            return
        with self.lock:
            items, self.queue = self.queue, []
        if not items:
            time.sleep(timeout / 10)
        for r, cb in items:
            self.attempts[r.value] = self.attempts.get(r.value, 0) + 1
            err = self.verdict(r, self)
            if err is None:
                self.delivered.append(r)
            cb(err, Msg(r))

    def purge(self) -> None:
        with self.lock:
            items, self.queue = self.queue, []
        for r, cb in items:
            cb(Err(kafka_sink.ERR__PURGE_QUEUE, "_PURGE_QUEUE"), Msg(r))

    def flush(self, timeout: float) -> int:
        return len(self.queue)


class Harness:
    def __init__(self, verdict: Verdict, **kafka: Any) -> None:
        self.verdict = verdict
        self.producers: list[Scripted] = []
        self.metrics = ShipperMetrics()
        self.config = KafkaConfig(brokers=("scripted:9092",), retry_backoff_ms=20, retry_backoff_max_ms=80, **kafka)
        self.acks: list[int] = []

    def factory(self, config: KafkaConfig, on_error: Callable[[DeliveryError], None]) -> Scripted:
        p = Scripted(self.verdict, len(self.producers))
        self.producers.append(p)
        return p

    def batch(self, i: int, n: int = 5) -> RecordBatch:
        recs = [Record("t", b"k", f"b{i}-r{j}".encode()) for j in range(n)]
        return RecordBatch(recs, lambda: self.acks.append(i), "gelf", 1).sized()

    def value(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def run_sink(h: Harness, body: Callable[[MemoryBuffer, KafkaSink], Any], tmp_path: Path) -> None:
    async def main() -> None:
        buf = MemoryBuffer(BufferConfig(type="memory"), h.metrics)
        await buf.open()
        sink = KafkaSink(h.config, buf, h.metrics, producer_factory=h.factory)
        await sink.start()
        try:
            await body(buf, sink)
        finally:
            await sink.stop()
            await buf.close()
    asyncio.run(main())


def test_a_retriable_failure_is_produced_again_after_backoff_and_the_batch_released_once(tmp_path: Path) -> None:
    def verdict(r: Record, p: Scripted) -> Err | None:
        if r.value.endswith(b"r2") and p.attempts[r.value] < 3:
            return Err(7, "REQUEST_TIMED_OUT", retriable=True)
        return None

    h = Harness(verdict)

    async def body(buf: MemoryBuffer, sink: KafkaSink) -> None:
        await buf.push(h.batch(0))
        await buf.push(h.batch(1))
        await until(lambda: len(h.acks) == 2)
        assert buf.events == 0

    run_sink(h, body, tmp_path)
    p = h.producers[0]
    assert sorted(h.acks) == [0, 1]
    assert p.attempts[b"b0-r2"] == 3 and p.attempts[b"b0-r1"] == 1
    assert sorted(r.value for r in p.delivered) == sorted(f"b{i}-r{j}".encode() for i in (0, 1) for j in range(5))
    assert h.value("hostwatch_logshipper_kafka_errors_total", retriable="true") == 4
    assert h.value("hostwatch_logshipper_sent_events_total", source="gelf") == 10


def test_an_unknown_topic_is_retried_not_dropped(tmp_path: Path) -> None:
    def verdict(r: Record, p: Scripted) -> Err | None:
        return Err(3, "UNKNOWN_TOPIC_OR_PART") if p.attempts[r.value] < 2 else None

    h = Harness(verdict)

    async def body(buf: MemoryBuffer, sink: KafkaSink) -> None:
        await buf.push(h.batch(0))
        await until(lambda: h.acks == [0])

    run_sink(h, body, tmp_path)
    assert len(h.producers[0].delivered) == 5
    assert h.value("hostwatch_logshipper_dropped_events_total", source="gelf", reason="unknown_topic_or_part") == 0


def test_a_permanent_record_error_drops_that_record_only(tmp_path: Path) -> None:
    def verdict(r: Record, p: Scripted) -> Err | None:
        return Err(kafka_sink.ERR_MSG_SIZE_TOO_LARGE, "MSG_SIZE_TOO_LARGE") if r.value == b"b0-r3" else None

    h = Harness(verdict)

    async def body(buf: MemoryBuffer, sink: KafkaSink) -> None:
        await buf.push(h.batch(0))
        await until(lambda: h.acks == [0])

    run_sink(h, body, tmp_path)
    assert [r.value for r in h.producers[0].delivered] == [b"b0-r0", b"b0-r1", b"b0-r2", b"b0-r4"]
    assert h.producers[0].attempts[b"b0-r3"] == 1  # not retried
    assert h.value("hostwatch_logshipper_dropped_events_total", source="gelf", reason="msg_size_too_large") == 1
    assert h.value("hostwatch_logshipper_kafka_errors_total", retriable="false") == 1
    assert h.value("hostwatch_logshipper_sent_events_total", source="gelf") == 4


def test_a_fatal_error_replaces_the_producer_and_nothing_is_lost(tmp_path: Path) -> None:
    def verdict(r: Record, p: Scripted) -> Err | None:
        if p.generation == 0 and r.value == b"b0-r1":
            return Err(45, "OUT_OF_ORDER_SEQUENCE_NUMBER", fatal=True)
        return None

    h = Harness(verdict)

    async def body(buf: MemoryBuffer, sink: KafkaSink) -> None:
        await buf.push(h.batch(0))
        await until(lambda: h.acks == [0])
        await buf.push(h.batch(1))
        await until(lambda: h.acks == [0, 1])

    run_sink(h, body, tmp_path)
    assert len(h.producers) == 2
    assert [r.value for r in h.producers[1].delivered][:1] == [b"b0-r1"]
    assert {r.value for p in h.producers for r in p.delivered} == {f"b{i}-r{j}".encode() for i in (0, 1)
                                                                   for j in range(5)}


def test_in_flight_events_are_bounded_and_stop_keeps_what_was_not_delivered(tmp_path: Path) -> None:
    h = Harness(lambda r, p: None, max_in_flight_events=10, flush_timeout=0.3)
    seen: dict[str, Any] = {}

    async def main() -> None:
        buf = MemoryBuffer(BufferConfig(type="memory"), h.metrics)
        await buf.open()
        sink = KafkaSink(h.config, buf, h.metrics, producer_factory=h.factory)
        await sink.start()
        h.producers[0].hold.set()
        for i in range(10):
            await buf.push(h.batch(i, n=4))
        await asyncio.sleep(0.2)
        seen["queued"] = len(h.producers[0].queue)
        seen["in_flight"] = sink.in_flight_events
        seen["keeping_up_at_the_bound"] = sink.keeping_up()
        h.producers[0].hold.clear()
        await until(lambda: len(h.acks) == 10)
        seen["keeping_up_after"] = sink.keeping_up()
        h.producers[0].hold.set()
        await buf.push(h.batch(10, n=4))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await sink.stop()
        seen["stop_seconds"] = time.monotonic() - started
        await asyncio.sleep(0.1)  # the purge's reports reach the loop
        seen["left"] = buf.events
        await buf.close()

    asyncio.run(main())
    assert seen["queued"] == 8 and seen["in_flight"] == 8  # two batches of 4; a third would pass 10
    assert not seen["keeping_up_at_the_bound"] and seen["keeping_up_after"]  # waiting for the broker, then not
    assert h.acks == list(range(10))  # batch 10 was never delivered: not acked
    assert seen["left"] == 4
    assert 0.25 < seen["stop_seconds"] < 2
    assert h.value("hostwatch_logshipper_dropped_events_total", source="gelf", reason="_purge_queue") == 0
    assert h.value("hostwatch_logshipper_kafka_errors_total", retriable="true") == 0  # a purge on stop is no error
    assert h.value("hostwatch_logshipper_sent_events_total", source="gelf") == 40


def test_reports_are_served_on_the_event_loop_and_produced_values_are_not_kept(tmp_path: Path) -> None:
    """No poll thread: the loop polls (so a report never wakes the loop from another thread), and once the
    producer has a batch's records the sink keeps only what the release needs."""
    h = Harness(lambda r, p: None)
    seen: dict[str, Any] = {}
    before = {t.name for t in threading.enumerate()}  # other tests' background threads may still run

    async def body(buf: MemoryBuffer, sink: KafkaSink) -> None:
        h.producers[0].hold.set()
        b = h.batch(0)
        await buf.push(b)
        await until(lambda: len(h.producers[0].queue) == 5)
        seen["held"] = (len(b), b.runs)
        seen["threads"] = {t.name for t in threading.enumerate()}
        h.producers[0].hold.clear()
        await buf.push(h.batch(1))
        await until(lambda: len(h.acks) == 2)
        seen["loop"] = threading.get_ident()

    run_sink(h, body, tmp_path)
    assert seen["held"] == (5, [])
    assert h.producers[0].poll_threads == {seen["loop"]}
    assert seen["threads"] - before == set()  # the sink started no thread of its own
    assert sorted(h.acks) == [0, 1] and h.value("hostwatch_logshipper_sent_events_total", source="gelf") == 10
