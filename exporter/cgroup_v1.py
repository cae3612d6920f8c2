"""cgroup v1 (legacy and hybrid hosts): one hierarchy per controller, optionally co-mounted
("cpu,cpuacct"). File formats: Documentation/admin-guide/cgroup-v1/{cpuacct,memory,blkio-controller,pids}.rst
and scheduler/sched-bwc.rst. On a hybrid host PSI comes from the empty cgroup2 mount at <root>/unified
when the same path exists there.
"""

from __future__ import annotations

import os

from exporter import fsread
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

CONTROLLERS = ("cpu", "cpuacct", "memory", "blkio", "pids", "cpuset")
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PSI_FILES = (("cpu", "cpu.pressure"), ("memory", "memory.pressure"), ("io", "io.pressure"))


def _opt_int(path: str) -> int | None:
    try:
        return fsread.read_int(path)
    except (OSError, ValueError):
        return None


class V1Reader(TreeMembership):
    version = 1

    @staticmethod
    def controller_dirs(root: str) -> dict[str, str]:
        """controller -> mount directory, from the names under root ("cpu,cpuacct" serves both)."""
        found: dict[str, str] = {}
        try:
            entries = sorted(os.listdir(root))
        except OSError:
            return found
        for entry in entries:
            path = os.path.join(root, entry)
            if not os.path.isdir(path):
                continue
            for ctrl in entry.split(","):
                if ctrl in CONTROLLERS and (ctrl not in found or entry == ctrl):
                    found[ctrl] = path
        return found

    def __init__(self, root: str) -> None:
        self.root = root
        dirs = self.controller_dirs(root)
        missing = os.path.join(root, ".missing-controller")
        self._cpu = dirs.get("cpu", missing)
        self._cpuacct = dirs.get("cpuacct", dirs.get("cpu", missing))
        self._memory = dirs.get("memory", missing)
        self._blkio = dirs.get("blkio", missing)
        self._pids = dirs.get("pids", missing)
        self.controllers = sorted(dirs)
        # Discovery and membership come from one hierarchy; the runtime and Docker populate all of them.
        self.membership_root = next((dirs[c] for c in ("cpuacct", "cpu", "memory", "pids") if c in dirs), missing)
        unified = os.path.join(root, "unified")
        self._unified = unified if os.path.exists(os.path.join(unified, "cgroup.procs")) else None
        self._psi_unified = self._unified is not None and os.path.exists(os.path.join(unified, "cpu.pressure"))
        self._psi_v1 = os.path.exists(os.path.join(self._cpu, "cpu.pressure"))  # kernel booted with psi=1

    def cpu(self, cg: str, per_cpu: bool) -> CpuStats:
        acct = join(self._cpuacct, cg)
        out = CpuStats()
        if per_cpu:
            out.per_cpu_ns = [int(x) for x in fsread.read_bytes(acct + "/cpuacct.usage_percpu").split()]
            out.usage_ns = sum(out.per_cpu_ns)
        else:
            out.usage_ns = fsread.read_int(acct + "/cpuacct.usage")
        ticks = fsread.read_flat_keyed(acct + "/cpuacct.stat")
        if "user" in ticks:
            out.user_ns = ticks["user"] * 1_000_000_000 // _CLK_TCK
        if "system" in ticks:
            out.system_ns = ticks["system"] * 1_000_000_000 // _CLK_TCK
        stat = fsread.read_flat_keyed(join(self._cpu, cg) + "/cpu.stat")
        out.periods = stat.get("nr_periods")
        out.throttled_periods = stat.get("nr_throttled")
        out.throttled_ns = stat.get("throttled_time")
        return out

    def memory(self, cg: str) -> MemoryStats:
        base = join(self._memory, cg)
        stat = fsread.read_flat_keyed(base + "/memory.stat")
        usage = fsread.read_int(base + "/memory.usage_in_bytes")
        inactive = stat.get("total_inactive_file", 0)
        return MemoryStats(
            usage=usage,
            working_set=max(0, usage - inactive),
            rss=stat.get("total_rss"),
            cache=stat.get("total_cache"),
            mapped_file=stat.get("total_mapped_file"),
            swap=stat.get("total_swap"),
            max_usage=_opt_int(base + "/memory.max_usage_in_bytes"),
            failcnt=_opt_int(base + "/memory.failcnt"),
            pgfault=stat.get("pgfault"),
            pgmajfault=stat.get("pgmajfault"),
            hierarchy_pgfault=stat.get("total_pgfault"),
            hierarchy_pgmajfault=stat.get("total_pgmajfault"),
        )

    def spec(self, cg: str) -> SpecStats:
        cpu = join(self._cpu, cg)
        mem = join(self._memory, cg)
        quota = fsread.read_int(cpu + "/cpu.cfs_quota_us")
        return SpecStats(
            cpu_period=fsread.read_int(cpu + "/cpu.cfs_period_us"),
            cpu_quota=quota if quota > 0 else None,
            cpu_shares=fsread.read_int(cpu + "/cpu.shares"),
            memory_limit=fsread.read_int(mem + "/memory.limit_in_bytes"),
            memory_swap_limit=_opt_int(mem + "/memory.memsw.limit_in_bytes"),  # absent: swapaccount=0
            memory_reservation=_opt_int(mem + "/memory.soft_limit_in_bytes"),
        )

    def io(self, cg: str) -> dict[str, IoCounters]:
        base = join(self._blkio, cg)
        out: dict[str, IoCounters] = {}
        for fname, rd, wr in (
            ("/blkio.throttle.io_service_bytes_recursive", "read_bytes", "write_bytes"),
            ("/blkio.throttle.io_serviced_recursive", "reads", "writes"),
        ):
            for line in fsread.read_bytes(base + fname).split(b"\n"):
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
            return PidsStats(_opt_int(base + "/pids.current"), None)
        return PidsStats(fsread.read_int(base + "/pids.current"), fsread.read_int_or_max(base + "/pids.max"))

    def has_pressure(self) -> bool:
        return self._psi_unified or self._psi_v1

    def pressure(self, cg: str) -> dict[str, Pressure]:
        out: dict[str, Pressure] = {}
        if self._psi_v1:
            dirs = {"cpu": self._cpu, "memory": self._memory, "io": self._blkio}
            for res, fname in _PSI_FILES:
                out[res] = parse_pressure(join(dirs[res], cg) + "/" + fname)
            return out
        if self._unified is None:
            return out
        base = join(self._unified, cg)
        try:
            out["cpu"] = parse_pressure(base + "/cpu.pressure")
        except FileNotFoundError:
            return out  # this cgroup is not mirrored in the unified hierarchy
        for res, fname in _PSI_FILES[1:]:
            out[res] = parse_pressure(base + "/" + fname)
        return out

    def oom_kills(self, cg: str) -> int | None:
        return fsread.read_flat_keyed(join(self._memory, cg) + "/memory.oom_control").get("oom_kill")
