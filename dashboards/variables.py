"""Template variables as Grafana resolves them: each variable's label_values() query runs against
Prometheus (with the variables before it substituted), then a choice (given, All, or the first value)
becomes the text that replaces `$name` in every query."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dashboards import promql
from dashboards.sources import Prometheus
from dashboards.validate import label_values

ALL = "$__all"


@dataclass(frozen=True)
class Choice:
    name: str
    values: tuple[str, ...]  # what was chosen (all known values for All)
    text: str  # what `$name` becomes in a PromQL regex matcher
    raw: str  # what `$name` becomes elsewhere (an Elasticsearch query, a title)


class VariableError(Exception):
    pass


def regex_text(values: Sequence[str]) -> str:
    escaped = [promql.escape_regex(v) for v in values]
    return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"


def builtins(start: float, end: float, step: float, scrape_interval: float) -> dict[str, str]:
    """Grafana's $__interval, $__range and $__rate_interval (max(4 x scrape interval, step + scrape))."""
    rate = max(4 * scrape_interval, step + scrape_interval)
    return {"__interval": f"{int(step)}s", "__range": f"{int(end - start)}s", "__rate_interval": f"{int(rate)}s"}


def resolve(dashboard: Mapping[str, Any], prom: Prometheus, start: float, end: float,
            chosen: Mapping[str, Sequence[str]] | None = None) -> list[Choice]:
    """Every variable of `dashboard`, in order. `chosen` picks values by name (each must be one the
    query returns); otherwise All where the variable offers it, else its first value."""
    chosen = chosen or {}
    out: list[Choice] = []
    for v in (dashboard.get("templating") or {}).get("list") or []:
        name = v["name"]
        selector, label = label_values(v["query"])
        selector = promql.interpolate(selector, {c.name: c.text for c in out})
        known = prom.label_values(label, selector, start, end)
        if not known:
            raise VariableError(f"${name}: {v['query']} returns no values (is the agent scraped?)")
        pick = list(chosen.get(name) or [])
        if pick:
            unknown = [p for p in pick if p not in known]
            if unknown:
                raise VariableError(f"${name}: {', '.join(unknown)} not among {', '.join(known)}")
            out.append(Choice(name, tuple(pick), regex_text(pick), ",".join(pick)))
        elif v.get("includeAll"):
            text = v.get("allValue") or regex_text(known)
            out.append(Choice(name, tuple(known), text, "All"))
        else:
            out.append(Choice(name, (known[0],), regex_text(known[:1]), known[0]))
    return out


def values_for_promql(choices: Sequence[Choice], extra: Mapping[str, str]) -> dict[str, str]:
    return {c.name: c.text for c in choices} | dict(extra)


def values_for_text(choices: Sequence[Choice]) -> dict[str, str]:
    return {c.name: c.raw for c in choices}
