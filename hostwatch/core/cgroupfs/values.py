"""How cgroup files spell values, both ways: CPU shares and weights, cpusets, "unlimited", the
flat-keyed and PID-list formats. Pure functions; the runtime writes with them, the exporter reads."""

from __future__ import annotations

import re

CPU_PERIOD_US = 100_000  # the kernel's default CFS period, which Docker and the runtime use
MIN_CPU_QUOTA_US = 1_000  # the kernel rejects a CFS quota below 1 ms (Docker: "minimum is 0.01 CPUs")

# v1 cpu.shares and v2 cpu.weight ranges (kernel/sched/sched.h, cgroup-v2.rst)
MIN_SHARES, MAX_SHARES = 2, 262_144
MIN_WEIGHT, MAX_WEIGHT = 1, 10_000

# v1 reports "no memory limit" as PAGE_COUNTER_MAX pages (9223372036854771712 with 4 KiB pages);
# anything above 2^62 is that, rounded for the page size. cAdvisor uses the same threshold.
UNLIMITED_ABOVE = 1 << 62
V1_UNLIMITED_MEMORY = 9_223_372_036_854_771_712


def shares_to_weight(shares: int) -> int:
    """cpu.shares (2..262144) -> cpu.weight (1..10000), clamped, as runc converts a v1 limit for v2.
    Both directions round down, so a round trip can lose one weight step."""
    span_s, span_w = MAX_SHARES - MIN_SHARES, MAX_WEIGHT - MIN_WEIGHT
    return max(MIN_WEIGHT, min(MAX_WEIGHT, MIN_WEIGHT + ((shares - MIN_SHARES) * span_w) // span_s))


def weight_to_shares(weight: int) -> int:
    """cpu.weight (1..10000) -> cpu.shares (2..262144), as cAdvisor and runc map it."""
    span_s, span_w = MAX_SHARES - MIN_SHARES, MAX_WEIGHT - MIN_WEIGHT
    return MIN_SHARES + ((weight - MIN_WEIGHT) * span_s) // span_w


def is_unlimited(limit: int) -> bool:
    """True for a v1 limit that means none (the page counter's maximum); v2 spells that "max"."""
    return limit > UNLIMITED_ABOVE


_CPUSET_RE = re.compile(r"[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*")


def parse_cpuset(text: str, name: str = "--cpuset-cpus") -> str:
    """A cpuset.cpus list like "0-2,4" (ranges ascending); ValueError naming `name` otherwise.
    Whether the CPUs exist is the kernel's to say, when the list is written."""
    ok = _CPUSET_RE.fullmatch(text) is not None
    for chunk in text.split(",") if ok else ():
        lo, _, hi = chunk.partition("-")
        ok = ok and (not hi or int(hi) >= int(lo))
    if not ok:
        raise ValueError(f"invalid {name} value: {text!r} (expected a list like 0-2,4)")
    return text


def parse_procs(data: bytes) -> list[int]:
    """PIDs listed in a cgroup.procs file, in file order; a token that is not a PID is skipped."""
    return [int(tok) for tok in data.split() if tok.isdigit()]


def parse_flat_keyed(data: bytes) -> dict[str, int]:
    """A flat-keyed file, `key value` per line (memory.stat, cpu.stat, memory.events, memory.oom_control,
    cpuacct.stat); lines without an integer value are skipped."""
    out: dict[str, int] = {}
    for line in data.split(b"\n"):
        key, _, value = line.partition(b" ")
        if value:
            try:
                out[key.decode()] = int(value)
            except ValueError:
                continue
    return out
