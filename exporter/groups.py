"""Metric group names (`--disable-metrics`), kept free of heavy imports so the CLI starts fast."""

from __future__ import annotations

from collections.abc import Sequence

# Metric groups that --disable-metrics accepts (cAdvisor's names where cAdvisor has the group).
GROUPS = (
    "cpu",
    "percpu",
    "memory",
    "spec",
    "diskIO",
    "network",
    "process",
    "pressure",
    "oom_event",
    "namespace",
    "machine",
)
_ALIASES = {g.lower(): g for g in GROUPS} | {"disk": "diskIO", "io": "diskIO", "psi": "pressure", "oom": "oom_event"}


def parse_groups(value: str | Sequence[str]) -> frozenset[str]:
    """`network,pressure` -> the canonical group names; unknown names are an error naming them."""
    items = value.split(",") if isinstance(value, str) else list(value)
    out = set()
    unknown = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        canon = _ALIASES.get(item.lower())
        if canon is None:
            unknown.append(item)
        else:
            out.add(canon)
    if unknown:
        raise ValueError(f"unknown metric group(s) {', '.join(unknown)}; known: {', '.join(GROUPS)}")
    return frozenset(out)
