"""cgroup v1 (legacy and hybrid hosts): one hierarchy per controller, optionally co-mounted
("cpu,cpuacct"). File formats: Documentation/admin-guide/cgroup-v1/{cpuacct,memory,blkio-controller,pids}.rst
and scheduler/sched-bwc.rst. On a hybrid host PSI comes from the empty cgroup2 mount at <root>/unified
when the same path exists there.
"""

from __future__ import annotations

import os

from exporter.readers import fsread
from exporter.readers.base import CpuStats, IoCounters, MemoryStats, PidsStats, Pressure, SpecStats
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


def _opt_int(path: str) -> int | None:
    try:
        return fsread.read_int(path)
    except (OSError, ValueError):
        return None


class V1Reader(TreeMembership):
    version = 1

    @staticmethod
    def controller_dirs(root: str) -> dict[str, str]:
        """controller -> hierarchy directory under `root`, as hostwatch.core.cgroupfs.detect finds them."""
        try:
            return {c: str(path) for c, path in detect(root).controllers.items()}
        except CgroupError:
            return {}

    def __init__(self, layout: Layout) -> None:
        root = str(layout.root)
        self.root = root
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

    def cpu(self, cg: str, per_cpu: bool) -> CpuStats:
        acct = join(self._cpuacct, cg)
        out = CpuStats()
        if per_cpu:
            out.per_cpu_ns = [int(x) for x in fsread.read_bytes(f"{acct}/{CPUACCT_USAGE_PERCPU}").split()]
            out.usage_ns = sum(out.per_cpu_ns)
        else:
            out.usage_ns = fsread.read_int(f"{acct}/{CPUACCT_USAGE}")
        ticks = fsread.read_flat_keyed(f"{acct}/{CPUACCT_STAT}")
        if "user" in ticks:
            out.user_ns = ticks["user"] * 1_000_000_000 // _CLK_TCK
        if "system" in ticks:
            out.system_ns = ticks["system"] * 1_000_000_000 // _CLK_TCK
        stat = fsread.read_flat_keyed(f"{join(self._cpu, cg)}/{CPU_STAT}")
        out.periods = stat.get("nr_periods")
        out.throttled_periods = stat.get("nr_throttled")
        out.throttled_ns = stat.get("throttled_time")
        return out

    def memory(self, cg: str) -> MemoryStats:
        base = join(self._memory, cg)
        stat = fsread.read_flat_keyed(f"{base}/{MEMORY_STAT}")
        usage = fsread.read_int(f"{base}/{MEMORY_USAGE}")
        inactive = stat.get("total_inactive_file", 0)
        return MemoryStats(
            usage=usage,
            working_set=max(0, usage - inactive),
            rss=stat.get("total_rss"),
            cache=stat.get("total_cache"),
            mapped_file=stat.get("total_mapped_file"),
            swap=stat.get("total_swap"),
            max_usage=_opt_int(f"{base}/{MEMORY_MAX_USAGE}"),
            failcnt=_opt_int(f"{base}/{MEMORY_FAILCNT}"),
            pgfault=stat.get("pgfault"),
            pgmajfault=stat.get("pgmajfault"),
            hierarchy_pgfault=stat.get("total_pgfault"),
            hierarchy_pgmajfault=stat.get("total_pgmajfault"),
        )

    def spec(self, cg: str) -> SpecStats:
        cpu = join(self._cpu, cg)
        mem = join(self._memory, cg)
        quota = fsread.read_int(f"{cpu}/{CPU_CFS_QUOTA}")
        return SpecStats(
            cpu_period=fsread.read_int(f"{cpu}/{CPU_CFS_PERIOD}"),
            cpu_quota=quota if quota > 0 else None,
            cpu_shares=fsread.read_int(f"{cpu}/{CPU_SHARES}"),
            memory_limit=fsread.read_int(f"{mem}/{MEMORY_LIMIT}"),
            memory_swap_limit=_opt_int(f"{mem}/{MEMORY_MEMSW_LIMIT}"),  # absent: swapaccount=0
            memory_reservation=_opt_int(f"{mem}/{MEMORY_SOFT_LIMIT}"),
        )

    def io(self, cg: str) -> dict[str, IoCounters]:
        base = join(self._blkio, cg)
        out: dict[str, IoCounters] = {}
        for fname, rd, wr in (
            (BLKIO_SERVICE_BYTES, "read_bytes", "write_bytes"),
            (BLKIO_SERVICED, "reads", "writes"),
        ):
            for line in fsread.read_bytes(f"{base}/{fname}").split(b"\n"):
                parts = line.split()
                if len(parts) != 3:
                    continue  # the trailing "Total N" line, blank lines
                dev, op, value = parts
                if op == b"Read":
                    attr = rd
                elif op == b"Write":
                    attr = wr
                else:
                    continue
                counters = out.setdefault(dev.decode(), IoCounters())
                setattr(counters, attr, int(value))
        return out

    def pids(self, cg: str) -> PidsStats:
        base = join(self._pids, cg)
        if cg == "/":  # the root pids cgroup has no pids.current/pids.max
            return PidsStats(_opt_int(f"{base}/{PIDS_CURRENT}"), None)
        return PidsStats(fsread.read_int(f"{base}/{PIDS_CURRENT}"), fsread.read_int_or_max(f"{base}/{PIDS_MAX}"))

    def has_pressure(self) -> bool:
        return self._psi_unified or self._psi_v1

    def pressure(self, cg: str) -> dict[str, Pressure]:
        out: dict[str, Pressure] = {}
        if self._psi_v1:
            dirs = {"cpu": self._cpu, "memory": self._memory, "io": self._blkio}
            for res, fname in PRESSURE.items():
                out[res] = parse_pressure(f"{join(dirs[res], cg)}/{fname}")
            return out
        if self._unified is None:
            return out
        base = join(self._unified, cg)
        try:
            out["cpu"] = parse_pressure(f"{base}/{PRESSURE['cpu']}")
        except FileNotFoundError:
            return out  # this cgroup is not mirrored in the unified hierarchy
        for res in ("memory", "io"):
            out[res] = parse_pressure(f"{base}/{PRESSURE[res]}")
        return out

    def oom_kills(self, cg: str) -> int | None:
        return fsread.read_flat_keyed(f"{join(self._memory, cg)}/{MEMORY_OOM_CONTROL}").get("oom_kill")
