"""One collector per metric group; `build_collectors` returns the enabled ones in exposition order."""

from __future__ import annotations

from exporter.collectors.base import GROUPS, GroupCollector, Scrape, parse_groups
from exporter.collectors.cpu import CpuCollector
from exporter.collectors.diskio import DiskIOCollector
from exporter.collectors.lifecycle import LifecycleCollector, OomCollector
from exporter.collectors.machine import MachineCollector
from exporter.collectors.memory import MemoryCollector
from exporter.collectors.namespace import NamespaceCache, NamespaceCollector
from exporter.collectors.network import NetworkCollector
from exporter.collectors.pressure import PressureCollector
from exporter.collectors.process import ProcessCollector
from exporter.collectors.spec import SpecCollector

__all__ = ["GROUPS", "GroupCollector", "Scrape", "build_collectors", "parse_groups"]


def build_collectors(
    disabled: frozenset[str],
    proc_root: str,
    sys_root: str,
    etc_root: str,
    has_pressure: bool,
    spec_refresh_seconds: float = 0.0,
    metadata_refresh_seconds: float = 0.0,
) -> list[GroupCollector]:
    ns_cache = NamespaceCache(proc_root, metadata_refresh_seconds)
    out: list[GroupCollector] = [LifecycleCollector()]
    if "cpu" not in disabled:
        out.append(CpuCollector(per_cpu="percpu" not in disabled))
    if "memory" not in disabled:
        out.append(MemoryCollector())
    if "spec" not in disabled:
        out.append(SpecCollector(spec_refresh_seconds))
    if "diskIO" not in disabled:
        out.append(DiskIOCollector(sys_root))
    if "network" not in disabled:
        out.append(NetworkCollector(proc_root, ns_cache))
    if "process" not in disabled:
        out.append(ProcessCollector(proc_root))
    if "pressure" not in disabled and has_pressure:
        out.append(PressureCollector())
    if "oom_event" not in disabled:
        out.append(OomCollector())
    if "namespace" not in disabled:
        out.append(NamespaceCollector(proc_root, ns_cache))
    if "machine" not in disabled:
        out.append(MachineCollector(proc_root, etc_root, sys_root))
    return out
