"""The Kafka client behind the sink's small `Producer` interface: confluent-kafka (librdkafka).

Measured here it takes ~0.7 us of the event loop's CPU per record (produce, and its delivery report
served by poll) where kafka-python took ~24. Records go in with positional arguments (a keyword argument
costs a dict per call).

A run (one topic and key: one partition) is reported either record by record or by its last record
alone. The second is what makes the sink cheap (a Python callback per record was ~19% of the shipper's
loop), and it is sound because of `enable.gapless.guarantee`: with the idempotent producer a partition's
records are written in order, and a record that fails for good makes the producer fatal instead of
letting later records through (librdkafka: "the sequence of messages may be cut short and fail before
all messages are written, but may not fail individual messages in the series"; message.timeout.ms is 0,
so no record times out either). So a run's last record delivered means all of the run was, as long as
its producer had not turned fatal before that report (KafkaSink checks this too, for brokers that do not
check sequence numbers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from operator import length_hint
from typing import Any, Protocol

from logshipper.buffer.base import Record, Run
from logshipper.config import KafkaConfig

PARTITION_ANY = -1  # librdkafka's RD_KAFKA_PARTITION_UA: the partitioner picks (by key)
CLIENT_QUEUE_KBYTES = 64 << 10  # what librdkafka may hold (the events bound usually comes first)

# librdkafka error codes (confluent_kafka.KafkaError) this module acts on
ERR_MSG_SIZE_TOO_LARGE = 10
ERR_INVALID_MSG_SIZE = 4
ERR_INVALID_MSG = 2
ERR_RECORD_LIST_TOO_LARGE = 18
ERR_INVALID_RECORD = 87
ERR__INVALID_ARG = -186
ERR__PURGE_QUEUE = -152
ERR__PURGE_INFLIGHT = -151
ERR__FATAL = -150
ERR__GAPLESS_GUARANTEE = -148
RECORD_ERRORS = frozenset({ERR_MSG_SIZE_TOO_LARGE, ERR_INVALID_MSG_SIZE, ERR_INVALID_MSG, ERR_RECORD_LIST_TOO_LARGE,
                           ERR_INVALID_RECORD, ERR__INVALID_ARG})  # this record can never be taken
PURGED = frozenset({ERR__PURGE_QUEUE, ERR__PURGE_INFLIGHT})


class DeliveryError(Protocol):
    """What a delivery report's error offers (confluent_kafka.KafkaError has these)."""

    def code(self) -> int: ...

    def name(self) -> str: ...

    def retriable(self) -> bool: ...

    def fatal(self) -> bool: ...


class DeliveredMessage(Protocol):
    def topic(self) -> str | None: ...

    def key(self) -> bytes | None: ...

    def value(self) -> bytes | None: ...


OnDelivery = Callable[[DeliveryError | None, Any], None]  # (error, message or Record), from any thread
OnRefused = Callable[[DeliveryError, Record], None]


class Producer(Protocol):
    def produce(self, run: Run, start: int, on_delivery: OnDelivery, refused: OnRefused | None = None) -> int:
        """Hand the records of run.values[start:] to the client. Without `refused`, each is reported to
        `on_delivery`: now, with the Record, when the client refuses it outright; later, from poll(), with
        the delivered message. With `refused`, only the run's last record is reported to `on_delivery`
        (so, the same way), and any other record the client refuses outright goes to `refused`; the rest
        are not reported. Returns the index of the first value not taken because the client's queue is
        full (len(run.values): all)."""
        ...

    def poll(self, timeout: float) -> None:
        """Serve delivery reports and client errors; a fatal error goes to the factory's `on_error`."""
        ...

    def purge(self) -> None:
        """Abandon what is queued or in flight (reported with a purge error)."""
        ...

    def flush(self, timeout: float) -> int: ...


ProducerFactory = Callable[[KafkaConfig, Callable[[DeliveryError], None]], Producer]


class ConfluentProducer:
    def __init__(self, config: KafkaConfig, on_error: Callable[[DeliveryError], None]) -> None:
        import confluent_kafka

        self._error_type = confluent_kafka.KafkaError
        self._exception_type = confluent_kafka.KafkaException
        self._on_error = on_error
        self._producer = confluent_kafka.Producer({
            "bootstrap.servers": ",".join(config.brokers),
            "acks": "all",
            "enable.idempotence": True,
            "enable.gapless.guarantee": True,  # what lets a run be reported by its last record (module doc)
            "compression.type": config.compression,
            "message.max.bytes": config.message_max_bytes,
            "linger.ms": config.linger_ms,
            "message.timeout.ms": 0,  # never give up on a record: the buffer holds it until Kafka has it
            "retry.backoff.ms": config.retry_backoff_ms,
            "retry.backoff.max.ms": config.retry_backoff_max_ms,
            "reconnect.backoff.ms": config.retry_backoff_ms,
            "reconnect.backoff.max.ms": config.retry_backoff_max_ms,
            "queue.buffering.max.messages": min(2 * config.max_in_flight_events, 2_000_000_000),
            "queue.buffering.max.kbytes": CLIENT_QUEUE_KBYTES,
            "partitioner": "murmur2_random",  # the Java client's: the same key lands where Java producers put it
            "error_cb": on_error,
            "log_level": 2,  # connection failures come through error_cb (rate-limited), not a log line each
            "logger": logging.getLogger("hostwatch.logshipper.kafka.client"),
        })

    def produce(self, run: Run, start: int, on_delivery: OnDelivery, refused: OnRefused | None = None) -> int:
        values = run.values
        if not values:
            return 0
        if refused is None:
            return self._hand_over(run, start, len(values), on_delivery, on_delivery)
        last = len(values) - 1
        i = self._hand_over(run, start, last, None, refused) if start < last else start
        return i if i < last else self._hand_over(run, last, last + 1, on_delivery, on_delivery)

    def _hand_over(self, run: Run, start: int, stop: int, on_delivery: OnDelivery | None,
                   refused: OnRefused) -> int:
        """Produce run.values[start:stop], each with `on_delivery` (None: unreported); a record the client
        refuses goes to `refused`. Returns the index of the first value the full queue did not take."""
        produce = self._producer.produce
        topic, key, values = run.topic, run.key, run.values
        rest = values[start:stop] if start or stop < len(values) else values
        it = iter(rest)
        while True:
            try:
                for value in it:  # positional arguments: a keyword would cost a dict per record
                    produce(topic, value, key, PARTITION_ANY, on_delivery)
                return stop
            except BufferError:
                return start + len(rest) - length_hint(it) - 1
            except self._exception_type as e:
                err: DeliveryError = e.args[0]
            except (TypeError, ValueError) as e:
                err = self._error_type(ERR_INVALID_RECORD, str(e))
            refused(err, Record(topic, key, rest[len(rest) - length_hint(it) - 1]))

    def poll(self, timeout: float) -> None:
        try:
            self._producer.poll(timeout)
        except self._exception_type as e:  # confluent-kafka raises a fatal error from poll, not to error_cb
            self._raised(e)

    def purge(self) -> None:
        self._producer.purge()

    def flush(self, timeout: float) -> int:
        try:
            return int(self._producer.flush(timeout))
        except self._exception_type as e:
            self._raised(e)
            return len(self._producer)

    def _raised(self, e: Exception) -> None:
        err: DeliveryError = e.args[0]
        if not err.fatal():
            raise e
        self._on_error(err)


def retire(producer: Producer) -> None:
    """Abandon what a producer still holds (reported as purged) and let it go."""
    producer.purge()
    producer.flush(1.0)
