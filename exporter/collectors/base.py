"""The collector interface and the per-scrape context shared by all collectors."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Protocol

from exporter.cgroup import CgroupReader
from exporter.discovery import Target
from exporter.families import Family

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


class Scrape:
    """One scrape: the targets, the reader, the clock, and the errors counted so far."""

    def __init__(self, targets: list[Target], reader: CgroupReader, now: float | None = None) -> None:
        self.targets = targets
        self.reader = reader
        self.now = time.time() if now is None else now
        self.errors: Counter[str] = Counter()
        self._lock = threading.Lock()  # collectors run on several threads

    def error(self, collector: str) -> None:
        with self._lock:
            self.errors[collector] += 1


class GroupCollector(Protocol):
    name: str

    def collect(self, scrape: Scrape) -> Iterable[Family]: ...


def gauge(name: str, doc: str, *extra: str) -> Family:
    return Family(name, doc, "gauge", extra)


def counter(name: str, doc: str, *extra: str) -> Family:
    return Family(name, doc, "counter", extra)


def nonempty(*families: Family) -> list[Family]:
    return [f for f in families if f.rows]
