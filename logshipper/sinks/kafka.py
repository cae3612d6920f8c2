"""The Kafka sink: buffer -> producer -> buffer.release(batch) once Kafka acknowledged every record.

A background task pops batches in order and hands their records to the producer (acks=all, the
idempotent producer, key = container id so one container's lines stay in one partition, in order).
The event loop itself polls the producer for delivery reports: after each batch it hands over, and
every POLL_INTERVAL while anything is in flight (IDLE_POLL_INTERVAL otherwise, for client errors). A
poll thread would take the GIL back once per report and wake the loop once per batch; on the loop a
report costs only its callback. A batch's first attempt is reported run by run (a run's last record
speaks for the run, see sinks.producer); once every run is reported, the batch is released from the
buffer: that runs the source's ack. At most `max_in_flight_events` events are in the producer at once.

Failures:
- broker down or slow: the client retries without end (message.timeout.ms 0), reconnecting with
  backoff from retry_backoff_ms to retry_backoff_max_ms; nothing is released meanwhile, so the
  buffer fills and then blocks (or drops, by its policy), and drains when the broker is back.
- a run whose report is an error (or a success from a producer already fatal: a broker that does not
  check sequence numbers may take records after a gap) is produced again whole, record by record, so
  that each record's own outcome decides what happens to it.
- a record Kafka can never take (too large, invalid): counted in dropped{reason} and kafka_errors,
  the rest of its batch carries on. When the broker refuses it, the producer turns fatal (the gapless
  guarantee) and what it held is produced again on a new producer.
- any other error (an unknown topic, authorization, a fatal idempotence error): the failed records
  are produced again after an exponential backoff (a new producer after a fatal error); records
  retried this way may land after later ones of the same key. Counted in kafka_errors.
- stop() waits up to `flush_timeout` for what is in flight; the rest stays unreleased (in the disk
  buffer, and unacked at its source).

confluent-kafka (librdkafka) is the client, behind the small `Producer` interface (sinks.producer).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from array import array
from collections import deque
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import Any

from logshipper.buffer.base import Buffer, Record, RecordBatch, Run, runs_of
from logshipper.buffer.room import BufferClosed
from logshipper.config import KafkaConfig
from logshipper.sinks.producer import (
    ERR__FATAL,
    ERR__PURGE_QUEUE,
    ERR_MSG_SIZE_TOO_LARGE,
    PURGED,
    RECORD_ERRORS,
    ConfluentProducer,
    DeliveryError,
    OnDelivery,
    Producer,
    ProducerFactory,
    retire,
)
from logshipper.sinks.topic import TopicTemplate, compile_template, topic_for
from logshipper.telemetry import ShipperMetrics

__all__ = ["ERR_MSG_SIZE_TOO_LARGE", "ERR__PURGE_QUEUE", "ConfluentProducer", "DeliveryError", "KafkaSink",
           "OnDelivery", "Producer", "TopicTemplate", "compile_template", "topic_for"]

log = logging.getLogger("hostwatch.logshipper.kafka")

POLL_INTERVAL = 0.005  # while events are in flight: reports wait at most this long to be served
IDLE_POLL_INTERVAL = 1.0  # nothing in flight: client errors and logs are served this often
QUEUE_FULL_WAIT = 0.005  # the client's own queue is full (bytes): let deliveries drain it
PUMP_ERROR_WAIT = 1.0
ERROR_LOG_INTERVAL = 10.0
UNKNOWN_SOURCE = "unknown"

def is_fatal(err: DeliveryError) -> bool:
    """The error ends its producer (the idempotent producer cannot go on)."""
    return err.fatal() or err.code() == ERR__FATAL


class _Delivery:
    """One batch on its way: every report the attempt expects (one per record, or one per run) takes one
    token back; whoever takes the last token (list.pop is atomic, whichever thread) reports it done."""

    __slots__ = ("batch", "tokens", "size", "errors", "failed_runs", "sent", "attempt", "generation", "done")

    def __init__(self, batch: RecordBatch, done: Callable[[_Delivery], None]) -> None:
        self.batch = batch
        self.tokens: list[int] = []
        self.size = 0  # records in the current attempt
        self.errors: list[tuple[DeliveryError, Any]] = []  # records that failed, each on its own
        self.failed_runs: list[tuple[DeliveryError | None, _RunReport]] = []  # runs not known delivered
        self.sent = 0
        self.attempt = 0
        self.generation = 0
        self.done = done

    def arm(self, reports: int, size: int, generation: int) -> None:
        self.tokens = [1] * reports
        self.tokens[0] = 0
        self.size = size
        self.errors = []
        self.failed_runs = []
        self.generation = generation

    def on_delivery(self, err: DeliveryError | None, msg: Any) -> None:
        if err is not None:
            self.errors.append((err, msg))
        if not self.tokens.pop():
            self.done(self)


class _RunReport:
    """The report of a run's last record, which speaks for the run: delivered, unless its producer turned
    fatal first (`fatal` holds the generations that did). Until then it keeps the run's values packed in
    one bytes object (the run's own are freed once produced: ~25 MB less at the in-flight bound in a
    broker stall, measured), to produce them again if the run fails."""

    __slots__ = ("delivery", "topic", "key", "packed", "lengths", "fatal", "refusals")

    def __init__(self, delivery: _Delivery, run: Run, fatal: set[int]) -> None:
        self.delivery = delivery
        self.topic, self.key = run.topic, run.key
        self.packed = b"".join(run.values)
        self.lengths = array("I", map(len, run.values))  # a value is at most message_max_bytes
        self.fatal = fatal
        self.refusals: list[tuple[DeliveryError, Any]] = []

    def records(self) -> list[Record]:
        packed, topic, key = self.packed, self.topic, self.key
        ends = list(accumulate(self.lengths))
        return [Record(topic, key, packed[end - n:end]) for n, end in zip(self.lengths, ends, strict=True)]

    def refused(self, err: DeliveryError, record: Record) -> None:
        self.refusals.append((err, record))

    def __call__(self, err: DeliveryError | None, msg: Any) -> None:
        d = self.delivery
        if err is None and d.generation not in self.fatal:
            d.errors.extend(self.refusals)
        else:
            d.failed_runs.append((err, self))  # its refusals go with it: the whole run is produced again
        if not d.tokens.pop():
            d.done(d)


class KafkaSink:
    def __init__(self, config: KafkaConfig, buffer: Buffer, metrics: ShipperMetrics,
                 producer_factory: ProducerFactory = ConfluentProducer) -> None:
        if not config.brokers:
            raise ValueError("no Kafka brokers configured (kafka.brokers)")
        self._config = config
        self._buffer = buffer
        self._metrics = metrics
        self._factory = producer_factory
        self._producer: Producer | None = None
        self._generation = 0
        self._fatal: set[int] = set()  # producer generations that hit a fatal error
        self._loop: asyncio.AbstractEventLoop | None = None
        self._in_flight = 0
        self._room = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._pump_task: asyncio.Task[None] | None = None
        self._retries: set[asyncio.Task[None]] = set()
        self._reported: deque[_Delivery] = deque()  # attempts reported in full (appended from any thread)
        self._timer: asyncio.TimerHandle | None = None
        self._waiting = False  # for the broker: in-flight bound reached, or the client's queue full
        self._stopping = False
        self._last_error_log = 0.0

    @property
    def in_flight_events(self) -> int:
        return self._in_flight

    def keeping_up(self) -> bool:
        """Taking batches as fast as the CPU lets it: running, and not waiting for the broker."""
        return self._pump_task is not None and not self._pump_task.done() and not self._waiting

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._producer = self._new_producer()
        self._schedule_poll()
        self._pump_task = asyncio.create_task(self._pump(), name="kafka-sink")

    async def stop(self) -> None:
        if self._pump_task is not None:
            self._pump_task.cancel()
            await asyncio.gather(self._pump_task, return_exceptions=True)
            self._pump_task = None
        try:
            await asyncio.wait_for(self._idle.wait(), self._config.flush_timeout)
        except TimeoutError:
            log.warning("Kafka sink stopped with %d events undelivered; they stay in the buffer", self._in_flight)
        self._stopping = True
        for task in list(self._retries):
            task.cancel()
        await asyncio.gather(*self._retries, return_exceptions=True)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await asyncio.to_thread(retire, producer)

    # --- producing (event loop) -----------------------------------------------------------------

    async def _pump(self) -> None:
        while True:
            try:
                batch = await self._buffer.pop()
            except BufferClosed:
                return
            except Exception:  # noqa: BLE001 - a bug: logged, and the sink stays up
                log.exception("Kafka sink: taking a batch from the buffer failed")
                await asyncio.sleep(PUMP_ERROR_WAIT)
                continue
            n = len(batch)
            if n == 0:
                self._buffer.release(batch)
                continue
            while self._in_flight and self._in_flight + n > self._config.max_in_flight_events:
                self._room.clear()
                self._waiting = True
                try:
                    await self._room.wait()
                finally:
                    self._waiting = False
            self._in_flight += n
            self._idle.clear()
            delivery = _Delivery(batch, self._reported.append)
            await self._produce(delivery, batch.runs, n, each=False)
            batch.forget_values()  # the run reports keep them packed until Kafka has them
            self._poll()

    async def _produce(self, delivery: _Delivery, runs: Sequence[Run], n: int, each: bool) -> None:
        """Hand an attempt's records to the producer, reported one by one (`each`) or run by run."""
        runs = [run for run in runs if run.values]
        delivery.arm(n if each else len(runs), n, self._generation)
        for run in runs:
            if each:
                on_delivery: OnDelivery = delivery.on_delivery
                refused = None
            else:
                report = _RunReport(delivery, run, self._fatal)
                on_delivery, refused = report, report.refused
            i = 0
            while True:
                assert self._producer is not None
                i = self._producer.produce(run, i, on_delivery, refused)
                if i >= len(run.values):
                    break
                self._poll()  # what is delivered leaves the client's queue once reported
                self._waiting = True
                try:
                    await asyncio.sleep(QUEUE_FULL_WAIT)
                finally:
                    self._waiting = False

    # --- delivery reports (event loop) -------------------------------------------------------------

    def _schedule_poll(self) -> None:
        if self._timer is None and self._loop is not None and not self._stopping:
            interval = POLL_INTERVAL if self._in_flight or self._reported else IDLE_POLL_INTERVAL
            self._timer = self._loop.call_later(interval, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._poll()
        self._schedule_poll()

    def _poll(self) -> None:
        """Serve the producer's reports (their callbacks run now), then act on the attempts they completed."""
        producer = self._producer
        if producer is not None:
            try:
                producer.poll(0)
            except Exception:  # noqa: BLE001 - a callback's bug must not stop delivery reports
                log.exception("Kafka poll failed")
        reported = self._reported
        while reported:
            self._delivered(reported.popleft())
        timer, loop = self._timer, self._loop
        if self._in_flight and timer is not None and loop is not None and timer.when() - loop.time() > POLL_INTERVAL:
            timer.cancel()  # an idle tick: poll often again now that events are in flight
            self._timer = None
        self._schedule_poll()

    def _delivered(self, d: _Delivery) -> None:
        """An attempt of a batch is reported in full (on the event loop)."""
        retry: list[Record] = []
        dropped: dict[str, int] = {}
        fatal = d.generation in self._fatal
        unsent = len(d.errors)
        for run_err, run in d.failed_runs:
            if run_err is not None and run_err.code() in PURGED and self._stopping:
                return  # abandoned on stop: stays in the buffer
            if run_err is not None:
                fatal = fatal or is_fatal(run_err)
            self._metrics.kafka_errors.labels("true").inc()
            retry += run.records()
            unsent += len(run.lengths)
        for err, msg in d.errors:
            code = err.code()
            if code in PURGED and self._stopping:
                return  # abandoned on stop: stays in the buffer
            if code in RECORD_ERRORS:
                reason = err.name().lower().lstrip("_")
                dropped[reason] = dropped.get(reason, 0) + 1
                self._metrics.kafka_errors.labels("false").inc()
                continue
            fatal = fatal or is_fatal(err)
            self._metrics.kafka_errors.labels("true").inc()
            retry.append(msg if isinstance(msg, Record) else Record(msg.topic(), msg.key(), msg.value()))
        source = d.batch.source or UNKNOWN_SOURCE
        for reason, count in dropped.items():
            log.warning("Kafka refused %d records of a %s batch for good (%s): dropped", count, source, reason)
            self._metrics.dropped.labels(source, reason).inc(count)
        d.sent += d.size - unsent
        if retry:
            d.attempt += 1
            task = asyncio.get_running_loop().create_task(self._retry(d, retry, fatal))
            self._retries.add(task)
            task.add_done_callback(self._retries.discard)
            return
        self._metrics.sent.labels(source).inc(d.sent)
        self._in_flight -= len(d.batch)
        self._room.set()
        if not self._in_flight:
            self._idle.set()
        self._buffer.release(d.batch)

    async def _retry(self, d: _Delivery, records: list[Record], fatal: bool) -> None:
        cfg = self._config
        delay = min(cfg.retry_backoff_max_ms, cfg.retry_backoff_ms * 2 ** min(d.attempt - 1, 30)) / 1000
        self._log_error(f"Kafka delivery of {len(records)} records failed; retry {d.attempt} in {delay:.1f} s")
        await asyncio.sleep(delay)
        if fatal and d.generation == self._generation:
            await self._replace_producer()
        await self._produce(d, runs_of(records), len(records), each=True)

    async def _replace_producer(self) -> None:
        """After a fatal error (the idempotent producer cannot go on): a new producer; what the old one
        still held is purged and, reported as such, produced again."""
        log.error("Kafka producer hit a fatal error: starting a new one")
        old = self._producer
        self._generation += 1
        self._producer = self._new_producer()
        if old is not None:
            await asyncio.to_thread(retire, old)

    # --- client errors --------------------------------------------------------------------------

    def _new_producer(self) -> Producer:
        return self._factory(self._config, functools.partial(self._on_client_error, self._generation))

    def _on_client_error(self, generation: int, err: DeliveryError) -> None:
        """Client-level errors of the producer of `generation` (brokers down, transport: the client retries
        them; a fatal one ends that producer), from a poll."""
        fatal = is_fatal(err)
        if fatal:
            self._fatal.add(generation)  # now, before the reports that follow it in the same queue
        self._metrics.kafka_errors.labels("false" if fatal else "true").inc()
        self._log_error(f"Kafka client: {err.name()} ({err})")
        if fatal and self._loop is not None and not self._stopping:
            try:
                self._loop.call_soon_threadsafe(self._on_fatal, generation)
            except RuntimeError:
                pass

    def _on_fatal(self, generation: int) -> None:
        if generation == self._generation and not self._stopping:
            task = asyncio.get_running_loop().create_task(self._replace_producer())
            self._retries.add(task)
            task.add_done_callback(self._retries.discard)

    def _log_error(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_error_log >= ERROR_LOG_INTERVAL:
            self._last_error_log = now
            log.warning("%s", message)
