"""container_memory_*: usage, working set, rss, cache, mapped file, swap, max usage, failcnt,
failures{failure_type,scope}, and v2's memory.events counters."""

from __future__ import annotations

from collections.abc import Iterable

from exporter.collectors.base import Scrape, counter, gauge, nonempty
from exporter.families import Family

_EVENTS = ("low", "high", "max", "oom", "oom_kill", "oom_group_kill")


class MemoryCollector:
    name = "memory"

    def collect(self, scrape: Scrape) -> Iterable[Family]:
        usage = gauge(
            "container_memory_usage_bytes",
            "Current memory usage in bytes, including all memory regardless of when it was accessed",
        )
        ws = gauge("container_memory_working_set_bytes", "Current working set in bytes.")
        rss = gauge("container_memory_rss", "Size of RSS in bytes.")
        cache = gauge("container_memory_cache", "Number of bytes of page cache memory.")
        mapped = gauge("container_memory_mapped_file", "Size of memory mapped files in bytes.")
        swap = gauge("container_memory_swap", "Container swap usage in bytes.")
        max_usage = gauge("container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes")
        # cAdvisor types failcnt as a counter without _total; a gauge keeps its exact name lint-clean.
        failcnt = gauge("container_memory_failcnt", "Number of memory usage hits limits")
        failures = counter(
            "container_memory_failures_total", "Cumulative count of memory allocation failures.",
            "failure_type", "scope",
        )
        events = counter(
            "container_memory_events_total",
            "Cumulative memory.events counters (cgroup v2): low, high, max, oom, oom_kill.",
            "event",
        )
        reader = scrape.reader
        for t in scrape.targets:
            try:
                m = reader.memory(t.cg)
            except (OSError, ValueError):
                scrape.error(self.name)
                continue
            ls = t.labels
            for fam, value in (
                (usage, m.usage), (ws, m.working_set), (rss, m.rss), (cache, m.cache),
                (mapped, m.mapped_file), (swap, m.swap), (max_usage, m.max_usage), (failcnt, m.failcnt),
            ):
                if value is not None:
                    fam.add(ls, value)
            if m.pgfault is not None:
                failures.add(ls, m.pgfault, "pgfault", "container")
            if m.pgmajfault is not None:
                failures.add(ls, m.pgmajfault, "pgmajfault", "container")
            if m.hierarchy_pgfault is not None:
                failures.add(ls, m.hierarchy_pgfault, "pgfault", "hierarchy")
            if m.hierarchy_pgmajfault is not None:
                failures.add(ls, m.hierarchy_pgmajfault, "pgmajfault", "hierarchy")
            for ev in _EVENTS:
                if ev in m.events:
                    events.add(ls, m.events[ev], ev)
        return nonempty(usage, ws, rss, cache, mapped, swap, max_usage, failcnt, failures, events)
