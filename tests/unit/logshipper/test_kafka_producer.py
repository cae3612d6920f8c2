"""ConfluentProducer's hand-over with a real librdkafka and no broker (records wait in its queue): which
records carry a report, where refusals go, and where a full queue stops a run."""

from __future__ import annotations

from typing import Any

from logshipper.buffer.base import Record, Run
from logshipper.config import KafkaConfig
from logshipper.sinks.producer import ERR_MSG_SIZE_TOO_LARGE, ConfluentProducer, retire

CONFIG = KafkaConfig(brokers=("127.0.0.1:9",), message_max_bytes=10_000)


class Seen:
    def __init__(self) -> None:
        self.reports: list[tuple[int | None, bytes]] = []
        self.refusals: list[tuple[int, bytes]] = []

    def report(self, err: Any, msg: Any) -> None:
        value = msg.value if isinstance(msg, Record) else msg.value()  # a refusal hands back the Record
        self.reports.append((None if err is None else err.code(), value))

    def refused(self, err: Any, record: Any) -> None:
        self.refusals.append((err.code(), record.value))


def values(n: int, big: set[int] = frozenset()) -> list[bytes]:  # type: ignore[assignment]
    return [b"x" * 20_000 if i in big else b"v%d" % i for i in range(n)]


def test_run_by_run_only_the_last_record_is_reported_and_an_inner_refusal_goes_to_refused() -> None:
    p = ConfluentProducer(CONFIG, lambda err: None)
    seen = Seen()
    try:
        assert p.produce(Run("t", b"k", values(5, big={1})), 0, seen.report, seen.refused) == 5
        assert seen.refusals == [(ERR_MSG_SIZE_TOO_LARGE, b"x" * 20_000)] and seen.reports == []
        assert p.produce(Run("t", b"k", values(3, big={2})), 0, seen.report, seen.refused) == 3
        assert seen.reports == [(ERR_MSG_SIZE_TOO_LARGE, b"x" * 20_000)]  # the last one's refusal is its report
    finally:
        retire(p)
    purged = [v for code, v in seen.reports if code is not None and code != ERR_MSG_SIZE_TOO_LARGE]
    assert purged == [b"v4"]  # of the first run, only the last record carried a report


def test_record_by_record_every_record_is_reported_refusals_included() -> None:
    p = ConfluentProducer(CONFIG, lambda err: None)
    seen = Seen()
    try:
        assert p.produce(Run("t", b"k", values(4, big={0})), 0, seen.report) == 4
        assert seen.reports == [(ERR_MSG_SIZE_TOO_LARGE, b"x" * 20_000)] and seen.refusals == []
    finally:
        retire(p)
    assert [v for _, v in seen.reports] == [b"x" * 20_000, b"v1", b"v2", b"v3"]


def test_a_full_queue_stops_a_run_where_it_is_and_it_resumes_there_with_its_last_record_reported() -> None:
    p = ConfluentProducer(KafkaConfig(brokers=("127.0.0.1:9",), max_in_flight_events=2), lambda err: None)
    seen = Seen()
    run = Run("t", b"k", values(10))
    try:
        assert p.produce(run, 0, seen.report, seen.refused) == 4  # queue.buffering.max.messages: 2 x 2
        assert p.produce(run, 4, seen.report, seen.refused) == 4
        p.purge()
        p.poll(0)
        assert p.produce(run, 4, seen.report, seen.refused) == 8
        p.purge()
        p.poll(0)
        assert p.produce(run, 8, seen.report, seen.refused) == 10
    finally:
        retire(p)
    assert [v for _, v in seen.reports] == [b"v9"] and seen.refusals == []
