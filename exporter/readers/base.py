"""What a cgroup reader returns, and the one interface v1 and v2 readers implement.

A reader is a pure parser over a root path (`/sys/fs/cgroup` or a fixture tree). Methods take a
cgroup path relative to each hierarchy root ("/" for the root cgroup, "/hostwatch/<id>" for a
container) and return small value objects. A method raises OSError/ValueError when a file it needs is
missing or malformed (the collector counts that and drops the series); files the kernel may
legitimately lack (memory.peak before 5.19, swap accounting off, anything under the root cgroup) come
back as None instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol


class UnsupportedHierarchy(RuntimeError):
    """The cgroup root holds neither a cgroup2 mount nor cgroup v1 hierarchies."""


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
