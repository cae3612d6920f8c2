"""process_* of the exporter itself: prometheus_client's ProcessCollector families (same names, HELP
and types), except that process_open_fds is counted at most every `open_fds_seconds`: counting lists
/proc/self/fd, and an exporter keeping 14,000 cgroup files open would spend 5 ms of every scrape on
that listing alone."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

DEFAULT_OPEN_FDS_SECONDS = 10.0


class SelfProcess:
    def __init__(self, proc_root: str = "/proc", open_fds_seconds: float = DEFAULT_OPEN_FDS_SECONDS) -> None:
        self.base = f"{proc_root}/self"
        self.open_fds_seconds = open_fds_seconds
        self.ticks = float(os.sysconf("SC_CLK_TCK"))
        self.pagesize = os.sysconf("SC_PAGE_SIZE")
        self.btime = 0.0
        try:
            with open(f"{proc_root}/stat", "rb") as f:
                for line in f:
                    if line.startswith(b"btime "):
                        self.btime = float(line.split()[1])
        except OSError:
            pass
        self._fds = (-1e18, 0)  # (when counted, count)

    def open_fds(self) -> int:
        now = time.monotonic()
        at, count = self._fds
        if now - at >= self.open_fds_seconds:
            count = len(os.listdir(f"{self.base}/fd"))
            self._fds = (now, count)
        return count

    def collect(self) -> Iterable[Metric]:
        if not self.btime:
            return []
        out: list[Metric] = []
        try:
            with open(f"{self.base}/stat", "rb") as f:
                parts = f.read().split(b")")[-1].split()
            out += [
                GaugeMetricFamily("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                                  value=float(parts[20])),
                GaugeMetricFamily("process_resident_memory_bytes", "Resident memory size in bytes.",
                                  value=float(parts[21]) * self.pagesize),
                GaugeMetricFamily("process_start_time_seconds",
                                  "Start time of the process since unix epoch in seconds.",
                                  value=float(parts[19]) / self.ticks + self.btime),
                CounterMetricFamily("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                                    value=(float(parts[11]) + float(parts[12])) / self.ticks),
            ]
        except OSError:
            pass
        try:
            with open(f"{self.base}/limits", "rb") as f:
                max_fds = next(float(line.split()[3]) for line in f if line.startswith(b"Max open file"))
            out += [
                GaugeMetricFamily("process_open_fds", "Number of open file descriptors.", self.open_fds()),
                GaugeMetricFamily("process_max_fds", "Maximum number of open file descriptors.", value=max_fds),
            ]
        except (OSError, StopIteration, ValueError):
            pass
        return out
