"""The dashboards against a real agent: Debian's Prometheus 2.42 scrapes `hostwatch up` (with runtime
workloads, log traffic and two alerting replicas), and

- every PromQL expression of every panel, with its template variables substituted the way Grafana
  does, returns at least one series with a value (a panel naming a metric the agent does not export,
  or a label it does not carry, fails here);
- every Elasticsearch panel's query finds documents the pipeline indexed;
- the alert rules that the workloads provoke really fire (pending or firing in Prometheus);
- `render` draws each dashboard with one drawn, non-blank area per panel.

HOSTWATCH_UPDATE_PICTURES=1 also writes the renders to docs/dashboards/ (the README's pictures).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboards import promql
from dashboards.boards import BOARDS
from dashboards.build import dashboard_json
from dashboards.catalogue import Catalogue
from dashboards.render import render
from dashboards.sources import Elasticsearch, Prometheus, SourceError
from dashboards.validate import panels
from dashboards.variables import Choice, builtins, resolve, values_for_promql, values_for_text

from dashboards_stack import REPO, Stack, running_stack

pytestmark = pytest.mark.integration

DATA_TIMEOUT = 150.0
WINDOW = 120.0  # seconds of history the queries look at
RENDER_RANGE = 600.0  # at most; the pictures start when Prometheus did
PICTURE_HISTORY = 420.0  # seconds of data before the README's pictures are drawn
GRAFANA_SCRAPE_INTERVAL = 15.0  # the provisioned datasource's timeInterval: $__rate_interval >= 60 s
# Template variable choices: Container detail shows the bridge-networked workload (it has network, disk
# I/O, logs); every other variable takes All.
CHOSEN = {"container-detail": {"container": ["web"]}}
# Rules the stack's workloads and traffic make true: they must be pending or firing.
PROVOKED = ("ContainerCpuThrottlingHigh", "ContainerMemoryNearLimit", "ContainerOomKilled", "LogShipperDropping",
            "IndexerDeadLettering", "Watchdog")
PICTURES = REPO / "docs" / "dashboards"
INK = 40  # colourful pixels a drawn series or value leaves, at least


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("dashboards")) as s:
        yield s


def _choices(prom: Prometheus, name: str, data: dict[str, object], start: float, end: float) -> list[Choice]:
    return resolve(data, prom, start, end, CHOSEN.get(name))


def _empty_queries(prom: Prometheus) -> list[str]:
    """'dashboard / panel / refId: expr' of every Prometheus target without a series with a value."""
    cat = Catalogue()
    out = []
    end = time.time()
    start = end - WINDOW
    step = max(1.0, WINDOW / 120)
    for b in BOARDS:
        data = dashboard_json(b, cat)
        try:
            choices = _choices(prom, b.name, data, start, end)
        except Exception as e:  # noqa: BLE001 - a variable without values is one more thing to report
            out.append(f"{b.name}: variables: {e}")
            continue
        values = values_for_promql(choices, builtins(start, end, step, GRAFANA_SCRAPE_INTERVAL))
        for p in panels(data):
            if (p.get("datasource") or {}).get("type") != "prometheus":
                continue
            for t in p["targets"]:
                expr = promql.interpolate(t["expr"], values)
                try:
                    found = (prom.query(expr, end) if t.get("instant")
                             else prom.query_range(expr, start, end, step))
                except SourceError as e:
                    out.append(f"{b.name} / {p['title']} / {t['refId']}: {e}")
                    continue
                if not any(s.points for s in found):
                    out.append(f"{b.name} / {p['title']} / {t['refId']}: {expr}")
    return out


def test_every_panel_query_returns_series(stack: Stack) -> None:
    deadline = time.monotonic() + DATA_TIMEOUT
    while True:
        empty = _empty_queries(stack.prometheus)
        if not empty or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert not empty, "queries without data:\n" + "\n".join(empty)


def test_the_log_panels_find_the_indexed_logs(stack: Stack) -> None:
    es = Elasticsearch(stack.es_url, "hostwatch-logs-*")
    cat = Catalogue()
    checked = 0
    for b in BOARDS:
        data = dashboard_json(b, cat)
        for p in panels(data):
            if (p.get("datasource") or {}).get("type") != "elasticsearch":
                continue
            end = time.time()
            text = values_for_text(_choices(stack.prometheus, b.name, data, end - WINDOW, end))
            for t in p["targets"]:
                lucene = promql.interpolate(t["query"], text)
                deadline = time.monotonic() + DATA_TIMEOUT
                while True:
                    s = es.count_histogram(lucene, time.time() - 3600, time.time() + 60, 10)
                    if sum(v for _, v in s.points) > 0 or time.monotonic() > deadline:
                        break
                    time.sleep(2)
                assert sum(v for _, v in s.points) > 0, f"{b.name} / {p['title']}: no documents for {lucene}"
                checked += 1
    assert checked >= 1  # the Container detail dashboard has a log panel


def test_provoked_rules_fire(stack: Stack) -> None:
    def states() -> dict[str, str]:
        return {s.labels["alertname"]: s.labels["alertstate"] for s in stack.prometheus.query("ALERTS", time.time())}

    deadline = time.monotonic() + DATA_TIMEOUT
    while True:
        seen = states()
        quiet = [a for a in PROVOKED if seen.get(a) not in ("pending", "firing")]
        if not quiet or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert not quiet, f"rules that should fire and do not: {quiet}; ALERTS: {seen}"
    # the alerting replicas got them and notified the receiver (Watchdog fires at once, for: 0m)
    assert any(p.get("status") == "firing" for p in stack.webhook.posts), stack.log_tail("alerting-a1")


def _ink(png: Path, box: tuple[int, int, int, int]) -> int:
    """Colourful (saturated, bright) pixels in a box: drawn series and values, not text or frames."""
    import numpy
    from PIL import Image

    with Image.open(png) as img:
        hsv = numpy.asarray(img.convert("RGB").crop(box).convert("HSV"))
    return int(((hsv[..., 1] > 90) & (hsv[..., 2] > 90)).sum())


@pytest.mark.parametrize("name", [b.name for b in BOARDS])
def test_render_draws_every_panel_with_data(stack: Stack, name: str, tmp_path: Path) -> None:
    b = next(b for b in BOARDS if b.name == name)
    data = dashboard_json(b, Catalogue())
    pictures = bool(os.environ.get("HOSTWATCH_UPDATE_PICTURES"))
    out = (PICTURES if pictures else tmp_path) / f"{name}.png"
    if pictures:  # the README's pictures show some history
        time.sleep(max(0.0, stack.started + PICTURE_HISTORY - time.time()))
    es = Elasticsearch(stack.es_url, "hostwatch-logs-*")
    deadline = time.monotonic() + DATA_TIMEOUT
    while True:
        end = time.time()
        results = render(data, stack.prometheus, out, es=es, start=max(end - RENDER_RANGE, stack.started), end=end,
                         scrape_interval=GRAFANA_SCRAPE_INTERVAL, chosen=CHOSEN.get(name))
        empty = [r.title for r in results if r.series == 0]
        # a series only a few samples old draws a stub shorter than INK: wait for more history too
        blank = {r.title: _ink(out, r.box) for r in results if _ink(out, r.box) < INK}
        if (not empty and not blank) or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert [r.title for r in results] == [p["title"] for p in panels(data)]
    assert not empty, f"panels drawn without data: {empty}: {[r.errors for r in results if r.errors]}"
    assert not blank, f"panel areas with nothing drawn in them (colourful pixels): {blank}"


def test_render_leaves_a_panel_without_data_blank(stack: Stack, tmp_path: Path) -> None:
    """The ink check can fail: a panel whose query finds nothing is drawn as grey 'No data'."""
    data = dashboard_json(BOARDS[1], Catalogue())
    first = dict(panels(data)[6])
    first["targets"] = [dict(first["targets"][0], expr='container_last_seen{name="no-such-container"}')]
    data = dict(data, panels=[first])
    out = tmp_path / "empty.png"
    (res,) = render(data, stack.prometheus, out, start=time.time() - WINDOW, end=time.time(),
                    scrape_interval=GRAFANA_SCRAPE_INTERVAL)
    assert res.series == 0
    assert _ink(out, res.box) < INK
