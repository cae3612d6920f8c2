"""What a cgroup reader returns, and the one interface v1 and v2 readers implement.

A reader is a pure parser over a root path (`/sys/fs/cgroup` or a fixture tree). Methods take a
cgroup path relative to each hierarchy root ("/" for the root cgroup, "/hostwatch/<id>" for a
container) and return small value objects. A method raises OSError/ValueError when a file it needs is
missing or malformed (the collector counts that and drops the series); files the kernel may
legitimately lack (memory.peak before 5.19, swap accounting off, anything under the root cgroup) come
back as None instead. The files a scrape reads again are kept open and re-read with pread
(`readers.fdcache`); `forget` closes those of cgroups that are gone.
"""

from __future__ import annotations

from collections.abc import Container, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol


class UnsupportedHierarchy(RuntimeError):
    """The cgroup root holds neither a cgroup2 mount nor cgroup v1 hierarchies."""


@dataclass(slots=True)
class CpuStats:
    usage_ns: int | None = None
    per_cpu_ns: list[int] | None = None  # v1 only (cpuacct.usage_percpu)
    user_ns: int | None = None
    system_ns: int | None = None
    # CFS bandwidth (cpu.stat), read only when asked for: cAdvisor reports it only under a quota.
    periods: int | None = None
    throttled_periods: int | None = None
    throttled_ns: int | None = None
    burst_periods: int | None = None  # nr_bursts, kernel >= 5.14
    burst_ns: int | None = None


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
    kernel: int | None = None  # v1 memory.kmem.usage_in_bytes; v2 memory.stat "kernel" (>= 5.18)
    active_file: int | None = None
    inactive_file: int | None = None
    file_dirty: int | None = None
    file_writeback: int | None = None
    pgscan: int | None = None  # v2 only, like the rest below
    pgsteal: int | None = None
    refault_file: int | None = None
    refault_anon: int | None = None
    events: dict[str, int] = field(default_factory=dict)  # v2 memory.events


@dataclass(slots=True)
class SpecStats:
    cpu_period: int | None = None
    cpu_quota: int | None = None  # None = unlimited
    cpu_shares: int | None = None
    memory_limit: int | None = None  # None = unlimited
    memory_swap_limit: int | None = None
    memory_reservation: int | None = None
    pids_limit: int | None = None  # None = unlimited ("max"), or no pids controller here


Table = dict[str, dict[str, int]]  # "major:minor" -> operation (Read, Write, ...) -> value
EMPTY_TABLE: Mapping[str, dict[str, int]] = MappingProxyType({})


class IoStats:
    """Block I/O per device, in the layout of the kernel's files (and of cAdvisor's DiskIo): each table
    maps "major:minor" to its operations. v1 fills the tables its kernel has files for (CFQ's
    blkio.io_merged_recursive & co. exist only before 5.0, or with BFQ's debug statistics); v2's
    io.stat gives service bytes, serviced and, with iocost, the cost tables ("Count"). The tables
    most kernels have no file for share one empty, read-only table until written (`table`)."""

    __slots__ = ("service_bytes", "serviced", "merged", "sectors", "service_time", "queued",
                 "cost_usage", "cost_wait", "cost_indebt", "cost_indelay")

    def __init__(self) -> None:
        self.service_bytes: Table = {}
        self.serviced: Table = {}
        self.merged: Mapping[str, dict[str, int]] = EMPTY_TABLE
        self.sectors: Mapping[str, dict[str, int]] = EMPTY_TABLE
        self.service_time: Mapping[str, dict[str, int]] = EMPTY_TABLE  # nanoseconds
        self.queued: Mapping[str, dict[str, int]] = EMPTY_TABLE
        self.cost_usage: Mapping[str, dict[str, int]] = EMPTY_TABLE  # microseconds
        self.cost_wait: Mapping[str, dict[str, int]] = EMPTY_TABLE
        self.cost_indebt: Mapping[str, dict[str, int]] = EMPTY_TABLE
        self.cost_indelay: Mapping[str, dict[str, int]] = EMPTY_TABLE

    def table(self, kind: str) -> Table:
        """The table `kind`, made writable (created) on first use."""
        t = getattr(self, kind)
        if t is EMPTY_TABLE:
            t = {}
            setattr(self, kind, t)
        return t  # type: ignore[no-any-return]

    def totals(self) -> tuple[int, int]:
        """(bytes read, bytes written) over every device."""
        rd = wr = 0
        for ops in self.service_bytes.values():
            rd += ops.get("Read", 0)
            wr += ops.get("Write", 0)
        return rd, wr


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

    def created(self, cg: str) -> float | None:
        """When the cgroup appeared, as cAdvisor dates a raw cgroup (the directory's mtime)."""
        ...

    def procs(self, cg: str) -> list[int]: ...

    def threads(self, cg: str) -> list[int]:
        """The thread IDs of the tasks directly in this cgroup."""
        ...

    def threads_raw(self, cg: str) -> bytes:
        """The file threads() parses (a collector may keep what it derived while it is unchanged)."""
        ...

    def cpu(self, cg: str, per_cpu: bool, cfs: bool = True) -> CpuStats: ...

    def memory(self, cg: str) -> MemoryStats: ...

    def spec(self, cg: str) -> SpecStats: ...

    def io(self, cg: str) -> IoStats: ...

    def pids(self, cg: str) -> PidsStats: ...

    def pids_current(self, cg: str) -> int | None: ...

    def pressure(self, cg: str) -> dict[str, Pressure]: ...

    def oom_kills(self, cg: str) -> int | None: ...

    def has_pressure(self) -> bool: ...

    def forget(self, live: Container[str]) -> None:
        """Close the kept files of every cgroup not in `live`."""
        ...

    def close(self) -> None: ...
