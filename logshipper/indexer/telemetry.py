"""The indexer's own metrics, `hostwatch_indexer_*`, in a registry of its own."""

from __future__ import annotations

import json
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric

PREFIX = "hostwatch_indexer"


class IndexerMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.indexed = Counter(f"{PREFIX}_indexed_events", "Events Elasticsearch accepted.", registry=r)
        self.failed = Counter(f"{PREFIX}_failed_events", "Bulk items that failed, by kind (retriable ones are "
                              "retried; permanent ones are dead-lettered).", ["kind"], registry=r)
        self.dead_lettered = Counter(f"{PREFIX}_dead_lettered_events", "Events written to the dead-letter topic.",
                                     registry=r)
        self.bulk_errors = Counter(f"{PREFIX}_bulk_errors", "Bulk requests that failed as a whole (retried).",
                                   registry=r)
        self.commit_errors = Counter(f"{PREFIX}_commit_errors", "Offset commits that failed.", registry=r)
        self.kafka_errors = Counter(f"{PREFIX}_kafka_errors", "Kafka client errors.", registry=r)
        self.bulk_seconds = Histogram(f"{PREFIX}_bulk_duration_seconds", "Latency of one bulk request.",
                                      buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=r)
        self.lag = Gauge(f"{PREFIX}_consumer_lag", "Records behind the partition's end, per partition.",
                         ["topic", "partition"], registry=r)

    def on_stats(self, stats_json: str) -> None:
        """librdkafka's statistics callback: consumer lag per assigned partition."""
        try:
            stats = json.loads(stats_json)
        except ValueError:
            return
        for topic, t in (stats.get("topics") or {}).items():
            for pid, p in (t.get("partitions") or {}).items():
                lag = p.get("consumer_lag")
                if pid == "-1" or not isinstance(lag, int) or lag < 0 or p.get("fetch_state") == "none":
                    continue
                self.lag.labels(topic, pid).set(lag)

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()
