"""`hostwatch index` against real Kafka and Elasticsearch (noida-db): idempotent by event.id, dead
letters for mapping conflicts with offsets advancing, an Elasticsearch outage, and two indexers in
one consumer group sharing and taking over partitions."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from elasticsearch import Elasticsearch

from peers import HostwatchProcess, NoidaDB, Tansu, free_port, read_topic

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NoidaDB]:
    with NoidaDB(tmp_path_factory.mktemp("kafka")) as db:
        yield db


@pytest.fixture
def es_peer(tmp_path: Path) -> Iterator[NoidaDB]:
    """A second noida-db whose Elasticsearch alone is used, so it can go down while Kafka stays up."""
    with NoidaDB(tmp_path / "es") as db:
        yield db


def event(i: int, container: str = "idx", **extra: object) -> bytes:
    doc = {"@timestamp": f"2026-12-01T08:{i // 60000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}000000Z",
           "message": f"n={i}", "event": {"id": f"{container}:{i}", "sequence": i},
           "container": {"name": container, "id": "a" * 64}, "host": {"name": "h1"}, "stream": "stdout"}
    doc.update(extra)
    return orjson.dumps(doc)


def produce(bootstrap: str, topic: str, values: list[bytes], key: bytes | None = None) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all"})
    for i, v in enumerate(values):
        p.produce(topic, v, key=key if key is not None else str(i % 8).encode())
        if i % 5000 == 0:
            p.poll(0)
    assert p.flush(30) == 0


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[topic].result(30)


class IndexProcess(HostwatchProcess):
    def __init__(self, tmp: Path, bootstrap: str, es_url: str, topic: str, group: str, name: str = "index") -> None:
        self.port = free_port()
        super().__init__(name, ["index", "--kafka.brokers", bootstrap, "--kafka.topic", topic, "--kafka.group", group,
                                "--kafka.dead-letter-topic", f"{topic}-dead", "--elasticsearch.hosts", es_url,
                                "--web.listen-address", f"127.0.0.1:{self.port}", "--bulk.retry-backoff-max", "1s"],
                         tmp)

    def indexed(self) -> float:
        try:
            text = urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5).read().decode()
        except OSError:
            return 0.0
        for line in text.splitlines():
            if line.startswith("hostwatch_indexer_indexed_events_total "):
                return float(line.split()[1])
        return 0.0


def count(es: Elasticsearch, container: str, want: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    n = -1
    while time.monotonic() < deadline:
        es.indices.refresh(index="hostwatch-logs-*", ignore_unavailable=True, allow_no_indices=True)
        n = es.count(index="hostwatch-logs-*", query={"term": {"container.name": container}},
                     ignore_unavailable=True, allow_no_indices=True)["count"]
        if n >= want:
            time.sleep(1)  # and nothing more arrives
            es.indices.refresh(index="hostwatch-logs-*")
            return int(es.count(index="hostwatch-logs-*", query={"term": {"container.name": container}})["count"])
        time.sleep(0.3)
    return n


def committed(bootstrap: str, group: str, topic: str) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        meta = c.list_topics(topic, timeout=10).topics[topic]
        parts = c.committed([TopicPartition(topic, p) for p in meta.partitions], timeout=10)
        return sum(max(tp.offset, 0) for tp in parts)
    finally:
        c.close()


def test_redelivery_overwrites_and_dead_letters_advance(kafka: NoidaDB, es_peer: NoidaDB, tmp_path: Path) -> None:
    topic, group = f"ix-{time.monotonic_ns()}", "ix-dl"
    values = [event(i, "dl") for i in range(3000)]
    values[100] = event(100, "dl", log={"offset": "not-a-number"})  # log.offset is a long: a mapping conflict
    values[200] = b"this is not json"
    produce(kafka.bootstrap, topic, values + values[:500])  # the first 500 delivered twice
    with IndexProcess(tmp_path, kafka.bootstrap, es_peer.es_url, topic, group) as ix:
        es = Elasticsearch(es_peer.es_url, request_timeout=60)
        assert count(es, "dl", 2998) == 2998, ix.log.read_text()[-3000:]
        dead = [orjson.loads(r.value) for r in read_topic(kafka.bootstrap, f"{topic}-dead", 2, timeout=30)]
        assert len(dead) >= 2
        by_offset = {d["kafka"]["offset"]: d for d in dead}
        assert "log.offset" in by_offset[100]["error"]["message"] and by_offset[100]["error"]["status"] == 400
        assert by_offset[100]["event"]["original"]["message"] == "n=100"
        assert "invalid JSON" in by_offset[200]["error"]["message"]
        assert by_offset[200]["event"]["original"] == "this is not json"
        deadline = time.monotonic() + 30
        while committed(kafka.bootstrap, group, topic) < 3500 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert committed(kafka.bootstrap, group, topic) == 3500  # past the dead letters too
        hit = es.search(index="hostwatch-logs-*", query={"term": {"event.id": "dl:7"}})["hits"]["hits"][0]
        assert hit["_id"] == "dl:7" and hit["_index"] == "hostwatch-logs-2026.12.01"


def test_elasticsearch_outage_loses_nothing(kafka: NoidaDB, es_peer: NoidaDB, tmp_path: Path) -> None:
    topic = f"ix-outage-{time.monotonic_ns()}"
    with IndexProcess(tmp_path, kafka.bootstrap, es_peer.es_url, topic, "ix-outage") as ix:
        produce(kafka.bootstrap, topic, [event(i, "outage") for i in range(0, 5000)])
        es = Elasticsearch(es_peer.es_url, request_timeout=60)
        assert count(es, "outage", 5000) == 5000, ix.log.read_text()[-3000:]
        es_peer.stop()
        produce(kafka.bootstrap, topic, [event(i, "outage") for i in range(5000, 15000)])
        time.sleep(20)
        es_peer.start()
        es = Elasticsearch(es_peer.es_url, request_timeout=60)
        assert count(es, "outage", 15000, timeout=90) == 15000, ix.log.read_text()[-3000:]
        assert ix.proc is not None and ix.proc.poll() is None


@pytest.fixture
def tansu(tmp_path: Path) -> Iterator[Tansu]:
    with Tansu(tmp_path / "tansu") as t:
        yield t


def test_two_indexers_share_partitions_and_take_over(tansu: Tansu, es_peer: NoidaDB, tmp_path: Path) -> None:
    """On tansu: noida-db 0.2.3's group coordinator never completes the rebalance after a member dies
    (the survivor is revoked and stays unassigned), which real Kafka and tansu do."""
    kafka = tansu
    topic, group = f"ix-group-{time.monotonic_ns()}", "ix-group"
    create_topic(kafka.bootstrap, topic, 4)
    with IndexProcess(tmp_path, kafka.bootstrap, es_peer.es_url, topic, group, "a") as a, \
            IndexProcess(tmp_path, kafka.bootstrap, es_peer.es_url, topic, group, "b") as b:
        time.sleep(8)  # both joined
        first = [event(i, "grp") for i in range(8000)]
        p = Producer({"bootstrap.servers": kafka.bootstrap})
        for i, v in enumerate(first):
            p.produce(topic, v, partition=i % 4)
        assert p.flush(30) == 0
        es = Elasticsearch(es_peer.es_url, request_timeout=60)
        assert count(es, "grp", 8000) == 8000
        assert a.indexed() > 0 and b.indexed() > 0, (a.indexed(), b.indexed())  # the partitions were shared
        a.kill()
        for i in range(8000, 16000):
            p.produce(topic, event(i, "grp"), partition=i % 4)
        assert p.flush(30) == 0
        assert count(es, "grp", 16000, timeout=90) == 16000, b.log.read_text()[-3000:]
