"""cgroup v2 (unified hierarchy). File formats: Documentation/admin-guide/cgroup-v2.rst
(cpu.stat, cpu.max, cpu.weight, memory.current/stat/events/peak/max/min/swap.*, io.stat, pids.*, PSI).
The root cgroup has only cpu.stat, memory.stat, io.stat and the pressure files; its other values come
back as None rather than as errors.
"""

from __future__ import annotations

import os

from exporter.readers import fsread, procfs
from exporter.readers.base import CpuStats, IoStats, MemoryStats, PidsStats, Pressure, SpecStats
from exporter.readers.fdcache import FdCache
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

CGROUP_THREADS = "cgroup.threads"
CGROUP_EVENTS = "cgroup.events"
# io.stat keys -> (IoStats table, operation), as runc's fs2 maps them onto v1's layout.
_IO_KEYS = {
    b"rbytes": ("service_bytes", "Read"), b"wbytes": ("service_bytes", "Write"),
    b"rios": ("serviced", "Read"), b"wios": ("serviced", "Write"),
    b"cost.usage": ("cost_usage", "Count"), b"cost.wait": ("cost_wait", "Count"),
    b"cost.indebt": ("cost_indebt", "Count"), b"cost.indelay": ("cost_indelay", "Count"),
}


def _opt(fn: object, path: str) -> int | None:
    try:
        return fn(path)  # type: ignore[operator, no-any-return]
    except (OSError, ValueError):
        return None


def _int(value: bytes | None) -> int | None:
    return None if value is None else int(value)


def parse_io_stat(data: bytes) -> IoStats:
    out = IoStats()
    for line in data.split(b"\n"):
        dev, _, rest = line.partition(b" ")
        if not rest:
            continue
        device = dev.decode()
        for kv in rest.split():
            key, sep, value = kv.partition(b"=")
            where = _IO_KEYS.get(key)
            if where is None or not sep:
                continue
            table = out.table(where[0])
            ops = table.get(device)
            if ops is None:
                ops = table[device] = {}
            ops[where[1]] = int(value)
    return out


class V2Reader(TreeMembership):
    version = 2
    threads_file = CGROUP_THREADS
    dated_file = CGROUP_EVENTS

    def __init__(self, root: str, proc_root: str = "/proc", files: FdCache | None = None) -> None:
        self.root = root
        self.proc_root = proc_root
        self.membership_root = root
        self.files = FdCache() if files is None else files
        self._psi = os.path.exists(f"{root}/{PRESSURE['cpu']}")

    def cpu(self, cg: str, per_cpu: bool, cfs: bool = True) -> CpuStats:
        stat = fsread.parse_kv(self.files.read(cg, f"{join(self.root, cg)}/{CPU_STAT}"))
        get = stat.get
        usage = get(b"usage_usec")
        user = get(b"user_usec")
        system = get(b"system_usec")
        out = CpuStats(
            usage_ns=None if usage is None else usage * 1000,
            user_ns=None if user is None else user * 1000,
            system_ns=None if system is None else system * 1000,
        )
        if cfs:
            out.periods = get(b"nr_periods")
            out.throttled_periods = get(b"nr_throttled")
            throttled = get(b"throttled_usec")
            out.throttled_ns = None if throttled is None else throttled * 1000
            out.burst_periods = get(b"nr_bursts")
            burst = get(b"burst_usec")
            out.burst_ns = None if burst is None else burst * 1000
        return out

    def memory(self, cg: str) -> MemoryStats:
        base = join(self.root, cg)
        files = self.files
        stat = fsread.parse_kv(files.read(cg, f"{base}/{MEMORY_STAT}"))
        get = stat.get
        swap: int | None
        if cg == "/":
            # The root has no memory.current/memory.swap.current: like cAdvisor (runc's
            # rootStatsFromMeminfo), usage is MemTotal - MemFree and swap SwapTotal - SwapFree.
            info = procfs.meminfo(self.proc_root)
            usage = info["MemTotal"] - info["MemFree"]
            swap = info.get("SwapTotal", 0) - info.get("SwapFree", 0)
            events: dict[str, int] = {}
            peak = None
        else:
            usage = int(files.read(cg, f"{base}/{MEMORY_CURRENT}"))
            events = {k.decode(): v for k, v in fsread.parse_kv(files.read(cg, f"{base}/{MEMORY_EVENTS}")).items()}
            swap = _int(files.read_optional(cg, f"{base}/{MEMORY_SWAP_CURRENT}"))
            peak = _int(files.read_optional(cg, f"{base}/{MEMORY_PEAK}"))  # kernel >= 5.19
        inactive = get(b"inactive_file", 0)
        pgfault = get(b"pgfault")
        pgmajfault = get(b"pgmajfault")
        return MemoryStats(
            usage=usage,
            working_set=max(0, usage - inactive),
            rss=get(b"anon"),
            cache=get(b"file"),
            mapped_file=get(b"file_mapped"),
            swap=swap,
            max_usage=peak,
            # v2 has no failcnt file: memory.events "max" counts the same thing (usage hit the limit).
            failcnt=events.get("max"),
            pgfault=pgfault,
            pgmajfault=pgmajfault,
            hierarchy_pgfault=pgfault,
            hierarchy_pgmajfault=pgmajfault,
            kernel=get(b"kernel"),
            active_file=get(b"active_file"),
            inactive_file=inactive,
            file_dirty=get(b"file_dirty"),
            file_writeback=get(b"file_writeback"),
            pgscan=get(b"pgscan"),
            pgsteal=get(b"pgsteal"),
            refault_file=get(b"workingset_refault_file"),
            refault_anon=get(b"workingset_refault_anon"),
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
            pids_limit=_opt(fsread.read_int_or_max, f"{base}/{PIDS_MAX}"),
        )

    def io(self, cg: str) -> IoStats:
        return parse_io_stat(self.files.read(cg, f"{join(self.root, cg)}/{IO_STAT}"))

    def pids(self, cg: str) -> PidsStats:
        if cg == "/":
            return PidsStats()
        base = self.root + cg
        return PidsStats(fsread.read_int(f"{base}/{PIDS_CURRENT}"), fsread.read_int_or_max(f"{base}/{PIDS_MAX}"))

    def pids_current(self, cg: str) -> int | None:
        if cg == "/":
            return None
        return int(self.files.read(cg, f"{self.root}{cg}/{PIDS_CURRENT}"))

    def has_pressure(self) -> bool:
        return self._psi

    def pressure(self, cg: str) -> dict[str, Pressure]:
        base = join(self.root, cg)
        read = self.files.read
        return {res: parse_pressure(read(cg, f"{base}/{fname}")) for res, fname in PRESSURE.items()}

    def oom_kills(self, cg: str) -> int | None:
        if cg == "/":
            return None
        return fsread.parse_kv(self.files.read(cg, f"{self.root}{cg}/{MEMORY_EVENTS}")).get(b"oom_kill")
