"""`hostwatch index` configuration (same mechanism and flag spelling as `hostwatch ship`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hostwatch.core.config import option, section
from hostwatch.core.timefmt import parse_duration
from hostwatch.core.units import parse_size

DEFAULT_GROUP = "hostwatch-indexer"
DEFAULT_INDEX = "hostwatch-logs-%Y.%m.%d"
DEFAULT_ELASTICSEARCH = "http://127.0.0.1:9200"
DEFAULT_TOPIC = "hostwatch-logs"  # the shipper's default topic (logshipper.config.DEFAULT_TOPIC, tested equal)


@dataclass(frozen=True)
class IndexerKafkaConfig:
    brokers: tuple[str, ...] = option((), "Kafka bootstrap servers HOST:PORT,...")
    topic: str = option(DEFAULT_TOPIC, "the shipper's topic")
    group: str = option(DEFAULT_GROUP, "consumer group: indexers in one group share the partitions")
    dead_letter_topic: str = option("hostwatch-logs-dead-letter", "where permanently rejected events go")
    session_timeout_ms: int = option(6000, "consumer group session timeout")
    instance_id: str | None = option(None, "static group membership (KIP-345): a stable id per indexer, e.g. its "
                                           "host name, lets a restarted indexer take its partitions back at once "
                                           "instead of waiting for a rebalance")


@dataclass(frozen=True)
class ElasticsearchConfig:
    hosts: tuple[str, ...] = option((DEFAULT_ELASTICSEARCH,), "Elasticsearch URLs")
    index: str = option(DEFAULT_INDEX, "index name pattern over @timestamp (strftime, UTC), or the data stream")
    data_stream: bool = option(False, "index into a data stream named by `index` (needs real Elasticsearch)")
    username: str | None = option(None, "basic auth user")
    password: str | None = option(None, "basic auth password")
    request_timeout: float = option(30.0, "seconds one bulk request may take", parse=parse_duration)


@dataclass(frozen=True)
class BulkConfig:
    max_docs: int = option(5000, "documents per bulk request at most")
    max_bytes: int = option(8 << 20, "bytes per bulk request at most", parse=parse_size)
    max_wait: float = option(0.2, "how long a bulk waits to fill before it is sent", parse=parse_duration)
    retry_backoff: float = option(0.1, "first retry backoff (doubles)", parse=parse_duration)
    retry_backoff_max: float = option(10.0, "the longest retry backoff", parse=parse_duration)


@dataclass(frozen=True)
class IndexerConfig:
    kafka: IndexerKafkaConfig = section(IndexerKafkaConfig)
    elasticsearch: ElasticsearchConfig = section(ElasticsearchConfig)
    bulk: BulkConfig = section(BulkConfig)
    template: Literal["install", "skip"] = option("install", "install the index template at start")
