"""Metric kinds (`--disable_metrics` / `--enable_metrics`), kept free of heavy imports so the CLI starts fast.

cAdvisor's kind names and default-off list are those of cAdvisor v0.60 (lib/container/factory.go
`AllMetrics`, cmd/cadvisor.go `ignoreMetrics`), with cAdvisor's semantics: `--disable_metrics` replaces
the default-off list (so a deployment that names tcp,udp keeps them off), and a non-empty
`--enable_metrics` turns on exactly the kinds it names. hostwatch's own groups (spec, namespace,
machine) are on unless `--disable_metrics` names them.
"""

from __future__ import annotations

from collections.abc import Sequence

CADVISOR_VERSION = "v0.60.0"  # the cAdvisor release these kinds, names and defaults are taken from

CADVISOR_KINDS = (
    "cpu", "sched", "percpu", "memory", "memory_numa", "cpuLoad", "diskIO", "disk", "network", "tcp",
    "advtcp", "udp", "app", "process", "hugetlb", "perf_event", "referenced_memory", "cpu_topology",
    "resctrl", "cpuset", "oom_event", "pressure",
)
HOSTWATCH_GROUPS = ("spec", "namespace", "machine")
KINDS = CADVISOR_KINDS + HOSTWATCH_GROUPS
GROUPS = KINDS  # the older name, still imported by callers

# Kinds accepted for cAdvisor compatibility that produce nothing (yet).
NOT_IMPLEMENTED = (
    "sched", "memory_numa", "advtcp", "app", "hugetlb", "perf_event", "referenced_memory", "cpu_topology",
    "resctrl", "cpuset",
)
IMPLEMENTED = tuple(k for k in KINDS if k not in NOT_IMPLEMENTED)

# cAdvisor's default-off list, less "process": hostwatch has always served container_processes & co.
DEFAULT_DISABLED = frozenset({
    "memory_numa", "tcp", "udp", "advtcp", "sched", "hugetlb", "referenced_memory", "cpu_topology",
    "resctrl", "cpuset",
})

_ALIASES = {k.lower(): k for k in KINDS} | {"io": "diskIO", "psi": "pressure", "oom": "oom_event", "load": "cpuLoad"}


def parse_groups(value: str | Sequence[str]) -> frozenset[str]:
    """`network,pressure` -> the canonical kind names; unknown names are an error naming them."""
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
        raise ValueError(f"unknown metric kind(s) {', '.join(unknown)}; known: {', '.join(KINDS)}")
    return frozenset(out)


def resolve_disabled(disable: str | Sequence[str] | None, enable: str | Sequence[str] | None = None) -> frozenset[str]:
    """The kinds switched off, from the two flags as cAdvisor reads them (None: flag not given)."""
    if enable is not None:
        enabled = parse_groups(enable)
        if enabled:
            named_off = parse_groups(disable) if disable is not None else frozenset()
            return frozenset(k for k in CADVISOR_KINDS if k not in enabled) | (named_off & set(HOSTWATCH_GROUPS))
    if disable is None:
        return DEFAULT_DISABLED
    return parse_groups(disable)


def describe_kinds() -> str:
    """For --help: every kind, the default-off ones, and those accepted but not implemented."""
    return (f"kinds: {', '.join(KINDS)}; off by default: {', '.join(sorted(DEFAULT_DISABLED))}; "
            f"accepted but not implemented (produce nothing): {', '.join(NOT_IMPLEMENTED)}")
