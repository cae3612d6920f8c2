"""cgroup v2 (unified hierarchy). File formats: Documentation/admin-guide/cgroup-v2.rst
(cpu.stat, cpu.max, cpu.weight, memory.current/stat/events/peak/max/min/swap.*, io.stat, pids.*, PSI).
The root cgroup has only cpu.stat, memory.stat, io.stat and the pressure files; its other values come
back as None rather than as errors.
"""

from __future__ import annotations

import os

from exporter import fsread, procfs
from exporter.cgroup import (
    CpuStats,
    IoCounters,
    MemoryStats,
    PidsStats,
    Pressure,
    SpecStats,
    TreeMembership,
    join,
    parse_pressure,
)


def _opt(fn: object, path: str) -> int | None:
    try:
        return fn(path)  # type: ignore[operator, no-any-return]
    except (OSError, ValueError):
        return None


def weight_to_shares(weight: int) -> int:
    """cgroup v2 cpu.weight [1..10000] back to v1 shares [2..262144], as cAdvisor/runc map it."""
    return 2 + ((weight - 1) * 262142) // 9999


class V2Reader(TreeMembership):
    version = 2

    def __init__(self, root: str, proc_root: str = "/proc") -> None:
        self.root = root
        self.proc_root = proc_root
        self.membership_root = root
        self._psi = os.path.exists(os.path.join(root, "cpu.pressure"))

    def cpu(self, cg: str, per_cpu: bool) -> CpuStats:
        stat = fsread.read_flat_keyed(join(self.root, cg) + "/cpu.stat")
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
        stat = fsread.read_flat_keyed(base + "/memory.stat")
        swap: int | None
        if cg == "/":
            # The root has no memory.current/memory.swap.current: like cAdvisor (runc's
            # rootStatsFromMeminfo), usage is MemTotal - MemFree and swap SwapTotal - SwapFree.
            info = procfs.meminfo(self.proc_root)
            usage = info["MemTotal"] - info["MemFree"]
            swap = info.get("SwapTotal", 0) - info.get("SwapFree", 0)
            events: dict[str, int] = {}
        else:
            usage = fsread.read_int(base + "/memory.current")
            events = fsread.read_flat_keyed(base + "/memory.events")
            swap = _opt(fsread.read_int, base + "/memory.swap.current")
        return MemoryStats(
            usage=usage,
            working_set=None if usage is None else max(0, usage - stat.get("inactive_file", 0)),
            rss=stat.get("anon"),
            cache=stat.get("file"),
            mapped_file=stat.get("file_mapped"),
            swap=swap,
            max_usage=_opt(fsread.read_int, base + "/memory.peak"),  # kernel >= 5.19
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
        quota_s, _, period_s = fsread.read_bytes(base + "/cpu.max").strip().partition(b" ")
        weight = _opt(fsread.read_int, base + "/cpu.weight")
        return SpecStats(
            cpu_period=int(period_s) if period_s else None,
            cpu_quota=None if quota_s == b"max" else int(quota_s),
            cpu_shares=None if weight is None else weight_to_shares(weight),
            memory_limit=fsread.read_int_or_max(base + "/memory.max"),
            memory_swap_limit=_opt(fsread.read_int_or_max, base + "/memory.swap.max"),
            memory_reservation=_opt(fsread.read_int, base + "/memory.min"),
        )

    def io(self, cg: str) -> dict[str, IoCounters]:
        out: dict[str, IoCounters] = {}
        for line in fsread.read_bytes(join(self.root, cg) + "/io.stat").split(b"\n"):
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
        return PidsStats(fsread.read_int(base + "/pids.current"), fsread.read_int_or_max(base + "/pids.max"))

    def has_pressure(self) -> bool:
        return self._psi

    def pressure(self, cg: str) -> dict[str, Pressure]:
        base = join(self.root, cg)
        return {res: parse_pressure(f"{base}/{res}.pressure") for res in ("cpu", "memory", "io")}

    def oom_kills(self, cg: str) -> int | None:
        if cg == "/":
            return None
        return fsread.read_flat_keyed(self.root + cg + "/memory.events").get("oom_kill")
