"""cgroup v2 (unified hierarchy). File formats: Documentation/admin-guide/cgroup-v2.rst
(cpu.stat, cpu.max, cpu.weight, memory.current/stat/events/peak/max/min/swap.*, io.stat, pids.*, PSI).
The root cgroup has only cpu.stat, memory.stat, io.stat and the pressure files; its other values come
back as None rather than as errors.
"""

from __future__ import annotations

import os

from exporter.readers import fsread, procfs
from exporter.readers.base import CpuStats, IoCounters, MemoryStats, PidsStats, Pressure, SpecStats
from exporter.readers.tree import TreeMembership, join, parse_pressure
from hostwatch.core.cgroupfs import weight_to_shares
from hostwatch.core.cgroupfs.files import (
    CPU_MAX,
    CPU_STAT,
    CPU_WEIGHT,
    IO_STAT,
    MEMORY_CURRENT,
    MEMORY_EVENTS,
    MEMORY_MAX,
    MEMORY_MIN,
    MEMORY_PEAK,
    MEMORY_STAT,
    MEMORY_SWAP_CURRENT,
    MEMORY_SWAP_MAX,
    PIDS_CURRENT,
    PIDS_MAX,
    PRESSURE,
)


def _opt(fn: object, path: str) -> int | None:
    try:
        return fn(path)  # type: ignore[operator, no-any-return]
    except (OSError, ValueError):
        return None


class V2Reader(TreeMembership):
    version = 2

    def __init__(self, root: str, proc_root: str = "/proc") -> None:
        self.root = root
        self.proc_root = proc_root
        self.membership_root = root
        self._psi = os.path.exists(f"{root}/{PRESSURE['cpu']}")

    def cpu(self, cg: str, per_cpu: bool) -> CpuStats:
        stat = fsread.read_flat_keyed(f"{join(self.root, cg)}/{CPU_STAT}")
        usage = stat.get("usage_usec")
        user = stat.get("user_usec")
        system = stat.get("system_usec")
        throttled = stat.get("throttled_usec")
        return CpuStats(
            usage_ns=None if usage is None else usage * 1000,
            user_ns=None if user is None else user * 1000,
            system_ns=None if system is None else system * 1000,
            periods=stat.get("nr_periods"),
            throttled_periods=stat.get("nr_throttled"),
            throttled_ns=None if throttled is None else throttled * 1000,
        )

    def memory(self, cg: str) -> MemoryStats:
        base = join(self.root, cg)
        stat = fsread.read_flat_keyed(f"{base}/{MEMORY_STAT}")
        swap: int | None
        if cg == "/":
            # The root has no memory.current/memory.swap.current: like cAdvisor (runc's
            # rootStatsFromMeminfo), usage is MemTotal - MemFree and swap SwapTotal - SwapFree.
            info = procfs.meminfo(self.proc_root)
            usage = info["MemTotal"] - info["MemFree"]
            swap = info.get("SwapTotal", 0) - info.get("SwapFree", 0)
            events: dict[str, int] = {}
        else:
            usage = fsread.read_int(f"{base}/{MEMORY_CURRENT}")
            events = fsread.read_flat_keyed(f"{base}/{MEMORY_EVENTS}")
            swap = _opt(fsread.read_int, f"{base}/{MEMORY_SWAP_CURRENT}")
        return MemoryStats(
            usage=usage,
            working_set=None if usage is None else max(0, usage - stat.get("inactive_file", 0)),
            rss=stat.get("anon"),
            cache=stat.get("file"),
            mapped_file=stat.get("file_mapped"),
            swap=swap,
            max_usage=_opt(fsread.read_int, f"{base}/{MEMORY_PEAK}"),  # kernel >= 5.19
            pgfault=stat.get("pgfault"),
            pgmajfault=stat.get("pgmajfault"),
            hierarchy_pgfault=stat.get("pgfault"),
            hierarchy_pgmajfault=stat.get("pgmajfault"),
            events=events,
        )

    def spec(self, cg: str) -> SpecStats:
        if cg == "/":
            return SpecStats()
        base = self.root + cg
        quota_s, _, period_s = fsread.read_bytes(f"{base}/{CPU_MAX}").strip().partition(b" ")
        weight = _opt(fsread.read_int, f"{base}/{CPU_WEIGHT}")
        return SpecStats(
            cpu_period=int(period_s) if period_s else None,
            cpu_quota=None if quota_s == b"max" else int(quota_s),
            cpu_shares=None if weight is None else weight_to_shares(weight),
            memory_limit=fsread.read_int_or_max(f"{base}/{MEMORY_MAX}"),
            memory_swap_limit=_opt(fsread.read_int_or_max, f"{base}/{MEMORY_SWAP_MAX}"),
            memory_reservation=_opt(fsread.read_int, f"{base}/{MEMORY_MIN}"),
        )

    def io(self, cg: str) -> dict[str, IoCounters]:
        out: dict[str, IoCounters] = {}
        for line in fsread.read_bytes(f"{join(self.root, cg)}/{IO_STAT}").split(b"\n"):
            dev, _, rest = line.partition(b" ")
            if not rest:
                continue
            fields = dict(kv.split(b"=", 1) for kv in rest.split() if b"=" in kv)
            out[dev.decode()] = IoCounters(
                read_bytes=int(fields.get(b"rbytes", 0)),
                write_bytes=int(fields.get(b"wbytes", 0)),
                reads=int(fields.get(b"rios", 0)),
                writes=int(fields.get(b"wios", 0)),
            )
        return out

    def pids(self, cg: str) -> PidsStats:
        if cg == "/":
            return PidsStats()
        base = self.root + cg
        return PidsStats(fsread.read_int(f"{base}/{PIDS_CURRENT}"), fsread.read_int_or_max(f"{base}/{PIDS_MAX}"))

    def has_pressure(self) -> bool:
        return self._psi

    def pressure(self, cg: str) -> dict[str, Pressure]:
        base = join(self.root, cg)
        return {res: parse_pressure(f"{base}/{fname}") for res, fname in PRESSURE.items()}

    def oom_kills(self, cg: str) -> int | None:
        if cg == "/":
            return None
        return fsread.read_flat_keyed(f"{self.root}{cg}/{MEMORY_EVENTS}").get("oom_kill")
