"""Alerting: what fires (Prometheus's ALERTS), what the hostwatch alerting replicas received and
notified, how they share the work, and whether each replica is healthy."""

from __future__ import annotations

from collections.abc import Sequence

from grafanalib.core import Template

from dashboards.boards.base import ALL_HOSTS, Board
from dashboards.catalogue import JOB_ALERTING
from dashboards.exprs import BY_HOST, Exprs, Scope
from dashboards.panels import OPS, ORANGE, RED, SECONDS, SHORT, Cell, Query, stat, timeseries, variable

REPLICA = Scope(('instance=~"$replica"',))
FIRING = Scope(('alertstate="firing"',))
BY_INTEGRATION = ("instance", "integration")
ACTIVE = 'state="active"'


def cells(e: Exprs) -> Sequence[Cell]:
    scraped = e.sel("up", REPLICA, f'job="{JOB_ALERTING}"')
    return [
        stat("Alerts firing", SHORT, [Query(f"count by (severity) ({e.sel('ALERTS', FIRING)})", "{{severity}}")],
             description="Alerts Prometheus fires now, by severity (the Watchdog always fires).", w=6),
        stat("Alerts held", SHORT, [Query(f"max by (instance) ({e.sel('hostwatch_alerting_alerts', REPLICA)})",
                                          "{{instance}}")], description="Alerts in each replica's store.", w=6),
        stat("Replicas scraped", SHORT, [Query(f"sum({scraped})", "up")], w=4,
             steps=(("red", None), (ORANGE, 1.0), ("green", 2.0)),
             description="Replicas Prometheus reaches (two for HA)."),
        stat("Replicas in the log", SHORT, [Query(f"max({e.sel('hostwatch_alerting_replicas', REPLICA)})", "seen")],
             steps=(("red", None), (ORANGE, 1.0), ("green", 2.0)), w=4,
             description="Replicas whose heartbeats reach the replicated log."),
        stat("Active silences", SHORT,
             [Query(f"max({e.sel('hostwatch_alerting_silences', REPLICA, ACTIVE)})", "active")], w=4,
             description="Silences in effect now."),
        timeseries("Firing alerts by name", SHORT, [
            Query(f"count by (alertname, severity) ({e.sel('ALERTS', FIRING)})", "{{alertname}} ({{severity}})"),
        ], description="From Prometheus's ALERTS series."),
        timeseries("Alerts received", OPS, [
            Query(e.rate_by("hostwatch_alerting_alerts_received_total", REPLICA, ("instance", "status")),
                  "{{instance}} {{status}}"),
        ], description="Alerts posted to each replica (Prometheus re-sends firing ones every minute)."),
        timeseries("Notifications delivered", OPS, [
            Query(e.rate_by("hostwatch_alerting_notifications_total", REPLICA, BY_INTEGRATION),
                  "{{instance}} {{integration}}"),
        ], w=8, description="Per receiver integration; across replicas each group is notified once."),
        timeseries("Notification failures", OPS, [
            Query(e.rate_by("hostwatch_alerting_notifications_failed_total", REPLICA, (*BY_INTEGRATION, "reason")),
                  "{{instance}} {{integration}} {{reason}}"),
        ], w=8, limit_steps=(("green", None), (RED, 0.01)), description="Attempts that failed (they are retried)."),
        timeseries("Notification latency p99", SECONDS, [
            Query(e.histogram_p(0.99, "hostwatch_alerting_notification_latency_seconds", REPLICA, BY_INTEGRATION),
                  "{{instance}} {{integration}}"),
        ], w=8, description="From the group's flush to the delivered notification."),
        timeseries("Claims: who notifies", OPS, [
            Query(e.rate_by("hostwatch_alerting_claims_total", REPLICA, ("instance", "outcome")),
                  "{{instance}} {{outcome}}"),
        ], description="won: this replica notifies; lost: another did; takeover: a silent owner's claim taken."),
        timeseries("De-duplicated flushes", OPS, [
            Query(e.rate_by("hostwatch_alerting_dedup_skips_total", REPLICA, BY_HOST), "{{instance}}"),
        ], description="Flushes the notification log showed were already notified."),
        timeseries("Escalations: on-call incidents", SHORT, [
            Query(f"max by (status) ({e.sel('hostwatch_alerting_oncall_incidents', REPLICA)})", "{{status}}"),
        ], h=6, description="Incidents of the escalation policies by status (triggered pages the next level "
                            "when its timeout runs out; acknowledged stops escalating). Replicas agree through "
                            "the log, so their counts match."),
        timeseries("Replica health", SHORT, [
            Query(f"max by (instance) ({scraped})", "{{instance}} scraped"),
            Query(f"max by (instance) ({e.sel('hostwatch_alerting_replica_up', REPLICA)})", "{{instance}} serving"),
            Query(f"max by (instance) ({e.sel('hostwatch_alerting_kafka_up', REPLICA)})",
                  "{{instance}} log reachable"),
        ], h=6, description="1 = yes. A replica that cannot reach the replicated log fails open after "
                                  "--cluster.peer-timeout and may notify twice."),
    ]


def variables(e: Exprs) -> Sequence[Template]:
    query = f"label_values({e.sel('hostwatch_alerting_replica_up')}, instance)"
    return [variable("replica", "Replica", query, multi=True, all_value=ALL_HOSTS)]


BOARD = Board(
    name="alerting", title="hostwatch / Alerting",
    description="Active alerts, notifications and failures, claims and de-duplication, escalations, replica health.",
    cells=cells, variables=variables,
)
