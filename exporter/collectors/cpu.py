"""container_cpu_*: usage (per CPU on v1, cpu="total" otherwise), user/system, CFS throttling and burst.

As cAdvisor does: a CPU the container never ran on has no per-CPU series (nor does a zero total), and
the CFS counters are reported only for cgroups with a quota (cpu.stat is not even read otherwise).
"""

from __future__ import annotations

from collections.abc import Iterable

from exporter.collectors.base import Scrape, counter, nonempty
from exporter.collectors.spec import SpecCache
from exporter.families import Family

_CPU_NAMES = [f"cpu{i:02d}" for i in range(256)]


class CpuCollector:
    name = "cpu"

    def __init__(self, per_cpu: bool = True, spec: SpecCache | None = None) -> None:
        self.per_cpu = per_cpu
        self.spec = SpecCache() if spec is None else spec

    def collect(self, scrape: Scrape) -> Iterable[Family]:
        usage = counter("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", "cpu")
        user = counter("container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.")
        system = counter("container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.")
        periods = counter("container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.")
        throttled = counter(
            "container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals."
        )
        throttled_s = counter(
            "container_cpu_cfs_throttled_seconds_total",
            "Total time duration the container has been throttled.",
        )
        bursts = counter("container_cpu_cfs_burst_periods_total", "Number of periods when burst occurs.")
        burst_s = counter(
            "container_cpu_cfs_burst_seconds_total", "Total time duration the container has been bursted."
        )
        reader = scrape.reader
        per_cpu = self.per_cpu
        spec = self.spec
        names = _CPU_NAMES
        for t in scrape.targets:
            cg = t.cg
            quota = None
            if cg != "/":
                try:
                    quota = spec.get(reader, cg).cpu_quota
                except (OSError, ValueError):
                    quota = None  # counted by the spec collector
            try:
                s = reader.cpu(cg, per_cpu, cfs=quota is not None)
            except (OSError, ValueError):
                scrape.error(self.name)
                continue
            ls = t.labels
            if s.per_cpu_ns is not None:
                for i, ns in enumerate(s.per_cpu_ns):
                    if ns > 0:
                        usage.add(ls, ns / 1e9, names[i] if i < 256 else f"cpu{i:02d}")
            elif s.usage_ns:
                usage.add(ls, s.usage_ns / 1e9, "total")
            if s.user_ns is not None:
                user.add(ls, s.user_ns / 1e9)
            if s.system_ns is not None:
                system.add(ls, s.system_ns / 1e9)
            if quota is not None:
                periods.add(ls, s.periods or 0)
                throttled.add(ls, s.throttled_periods or 0)
                throttled_s.add(ls, (s.throttled_ns or 0) / 1e9)
                bursts.add(ls, s.burst_periods or 0)
                burst_s.add(ls, (s.burst_ns or 0) / 1e9)
        return nonempty(usage, user, system, periods, throttled, throttled_s, bursts, burst_s)
