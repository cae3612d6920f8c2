"""container_spec_*: the limits. `SpecCache` also serves the CPU collector (cAdvisor reports CFS
counters only under a quota) and the process collector (container_threads_max)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterable

from exporter.collectors.base import BlockCache, Scrape, gauge, nonempty
from exporter.discovery import Target
from exporter.families import Family
from exporter.readers import CgroupReader, SpecStats
from hostwatch.core.cgroupfs import is_unlimited


def spec_memory(value: int | None) -> int:
    """cAdvisor reports an unlimited memory limit as 0."""
    return 0 if value is None or is_unlimited(value) else value


class SpecCache:
    """Limits re-read at most every `refresh_seconds` per cgroup, with jitter, like cAdvisor's spec
    cache (a limit can be updated on a running container); 0 reads them every time."""

    def __init__(self, refresh_seconds: float = 0.0) -> None:
        self.refresh_seconds = refresh_seconds
        self._cache: dict[str, tuple[float, SpecStats]] = {}
        self._lock = threading.Lock()

    def get(self, reader: CgroupReader, cg: str, now: float | None = None) -> SpecStats:
        """Raises OSError/ValueError as reader.spec does."""
        if self.refresh_seconds <= 0:
            return reader.spec(cg)
        now = time.monotonic() if now is None else now
        hit = self._cache.get(cg)
        if hit is not None and hit[0] > now:
            return hit[1]
        stats = reader.spec(cg)
        # Jitter the expiry so a thousand cgroups seen together are not all re-read in one scrape.
        with self._lock:
            self._cache[cg] = (now + self.refresh_seconds * random.uniform(0.5, 1.0), stats)
        return stats

    def prune(self, targets: list[Target]) -> None:
        if len(self._cache) > len(targets):
            live = {t.cg for t in targets}
            with self._lock:
                self._cache = {cg: v for cg, v in self._cache.items() if cg in live}


class SpecCollector:
    name = "spec"

    def __init__(self, cache: SpecCache | None = None) -> None:
        self.cache = SpecCache() if cache is None else cache
        self.blocks = BlockCache()  # limits change rarely: their text is rendered once per change

    def collect(self, scrape: Scrape) -> Iterable[Family]:
        period = gauge("container_spec_cpu_period", "CPU period of the container.")
        quota = gauge("container_spec_cpu_quota", "CPU quota of the container.")
        shares = gauge("container_spec_cpu_shares", "CPU share of the container.")
        mem = gauge("container_spec_memory_limit_bytes", "Memory limit for the container.")
        swap = gauge("container_spec_memory_swap_limit_bytes", "Memory swap limit for the container.")
        resv = gauge(
            "container_spec_memory_reservation_limit_bytes", "Memory reservation limit for the container."
        )
        fams = (period, quota, shares, mem, swap, resv)
        reader = scrape.reader
        now = time.monotonic()
        cache = self.cache
        blocks = self.blocks
        cache.prune(scrape.targets)
        blocks.prune(scrape.targets)
        for t in scrape.targets:
            if t.cg == "/":
                continue  # the root cgroup has no limits
            try:
                s = cache.get(reader, t.cg, now)
            except (OSError, ValueError):
                scrape.error(self.name)
                continue
            ls = t.labels
            made = blocks.get(t.cg, (ls, s))
            if made is None:
                values = (s.cpu_period, s.cpu_quota, s.cpu_shares, spec_memory(s.memory_limit),
                          spec_memory(s.memory_swap_limit), spec_memory(s.memory_reservation))
                made = blocks.put(t.cg, (ls, s), [f.block([(ls, (), v)] if v is not None else [])
                                                  for f, v in zip(fams, values, strict=True)])
            for f, b in zip(fams, made, strict=True):
                if b.rows:
                    f.add_block(b)
        return nonempty(*fams)
