"""The replicated log every replica appends what it does to and rebuilds its state from.

Records are (key, JSON value or None for a tombstone) on ONE partition, so every replica sees the same
order (the claim protocol depends on it). Three transports with one interface:
- KafkaLog: a compacted topic (confluent-kafka; the broker the log pipeline uses). A consumer thread
  hands records to the event loop in order; the producer never blocks the loop.
- FileLog: a local journal under --state.dir, for a single replica without Kafka.
- MemoryBroker/MemoryLog: in-process, for tests (with `reachable` to cut a replica off).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import orjson

from alerting.metrics import AlertingMetrics

log = logging.getLogger("hostwatch.alerting")

Apply = Callable[[str, "dict[str, Any] | None"], None]
DEFAULT_TOPIC = "hostwatch-alerting"
CATCH_UP_TIMEOUT = 30.0  # seconds start() waits to replay the log before serving anyway (fail-open)


def encode(value: Any) -> bytes:
    """JSON bytes; times far in the future (a silence until 2999) are ns beyond 64 bits, which orjson refuses."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, separators=(",", ":")).encode()


class ReplicatedLog(Protocol):
    async def start(self, apply: Apply) -> None: ...
    def append(self, key: str, value: dict[str, Any] | None) -> None: ...
    async def synced(self, timeout: float) -> bool:
        """Until everything appended so far is acknowledged by the log (False: not within `timeout`)."""
        ...
    def reachable(self) -> bool: ...
    def caught_up(self) -> bool: ...
    async def stop(self) -> None: ...


class KafkaLog:
    def __init__(self, brokers: str, topic: str = DEFAULT_TOPIC, metrics: AlertingMetrics | None = None,
                 catch_up_timeout: float = CATCH_UP_TIMEOUT) -> None:
        self.brokers, self.topic, self.metrics = brokers, topic, metrics
        self.catch_up_timeout = catch_up_timeout
        self._loop: asyncio.AbstractEventLoop | None = None
        self._apply: Apply | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._caught_up = threading.Event()
        self._down_since: float | None = None  # monotonic; set by "all brokers down" errors
        self._producer: Any = None
        self._consumer: Any = None

    def _error(self, op: str, err: Any) -> None:
        if self.metrics is not None:
            self.metrics.kafka_errors.labels(op).inc()
        from confluent_kafka import KafkaError

        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._MSG_TIMED_OUT):
            if self._down_since is None:
                self._down_since = time.monotonic()
        log.warning("kafka %s: %s", op, err)

    def _conf(self, op: str) -> dict[str, Any]:
        return {"bootstrap.servers": self.brokers, "error_cb": lambda e: self._error(op, e),
                "socket.connection.setup.timeout.ms": 3000, "reconnect.backoff.max.ms": 1000}

    async def start(self, apply: Apply) -> None:
        from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

        self._loop, self._apply = asyncio.get_running_loop(), apply
        await asyncio.to_thread(self._ensure_topic)
        # One request in flight keeps the log's order through retries (claims depend on it); a retried
        # duplicate record is harmless (every record applies idempotently). Not the idempotent producer:
        # its producer-id handshake delays the first record by up to a second on noida-db. linger.ms 2: with
        # 0 every append wakes the client's broker thread (11 us of the loop per append in a burst of
        # 1,500 notifications); 2 ms batches a burst's claims and costs a lone claim 2 ms.
        self._producer = Producer({**self._conf("produce"), "linger.ms": 2, "acks": "all",
                                   "max.in.flight.requests.per.connection": 1, "message.timeout.ms": 60_000,
                                   # Reports for failures only: a Python callback per delivered record
                                   # would contend for the GIL with the API at every append.
                                   "delivery.report.only.error": True})
        self._consumer = Consumer({**self._conf("consume"), "group.id": f"hostwatch-alerting-{os.getpid()}",
                                   "enable.auto.commit": False, "fetch.wait.max.ms": 10, "fetch.min.bytes": 1,
                                   "auto.offset.reset": "earliest"})
        self._consumer.assign([TopicPartition(self.topic, 0, OFFSET_BEGINNING)])
        for target, name in ((self._consume, "consume"), (self._poll_producer, "produce")):
            t = threading.Thread(target=target, name=f"hostwatch-alerting-kafka-{name}", daemon=True)
            t.start()
            self._threads.append(t)
        if not await asyncio.to_thread(self._caught_up.wait, self.catch_up_timeout):
            log.warning("alerting: could not replay %s within %.0fs; serving without it (fail-open)", self.topic,
                        self.catch_up_timeout)

    def _ensure_topic(self) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient(self._conf("admin"))
        try:
            futures = admin.create_topics([NewTopic(self.topic, 1, 1, config={"cleanup.policy": "compact"})],
                                          request_timeout=10)
            futures[self.topic].result(timeout=15)
        except Exception as e:  # noqa: BLE001 - TOPIC_ALREADY_EXISTS, or the broker is down (consume retries)
            if "TOPIC_ALREADY_EXISTS" not in str(e) and "already exists" not in str(e):
                log.warning("kafka: cannot create topic %s: %s", self.topic, e)

    def _high_watermark(self) -> int | None:
        from confluent_kafka import TopicPartition

        try:
            _, high = self._consumer.get_watermark_offsets(TopicPartition(self.topic, 0), timeout=5)
            return int(high)
        except Exception:  # noqa: BLE001 - broker unreachable: try again later
            return None

    def _consume(self) -> None:
        target = self._high_watermark()
        position = 0
        while not self._stop.is_set():
            if not self._caught_up.is_set():
                if target is None:
                    target = self._high_watermark()
                if target is not None and position >= target:
                    self._caught_up.set()
            try:
                # poll returns at the first record; consume(n, t) would hold every record up to t to fill n
                first = self._consumer.poll(0.05)
                msgs = [] if first is None else [first, *self._consumer.consume(num_messages=999, timeout=0)]
            except Exception as e:  # noqa: BLE001 - a closed consumer at stop
                if self._stop.is_set():
                    return
                log.warning("kafka consume: %s", e)
                time.sleep(0.5)
                continue
            batch = []
            for m in msgs:
                if m.error():
                    self._error("consume", m.error())
                    continue
                position = m.offset() + 1
                batch.append((m.key(), m.value()))
            if batch:
                self._down_since = None
                assert self._loop is not None
                try:
                    self._loop.call_soon_threadsafe(self._deliver, batch)
                except RuntimeError:
                    return  # the loop closed under us at shutdown

    def _deliver(self, batch: list[tuple[bytes | None, bytes | None]]) -> None:
        assert self._apply is not None
        for key, value in batch:
            _apply_raw(self._apply, key, value, self.metrics)

    def _poll_producer(self) -> None:
        while not self._stop.is_set():
            self._producer.poll(0.1)

    def append(self, key: str, value: dict[str, Any] | None) -> None:
        if self._producer is None:
            return  # stopped (or never started): nothing is running that could need it
        data = None if value is None else encode(value)
        try:
            self._producer.produce(self.topic, key=key.encode(), value=data, on_delivery=self._delivered)
        except BufferError:
            self._producer.poll(0.05)
            self._producer.produce(self.topic, key=key.encode(), value=data, on_delivery=self._delivered)
        if self.metrics is not None:
            self.metrics.child(self.metrics.log_records, "appended").inc()

    def _delivered(self, err: Any, msg: Any) -> None:
        if err is not None:
            self._error("produce", err)

    async def synced(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._producer is not None and len(self._producer) > 0:  # queued, in flight, or not yet reported
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.002)
        return self.reachable()

    def reachable(self) -> bool:
        return self._down_since is None

    def caught_up(self) -> bool:
        return self._caught_up.is_set()

    async def stop(self) -> None:
        if self._producer is not None:
            await asyncio.to_thread(self._producer.flush, 5)
        self._stop.set()
        for t in self._threads:
            await asyncio.to_thread(t.join, 5)
        if self._consumer is not None:
            await asyncio.to_thread(self._consumer.close)
        self._threads.clear()
        # Dropping the handles destroys them: a stopped log must not keep reconnecting to a broker that
        # stops after it (as `hostwatch up` stops its embedded Kafka last).
        self._producer = self._consumer = None


def _apply_raw(apply: Apply, key: bytes | None, value: bytes | None, metrics: AlertingMetrics | None) -> None:
    try:
        k = (key or b"").decode()
        v = None if value is None else orjson.loads(value)
        if v is not None and not isinstance(v, dict):
            raise ValueError("record value is not an object")
    except ValueError as e:
        if metrics is not None:
            metrics.bad_records.inc()
        log.warning("alerting: skipping a bad log record: %s", e)
        return
    if metrics is not None:
        metrics.child(metrics.log_records, "applied").inc()
    try:
        apply(k, v)
    except (KeyError, TypeError, ValueError) as e:
        if metrics is not None:
            metrics.bad_records.inc()
        log.warning("alerting: skipping log record %s: %s", k, e)


class FileLog:
    """A local journal (one JSON line per record), compacted to the latest record per key at start."""

    def __init__(self, path: Path, metrics: AlertingMetrics | None = None) -> None:
        self.path, self.metrics = path, metrics
        self._file: Any = None
        self._apply: Apply | None = None

    async def start(self, apply: Apply) -> None:
        self._apply = apply
        latest: dict[str, Any] = {}
        if self.path.exists():
            for line in self.path.read_bytes().splitlines():
                try:
                    rec = json.loads(line)
                    latest.pop(rec["k"], None)
                    latest[rec["k"]] = rec.get("v")
                except (ValueError, KeyError, TypeError):
                    if self.metrics is not None:
                        self.metrics.bad_records.inc()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for k, v in latest.items():
                if v is not None:
                    f.write(encode({"k": k, "v": v}) + b"\n")
        os.replace(tmp, self.path)
        for k, v in latest.items():
            if v is not None:
                _apply_raw(apply, k.encode(), encode(v), self.metrics)
        self._file = open(self.path, "ab")  # noqa: SIM115 - held for the service's lifetime

    async def synced(self, timeout: float) -> bool:
        return True

    def append(self, key: str, value: dict[str, Any] | None) -> None:
        self._file.write(encode({"k": key, "v": value}) + b"\n")
        self._file.flush()
        apply = self._apply
        assert apply is not None
        data = None if value is None else encode(value)
        asyncio.get_running_loop().call_soon(_apply_raw, apply, key.encode(), data, self.metrics)

    def reachable(self) -> bool:
        return True

    def caught_up(self) -> bool:
        return True

    async def stop(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class MemoryBroker:
    """One in-process log shared by test replicas; each MemoryLog consumes it in order."""

    def __init__(self) -> None:
        self.records: list[tuple[str, dict[str, Any] | None]] = []
        self.logs: list[MemoryLog] = []

    def log(self) -> MemoryLog:
        m = MemoryLog(self)
        self.logs.append(m)
        return m

    def publish(self, key: str, value: dict[str, Any] | None) -> None:
        self.records.append((key, value))
        for m in self.logs:
            m.poke()


class MemoryLog:
    def __init__(self, broker: MemoryBroker) -> None:
        self.broker = broker
        self.position = 0
        self.connected = True  # False: this replica cannot reach the log (appends are lost, like a timeout)
        self._apply: Apply | None = None
        self._scheduled = False

    async def start(self, apply: Apply) -> None:
        self._apply = apply
        self._drain()

    def poke(self) -> None:
        if self._apply is not None and not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        self._scheduled = False
        if not self.connected or self._apply is None:
            return
        while self.position < len(self.broker.records):
            key, value = self.broker.records[self.position]
            self.position += 1
            self._apply(key, None if value is None else json.loads(json.dumps(value)))

    def append(self, key: str, value: dict[str, Any] | None) -> None:
        if self.connected:
            self.broker.publish(key, value)

    async def synced(self, timeout: float) -> bool:
        return self.connected

    def reachable(self) -> bool:
        return self.connected

    def caught_up(self) -> bool:
        return self.connected and self.position >= len(self.broker.records)

    async def stop(self) -> None:
        self._apply = None
        if self in self.broker.logs:
            self.broker.logs.remove(self)
