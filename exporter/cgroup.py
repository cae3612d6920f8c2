"""The one cgroup reader interface; v1 and v2 implement it, `open_reader` picks one at start-up.

A reader is a pure parser over a root path (`/sys/fs/cgroup` or a fixture tree). Methods take a
cgroup path relative to each hierarchy root ("/" for the root cgroup, "/hostwatch/<id>" for a
container) and return small value objects. A method raises OSError/ValueError when a file it needs is
missing or malformed (the collector counts that and drops the series); files the kernel may
legitimately lack (memory.peak before 5.19, swap accounting off, anything under the root cgroup) come
back as None instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

from exporter import fsread


@dataclass(slots=True)
class CpuStats:
    usage_ns: int | None = None
    per_cpu_ns: list[int] | None = None  # v1 only (cpuacct.usage_percpu)
    user_ns: int | None = None
    system_ns: int | None = None
    periods: int | None = None
    throttled_periods: int | None = None
    throttled_ns: int | None = None


@dataclass(slots=True)
class MemoryStats:
    usage: int | None = None
    working_set: int | None = None
    rss: int | None = None
    cache: int | None = None
    mapped_file: int | None = None
    swap: int | None = None
    max_usage: int | None = None
    failcnt: int | None = None
    pgfault: int | None = None
    pgmajfault: int | None = None
    hierarchy_pgfault: int | None = None
    hierarchy_pgmajfault: int | None = None
    events: dict[str, int] = field(default_factory=dict)  # v2 memory.events


@dataclass(slots=True)
class SpecStats:
    cpu_period: int | None = None
    cpu_quota: int | None = None  # None = unlimited
    cpu_shares: int | None = None
    memory_limit: int | None = None  # None = unlimited
    memory_swap_limit: int | None = None
    memory_reservation: int | None = None


@dataclass(slots=True)
class IoCounters:
    read_bytes: int = 0
    write_bytes: int = 0
    reads: int = 0
    writes: int = 0


@dataclass(slots=True)
class PidsStats:
    current: int | None = None
    limit: int | None = None  # None = unlimited ("max")


@dataclass(slots=True)
class Pressure:
    some_us: int
    full_us: int | None


class CgroupReader(Protocol):
    """What the collectors need from a cgroup hierarchy, whatever its version."""

    version: int

    def walk(self) -> Iterator[str]:
        """Every cgroup path, "/" first, parents before children."""
        ...

    def exists(self, cg: str) -> bool: ...

    def created(self, cg: str) -> float | None: ...

    def procs(self, cg: str) -> list[int]: ...

    def cpu(self, cg: str, per_cpu: bool) -> CpuStats: ...

    def memory(self, cg: str) -> MemoryStats: ...

    def spec(self, cg: str) -> SpecStats: ...

    def io(self, cg: str) -> dict[str, IoCounters]: ...

    def pids(self, cg: str) -> PidsStats: ...

    def pressure(self, cg: str) -> dict[str, Pressure]: ...

    def oom_kills(self, cg: str) -> int | None: ...

    def has_pressure(self) -> bool: ...


def join(base: str, cg: str) -> str:
    return base if cg == "/" else base + cg


def walk_tree(base: str) -> Iterator[str]:
    """Directories under one hierarchy root as cgroup paths (the raw handler's view): "/" first,
    then depth-first in name order, each parent before its children.

    A directory's link count is 2 + its subdirectories (kernfs, like ext4 and tmpfs), so leaves,
    nearly every container, are never opened: one lstat instead of a scandir of ~30 files each.
    A count of 1 (filesystems that do not track it) means unknown, and is descended."""
    yield "/"
    stack: list[tuple[str, bool]] = [("", True)]
    while stack:
        rel, descend = stack.pop()
        if rel:
            yield rel
        if not descend:
            continue  # a leaf: no need to look inside
        try:
            if fsread.TRACE is not None:
                fsread.TRACE.append(("scandir", base + rel))
            with os.scandir(base + rel) as it:
                subdirs = [(e.name, e.stat(follow_symlinks=False).st_nlink != 2) for e in it
                           if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue  # removed while walking
        subdirs.sort(reverse=True)
        stack.extend((f"{rel}/{name}", has_subdirs) for name, has_subdirs in subdirs)


def read_procs(path: str) -> list[int]:
    return [int(x) for x in fsread.read_bytes(path).split()]


class TreeMembership:
    """The part of a reader that is the same on v1 and v2: which cgroups exist, since when, and
    their processes, all from one directory tree (`membership_root`)."""

    membership_root: str

    def walk(self) -> Iterator[str]:
        return walk_tree(self.membership_root)

    def exists(self, cg: str) -> bool:
        return os.path.isdir(join(self.membership_root, cg))

    def created(self, cg: str) -> float | None:
        try:
            return os.stat(join(self.membership_root, cg)).st_ctime
        except OSError:
            return None

    def procs(self, cg: str) -> list[int]:
        return read_procs(join(self.membership_root, cg) + "/cgroup.procs")


def parse_pressure(path: str) -> Pressure:
    """`some avg10=.. avg60=.. avg300=.. total=N` and `full ...` (PSI, Documentation/accounting/psi.rst)."""
    some = 0
    full: int | None = None
    for line in fsread.read_bytes(path).split(b"\n"):
        if not line:
            continue
        kind, _, rest = line.partition(b" ")
        total = rest.rpartition(b"total=")[2]
        if kind == b"some":
            some = int(total)
        elif kind == b"full":
            full = int(total)
    return Pressure(some, full)


class UnsupportedHierarchy(RuntimeError):
    pass


def open_reader(cgroup_root: str = "/sys/fs/cgroup", proc_root: str = "/proc") -> CgroupReader:
    """v2 when the root is a cgroup2 mount (it has cgroup.controllers); v1 (hybrid or legacy) when it
    holds per-controller hierarchies. Chosen once; nothing else in the exporter branches on version."""
    from exporter.cgroup_v1 import V1Reader
    from exporter.cgroup_v2 import V2Reader

    root = cgroup_root.rstrip("/") or "/"
    if os.path.exists(os.path.join(root, "cgroup.controllers")):
        return V2Reader(root, proc_root)
    if any(os.path.isdir(os.path.join(root, c)) for c in V1Reader.controller_dirs(root)):
        return V1Reader(root)
    raise UnsupportedHierarchy(f"{root}: neither a cgroup2 mount nor cgroup v1 hierarchies")
