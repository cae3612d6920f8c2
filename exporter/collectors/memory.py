"""container_memory_*: cAdvisor's memory families (a value the kernel does not provide is 0, as in
cAdvisor), failures{failure_type,scope}, and v2's memory.events counters under hostwatch's own name."""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter

from exporter._speedups import add_labelled, add_rows
from exporter.collectors.base import Scrape, counter, nonempty
from exporter.families import Family

_EVENTS = ("low", "high", "max", "oom", "oom_kill", "oom_group_kill")

# (exposed name, type, HELP, MemoryStats attribute), cAdvisor v0.60's lib/metrics/prometheus.go.
_FAMILIES = (
    ("container_memory_cache", "gauge", "Number of bytes of page cache memory.", "cache"),
    ("container_memory_rss", "gauge", "Size of RSS in bytes.", "rss"),
    ("container_memory_kernel_usage", "gauge", "Size of kernel memory allocated in bytes.", "kernel"),
    ("container_memory_mapped_file", "gauge", "Size of memory mapped files in bytes.", "mapped_file"),
    ("container_memory_swap", "gauge", "Container swap usage in bytes.", "swap"),
    # cAdvisor types failcnt as a counter without _total; a gauge keeps its exact name lint-clean.
    ("container_memory_failcnt", "gauge", "Number of memory usage hits limits", "failcnt"),
    ("container_memory_usage_bytes", "gauge",
     "Current memory usage in bytes, including all memory regardless of when it was accessed", "usage"),
    ("container_memory_max_usage_bytes", "gauge", "Maximum memory usage recorded in bytes", "max_usage"),
    ("container_memory_working_set_bytes", "gauge", "Current working set in bytes.", "working_set"),
    ("container_memory_total_active_file_bytes", "gauge", "Current total active file in bytes.", "active_file"),
    ("container_memory_total_inactive_file_bytes", "gauge", "Current total inactive file in bytes.",
     "inactive_file"),
    ("container_memory_file_dirty_bytes", "gauge",
     "Number of bytes of file cache that has been modified but not yet written back to disk.", "file_dirty"),
    ("container_memory_file_writeback_bytes", "gauge",
     "Number of bytes of file cache that is currently being written back to disk.", "file_writeback"),
    ("container_memory_pgscan_total", "counter",
     "Cumulative number of pages scanned by the page reclaim algorithm.", "pgscan"),
    ("container_memory_pgsteal_total", "counter",
     "Cumulative number of pages reclaimed by the page reclaim algorithm.", "pgsteal"),
    ("container_memory_workingset_refault_file_total", "counter",
     "Cumulative number of refaults of previously evicted file pages.", "refault_file"),
    ("container_memory_workingset_refault_anon_total", "counter",
     "Cumulative number of refaults of previously evicted anonymous pages.", "refault_anon"),
)


_FAILURE_LABELS = (("pgfault", "container"), ("pgmajfault", "container"), ("pgfault", "hierarchy"),
                   ("pgmajfault", "hierarchy"))
_FAILURES = attrgetter("pgfault", "pgmajfault", "hierarchy_pgfault", "hierarchy_pgmajfault")
_VALUES = attrgetter(*(attr for *_, attr in _FAMILIES))
_NONE = ()


class MemoryCollector:
    name = "memory"

    def collect(self, scrape: Scrape) -> Iterable[Family]:
        fams = [Family(name, doc, typ) for name, typ, doc, _ in _FAMILIES]
        rows = [f.rows for f in fams]
        failures = counter(
            "container_memory_failures_total", "Cumulative count of memory allocation failures.",
            "failure_type", "scope",
        )
        high = counter("container_memory_events_high_total",
                       "Cumulative count of memory.high throttle events for the container")
        hit_max = counter("container_memory_events_max_total",
                          "Cumulative count of memory.max limit hit events for the container")
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
            add_rows(rows, ls, _NONE, _VALUES(m))  # None: 0
            add_labelled(failures.rows, ls, _FAILURE_LABELS, _FAILURES(m))
            ev = m.events
            high.rows.append((ls, _NONE, ev.get("high", 0)))
            hit_max.rows.append((ls, _NONE, ev.get("max", 0)))
            if ev:
                for name in _EVENTS:
                    if name in ev:
                        events.add(ls, ev[name], name)
        return nonempty(*fams, failures, high, hit_max, events)
