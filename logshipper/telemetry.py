"""The shipper's own metrics, `hostwatch_logshipper_*`, in a registry of its own (no global one).

The agent's /metrics appends `exposition()`; every component counts through one `ShipperMetrics`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.metrics_core import Metric

PREFIX = "hostwatch_logshipper"


class ShipperMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.received = Counter(f"{PREFIX}_received_events", "Events read or received, per source.",
                                ["source"], registry=r)
        self.sent = Counter(f"{PREFIX}_sent_events", "Events Kafka acknowledged, per source.", ["source"], registry=r)
        self.dropped = Counter(f"{PREFIX}_dropped_events", "Events discarded by the buffer's drop_newest policy "
                               "or undeliverable to Kafka, per source and reason.", ["source", "reason"], registry=r)
        self.rejected = Counter(f"{PREFIX}_rejected_events", "Malformed or oversized input rejected, per source "
                                "and reason.", ["source", "reason"], registry=r)
        self.buffer_events = Gauge(f"{PREFIX}_buffer_events", "Events in the buffer, not yet acknowledged by Kafka.",
                                   registry=r)
        self.buffer_bytes = Gauge(f"{PREFIX}_buffer_bytes", "Bytes of encoded events in the buffer.", registry=r)
        self.buffer_max_bytes = Gauge(f"{PREFIX}_buffer_max_bytes", "The buffer's configured bound in bytes.",
                                      registry=r)
        self.buffer_oldest_age = Gauge(f"{PREFIX}_buffer_oldest_event_age_seconds",
                                       "Age of the oldest buffered event (its source time).", registry=r)
        self.checkpoint_lag = Gauge(f"{PREFIX}_checkpoint_lag_bytes", "Bytes read from a file but not yet "
                                    "committed to its checkpoint (delivered to Kafka).", ["path"], registry=r)
        self.kafka_errors = Counter(f"{PREFIX}_kafka_errors", "Kafka delivery errors (retried or final).",
                                    ["retriable"], registry=r)
        self._refreshers: list[Callable[[], None]] = []

    def on_collect(self, refresh: Callable[[], None]) -> None:
        """Run `refresh` (which sets gauges) before every exposition."""
        self._refreshers.append(refresh)

    def collect(self) -> Iterator[Metric]:
        """prometheus_client's collector protocol, so the agent's /metrics can include the shipper."""
        for refresh in self._refreshers:
            refresh()
        yield from self.registry.collect()

    def exposition(self) -> bytes:
        for refresh in self._refreshers:
            refresh()
        return generate_latest(self.registry)


def now_ns() -> int:
    return time.time_ns()
