"""`hostwatch dashboards render`: a dashboard drawn with matplotlib from real query results, each
time-series and stat panel where its gridPos puts it, in Grafana's dark colours. For a look before
Grafana is installed, and proof that the panels show real data.

`render()` returns, per panel, how many series it drew and where (pixel box in the PNG), so a test
can check each panel's area is drawn.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dashboards import promql, units
from dashboards.panels import GRID_COLUMNS
from dashboards.sources import Elasticsearch, Prometheus, Series, SourceError
from dashboards.variables import builtins, resolve, values_for_promql, values_for_text

COL_PX, ROW_PX, HEADER_PX, GAP_PX, DPI = 64, 34, 56, 6, 100
POINTS = 160  # per series, like a panel of ~1000 px at Grafana's default max data points
MAX_LEGEND = 6
LEGEND_COLUMNS = 3
SECONDS_TICKS = 900.0  # a range shorter than this labels its time axis with seconds
LEGEND_ROW_PX = 9
BACKGROUND, PANEL, BORDER, TEXT, MUTED = "#111217", "#181b1f", "#2c3235", "#ccccdc", "#7b7f87"
PALETTE = ("#73BF69", "#F2CC0C", "#8AB8FF", "#FF780A", "#F2495C", "#5794F2", "#B877D9", "#FADE2A", "#37872D",
           "#C4162A")
NAMED_COLOURS = {"green": "#73BF69", "red": "#F2495C", "orange": "#FF9830", "yellow": "#FADE2A"}


@dataclass
class PanelResult:
    title: str
    type: str
    series: int = 0
    box: tuple[int, int, int, int] = (0, 0, 0, 0)  # x0, y0, x1, y1 in PNG pixels (origin top left)
    errors: list[str] = field(default_factory=list)


def legend(fmt: str, labels: Mapping[str, str], fallback: str) -> str:
    if not fmt or fmt == "__auto":
        inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
        return inner or fallback
    out = fmt
    for k, v in labels.items():
        out = out.replace(f"{{{{{k}}}}}", v)
    while "{{" in out and "}}" in out:  # a label the series lacks renders empty, as in Grafana
        a = out.index("{{")
        b = out.index("}}", a)
        out = out[:a] + out[b + 2:]
    return " ".join(out.split())


def plain(text: str) -> str:
    """Text matplotlib draws as it is: a `$` would start mathtext."""
    return text.replace("$", r"\$")


def colour(name: str) -> str:
    return NAMED_COLOURS.get(name, name)


def step_colour(panel: Mapping[str, Any], value: float) -> str:
    steps = (((panel.get("fieldConfig") or {}).get("defaults") or {}).get("thresholds") or {}).get("steps") or []
    chosen = PALETTE[0]
    for s in steps:
        if s.get("value") is None or value >= float(s["value"]):
            chosen = colour(str(s.get("color", chosen)))
    return chosen


def threshold_lines(panel: Mapping[str, Any]) -> list[tuple[float, str]]:
    """(value, colour) of the threshold steps a time series draws as lines (thresholdsStyle: line)."""
    defaults = (panel.get("fieldConfig") or {}).get("defaults") or {}
    if ((defaults.get("custom") or {}).get("thresholdsStyle") or {}).get("mode", "off") == "off":
        return []
    steps = (defaults.get("thresholds") or {}).get("steps") or []
    return [(float(s["value"]), colour(str(s.get("color")))) for s in steps if s.get("value") is not None]


def unit_of(panel: Mapping[str, Any]) -> str:
    return str(((panel.get("fieldConfig") or {}).get("defaults") or {}).get("unit") or "short")


class Renderer:
    def __init__(self, prom: Prometheus, es: Elasticsearch | None, start: float, end: float,
                 scrape_interval: float) -> None:
        self.prom, self.es = prom, es
        self.start, self.end = start, end
        self.step = max(scrape_interval, (end - start) / POINTS)
        self.builtins = builtins(start, end, self.step, scrape_interval)

    def series(self, panel: Mapping[str, Any], values: Mapping[str, str], text: Mapping[str, str],
               result: PanelResult) -> list[tuple[str, Series]]:
        out: list[tuple[str, Series]] = []
        ds = (panel.get("datasource") or {}).get("type")
        for t in panel.get("targets") or []:
            try:
                if ds == "elasticsearch":
                    out.extend(self._es(t, text))
                else:
                    expr = promql.interpolate(t["expr"], values)
                    found = (self.prom.query(expr, self.end) if t.get("instant")
                             else self.prom.query_range(expr, self.start, self.end, self.step))
                    out.extend((legend(t.get("legendFormat", ""), s.labels, t["refId"]), s) for s in found)
            except (SourceError, KeyError) as e:
                result.errors.append(f"{t.get('refId', '?')}: {e}")
        return [(name, s) for name, s in out if s.points]

    def _es(self, target: Mapping[str, Any], text: Mapping[str, str]) -> list[tuple[str, Series]]:
        if self.es is None:
            raise SourceError("no --elasticsearch URL given")
        interval = max(int(self.step), int((self.end - self.start) / 60), 1)
        s = self.es.count_histogram(promql.interpolate(target.get("query", ""), text), self.start, self.end, interval)
        return [(promql.interpolate(target.get("alias") or "count", text), s)]


def _axes_box(fig: Any, x: int, y: int, w: int, h: int, total_h: float) -> tuple[float, float, float, float]:
    """Figure-fraction rectangle of a grid cell (matplotlib's origin is bottom left)."""
    fw = GRID_COLUMNS * COL_PX
    left, top = x * COL_PX + GAP_PX / 2, HEADER_PX + y * ROW_PX + GAP_PX / 2
    width, height = w * COL_PX - GAP_PX, h * ROW_PX - GAP_PX
    return left / fw, 1 - (top + height) / total_h, width / fw, height / total_h


def _draw_timeseries(ax: Any, panel: Mapping[str, Any], series: list[tuple[str, Series]], start: float,
                     end: float) -> None:
    import matplotlib.dates as mdates
    from matplotlib.ticker import MaxNLocator

    unit = unit_of(panel)
    bars = ((((panel.get("fieldConfig") or {}).get("defaults") or {}).get("custom") or {}).get("drawStyle")
            == "bars")
    for i, (name, s) in enumerate(series):
        xs = [mdates.date2num(datetime.fromtimestamp(t, UTC)) for t, _ in s.points]
        ys = [v for _, v in s.points]
        c = PALETTE[i % len(PALETTE)]
        label = name if i < MAX_LEGEND - 1 or len(series) == MAX_LEGEND else None
        if i == MAX_LEGEND - 1 and len(series) > MAX_LEGEND:
            label = f"{name} (+{len(series) - MAX_LEGEND} more)"
        if bars:
            width = (xs[1] - xs[0]) * 0.8 if len(xs) > 1 else 1 / 1440
            ax.bar(xs, ys, width=width, color=c, alpha=0.8, align="edge", label=plain(label) if label else None)
            continue
        ax.plot(xs, ys, color=c, linewidth=1.2, label=plain(label) if label else None)
        if len(xs) == 1:
            ax.plot(xs, ys, "o", color=c, markersize=3)
    ax.set_xlim(mdates.date2num(datetime.fromtimestamp(start, UTC)), mdates.date2num(datetime.fromtimestamp(end, UTC)))
    top = max((v for _, s in series for _, v in s.points), default=0.0)
    ax.set_ylim(0, top * 1.08 if top > 0 else 1.0)  # Grafana's y axis starts at 0 (min: 0) with headroom
    for value, c in threshold_lines(panel):
        if value <= ax.get_ylim()[1]:
            ax.axhline(value, color=c, linewidth=0.8, linestyle="--")
    ax.yaxis.set_major_locator(MaxNLocator(5))
    ax.yaxis.set_major_formatter(lambda v, _: plain(units.format_value(v, unit)))
    ax.xaxis.set_major_locator(MaxNLocator(5))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S" if end - start < SECONDS_TICKS else "%H:%M",
                                                      tz=UTC))
    ax.tick_params(colors=MUTED, labelsize=6, length=2)
    ax.grid(color=BORDER, linewidth=0.5)
    for spine in ax.spines.values():
        spine.set_visible(False)
    handles, labels = ax.get_legend_handles_labels()
    if labels:
        leg = ax.legend(handles, [lb[:56] for lb in labels], loc="upper left", bbox_to_anchor=(0.0, -0.1),
                        fontsize=5.5, frameon=False, ncol=LEGEND_COLUMNS, borderaxespad=0.0, handlelength=1.2,
                        columnspacing=1.0, labelspacing=0.2)
        for t in leg.get_texts():
            t.set_color(TEXT)


def legend_rows(n: int) -> int:
    return math.ceil(min(n, MAX_LEGEND) / LEGEND_COLUMNS)


def _draw_stat(ax: Any, panel: Mapping[str, Any], series: list[tuple[str, Series]]) -> None:
    ax.set_axis_off()
    unit = unit_of(panel)
    decimals = ((panel.get("fieldConfig") or {}).get("defaults") or {}).get("decimals")
    n = len(series)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    for i, (name, s) in enumerate(series):
        value = s.points[-1][1]
        cx = (i % cols + 0.5) / cols
        cy = 1 - (i // cols + 0.5) / rows
        size = max(7.0, min(20.0, 26.0 / max(cols, rows * 0.8)))
        ax.text(cx, cy, plain(units.format_value(value, unit, decimals)), color=step_colour(panel, value),
                fontsize=size, fontweight="bold", ha="center", va="center", transform=ax.transAxes)
        if n > 1 or (panel.get("options") or {}).get("textMode") == "value_and_name":
            ax.text(cx, cy - 0.42 / rows, plain(name[:40]), color=TEXT, fontsize=5.5, ha="center", va="center",
                    transform=ax.transAxes)


def _inner(panel: Mapping[str, Any], rect: tuple[float, float, float, float], total_h: float,
           n: int) -> tuple[float, float, float, float]:
    """The plotting area inside a panel: below its title; for time series, left of the axis labels and
    above the legend."""
    title = 24 / total_h
    if panel.get("type") != "timeseries":
        return rect[0] + 0.01 * rect[2], rect[1] + 0.04 * rect[3], rect[2] * 0.98, rect[3] - title - 0.04 * rect[3]
    fw = GRID_COLUMNS * COL_PX
    left, bottom = 52 / fw, (16 + LEGEND_ROW_PX * legend_rows(n) + 4) / total_h
    return rect[0] + left, rect[1] + bottom, rect[2] - left - 10 / fw, rect[3] - title - bottom


def render(dashboard: Mapping[str, Any], prom: Prometheus, out: Path, *, es: Elasticsearch | None = None,
           start: float | None = None, end: float | None = None, scrape_interval: float = 15.0,
           chosen: Mapping[str, Sequence[str]] | None = None) -> list[PanelResult]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    end = time.time() if end is None else end
    start = end - 3600 if start is None else start
    r = Renderer(prom, es, start, end, scrape_interval)
    choices = resolve(dashboard, prom, start, end, chosen)
    values = values_for_promql(choices, r.builtins)
    text = values_for_text(choices)
    panels = list(dashboard.get("panels") or [])
    rows = max((p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels), default=1)
    total_h = HEADER_PX + rows * ROW_PX + GAP_PX
    fig = plt.figure(figsize=(GRID_COLUMNS * COL_PX / DPI, total_h / DPI), dpi=DPI, facecolor=BACKGROUND)
    period = (f"{datetime.fromtimestamp(start, UTC):%Y-%m-%d %H:%M:%S} to "
              f"{datetime.fromtimestamp(end, UTC):%H:%M:%S} UTC")
    chosen_text = "   ".join(f"${c.name} = {c.raw}" for c in choices)
    fig.text(GAP_PX / (GRID_COLUMNS * COL_PX), 1 - 20 / total_h, plain(str(dashboard.get("title", ""))), color=TEXT,
             fontsize=13, fontweight="bold", va="center")
    fig.text(GAP_PX / (GRID_COLUMNS * COL_PX), 1 - 42 / total_h, plain(f"{period}   {chosen_text}"), color=MUTED,
             fontsize=7.5, va="center")
    results = []
    for p in panels:
        g = p["gridPos"]
        res = PanelResult(str(p.get("title", "")), str(p.get("type", "")))
        rect = _axes_box(fig, g["x"], g["y"], g["w"], g["h"], total_h)
        frame = fig.add_axes(rect)
        frame.set_facecolor(PANEL)
        frame.set_xticks([])
        frame.set_yticks([])
        for spine in frame.spines.values():
            spine.set_color(BORDER)
        frame.text(0.012, 1 - 11 / (rect[3] * total_h), plain(promql.interpolate(res.title, text)), color=TEXT,
                   fontsize=7.5, fontweight="bold", va="center", transform=frame.transAxes)
        series = r.series(p, values, text, res)
        res.series = len(series)
        inner = _inner(p, rect, total_h, len(series))
        ax = fig.add_axes(inner)
        ax.set_facecolor(PANEL)
        if not series:
            ax.set_axis_off()
            ax.text(0.5, 0.5, "No data" + (f": {res.errors[0][:60]}" if res.errors else ""), color=MUTED,
                    fontsize=8, ha="center", va="center", transform=ax.transAxes)
        elif p.get("type") == "stat":
            _draw_stat(ax, p, series)
        else:
            _draw_timeseries(ax, p, series, start, end)
        x0, y0 = rect[0] * GRID_COLUMNS * COL_PX, (1 - rect[1] - rect[3]) * total_h
        res.box = (round(x0), round(y0), round(x0 + rect[2] * GRID_COLUMNS * COL_PX), round(y0 + rect[3] * total_h))
        results.append(res)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=DPI, facecolor=BACKGROUND)
    plt.close(fig)
    return results
