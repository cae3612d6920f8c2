"""container_spec_*: the limits, read each scrape (a limit can be updated on a running container)."""

from __future__ import annotations

from collections.abc import Iterable

from exporter.collectors.base import Scrape, gauge, nonempty
from exporter.families import Family

# cAdvisor reports memory limits above 2^62 (the kernel's rounded "unlimited") as 0.
_UNLIMITED = 1 << 62


def spec_memory(value: int | None) -> int:
    return 0 if value is None or value > _UNLIMITED else value


class SpecCollector:
    name = "spec"

    def collect(self, scrape: Scrape) -> Iterable[Family]:
        period = gauge("container_spec_cpu_period", "CPU period of the container.")
        quota = gauge("container_spec_cpu_quota", "CPU quota of the container.")
        shares = gauge("container_spec_cpu_shares", "CPU share of the container.")
        mem = gauge("container_spec_memory_limit_bytes", "Memory limit for the container.")
        swap = gauge("container_spec_memory_swap_limit_bytes", "Memory swap limit for the container.")
        resv = gauge(
            "container_spec_memory_reservation_limit_bytes", "Memory reservation limit for the container."
        )
        reader = scrape.reader
        for t in scrape.targets:
            if t.cg == "/":
                continue  # the root cgroup has no limits
            try:
                s = reader.spec(t.cg)
            except (OSError, ValueError):
                scrape.error(self.name)
                continue
            ls = t.labels
            if s.cpu_period is not None:
                period.add(ls, s.cpu_period)
            if s.cpu_quota is not None:
                quota.add(ls, s.cpu_quota)
            if s.cpu_shares is not None:
                shares.add(ls, s.cpu_shares)
            mem.add(ls, spec_memory(s.memory_limit))
            swap.add(ls, spec_memory(s.memory_swap_limit))
            resv.add(ls, spec_memory(s.memory_reservation))
        return nonempty(period, quota, shares, mem, swap, resv)
