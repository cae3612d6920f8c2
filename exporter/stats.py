"""`hostwatch stats`: a docker-stats-like table computed from the exporter's own readers."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from exporter.discovery import Discovery, Meta, Target
from exporter.readers import CgroupReader, procfs
from hostwatch.core.cgroupfs import is_unlimited
from hostwatch.core.paths import PROC_ROOT
from hostwatch.core.units import binary_size
from hostwatch.core.units import human_size as decimal_size  # docker stats' BlockIO and NetIO


@dataclass
class Sample:
    """Raw counters of one cgroup at one instant."""

    meta: Meta
    at: float
    cpu_ns: int | None
    mem_usage: int | None
    mem_limit: int | None
    net_rx: int
    net_tx: int
    blk_read: int
    blk_write: int
    pids: int | None


@dataclass
class Row:
    id: str
    name: str
    cgroup: str
    cpu_percent: float | None
    mem_usage: int
    mem_limit: int
    mem_percent: float | None
    net_rx: int
    net_tx: int
    blk_read: int
    blk_write: int
    pids: int | None


def take_sample(t: Target, reader: CgroupReader, proc_root: str, host_net: int | None) -> Sample | None:
    """None when the cgroup vanished; partial values when a file is missing."""
    if not reader.exists(t.cg):
        return None
    now = time.monotonic()
    try:
        cpu_ns = reader.cpu(t.cg, per_cpu=False, cfs=False).usage_ns
    except (OSError, ValueError):
        cpu_ns = None
    try:
        mem = reader.memory(t.cg)
        usage = mem.working_set if mem.working_set is not None else mem.usage  # docker: usage - cache
    except (OSError, ValueError):
        usage = None
    try:
        limit = reader.spec(t.cg).memory_limit
    except (OSError, ValueError):
        limit = None
    rx = tx = 0
    try:
        pid = t.first_pid()
        if pid is not None and procfs.namespace_inode(proc_root, pid, "net") != host_net:
            for c in procfs.net_dev(proc_root, pid).values():
                rx += c.rx_bytes
                tx += c.tx_bytes
    except (OSError, ValueError):
        pass
    rd = wr = 0
    try:
        rd, wr = reader.io(t.cg).totals()
    except (OSError, ValueError):
        pass
    try:
        pids = reader.pids(t.cg).current
    except (OSError, ValueError):
        pids = None
    return Sample(t.meta, now, cpu_ns, usage, limit, rx, tx, rd, wr, pids)


def to_row(prev: Sample | None, cur: Sample, machine_memory: int) -> Row:
    cpu = None
    if prev is not None and prev.cpu_ns is not None and cur.cpu_ns is not None and cur.at > prev.at:
        cpu = (cur.cpu_ns - prev.cpu_ns) / ((cur.at - prev.at) * 1e9) * 100.0
    limit = machine_memory if cur.mem_limit is None or is_unlimited(cur.mem_limit) else cur.mem_limit
    usage = cur.mem_usage or 0
    ref = cur.meta.ref
    return Row(
        id=(ref.id[:12] if ref is not None else cur.meta.cgroup),
        name=cur.meta.name,
        cgroup=cur.meta.cgroup,
        cpu_percent=cpu,
        mem_usage=usage,
        mem_limit=limit,
        mem_percent=(usage / limit * 100.0) if limit else None,
        net_rx=cur.net_rx,
        net_tx=cur.net_tx,
        blk_read=cur.blk_read,
        blk_write=cur.blk_write,
        pids=cur.pids,
    )


def docker_fields(r: Row) -> dict[str, str]:
    """The keys and formats of `docker stats --format json`."""
    return {
        "BlockIO": f"{decimal_size(r.blk_read)} / {decimal_size(r.blk_write)}",
        "CPUPerc": "--" if r.cpu_percent is None else f"{r.cpu_percent:.2f}%",
        "Container": r.id,
        "ID": r.id,
        "MemPerc": "--" if r.mem_percent is None else f"{r.mem_percent:.2f}%",
        "MemUsage": f"{binary_size(r.mem_usage)} / {binary_size(r.mem_limit)}",
        "Name": r.name or r.cgroup,
        "NetIO": f"{decimal_size(r.net_rx)} / {decimal_size(r.net_tx)}",
        "PIDs": "--" if r.pids is None else str(r.pids),
    }


_COLUMNS = (
    ("CONTAINER ID", "ID"), ("NAME", "Name"), ("CPU %", "CPUPerc"), ("MEM USAGE / LIMIT", "MemUsage"),
    ("MEM %", "MemPerc"), ("NET I/O", "NetIO"), ("BLOCK I/O", "BlockIO"), ("PIDS", "PIDs"),
)


def format_table(rows: Sequence[Row]) -> str:
    cells = [[docker_fields(r)[key] for _, key in _COLUMNS] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (h, _) in enumerate(_COLUMNS)]
    lines = ["   ".join(h.ljust(w) for (h, _), w in zip(_COLUMNS, widths, strict=True)).rstrip()]
    for c in cells:
        lines.append("   ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)).rstrip())
    return "\n".join(lines) + "\n"


class StatsView:
    """Samples the selected containers; `rows()` diffs against the previous sample for CPU %."""

    def __init__(
        self,
        discovery: Discovery,
        proc_root: str = str(PROC_ROOT),
        include_raw: bool = False,
        select: Sequence[str] = (),
    ) -> None:
        self.discovery = discovery
        self.reader = discovery.reader
        self.proc_root = proc_root
        self.include_raw = include_raw
        self.select = tuple(select)
        self._prev: dict[str, Sample] = {}
        try:
            self.machine_memory = procfs.meminfo(proc_root).get("MemTotal", 0)
        except OSError:
            self.machine_memory = 0
        try:
            self.host_net: int | None = procfs.namespace_inode(proc_root, procfs.host_pid(proc_root), "net")
        except (OSError, ValueError):
            self.host_net = None

    def _wanted(self, t: Target) -> bool:
        ref = t.meta.ref
        if self.select:
            keys = {t.cg}
            if ref is not None:
                keys |= {ref.name, ref.id, ref.id[:12]}
            return any(s in keys or (ref is not None and ref.id.startswith(s)) for s in self.select)
        if ref is not None:
            return ref.running
        return self.include_raw and t.cg != "/"

    def rows(self) -> list[Row]:
        out = []
        current: dict[str, Sample] = {}
        targets = self.discovery.targets()
        for t in targets:
            if not self._wanted(t):
                continue
            s = take_sample(t, self.reader, self.proc_root, self.host_net)
            if s is None:
                continue
            current[t.cg] = s
            out.append(to_row(self._prev.get(t.cg), s, self.machine_memory))
        self._prev = current
        self.reader.forget({t.cg for t in targets})  # close the kept files of cgroups that are gone
        return out


def run(view: StatsView, stream: bool, fmt: str, interval: float = 1.0, out: TextIO = sys.stdout) -> int:
    view.rows()  # first sample: CPU % needs two
    time.sleep(interval)
    while True:
        rows = view.rows()
        if fmt == "json":
            text = "".join(json.dumps(docker_fields(r)) + "\n" for r in rows)
        else:
            text = format_table(rows)
        if stream and fmt != "json" and out.isatty():
            text = "\033[2J\033[H" + text
        out.write(text)
        out.flush()
        if not stream:
            return 0
        time.sleep(interval)
