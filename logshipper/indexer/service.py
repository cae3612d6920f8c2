"""`Indexer`: one consumer group member, Kafka -> Elasticsearch bulk, commit after success.

One worker thread runs consume -> bulk -> commit in sequence, so an offset is committed only after
every document below it is indexed or dead-lettered: a crash re-reads, never skips. Retriable item
failures (429, 5xx, timeouts) and an unreachable Elasticsearch are retried with exponential backoff
while the consumer's partitions are paused (bounded memory: one bulk at a time); permanent ones
(mapping conflicts, unparsable events) go to the dead-letter topic with the error and the time.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from elasticsearch import ApiError, Elasticsearch, OrjsonSerializer, TransportError, helpers

from logshipper.indexer.bulk import Doc, dead_letter, expand, outcome, prepare
from logshipper.indexer.config import IndexerConfig
from logshipper.indexer.telemetry import IndexerMetrics
from logshipper.indexer.template import IndexNamer, template_body, template_name

log = logging.getLogger("hostwatch.indexer")


def es_client(config: IndexerConfig) -> Elasticsearch:
    es = config.elasticsearch
    auth = (es.username, es.password or "") if es.username else None
    return Elasticsearch(list(es.hosts), basic_auth=auth, request_timeout=es.request_timeout, max_retries=0,
                         retry_on_timeout=False, serializer=OrjsonSerializer())


def install_template(client: Elasticsearch, config: IndexerConfig) -> str:
    """Put the index template; falls back to `text` for servers without match_only_text."""
    es = config.elasticsearch
    name = template_name(es.index)
    for message_type in ("match_only_text", "text"):
        body = template_body(es.index, es.data_stream, message_type)
        try:
            client.indices.put_index_template(name=name, **body)
            return message_type
        except ApiError as e:
            if e.status_code != 400 or message_type == "text":
                raise
    raise AssertionError("unreachable")


class Indexer:
    def __init__(self, config: IndexerConfig, metrics: IndexerMetrics | None = None) -> None:
        if not config.kafka.brokers:
            raise ValueError("no Kafka brokers: give --kafka.brokers HOST:PORT (or run `hostwatch up`)")
        self.config = config
        self.metrics = metrics or IndexerMetrics()
        self.namer = IndexNamer(config.elasticsearch.index, config.elasticsearch.data_stream)
        self.op_type = "create" if config.elasticsearch.data_stream else "index"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self.es: Elasticsearch | None = None
        self.ready = threading.Event()  # set once the consumer has its first assignment
        self.failure: BaseException | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        self.es = es_client(self.config)
        if self.config.template == "install":
            await asyncio.to_thread(self._install_template_retrying)
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="hostwatch-indexer", daemon=True)
        self._thread.start()

    def _install_template_retrying(self, attempts: int = 50) -> None:
        assert self.es is not None
        delay = self.config.bulk.retry_backoff
        for attempt in range(attempts):
            try:
                install_template(self.es, self.config)
                return
            except (TransportError, ApiError) as e:
                if attempt == attempts - 1 or (isinstance(e, ApiError) and e.status_code < 500):
                    raise RuntimeError(f"cannot install the index template: {e}") from e
                time.sleep(delay)
                delay = min(delay * 2, self.config.bulk.retry_backoff_max)

    async def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 60)
            self._thread = None
        if self.es is not None:
            self.es.close()
            self.es = None

    # -- the worker thread -------------------------------------------------------------------------
    def _consumer_config(self) -> dict[str, Any]:
        k = self.config.kafka
        return {
            "bootstrap.servers": ",".join(k.brokers),
            "group.id": k.group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": k.session_timeout_ms,
            "heartbeat.interval.ms": max(100, k.session_timeout_ms // 6),
            "statistics.interval.ms": 2000,
            # a topic the shipper has not created yet is looked for again in seconds, not librdkafka's 5 min
            "topic.metadata.refresh.interval.ms": 2000,
            "stats_cb": self.metrics.on_stats,
            "error_cb": self._on_kafka_error,
        } | ({"group.instance.id": k.instance_id} if k.instance_id else {})

    def _on_kafka_error(self, err: KafkaError) -> None:
        self.metrics.kafka_errors.inc()
        log.warning("kafka: %s", err)

    def _run(self) -> None:
        k = self.config.kafka
        try:
            consumer = self._consumer = Consumer(self._consumer_config())
            self._producer = Producer({"bootstrap.servers": ",".join(k.brokers), "acks": "all",
                                       "enable.idempotence": True, "linger.ms": 5})
            consumer.subscribe([k.topic], on_assign=lambda c, parts: self.ready.set())
            while not self._stop.is_set():
                msgs = consumer.consume(self.config.bulk.max_docs, self.config.bulk.max_wait)
                docs = self._docs(msgs)
                if not docs:
                    continue
                if not self._index(docs):
                    return  # stopping mid-retry: nothing of this batch is committed; it is re-read
                self._commit(docs)
        except BaseException as e:  # noqa: BLE001 - recorded for stop()/tests, and logged
            self.failure = e
            log.exception("indexer stopped")
        finally:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None
            if self._producer is not None:
                self._producer.flush(5)
                self._producer = None

    def _docs(self, msgs: list[Message]) -> list[Doc]:
        docs = []
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    self._on_kafka_error(err)
                continue
            doc = Doc(m.topic() or "", m.partition() or 0, m.offset() or 0, m.value() or b"")
            docs.append(prepare(doc, self.namer, self.op_type))
        return docs

    def _chunks(self, docs: list[Doc]) -> list[list[Doc]]:
        limit = self.config.bulk.max_bytes
        out: list[list[Doc]] = [[]]
        size = 0
        for d in docs:
            if out[-1] and size + len(d.value) > limit:
                out.append([])
                size = 0
            out[-1].append(d)
            size += len(d.value)
        return out

    def _index(self, docs: list[Doc]) -> bool:
        """Index every doc or dead-letter it; False when stopped before that was done."""
        dead = [(d, 0, d.error) for d in docs if d.header is None]
        pending = [d for d in docs if d.header is not None]
        backoff = self.config.bulk.retry_backoff
        while pending:
            retry: list[Doc] = []
            for chunk in self._chunks(pending):
                results = self._bulk(chunk)
                if results is None:
                    retry.extend(chunk)
                    continue
                for doc, (ok, item) in zip(chunk, results, strict=True):
                    kind, status, error = outcome(ok, item)
                    if kind == "ok":
                        self.metrics.indexed.inc()
                    elif kind == "retry":
                        self.metrics.failed.labels("retriable").inc()
                        retry.append(doc)
                    else:
                        self.metrics.failed.labels("permanent").inc()
                        dead.append((doc, status, error))
            pending = retry
            if pending:
                if not self._pause_for(backoff):
                    return False
                backoff = min(backoff * 2, self.config.bulk.retry_backoff_max)
        return self._dead_letter(dead) if dead else True

    def _bulk(self, chunk: list[Doc]) -> list[tuple[bool, dict[str, Any]]] | None:
        assert self.es is not None
        t0 = time.perf_counter()
        try:
            results = list(helpers.streaming_bulk(
                self.es, chunk,  # type: ignore[arg-type]  # Docs, expanded by `expand`
                chunk_size=len(chunk), max_chunk_bytes=self.config.bulk.max_bytes * 2,  # one request: _chunks sized it
                raise_on_error=False, raise_on_exception=True, expand_action_callback=expand,  # type: ignore[arg-type]
                yield_ok=True))
        except (TransportError, ApiError) as e:
            self.metrics.bulk_errors.inc()
            log.warning("bulk of %d failed, will retry: %s", len(chunk), e)
            return None
        self.metrics.bulk_seconds.observe(time.perf_counter() - t0)
        return results

    def _pause_for(self, seconds: float) -> bool:
        """Wait with the partitions paused (the group still sees us alive); False when stopping."""
        c = self._consumer
        assert c is not None
        assignment = c.assignment()
        if assignment:
            c.pause(assignment)
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                if self._stop.is_set():
                    return False
                c.poll(min(0.1, max(0.0, deadline - time.monotonic())))
        finally:
            if assignment:
                c.resume(assignment)
        return True

    def _dead_letter(self, dead: list[tuple[Doc, int, str]]) -> bool:
        p = self._producer
        assert p is not None
        topic = self.config.kafka.dead_letter_topic
        backoff = self.config.bulk.retry_backoff
        todo = dead
        while todo:
            failed: list[tuple[Doc, int, str]] = []
            for item in todo:
                doc, status, error = item
                p.produce(topic, dead_letter(doc, status, error), on_delivery=self._reporter(item, failed))
                log.warning("dead letter %s/%d@%d: %s", doc.topic, doc.partition, doc.offset, error[:300])
            remaining = p.flush(30)
            if remaining:
                return False  # not all confirmed: do not commit; the batch is re-read
            todo = failed
            if todo and not self._pause_for(backoff):
                return False
            backoff = min(backoff * 2, self.config.bulk.retry_backoff_max)
        return True

    def _reporter(self, item: tuple[Doc, int, str],
                  failed: list[tuple[Doc, int, str]]) -> Callable[[KafkaError | None, Message], None]:
        def cb(err: KafkaError | None, msg: Message) -> None:
            if err is not None:
                failed.append(item)
            else:
                self.metrics.dead_lettered.inc()
        return cb

    def _commit(self, docs: list[Doc]) -> None:
        c = self._consumer
        assert c is not None
        top: dict[tuple[str, int], int] = {}
        for d in docs:
            key = (d.topic, d.partition)
            if d.offset >= top.get(key, -1):
                top[key] = d.offset
        offsets = [TopicPartition(t, p, o + 1) for (t, p), o in top.items()]
        try:
            c.commit(offsets=offsets, asynchronous=False)
        except Exception as e:  # noqa: BLE001 - a revoked partition's commit fails; its new owner re-reads
            self.metrics.commit_errors.inc()
            log.warning("offset commit failed (re-delivery overwrites by _id): %s", e)
