"""The collector interface and the per-scrape context shared by all collectors."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable
from typing import Protocol

from exporter.discovery import Target
from exporter.families import Block, Family
from exporter.groups import GROUPS as GROUPS  # re-exported: collectors and tests import them from here
from exporter.groups import parse_groups as parse_groups
from exporter.readers import CgroupReader


class Scrape:
    """One scrape: the targets, the reader, the clock, the errors counted so far, and what several
    collectors read once per scrape (`shared`: the filesystems of each cgroup, /proc/diskstats)."""

    def __init__(self, targets: list[Target], reader: CgroupReader, now: float | None = None) -> None:
        self.targets = targets
        self.reader = reader
        self.now = time.time() if now is None else now
        self.errors: Counter[str] = Counter()
        self.shared: dict[str, object] = {}
        self._lock = threading.Lock()  # collectors may run on several threads

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


def untyped(name: str, doc: str, *extra: str) -> Family:
    """For cAdvisor's gauges named like counters or summaries (_total, _count): promtool lints a gauge
    with such a name, an untyped family it does not, and Prometheus stores both alike."""
    return Family(name, doc, "unknown", extra)


def nonempty(*families: Family) -> list[Family]:
    return [f for f in families if f.rows or f.blocks]


class BlockCache:
    """Per cgroup, the Blocks a collector rendered for rows that rarely change, and the key (label
    set, values) they were rendered for: a scrape reuses them while the key holds."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[object, list[Block]]] = {}

    def get(self, cg: str, key: object) -> list[Block] | None:
        hit = self._cache.get(cg)
        return hit[1] if hit is not None and hit[0] == key else None

    def put(self, cg: str, key: object, blocks: list[Block]) -> list[Block]:
        self._cache[cg] = (key, blocks)
        return blocks

    def prune(self, targets: list[Target]) -> None:
        if len(self._cache) > len(targets):
            live = {t.cg for t in targets}
            self._cache = {cg: v for cg, v in self._cache.items() if cg in live}
