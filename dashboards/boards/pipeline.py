"""Log pipeline: the shipper (sources -> buffer -> Kafka) per host, then the indexer (Kafka ->
Elasticsearch) wherever it runs."""

from __future__ import annotations

from collections.abc import Sequence

from grafanalib.core import Template

from dashboards.boards.base import ALL_HOSTS, Board
from dashboards.exprs import BY_HOST, HOST, Exprs, Scope
from dashboards.panels import (
    BYTES,
    OPS,
    ORANGE,
    PERCENT_UNIT,
    RED,
    SECONDS,
    SHORT,
    YELLOW,
    Cell,
    Query,
    stat,
    timeseries,
    variable,
)

RECENT = "1h"
BY_SOURCE = ("instance", "source")
BY_REASON = ("instance", "source", "reason")
ANYWHERE = Scope()  # indexers run beside the agent or on their own: every instance


def buffer_fill(e: Exprs) -> str:
    return (f"max by (instance) ({e.sel('hostwatch_logshipper_buffer_bytes', HOST)}) / "
            f"max by (instance) ({e.sel('hostwatch_logshipper_buffer_max_bytes', HOST)} > 0)")


def cells(e: Exprs) -> Sequence[Cell]:
    oldest = f"max by (instance) ({e.sel('hostwatch_logshipper_buffer_oldest_event_age_seconds', HOST)})"
    return [
        stat("Events in", OPS, [Query(e.rate_by("hostwatch_logshipper_received_events_total", HOST, BY_HOST),
                                      "{{instance}}")], description="Events read or received per second."),
        stat("Events out", OPS, [Query(e.rate_by("hostwatch_logshipper_sent_events_total", HOST, BY_HOST),
                                       "{{instance}}")], description="Events Kafka acknowledged per second."),
        stat(f"Dropped ({RECENT})", SHORT,
             [Query(e.increase_by("hostwatch_logshipper_dropped_events_total", HOST, RECENT, BY_HOST),
                    "{{instance}}")], steps=(("green", None), (RED, 1.0)), decimals=0,
             description="Events lost on purpose (drop_newest buffer, full UDP queue) or refused by Kafka."),
        stat(f"Rejected ({RECENT})", SHORT,
             [Query(e.increase_by("hostwatch_logshipper_rejected_events_total", HOST, RECENT, BY_HOST),
                    "{{instance}}")], steps=(("green", None), (YELLOW, 1.0)), decimals=0,
             description="Malformed or oversized input turned away at the door."),
        stat("Buffer fill", PERCENT_UNIT, [Query(buffer_fill(e), "{{instance}}")],
             steps=(("green", None), (YELLOW, 0.5), (RED, 0.8)), description="Buffered bytes over the bound."),
        stat("Oldest buffered event", SECONDS, [Query(oldest, "{{instance}}")],
             steps=(("green", None), (YELLOW, 60.0), (RED, 300.0)),
             description="Age of the oldest event Kafka has not acknowledged yet."),
        timeseries("Received per source", OPS, [
            Query(e.rate_by("hostwatch_logshipper_received_events_total", HOST, BY_SOURCE), "{{instance}} {{source}}"),
        ], w=8, description="docker_json, journald, fluent_forward, gelf."),
        timeseries("Sent to Kafka per source", OPS, [
            Query(e.rate_by("hostwatch_logshipper_sent_events_total", HOST, BY_SOURCE), "{{instance}} {{source}}"),
        ], w=8, description="Acknowledged by Kafka; only then do sources commit their position."),
        timeseries("Dropped and rejected", OPS, [
            Query(e.rate_by("hostwatch_logshipper_dropped_events_total", HOST, BY_REASON),
                  "dropped {{source}} {{reason}}"),
            Query(e.rate_by("hostwatch_logshipper_rejected_events_total", HOST, BY_REASON),
                  "rejected {{source}} {{reason}}"),
        ], w=8, description="Per source and reason."),
        timeseries("Buffer", BYTES, [
            Query(f"max by (instance) ({e.sel('hostwatch_logshipper_buffer_bytes', HOST)})", "{{instance}} buffered"),
            Query(f"max by (instance) ({e.sel('hostwatch_logshipper_buffer_max_bytes', HOST)})", "{{instance}} bound"),
        ], w=8, description="Bytes waiting for Kafka, against the buffer's bound."),
        timeseries("Oldest buffered event", SECONDS, [Query(oldest, "{{instance}}")], w=8,
                   limit_steps=(("green", None), (ORANGE, 300.0)),
                   description="Grows when Kafka is slow or away: the shipper is lagging."),
        timeseries("Checkpoint lag", BYTES, [
            Query(e.sum_by("hostwatch_logshipper_checkpoint_lag_bytes", HOST, BY_HOST), "{{instance}}"),
        ], w=8, description="Bytes read from log files but not yet committed (delivered) to their checkpoints."),
        timeseries("Kafka consumer lag (indexer)", SHORT, [
            Query(e.sum_by("hostwatch_indexer_consumer_lag", ANYWHERE, ("instance", "topic")),
                  "{{instance}} {{topic}}"),
        ], w=8, description="Records the indexers' consumer group has yet to read, per topic."),
        timeseries("Indexed into Elasticsearch", OPS, [
            Query(e.rate_by("hostwatch_indexer_indexed_events_total", ANYWHERE, BY_HOST), "{{instance}}"),
        ], w=8, description="Documents Elasticsearch accepted per second."),
        timeseries("Indexing failures and dead letters", OPS, [
            Query(e.rate_by("hostwatch_indexer_failed_events_total", ANYWHERE, ("instance", "kind")),
                  "{{instance}} failed {{kind}}"),
            Query(e.rate_by("hostwatch_indexer_dead_lettered_events_total", ANYWHERE, BY_HOST),
                  "{{instance}} dead-lettered"),
        ], w=8, description="Bulk items that failed (retriable ones are retried) and events sent to the "
                            "dead-letter topic."),
        timeseries("Bulk request latency", SECONDS, [
            Query(e.histogram_p(0.5, "hostwatch_indexer_bulk_duration_seconds", ANYWHERE), "{{instance}} p50"),
            Query(e.histogram_p(0.99, "hostwatch_indexer_bulk_duration_seconds", ANYWHERE), "{{instance}} p99"),
        ], w=24, h=6, description="Time one bulk request to Elasticsearch takes."),
    ]


def variables(e: Exprs) -> Sequence[Template]:
    query = f"label_values({e.sel('hostwatch_logshipper_received_events_total')}, instance)"
    return [variable("host", "Host", query, multi=True, all_value=ALL_HOSTS)]


BOARD = Board(
    name="log-pipeline", title="hostwatch / Log pipeline",
    description="Events received, sent, dropped and rejected per source; buffer fill and age; the indexer's "
                "consumer lag, indexing rate and dead letters.",
    cells=cells, variables=variables,
)
