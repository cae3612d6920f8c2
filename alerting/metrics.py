"""hostwatch_alerting_* metrics in a registry of their own (nothing registered at import time)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class AlertingMetrics:
    def __init__(self) -> None:
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        r = self.registry = CollectorRegistry()
        self.alerts_received = Counter("hostwatch_alerting_alerts_received", "Alerts received through the API.",
                                       ["status"], registry=r)
        self.alerts_invalid = Counter("hostwatch_alerting_alerts_invalid", "Alerts rejected by the API.",
                                      registry=r)
        self.notifications = Counter("hostwatch_alerting_notifications", "Notifications delivered.",
                                     ["integration"], registry=r)
        self.notifications_failed = Counter("hostwatch_alerting_notifications_failed",
                                            "Notification attempts that failed.", ["integration", "reason"],
                                            registry=r)
        self.notification_latency = Histogram("hostwatch_alerting_notification_latency_seconds",
                                              "Time from the flush to the delivered notification.",
                                              ["integration"], registry=r)
        self.claims = Counter("hostwatch_alerting_claims", "Notification claims by outcome (won, lost, takeover, "
                              "released, unavailable = Kafka unreachable, fail-open).", ["outcome"], registry=r)
        self.dedup_skips = Counter("hostwatch_alerting_dedup_skips", "Flushes the notification log made "
                                   "unnecessary.", registry=r)
        self.kafka_errors = Counter("hostwatch_alerting_kafka_errors", "Kafka client errors.", ["op"], registry=r)
        self.log_records = Counter("hostwatch_alerting_log_records", "Replicated-log records appended by this "
                                   "replica or applied from the log.", ["direction"], registry=r)
        self.bad_records = Counter("hostwatch_alerting_log_bad_records", "Log records that could not be decoded.",
                                   registry=r)
        self.replica_up = Gauge("hostwatch_alerting_replica_up", "1 while this replica serves.", registry=r)
        self.kafka_up = Gauge("hostwatch_alerting_kafka_up", "1 while the replicated log is reachable.", registry=r)
        self.replicas = Gauge("hostwatch_alerting_replicas", "Replicas seen in the log recently.", registry=r)
        self.alerts = Gauge("hostwatch_alerting_alerts", "Alerts in the store.", registry=r)
        self.oncall_undelivered = Counter("hostwatch_alerting_oncall_undelivered", "On-call notifications to "
                                          "contacts hostwatch does not send to (email: data only).", ["contact"],
                                          registry=r)
        self.oncall_incidents = Gauge("hostwatch_alerting_oncall_incidents", "Escalation incidents by status.",
                                      ["status"], registry=r)
        self.silences = Gauge("hostwatch_alerting_silences", "Silences by state.", ["state"], registry=r)

    def child(self, metric: Any, *values: str) -> Any:
        """`metric.labels(*values)`, remembered: labels() takes a lock and builds its key on every call, and
        a burst of notifications asks for the same few children thousands of times a second."""
        key = (id(metric), values)
        c = self._children.get(key)
        if c is None:
            c = self._children[key] = metric.labels(*values)
        return c

    def exposition(self) -> bytes:
        return bytes(generate_latest(self.registry))
