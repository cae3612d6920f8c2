"""Checks of generated dashboard JSON, shared by the build (which refuses to write a broken
dashboard) and the tests: unique ids and uids, a valid grid without overlaps, datasources that the
provisioning defines, and PromQL that names only what the agent exports."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from dashboards import promql
from dashboards.catalogue import Catalogue
from dashboards.panels import GRID_COLUMNS

MIN_SCHEMA_VERSION = 36  # the panel JSON Grafana 9+ writes; grafanalib's default 12 is far older
PANEL_TYPES = frozenset({"timeseries", "stat"})  # what Grafana and `dashboards render` both draw
BUILTIN_VARIABLES = frozenset(promql.DURATION_VARIABLES)
LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")

Json = dict[str, Any]


def panels(dashboard: Json) -> list[Json]:
    return list(dashboard.get("panels") or [])


def prometheus_targets(dashboard: Json) -> Iterator[tuple[Json, Json]]:
    for p in panels(dashboard):
        for t in p.get("targets") or []:
            if (t.get("datasource") or p.get("datasource") or {}).get("type") == "prometheus":
                yield p, t


def label_values(query: str) -> tuple[str, str]:
    """(selector, label) of a `label_values(selector, label)` variable query."""
    m = LABEL_VALUES.match(query.strip())
    if m is None:
        raise ValueError(f"not a label_values(selector, label) query: {query}")
    return m.group("selector"), m.group("label")


def _grid(name: str, dashboard: Json) -> list[str]:
    out = []
    taken: dict[tuple[int, int], str] = {}
    for p in panels(dashboard):
        title = p.get("title", "?")
        g = p.get("gridPos") or {}
        try:
            x, y, w, h = (int(g[k]) for k in "xywh")
        except (KeyError, TypeError, ValueError):
            out.append(f"{name}: panel {title!r} has no valid gridPos: {g}")
            continue
        if not (0 <= x and 0 < w and x + w <= GRID_COLUMNS and 0 <= y and 0 < h):
            out.append(f"{name}: panel {title!r} is outside the {GRID_COLUMNS}-column grid: {g}")
            continue
        for cell in ((cx, cy) for cx in range(x, x + w) for cy in range(y, y + h)):
            if cell in taken:
                out.append(f"{name}: panel {title!r} overlaps {taken[cell]!r} at x={cell[0]}, y={cell[1]}")
                break
            taken[cell] = title
    return out


def _datasources(name: str, dashboard: Json, uids: set[str]) -> list[str]:
    out = []
    refs = [(p.get("title", "?"), p.get("datasource")) for p in panels(dashboard)]
    refs += [(p.get("title", "?"), t.get("datasource")) for p in panels(dashboard) for t in p.get("targets") or []
             if t.get("datasource") is not None]
    refs += [(f"variable ${v.get('name')}", v.get("datasource")) for v in _variables(dashboard)]
    for where, ds in refs:
        uid = ds.get("uid") if isinstance(ds, dict) else None
        if uid not in uids:
            out.append(f"{name}: {where} uses datasource {ds!r}, which the provisioning does not define")
    return out


def _variables(dashboard: Json) -> list[Json]:
    return list((dashboard.get("templating") or {}).get("list") or [])


def _queries(name: str, dashboard: Json, catalogue: Catalogue) -> list[str]:
    out = []
    defined = {v.get("name") for v in _variables(dashboard)} | BUILTIN_VARIABLES
    for v in _variables(dashboard):
        try:
            selector, label = label_values(v.get("query") or "")
        except ValueError as e:
            out.append(f"{name}: variable ${v.get('name')}: {e}")
            continue
        found = promql.problems(selector, catalogue)
        out.extend(f"{name}: variable ${v.get('name')}: {p}" for p in found)
        if not found:
            out.extend(f"{name}: variable ${v.get('name')}: {metric} has no label {label!r}"
                       for metric, _ in promql.uses(selector).selectors if not catalogue[metric].has_label(label))
    for p, t in prometheus_targets(dashboard):
        where = f"{name}: panel {p.get('title', '?')!r} {t.get('refId', '?')}"
        expr = t.get("expr") or ""
        out.extend(f"{where}: uses ${u}, which is not defined" for u in sorted(promql.variables_in(expr) - defined))
        out.extend(f"{where}: {problem}" for problem in promql.problems(expr, catalogue))
    return out


def problems(dashboards: Mapping[str, Json], datasource_uids: set[str], catalogue: Catalogue) -> list[str]:
    """Every problem of every dashboard, one line each, naming dashboard and panel."""
    out: list[str] = []
    uids: dict[str, str] = {}
    for name, d in dashboards.items():
        uid = d.get("uid")
        if not uid or uid in uids:
            out.append(f"{name}: uid {uid!r} missing or used by {uids.get(uid or '')}")
        uids[uid or ""] = name
        if int(d.get("schemaVersion") or 0) < MIN_SCHEMA_VERSION:
            out.append(f"{name}: schemaVersion {d.get('schemaVersion')} is older than {MIN_SCHEMA_VERSION}")
        ids = [p.get("id") for p in panels(d)]
        if len(set(ids)) != len(ids) or any(not isinstance(i, int) for i in ids):
            out.append(f"{name}: panel ids are not unique integers: {ids}")
        out.extend(f"{name}: panel {p.get('title')!r} has type {p.get('type')!r}, not one of {sorted(PANEL_TYPES)}"
                   for p in panels(d) if p.get("type") not in PANEL_TYPES)
        out.extend(f"{name}: panel {p.get('title')!r} has no targets" for p in panels(d) if not p.get("targets"))
        out.extend(_grid(name, d))
        out.extend(_datasources(name, d, datasource_uids))
        out.extend(_queries(name, d, catalogue))
    return out
