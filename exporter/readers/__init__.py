"""The exporter's readers: cgroup v1/v2 and procfs, pure parsers over a root path.

`open_reader` picks the cgroup reader once, at start-up, by hostwatch.core.cgroupfs's one detection
rule; nothing else in the exporter branches on the cgroup version.

- base: the value types and the `CgroupReader` interface;
- tree: the hierarchy walk, membership and PSI parsing both versions share;
- v1, v2: the two readers; procfs: /proc; mounts: filesystems, devices, writable layers;
- fsread: the file primitives all of them read through; fdcache: the files kept open across scrapes.
"""

from __future__ import annotations

from exporter.readers.base import (
    CgroupReader,
    CpuStats,
    IoStats,
    MemoryStats,
    PidsStats,
    Pressure,
    SpecStats,
    UnsupportedHierarchy,
)
from exporter.readers.fdcache import FdCache
from exporter.readers.v1 import V1Reader
from exporter.readers.v2 import V2Reader
from hostwatch.core.cgroupfs import CgroupError, detect
from hostwatch.core.cgroupfs.layout import MOUNTINFO
from hostwatch.core.paths import CGROUP_ROOT, PROC_ROOT

__all__ = [
    "CgroupReader",
    "CpuStats",
    "IoStats",
    "MemoryStats",
    "PidsStats",
    "Pressure",
    "SpecStats",
    "UnsupportedHierarchy",
    "V1Reader",
    "V2Reader",
    "open_reader",
]


def open_reader(cgroup_root: str = str(CGROUP_ROOT), proc_root: str = str(PROC_ROOT),
                mountinfo: str = str(MOUNTINFO), max_open_files: int = 0) -> CgroupReader:
    """The reader for the hierarchy at `cgroup_root`: V2Reader on a cgroup2 mount, V1Reader on a
    legacy or hybrid host (see hostwatch.core.cgroupfs.layout for the rule). `max_open_files`: the
    most files it keeps open between scrapes (0: as many as it reads, raising RLIMIT_NOFILE)."""
    try:
        layout = detect(cgroup_root, mountinfo)
    except CgroupError as e:
        raise UnsupportedHierarchy(str(e)) from e
    files = FdCache(max_open_files or None)
    if layout.version == 2:
        return V2Reader(str(layout.root), proc_root, files)
    return V1Reader(layout, files)
