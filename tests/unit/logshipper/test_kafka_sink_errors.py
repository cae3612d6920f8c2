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
from logshipper.sinks.producer import ERR__GAPLESS_GUARANTEE, OnRefused
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
    """A producer whose every record's outcome comes from `verdict` (None: delivered), shaped like
    librdkafka's idempotent producer with enable.gapless.guarantee: a record that fails for good, or any
    record that fails unreported, makes it fatal (`on_error`), and what it still holds is purged (with
    `deliver_after_gap`: delivered anyway, as by a broker that does not check sequence numbers); a fatal
    producer refuses every new record. `refuse` decides refusals at produce()."""

    def __init__(self, verdict: Verdict, generation: int, on_error: Callable[[DeliveryError], None],
                 refuse: Callable[[Record], Err | None], deliver_after_gap: bool) -> None:
        self.verdict = verdict
        self.generation = generation
        self.on_error = on_error
        self.refuse = refuse
        self.deliver_after_gap = deliver_after_gap
        self.fatal = False
        self.queue: list[tuple[Record, OnDelivery | None]] = []
        self.delivered: list[Record] = []
        self.attempts: dict[bytes, int] = {}
        self.reports = 0
        self.hold = threading.Event()  # set: deliver nothing yet
        self.lock = threading.Lock()
        self.poll_threads: set[int] = set()

    def produce(self, run: Run, start: int, on_delivery: OnDelivery, refused: OnRefused | None = None) -> int:
        last = len(run.values) - 1
        with self.lock:
            for i in range(start, last + 1):
                r = Record(run.topic, run.key, run.values[i])
                cb = on_delivery if refused is None or i == last else None
                err = Err(kafka_sink.ERR__FATAL, "_FATAL", fatal=True) if self.fatal else self.refuse(r)
                if err is not None:
                    self.reports += cb is not None
                    (cb or refused)(err, r)  # type: ignore[misc]
                else:
                    self.queue.append((r, cb))
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
            err: Err | None
            if self.fatal:
                err = None if self.deliver_after_gap else Err(kafka_sink.ERR__PURGE_QUEUE, "_PURGE_QUEUE")
            else:
                self.attempts[r.value] = self.attempts.get(r.value, 0) + 1
                err = self.verdict(r, self)
                if err is not None and (cb is None or not err.retriable()):
                    self.fatal = True
                    self.on_error(Err(ERR__GAPLESS_GUARANTEE, "_GAPLESS_GUARANTEE", fatal=True))
            if err is None:
                self.delivered.append(r)
            if cb is not None:
                self.reports += 1
                cb(err, Msg(r))

    def purge(self) -> None:
        with self.lock:
            items, self.queue = self.queue, []
        for r, cb in items:
            if cb is not None:
                cb(Err(kafka_sink.ERR__PURGE_QUEUE, "_PURGE_QUEUE"), Msg(r))

    def flush(self, timeout: float) -> int:
        return len(self.queue)


class Harness:
    def __init__(self, verdict: Verdict, refuse: Callable[[Record], Err | None] = lambda r: None,
                 deliver_after_gap: bool = False, **kafka: Any) -> None:
        self.verdict = verdict
        self.refuse = refuse
        self.deliver_after_gap = deliver_after_gap
        self.producers: list[Scripted] = []
        self.metrics = ShipperMetrics()
        self.config = KafkaConfig(brokers=("scripted:9092",), retry_backoff_ms=20, retry_backoff_max_ms=80, **kafka)
        self.acks: list[int] = []

    def factory(self, config: KafkaConfig, on_error: Callable[[DeliveryError], None]) -> Scripted:
        p = Scripted(self.verdict, len(self.producers), on_error, self.refuse, self.deliver_after_gap)
        self.producers.append(p)
        return p

    def batch(self, i: int, n: int = 5, keys: int = 1) -> RecordBatch:
        recs = [Record("t", b"k%d" % (j * keys // n), f"b{i}-r{j}".encode()) for j in range(n)]
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


def in_turn(h: Harness, batches: int) -> Callable[[MemoryBuffer, KafkaSink], Any]:
    """A body that pushes each batch once the one before it is acked."""
    async def body(buf: MemoryBuffer, sink: KafkaSink) -> None:
        for i in range(batches):
            await buf.push(h.batch(i))
            await until(lambda i=i: h.acks == list(range(i + 1)))  # type: ignore[misc]
    return body


def all_values(h: Harness) -> set[bytes]:
    return {r.value for p in h.producers for r in p.delivered}


def expected(*batches: int, n: int = 5) -> set[bytes]:
    return {f"b{i}-r{j}".encode() for i in batches for j in range(n)}


def test_a_batch_is_reported_once_per_run_and_released_once(tmp_path: Path) -> None:
    h = Harness(lambda r, p: None)

    async def body(buf: MemoryBuffer, sink: KafkaSink) -> None:
        await buf.push(h.batch(0, n=6, keys=3))  # three keys: three runs of two records
        await buf.push(h.batch(1))
        await until(lambda: len(h.acks) == 2)

    run_sink(h, body, tmp_path)
    assert h.producers[0].reports == 4
    assert [r.value for r in h.producers[0].delivered] == sorted(expected(0, n=6)) + sorted(expected(1))
    assert h.value("hostwatch_logshipper_sent_events_total", source="gelf") == 11


def test_a_run_whose_report_fails_is_produced_again_record_by_record_then_only_what_failed(tmp_path: Path) -> None:
    def verdict(r: Record, p: Scripted) -> Err | None:
        if r.value.endswith(b"r4") and p.attempts[r.value] < 3:
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
    assert len(h.producers) == 1 and sorted(h.acks) == [0, 1]
    assert p.attempts[b"b0-r4"] == 3 and p.attempts[b"b0-r1"] == 2  # the whole run once more, then r4 alone
    assert {r.value for r in p.delivered} == expected(0, 1)
    assert h.value("hostwatch_logshipper_kafka_errors_total", retriable="true") == 4  # per batch: the run, then r4
    assert h.value("hostwatch_logshipper_sent_events_total", source="gelf") == 10


def test_an_unknown_topic_is_retried_not_dropped(tmp_path: Path) -> None:
    def verdict(r: Record, p: Scripted) -> Err | None:
        return Err(3, "UNKNOWN_TOPIC_OR_PART", retriable=True) if p.attempts[r.value] < 2 else None

    h = Harness(verdict)

    async def body(buf: MemoryBuffer, sink: KafkaSink) -> None:
        await buf.push(h.batch(0))
        await until(lambda: h.acks == [0])

    run_sink(h, body, tmp_path)
    assert all_values(h) == expected(0)
    assert h.value("hostwatch_logshipper_dropped_events_total", source="gelf", reason="unknown_topic_or_part") == 0
    assert h.value("hostwatch_logshipper_sent_events_total", source="gelf") == 5


def test_a_permanent_record_error_drops_that_record_only(tmp_path: Path) -> None:
    """The broker refuses r3 for good: unreported, it makes the producer fatal (gapless); the run is
    produced again record by record on a new producer, where r3's own report drops it (and, fatal again,
    the producer after it delivers r4)."""
    def verdict(r: Record, p: Scripted) -> Err | None:
        return Err(kafka_sink.ERR_MSG_SIZE_TOO_LARGE, "MSG_SIZE_TOO_LARGE") if r.value == b"b0-r3" else None

    h = Harness(verdict)

    run_sink(h, in_turn(h, 2), tmp_path)
    assert all_values(h) == expected(0, 1) - {b"b0-r3"}
    assert [p.attempts.get(b"b0-r3", 0) for p in h.producers] == [1, 1, 0]  # dropped after its own report
    assert h.value("hostwatch_logshipper_dropped_events_total", source="gelf", reason="msg_size_too_large") == 1
    assert h.value("hostwatch_logshipper_kafka_errors_total", retriable="false") == 3  # 2 fatal, 1 record
    assert h.value("hostwatch_logshipper_sent_events_total", source="gelf") == 9


def test_a_fatal_error_replaces_the_producer_and_nothing_is_lost(tmp_path: Path) -> None:
    def verdict(r: Record, p: Scripted) -> Err | None:
        if p.generation == 0 and r.value == b"b0-r1":
            return Err(45, "OUT_OF_ORDER_SEQUENCE_NUMBER", fatal=True)
        return None

    h = Harness(verdict)

    run_sink(h, in_turn(h, 2), tmp_path)
    assert len(h.producers) == 2
    assert [r.value for r in h.producers[1].delivered] == sorted(expected(0)) + sorted(expected(1))
    assert all_values(h) == expected(0, 1)


def test_a_run_reported_delivered_by_a_producer_already_fatal_is_produced_again(tmp_path: Path) -> None:
    """A broker that does not check sequence numbers takes r2..r4 after r1 failed: r4's report says
    delivered, but it came after the fatal error, so the run is not trusted and r1 is not lost."""
    def verdict(r: Record, p: Scripted) -> Err | None:
        return Err(87, "INVALID_RECORD_REJECTED_ONCE") if p.generation == 0 and r.value == b"b0-r1" else None

    h = Harness(verdict, deliver_after_gap=True)

    async def body(buf: MemoryBuffer, sink: KafkaSink) -> None:
        await buf.push(h.batch(0))
        await until(lambda: h.acks == [0])

    run_sink(h, body, tmp_path)
    assert [r.value for r in h.producers[0].delivered] == [b"b0-r0", b"b0-r2", b"b0-r3", b"b0-r4"]
    assert [r.value for r in h.producers[1].delivered] == sorted(expected(0))
    assert h.value("hostwatch_logshipper_sent_events_total", source="gelf") == 5


def test_a_record_refused_at_produce_is_dropped_alone_or_with_its_run_produced_again(tmp_path: Path) -> None:
    """A refusal the client reports at once (too large for message.max.bytes): an inner record is
    dropped when its run's report comes; the run's last record, whose report it was, has the run
    produced again record by record, and is dropped then."""
    too_large = {b"b0-r2", b"b1-r4"}

    def refuse(r: Record) -> Err | None:
        return Err(kafka_sink.ERR_MSG_SIZE_TOO_LARGE, "MSG_SIZE_TOO_LARGE") if r.value in too_large else None

    h = Harness(lambda r, p: None, refuse=refuse)

    run_sink(h, in_turn(h, 2), tmp_path)
    p = h.producers[0]
    assert len(h.producers) == 1 and all_values(h) == expected(0, 1) - too_large
    assert [p.attempts.get(f"b0-r{j}".encode(), 0) for j in range(5)] == [1, 1, 0, 1, 1]
    assert [p.attempts.get(f"b1-r{j}".encode(), 0) for j in range(5)] == [2, 2, 2, 2, 0]
    assert h.value("hostwatch_logshipper_dropped_events_total", source="gelf", reason="msg_size_too_large") == 2
    assert h.value("hostwatch_logshipper_sent_events_total", source="gelf") == 8


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


def test_reports_are_served_on_the_event_loop_and_a_produced_batch_keeps_only_what_its_release_needs(
        tmp_path: Path) -> None:
    """No poll thread: the loop polls (so a report never wakes the loop from another thread), and once the
    producer has a batch's records the batch keeps only what the release needs (its runs' reports hold
    the values until Kafka has them)."""
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
