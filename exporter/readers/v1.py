"""cgroup v1 (legacy and hybrid hosts): one hierarchy per controller, optionally co-mounted
("cpu,cpuacct"). File formats: Documentation/admin-guide/cgroup-v1/{cpuacct,memory,blkio-controller,pids}.rst
and scheduler/sched-bwc.rst. On a hybrid host PSI comes from the empty cgroup2 mount at <root>/unified
when the same path exists there.
"""

from __future__ import annotations

import os

from exporter.readers import fsread
from exporter.readers.base import CpuStats, IoStats, MemoryStats, PidsStats, Pressure, SpecStats, Table
from exporter.readers.fdcache import FdCache
from exporter.readers.tree import TreeMembership, join, parse_pressure
from hostwatch.core.cgroupfs import CgroupError, Layout, detect
from hostwatch.core.cgroupfs.files import (
    BLKIO_SERVICE_BYTES,
    BLKIO_SERVICED,
    CPU_CFS_PERIOD,
    CPU_CFS_QUOTA,
    CPU_SHARES,
    CPU_STAT,
    CPUACCT_STAT,
    CPUACCT_USAGE,
    CPUACCT_USAGE_PERCPU,
    MEMORY_FAILCNT,
    MEMORY_LIMIT,
    MEMORY_MAX_USAGE,
    MEMORY_MEMSW_LIMIT,
    MEMORY_OOM_CONTROL,
    MEMORY_SOFT_LIMIT,
    MEMORY_STAT,
    MEMORY_USAGE,
    PIDS_CURRENT,
    PIDS_MAX,
    PRESSURE,
)

_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
MEMORY_KMEM_USAGE = "memory.kmem.usage_in_bytes"
TASKS = "tasks"
CLONE_CHILDREN = "cgroup.clone_children"
# blkio tables beyond the throttle layer's bytes and ios, in the order runc prefers them: BFQ's debug
# statistics (CONFIG_BFQ_CGROUP_DEBUG), then CFQ's (kernels before 5.0). Most kernels have neither.
BLKIO_EXTRA = {
    "merged": ("blkio.bfq.io_merged_recursive", "blkio.io_merged_recursive"),
    "sectors": ("blkio.bfq.sectors_recursive", "blkio.sectors_recursive"),
    "service_time": ("blkio.bfq.io_service_time_recursive", "blkio.io_service_time_recursive"),
    "queued": ("blkio.bfq.io_queued_recursive", "blkio.io_queued_recursive"),
}


def _opt_int(path: str) -> int | None:
    try:
        return fsread.read_int(path)
    except (OSError, ValueError):
        return None


def parse_blkio(data: bytes, table: Table) -> None:
    """`major:minor Op value` lines (or `major:minor value`, op "", for sectors) into `table`; the
    closing `Total N` line is skipped."""
    for line in data.split(b"\n"):
        parts = line.split()
        n = len(parts)
        if n == 3:
            dev, op, value = parts
        elif n == 2 and parts[0] != b"Total":
            dev, value = parts
            op = b""
        else:
            continue
        ops = table.get(dev.decode())
        if ops is None:
            ops = table[dev.decode()] = {}
        ops[op.decode()] = int(value)


class V1Reader(TreeMembership):
    version = 1
    threads_file = TASKS
    dated_file = CLONE_CHILDREN

    @staticmethod
    def controller_dirs(root: str) -> dict[str, str]:
        """controller -> hierarchy directory under `root`, as hostwatch.core.cgroupfs.detect finds them."""
        try:
            return {c: str(path) for c, path in detect(root).controllers.items()}
        except CgroupError:
            return {}

    def __init__(self, layout: Layout, files: FdCache | None = None) -> None:
        root = str(layout.root)
        self.root = root
        self.files = FdCache() if files is None else files
        dirs = {c: str(path) for c, path in layout.controllers.items()}
        missing = os.path.join(root, ".missing-controller")
        self._cpu = dirs.get("cpu", missing)
        self._cpuacct = dirs.get("cpuacct", dirs.get("cpu", missing))
        self._memory = dirs.get("memory", missing)
        self._blkio = dirs.get("blkio", missing)
        self._pids = dirs.get("pids", missing)
        self.controllers = sorted(dirs)
        # Discovery and membership come from one hierarchy; the runtime and Docker populate all of them.
        self.membership_root = next((dirs[c] for c in ("cpuacct", "cpu", "memory", "pids") if c in dirs), missing)
        self._unified = None if layout.unified is None else str(layout.unified)
        self._psi_unified = self._unified is not None and os.path.exists(f"{self._unified}/{PRESSURE['cpu']}")
        self._psi_v1 = os.path.exists(f"{self._cpu}/{PRESSURE['cpu']}")  # kernel booted with psi=1
        # Every cgroup of a hierarchy has the same files: which extra blkio tables exist is known once.
        self._blkio_extra = {}
        for kind, names in BLKIO_EXTRA.items():
            found = next((n for n in names if os.path.exists(f"{self._blkio}/{n}")), None)
            if found is not None:
                self._blkio_extra[kind] = found

    def cpu(self, cg: str, per_cpu: bool, cfs: bool = True) -> CpuStats:
        acct = join(self._cpuacct, cg)
        read = self.files.read
        out = CpuStats()
        if per_cpu:
            out.per_cpu_ns = [int(x) for x in read(cg, f"{acct}/{CPUACCT_USAGE_PERCPU}").split()]
            out.usage_ns = sum(out.per_cpu_ns)
        else:
            out.usage_ns = int(read(cg, f"{acct}/{CPUACCT_USAGE}"))
        ticks = fsread.parse_kv(read(cg, f"{acct}/{CPUACCT_STAT}"))
        user = ticks.get(b"user")
        system = ticks.get(b"system")
        if user is not None:
            out.user_ns = user * 1_000_000_000 // _CLK_TCK
        if system is not None:
            out.system_ns = system * 1_000_000_000 // _CLK_TCK
        if cfs:
            stat = fsread.parse_kv(read(cg, f"{join(self._cpu, cg)}/{CPU_STAT}"))
            out.periods = stat.get(b"nr_periods", 0)
            out.throttled_periods = stat.get(b"nr_throttled", 0)
            out.throttled_ns = stat.get(b"throttled_time", 0)
            out.burst_periods = stat.get(b"nr_bursts", 0)
            out.burst_ns = stat.get(b"burst_time", 0)
        return out

    def memory(self, cg: str) -> MemoryStats:
        base = join(self._memory, cg)
        files = self.files
        stat = fsread.parse_kv(files.read(cg, f"{base}/{MEMORY_STAT}"))
        usage = int(files.read(cg, f"{base}/{MEMORY_USAGE}"))
        get = stat.get
        inactive = get(b"total_inactive_file", 0)
        max_usage = files.read_optional(cg, f"{base}/{MEMORY_MAX_USAGE}")
        failcnt = files.read_optional(cg, f"{base}/{MEMORY_FAILCNT}")
        kmem = files.read_optional(cg, f"{base}/{MEMORY_KMEM_USAGE}")
        return MemoryStats(
            usage=usage,
            working_set=max(0, usage - inactive),
            rss=get(b"total_rss"),
            cache=get(b"total_cache"),
            mapped_file=get(b"total_mapped_file"),
            swap=get(b"total_swap"),
            max_usage=None if max_usage is None else int(max_usage),
            failcnt=None if failcnt is None else int(failcnt),
            pgfault=get(b"pgfault"),
            pgmajfault=get(b"pgmajfault"),
            hierarchy_pgfault=get(b"total_pgfault"),
            hierarchy_pgmajfault=get(b"total_pgmajfault"),
            kernel=None if kmem is None else int(kmem),
            active_file=get(b"total_active_file"),
            inactive_file=inactive,
            file_dirty=get(b"total_dirty"),
            file_writeback=get(b"total_writeback"),
        )

    def spec(self, cg: str) -> SpecStats:
        cpu = join(self._cpu, cg)
        mem = join(self._memory, cg)
        quota = fsread.read_int(f"{cpu}/{CPU_CFS_QUOTA}")
        pids_limit = None
        if cg != "/":  # the root pids cgroup has no pids.max
            try:
                pids_limit = fsread.read_int_or_max(f"{join(self._pids, cg)}/{PIDS_MAX}")
            except (OSError, ValueError):
                pids_limit = None
        return SpecStats(
            cpu_period=fsread.read_int(f"{cpu}/{CPU_CFS_PERIOD}"),
            cpu_quota=quota if quota > 0 else None,
            cpu_shares=fsread.read_int(f"{cpu}/{CPU_SHARES}"),
            memory_limit=fsread.read_int(f"{mem}/{MEMORY_LIMIT}"),
            memory_swap_limit=_opt_int(f"{mem}/{MEMORY_MEMSW_LIMIT}"),  # absent: swapaccount=0
            memory_reservation=_opt_int(f"{mem}/{MEMORY_SOFT_LIMIT}"),
            pids_limit=pids_limit,
        )

    def io(self, cg: str) -> IoStats:
        base = join(self._blkio, cg)
        read = self.files.read
        out = IoStats()
        parse_blkio(read(cg, f"{base}/{BLKIO_SERVICE_BYTES}"), out.service_bytes)
        parse_blkio(read(cg, f"{base}/{BLKIO_SERVICED}"), out.serviced)
        for kind, fname in self._blkio_extra.items():
            data = self.files.read_optional(cg, f"{base}/{fname}")
            if data is not None:
                parse_blkio(data, getattr(out, kind))
        return out

    def pids(self, cg: str) -> PidsStats:
        base = join(self._pids, cg)
        if cg == "/":  # the root pids cgroup has no pids.current/pids.max
            return PidsStats(_opt_int(f"{base}/{PIDS_CURRENT}"), None)
        return PidsStats(fsread.read_int(f"{base}/{PIDS_CURRENT}"), fsread.read_int_or_max(f"{base}/{PIDS_MAX}"))

    def pids_current(self, cg: str) -> int | None:
        path = f"{join(self._pids, cg)}/{PIDS_CURRENT}"
        if cg == "/":
            data = self.files.read_optional(cg, path)
            return None if data is None else int(data)
        return int(self.files.read(cg, path))

    def has_pressure(self) -> bool:
        return self._psi_unified or self._psi_v1

    def pressure(self, cg: str) -> dict[str, Pressure]:
        out: dict[str, Pressure] = {}
        files = self.files
        if self._psi_v1:
            dirs = {"cpu": self._cpu, "memory": self._memory, "io": self._blkio}
            for res, fname in PRESSURE.items():
                out[res] = parse_pressure(files.read(cg, f"{join(dirs[res], cg)}/{fname}"))
            return out
        if self._unified is None:
            return out
        base = join(self._unified, cg)
        cpu = files.read_optional(cg, f"{base}/{PRESSURE['cpu']}")
        if cpu is None:
            return out  # this cgroup is not mirrored in the unified hierarchy
        out["cpu"] = parse_pressure(cpu)
        for res in ("memory", "io"):
            out[res] = parse_pressure(files.read(cg, f"{base}/{PRESSURE[res]}"))
        return out

    def oom_kills(self, cg: str) -> int | None:
        data = self.files.read(cg, f"{join(self._memory, cg)}/{MEMORY_OOM_CONTROL}")
        return fsread.parse_kv(data).get(b"oom_kill")
