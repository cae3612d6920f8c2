"""cgroup v1 (legacy and hybrid hosts): one hierarchy per controller, optionally co-mounted
("cpu,cpuacct"). File formats: Documentation/admin-guide/cgroup-v1/{cpuacct,memory,blkio-controller,pids}.rst
and scheduler/sched-bwc.rst. On a hybrid host PSI comes from the empty cgroup2 mount at <root>/unified
when the same path exists there.
"""

from __future__ import annotations

import os
from collections.abc import Container

from exporter.readers import fsread
from exporter.readers.base import CpuStats, IoStats, MemoryStats, PidsStats, Pressure, SpecStats, Table
from exporter.readers.fdcache import FdCache
from exporter.readers.tree import TreeMembership, join, parse_pressure
from hostwatch.core.cgroupfs import CgroupError, Layout, detect, parse_procs
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
    PROCS,
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


_NO_IO = b"Total 0\n"  # what blkio's tables say for a cgroup that never did block I/O
NO_IO = IoStats()  # shared, read-only: never written by its users


def parse_blkio(data: bytes, table: Table) -> None:
    """`major:minor Op value` lines (or `major:minor value`, op "", for sectors) into `table`; the
    closing `Total N` line is skipped."""
    if data == _NO_IO:
        return
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


# Where each file of a cgroup is: paths are built once per cgroup (a tuple indexed by these).
(_PERCPU, _USAGE, _ACCT_STAT, _CPU_STAT, _MEM_STAT, _MEM_USAGE, _MEM_MAX, _MEM_FAILCNT, _MEM_KMEM, _MEM_OOM,
 _BLK_BYTES, _BLK_IOS, _PIDS_CURRENT, _PROCS, _TASKS) = range(15)
_MEMORY_STAT = fsread.Fields(b"total_rss", b"total_cache", b"total_mapped_file", b"total_swap", b"pgfault",
                             b"pgmajfault", b"total_pgfault", b"total_pgmajfault", b"total_active_file",
                             b"total_inactive_file", b"total_dirty", b"total_writeback")
_CPU_STAT_FIELDS = fsread.Fields(b"nr_periods", b"nr_throttled", b"throttled_time", b"nr_bursts", b"burst_time")
_ACCT_STAT_FIELDS = fsread.Fields(b"user", b"system")
_OOM_KILL = fsread.Fields(b"oom_kill")


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
        self._paths: dict[str, tuple[str, ...]] = {}

    def paths(self, cg: str) -> tuple[str, ...]:
        p = self._paths.get(cg)
        if p is None:
            acct, cpu, mem = join(self._cpuacct, cg), join(self._cpu, cg), join(self._memory, cg)
            blk, member = join(self._blkio, cg), join(self.membership_root, cg)
            p = self._paths[cg] = (
                f"{acct}/{CPUACCT_USAGE_PERCPU}", f"{acct}/{CPUACCT_USAGE}", f"{acct}/{CPUACCT_STAT}",
                f"{cpu}/{CPU_STAT}", f"{mem}/{MEMORY_STAT}", f"{mem}/{MEMORY_USAGE}", f"{mem}/{MEMORY_MAX_USAGE}",
                f"{mem}/{MEMORY_FAILCNT}", f"{mem}/{MEMORY_KMEM_USAGE}", f"{mem}/{MEMORY_OOM_CONTROL}",
                f"{blk}/{BLKIO_SERVICE_BYTES}", f"{blk}/{BLKIO_SERVICED}", f"{join(self._pids, cg)}/{PIDS_CURRENT}",
                f"{member}/{PROCS}", f"{member}/{TASKS}",
            )
        return p

    def procs(self, cg: str) -> list[int]:
        return parse_procs(self.files.read(cg, self.paths(cg)[_PROCS]))

    def threads(self, cg: str) -> list[int]:
        return parse_procs(self.threads_raw(cg))

    def threads_raw(self, cg: str) -> bytes:
        return self.files.read(cg, self.paths(cg)[_TASKS])

    def forget(self, live: Container[str]) -> None:
        self.files.sweep(live)
        if len(self._paths) > 2 * self.files.owners() + 64:
            self._paths = {cg: p for cg, p in self._paths.items() if cg in live}

    def cpu(self, cg: str, per_cpu: bool, cfs: bool = True) -> CpuStats:
        p = self.paths(cg)
        read = self.files.read
        out = CpuStats()
        if per_cpu:
            out.per_cpu_ns = list(map(int, read(cg, p[_PERCPU]).split()))
            out.usage_ns = sum(out.per_cpu_ns)
        else:
            out.usage_ns = int(read(cg, p[_USAGE]))
        user, system = _ACCT_STAT_FIELDS(read(cg, p[_ACCT_STAT]))
        if user is not None:
            out.user_ns = user * 1_000_000_000 // _CLK_TCK
        if system is not None:
            out.system_ns = system * 1_000_000_000 // _CLK_TCK
        if cfs:
            periods, throttled, throttled_ns, bursts, burst_ns = _CPU_STAT_FIELDS(read(cg, p[_CPU_STAT]))
            out.periods, out.throttled_periods, out.throttled_ns = periods or 0, throttled or 0, throttled_ns or 0
            out.burst_periods, out.burst_ns = bursts or 0, burst_ns or 0  # nr_bursts: kernel >= 5.14
        return out

    def memory(self, cg: str) -> MemoryStats:
        p = self.paths(cg)
        files = self.files
        rss, cache, mapped, swap, pgfault, pgmaj, h_pgfault, h_pgmaj, active, inactive, dirty, writeback = \
            _MEMORY_STAT(files.read(cg, p[_MEM_STAT]))
        usage = int(files.read(cg, p[_MEM_USAGE]))
        max_usage = files.read_optional(cg, p[_MEM_MAX])
        failcnt = files.read_optional(cg, p[_MEM_FAILCNT])
        kmem = files.read_optional(cg, p[_MEM_KMEM])
        # Positional, in MemoryStats' field order: this runs for every cgroup on every scrape.
        return MemoryStats(
            usage, max(0, usage - (inactive or 0)), rss, cache, mapped, swap,
            None if max_usage is None else int(max_usage), None if failcnt is None else int(failcnt),
            pgfault, pgmaj, h_pgfault, h_pgmaj, None if kmem is None else int(kmem), active, inactive, dirty,
            writeback,
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
        p = self.paths(cg)
        read = self.files.read
        io_bytes, ios = read(cg, p[_BLK_BYTES]), read(cg, p[_BLK_IOS])
        if io_bytes == _NO_IO == ios and not self._blkio_extra:
            return NO_IO  # a cgroup that never did block I/O: nearly every one
        out = IoStats()
        parse_blkio(io_bytes, out.service_bytes)
        parse_blkio(ios, out.serviced)
        base = join(self._blkio, cg)
        for kind, fname in self._blkio_extra.items():
            data = self.files.read_optional(cg, f"{base}/{fname}")
            if data is not None:
                parse_blkio(data, out.table(kind))
        return out

    def pids(self, cg: str) -> PidsStats:
        base = join(self._pids, cg)
        if cg == "/":  # the root pids cgroup has no pids.current/pids.max
            return PidsStats(_opt_int(f"{base}/{PIDS_CURRENT}"), None)
        return PidsStats(fsread.read_int(f"{base}/{PIDS_CURRENT}"), fsread.read_int_or_max(f"{base}/{PIDS_MAX}"))

    def pids_current(self, cg: str) -> int | None:
        path = self.paths(cg)[_PIDS_CURRENT]
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
        return _OOM_KILL(self.files.read(cg, self.paths(cg)[_MEM_OOM]))[0]
