"""One collector per metric group; `build_collectors` returns the enabled ones in exposition order."""

from __future__ import annotations

from exporter.collectors.base import GROUPS, GroupCollector, Scrape, parse_groups
from exporter.collectors.cpu import CpuCollector
from exporter.collectors.diskio import DiskCollector, DiskIOCollector
from exporter.collectors.filesystems import Filesystems
from exporter.collectors.lifecycle import LifecycleCollector, OomCollector
from exporter.collectors.load import LoadCollector
from exporter.collectors.machine import MachineCollector
from exporter.collectors.memory import MemoryCollector
from exporter.collectors.namespace import NamespaceCache, NamespaceCollector
from exporter.collectors.netstat import TcpCollector, UdpCollector
from exporter.collectors.network import NetworkCollector
from exporter.collectors.pressure import PressureCollector
from exporter.collectors.process import ProcessCollector
from exporter.collectors.spec import SpecCache, SpecCollector
from exporter.diskusage import DiskUsage
from exporter.readers.fdcache import FdCache
from exporter.readers.mounts import MountTable

__all__ = ["GROUPS", "GroupCollector", "Scrape", "build_collectors", "parse_groups"]


def build_collectors(
    disabled: frozenset[str],
    proc_root: str,
    sys_root: str,
    etc_root: str,
    has_pressure: bool,
    spec_refresh_seconds: float = 0.0,
    metadata_refresh_seconds: float = 0.0,
    files: FdCache | None = None,
    disk_usage: DiskUsage | None = None,
    load_reader: bool = False,
) -> list[GroupCollector]:
    """`files`: the reader's kept files (for /proc/diskstats); `disk_usage`: the writable-layer
    measurer (None: layers are not measured)."""
    ns_cache = NamespaceCache(proc_root, metadata_refresh_seconds)
    spec = SpecCache(spec_refresh_seconds)
    filesystems = None
    if "disk" not in disabled:
        filesystems = Filesystems(proc_root, FdCache(limit=16) if files is None else files,
                                  MountTable(proc_root, metadata_refresh_seconds),
                                  DiskUsage(0.0, 1.0) if disk_usage is None else disk_usage)
    out: list[GroupCollector] = [LifecycleCollector()]
    if "cpu" not in disabled:
        out.append(CpuCollector(per_cpu="percpu" not in disabled, spec=spec))
    if "cpuLoad" not in disabled:
        out.append(LoadCollector(proc_root, load_reader))
    if "memory" not in disabled:
        out.append(MemoryCollector())
    if "spec" not in disabled:
        out.append(SpecCollector(spec))
    if "diskIO" not in disabled:
        out.append(DiskIOCollector(sys_root, filesystems))
    if filesystems is not None:
        out.append(DiskCollector(filesystems))
    if "network" not in disabled:
        out.append(NetworkCollector(proc_root, ns_cache))
    if "tcp" not in disabled:
        out.append(TcpCollector(proc_root, ns_cache))
    if "udp" not in disabled:
        out.append(UdpCollector(proc_root, ns_cache))
    if "process" not in disabled:
        out.append(ProcessCollector(proc_root, spec))
    if "pressure" not in disabled and has_pressure:
        out.append(PressureCollector())
    if "oom_event" not in disabled:
        out.append(OomCollector(proc_root))
    if "namespace" not in disabled:
        out.append(NamespaceCollector(proc_root, ns_cache))
    if "machine" not in disabled:
        out.append(MachineCollector(proc_root, etc_root, sys_root))
    return out
