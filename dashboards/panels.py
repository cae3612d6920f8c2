"""Shared panel builders: every panel of every dashboard is made here, so panels look and behave
alike, and the grid layout is computed (never hand-placed).

A builder returns a `Cell` (the panel and its size); `flow()` places cells left to right in rows of
24 columns, so panels never overlap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import attr
from grafanalib.core import GridPos, Panel, Stat, Template, TimeSeries
from grafanalib.elasticsearch import CountMetricAgg, DateHistogramGroupBy, ElasticsearchTarget

GRID_COLUMNS = 24
PROMETHEUS_UID = "hostwatch-prometheus"
ELASTICSEARCH_UID = "hostwatch-elasticsearch"
PROMETHEUS = {"type": "prometheus", "uid": PROMETHEUS_UID}
ELASTICSEARCH = {"type": "elasticsearch", "uid": ELASTICSEARCH_UID}

# Grafana's classic palette, and the threshold colours the panels use.
GREEN, YELLOW, ORANGE, RED = "green", "#EAB839", "orange", "red"

# Units (Grafana's unit ids)
BYTES, BYTES_RATE, PERCENT_UNIT, SECONDS, OPS, SHORT = "bytes", "Bps", "percentunit", "s", "ops", "short"
CORES = "short"  # 1 = one CPU core busy


@dataclass(frozen=True)
class Query:
    """One PromQL target: `legend` is Grafana's legendFormat ({{label}}); `instant` for current values."""

    expr: str
    legend: str = ""
    instant: bool = False


@dataclass(frozen=True)
class LogQuery:
    """One Elasticsearch target: a Lucene query counted per date_histogram bucket."""

    lucene: str
    legend: str = ""


@dataclass(frozen=True)
class Cell:
    panel: Panel
    w: int
    h: int


def _prometheus_targets(queries: Sequence[Query]) -> list[dict[str, object]]:
    return [
        {"datasource": PROMETHEUS, "expr": q.expr, "legendFormat": q.legend or "__auto", "refId": chr(ord("A") + i),
         "instant": q.instant, "range": not q.instant, "editorMode": "code"}
        for i, q in enumerate(queries)
    ]


def _thresholds(steps: Sequence[tuple[str, float | None]]) -> list[dict[str, object]]:
    return [{"color": color, "value": value} for color, value in steps]


def timeseries(title: str, unit: str, queries: Sequence[Query], *, description: str, w: int = 12, h: int = 8,
               stacked: bool = False, max_value: int | None = None,
               limit_steps: Sequence[tuple[str, float | None]] = ()) -> Cell:
    """A time series; `limit_steps` draws threshold lines (e.g. 80 % of a limit)."""
    panel = TimeSeries(
        title=title, description=description, dataSource=PROMETHEUS, targets=_prometheus_targets(queries),
        unit=unit, valueMin=0, valueMax=max_value, fillOpacity=25 if stacked else 10, lineWidth=1,
        stacking={"mode": "normal", "group": "A"} if stacked else {"mode": "none"},
        legendDisplayMode="table", legendPlacement="bottom", legendCalcs=["lastNotNull", "max"],
        tooltipMode="multi", tooltipSort="desc", showPoints="never", spanNulls=True,
        thresholdsStyleMode="line" if limit_steps else "off",
        thresholds=_thresholds(limit_steps or [(GREEN, None)]),
    )
    return Cell(panel, w, h)


def stat(title: str, unit: str, queries: Sequence[Query], *, description: str, w: int = 4, h: int = 4,
         steps: Sequence[tuple[str, float | None]] = ((GREEN, None),), decimals: int | None = None) -> Cell:
    """Current value(s), one tile per series; `steps` colour the value (green below the first threshold)."""
    panel = Stat(
        title=title, description=description, dataSource=PROMETHEUS, targets=_prometheus_targets(queries),
        format=unit, decimals=decimals, reduceCalc="lastNotNull", graphMode="area", colorMode="value",
        textMode="value_and_name" if any("{{" in q.legend for q in queries) else "auto",
        noValue="0", thresholds=_thresholds(steps),
    )
    return Cell(panel, w, h)


def log_volume(title: str, queries: Sequence[LogQuery], *, description: str, w: int = 12, h: int = 8) -> Cell:
    """Log lines per interval from Elasticsearch (the shipper's and indexer's ECS documents)."""
    targets = [
        ElasticsearchTarget(query=q.lucene, alias=q.legend or None, refId=chr(ord("A") + i), timeField="@timestamp",
                            metricAggs=[CountMetricAgg(id=1)],
                            bucketAggs=[DateHistogramGroupBy(id=2, field="@timestamp", interval="auto", minDocCount=0)])
        for i, q in enumerate(queries)
    ]
    panel = TimeSeries(
        title=title, description=description, dataSource=ELASTICSEARCH, targets=targets, unit=SHORT, valueMin=0,
        drawStyle="bars", fillOpacity=60, legendDisplayMode="list", showPoints="never",
        thresholds=_thresholds([(GREEN, None)]),
    )
    return Cell(panel, w, h)


def flow(cells: Sequence[Cell]) -> list[Panel]:
    """Place cells left to right, wrapping to a new row when the next does not fit in 24 columns; a
    row is as tall as its tallest cell."""
    out: list[Panel] = []
    x = y = row_h = 0
    for c in cells:
        if not 0 < c.w <= GRID_COLUMNS or c.h <= 0:
            raise ValueError(f"panel {c.panel.title!r}: size {c.w}x{c.h} does not fit the grid")
        if x + c.w > GRID_COLUMNS:
            x, y, row_h = 0, y + row_h, 0
        out.append(attr.evolve(c.panel, gridPos=GridPos(h=c.h, w=c.w, x=x, y=y)))
        x += c.w
        row_h = max(row_h, c.h)
    return out


# --- template variables --------------------------------------------------------------------------

def variable(name: str, label: str, query: str, *, multi: bool, all_value: str | None = None) -> Template:
    """A Prometheus query variable, refreshed when the time range changes (containers come and go)."""
    return Template(
        name=name, label=label, query=query, dataSource=PROMETHEUS, refresh=2, sort=1,
        includeAll=all_value is not None, allValue=all_value, multi=multi,
        default="$__all" if all_value is not None else None,
    )
