"""PromQL as Grafana sends it: template variables substituted, then parsed and checked against the
catalogue (metric names, the labels selectors and groupings use)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import promql_parser

from dashboards.catalogue import TARGET_LABELS, Catalogue, UnknownMetric

# $__rate_interval, $__interval, $__range, $var, ${var} and ${var:format}
VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")
DURATION_VARIABLES = ("__rate_interval", "__interval", "__range")
# What a duration variable stands for when an expression is only parsed and checked.
CHECK_DURATION = "5m"
# Characters Grafana's Prometheus data source escapes in a regex variable value.
_REGEX_SPECIAL = re.compile(r"([\\^$.|?*+()\[\]{}])")


def escape_regex(value: str) -> str:
    """A variable value as it lands inside a PromQL `=~"..."` string: regex-escaped, and each
    backslash doubled for the string literal (what Grafana does with `127.0.0.1:9100`)."""
    return _REGEX_SPECIAL.sub(r"\\\\\1", value)


def interpolate(expr: str, values: Mapping[str, str]) -> str:
    """Substitute `$name` / `${name}` with values[name]; an unknown variable is an error."""
    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in values:
            raise KeyError(f"variable ${name} has no value")
        return values[name]
    return VARIABLE.sub(sub, expr)


def variables_in(expr: str) -> set[str]:
    return {m.group(1) or m.group(2) for m in VARIABLE.finditer(expr)}


def for_checking(expr: str) -> str:
    """Durations get a sample value; other variables stay (they sit inside label-matcher strings)."""
    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        return CHECK_DURATION if name in DURATION_VARIABLES else m.group(0)
    return VARIABLE.sub(sub, expr)


@dataclass
class Uses:
    """What an expression selects and groups by."""

    selectors: list[tuple[str, list[str]]] = field(default_factory=list)  # (metric name, matcher labels)
    grouping: set[str] = field(default_factory=set)  # by/without/on/ignoring/group_left/right labels
    made: set[str] = field(default_factory=set)  # labels label_replace/label_join create

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.selectors]


def _labels_of(modifier: object) -> list[str]:
    labels = getattr(modifier, "labels", None)
    return list(labels) if labels else []


def uses(expr: str) -> Uses:
    """Parse `expr` (raises ValueError with the parser's message when it is not valid PromQL)."""
    tree = promql_parser.parse(for_checking(expr))
    out = Uses()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            matchers = [m.name for m in node.matchers.matchers]
            name = node.name
            if name is None:
                for m in node.matchers.matchers:
                    if m.name == "__name__":
                        name = m.value
            out.selectors.append((name or "", [m for m in matchers if m != "__name__"]))
        elif isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            out.grouping.update(_labels_of(node.modifier))
        elif isinstance(node, promql_parser.BinaryExpr) and node.modifier is not None:
            mod = node.modifier
            if mod.matching is not None:
                out.grouping.update(_labels_of(mod.matching))
            out.grouping.update(getattr(mod, "group_labels", None) or [])
        elif isinstance(node, promql_parser.Call) and node.func.name in ("label_replace", "label_join"):
            dst = node.args[1]
            if isinstance(dst, promql_parser.StringLiteral):
                out.made.add(dst.val)

    promql_parser.walk(tree, pre_visit=visit)
    return out


def problems(expr: str, catalogue: Catalogue) -> list[str]:
    """Why `expr` would not work against the agent: a parse error, a metric it does not export, a
    label a selector or grouping names that the metrics involved do not have."""
    try:
        u = uses(expr)
    except ValueError as e:
        return [f"not valid PromQL ({e}): {expr}"]
    out: list[str] = []
    known_labels: set[str] = set(TARGET_LABELS) | u.made
    open_labels = False
    for name, matchers in u.selectors:
        if not name:
            out.append(f"a selector without a metric name: {expr}")
            continue
        try:
            metric = catalogue[name]
        except UnknownMetric as e:
            out.append(str(e))
            continue
        if metric.labels is None:
            open_labels = True
        else:
            known_labels |= metric.labels
        out.extend(f"{name} has no label {label!r}" for label in matchers if not metric.has_label(label))
    if not open_labels:
        out.extend(f"groups by {label!r}, which none of {sorted(set(u.names))} has"
                   for label in sorted(u.grouping - known_labels))
    return out


def check_all(exprs: Sequence[tuple[str, str]], catalogue: Catalogue,
              where: Callable[[str], str] = str) -> list[str]:
    """Problems of many (place, expr) pairs, each prefixed with its place."""
    return [f"{where(place)}: {p}" for place, expr in exprs for p in problems(expr, catalogue)]
