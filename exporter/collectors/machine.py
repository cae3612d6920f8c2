"""machine_* host gauges: cAdvisor's names, HELP and boot_id/machine_id/system_uuid labels
(lib/metrics/prometheus_machine.go), hostwatch's machine_memory_available_bytes and
machine_boot_time_seconds, and machine_scrape_error.

What does not change while the host runs (CPU topology, DIMMs) is read once, at start-up, as
cAdvisor reads its MachineInfo: physical cores and sockets from sysfs topology (cAdvisor's fallback
when /proc/cpuinfo lacks them), books and drawers (s390x) likewise, DIMMs from EDAC (no series where
the host has no memory controller there, as cAdvisor), NVM 0 (no ipmctl here, as cAdvisor without it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from exporter.collectors.base import Scrape, gauge, nonempty, untyped
from exporter.families import Family
from exporter.readers import fsread, procfs

_LABELS = ("boot_id", "machine_id", "system_uuid")
_CPU_DIR = re.compile(r"cpu[0-9]+$")
_MC_DIR = re.compile(r"mc[0-9]+$")
_DIMM_DIR = re.compile(r"dimm[0-9]+$")
NVM_MODES = ("memory_mode", "app_direct_mode")


@dataclass
class Topology:
    physical_cores: int = 0
    sockets: int = 0
    books: int = 0
    drawers: int = 0
    dimms: dict[str, tuple[int, int]] = field(default_factory=dict)  # memory type -> (count, bytes)


def _read_id(path: str) -> str | None:
    try:
        return fsread.read_text(path).strip()
    except OSError:
        return None


def read_topology(sys_root: str) -> Topology:
    top = Topology()
    cpu_root = f"{sys_root}/devices/system/cpu"
    cores: set[tuple[str, str]] = set()
    sockets: set[str] = set()
    books: set[str] = set()
    drawers: set[str] = set()
    try:
        cpus = [n for n in os.listdir(cpu_root) if _CPU_DIR.match(n)]
    except OSError:
        cpus = []
    for cpu in cpus:
        t = f"{cpu_root}/{cpu}/topology"
        package = _read_id(f"{t}/physical_package_id")
        core = _read_id(f"{t}/core_id")
        if package is not None:
            sockets.add(package)
            if core is not None:
                cores.add((package, core))
        for ids, name in ((books, "book_id"), (drawers, "drawer_id")):
            value = _read_id(f"{t}/{name}")
            if value is not None:
                ids.add(value)
    top.physical_cores, top.sockets, top.books, top.drawers = len(cores), len(sockets), len(books), len(drawers)
    edac = f"{sys_root}/devices/system/edac/mc"
    try:
        controllers = [n for n in os.listdir(edac) if _MC_DIR.match(n)]
    except OSError:
        controllers = []
    for mc in controllers:
        try:
            dimms = [n for n in os.listdir(f"{edac}/{mc}") if _DIMM_DIR.match(n)]
        except OSError:
            continue
        for dimm in dimms:
            kind = _read_id(f"{edac}/{mc}/{dimm}/dimm_mem_type")
            size = _read_id(f"{edac}/{mc}/{dimm}/size")  # MiB
            if kind is None or size is None or not size.isdigit():
                continue
            count, capacity = top.dimms.get(kind, (0, 0))
            top.dimms[kind] = (count + 1, capacity + int(size) * 1024 * 1024)
    return top


class MachineCollector:
    name = "machine"

    def __init__(self, proc_root: str = "/proc", etc_root: str = "/etc", sys_root: str = "/sys") -> None:
        self.proc_root = proc_root
        self.ids = (
            procfs.read_id(f"{proc_root}/sys/kernel/random/boot_id"),
            procfs.read_id(f"{etc_root}/machine-id"),
            procfs.read_id(f"{sys_root}/class/dmi/id/product_uuid"),
        )
        self.topology = read_topology(sys_root)

    def collect(self, scrape: Scrape) -> Iterable[Family]:
        def g(name: str, doc: str, *extra: str) -> Family:
            return gauge(name, doc, *_LABELS, *extra)

        physical = g("machine_cpu_physical_cores", "Number of physical CPU cores.")
        cores = g("machine_cpu_cores", "Number of logical CPU cores.")
        sockets = g("machine_cpu_sockets", "Number of CPU sockets.")
        books = g("machine_cpu_books", "Number of CPU books.")
        drawers = g("machine_cpu_drawers", "Number of CPU drawers.")
        mem = g("machine_memory_bytes", "Amount of memory installed on the machine.")
        swap = g("machine_swap_bytes", "Amount of swap memory available on the machine.")
        dimm_count = untyped("machine_dimm_count",  # a gauge named like a summary's _count: see untyped()
                             "Number of RAM DIMM (all types memory modules) value labeled by dimm type.",
                             *_LABELS, "type")
        dimm_bytes = g("machine_dimm_capacity_bytes",
                       "Total RAM DIMM capacity (all types memory modules) value labeled by dimm type.", "type")
        nvm = g("machine_nvm_capacity", "NVM capacity value labeled by NVM mode (memory mode or app direct mode).",
                "mode")
        nvm_power = g("machine_nvm_avg_power_budget_watts", "NVM power budget.")
        avail = g("machine_memory_available_bytes", "MemAvailable from /proc/meminfo.")
        boot = g("machine_boot_time_seconds", "Host boot time since unix epoch in seconds.")
        error = gauge("machine_scrape_error", "1 if there was an error while getting machine metrics, 0 otherwise.")
        ids = self.ids
        top = self.topology
        physical.add(None, top.physical_cores, *ids)
        sockets.add(None, top.sockets, *ids)
        books.add(None, top.books, *ids)
        drawers.add(None, top.drawers, *ids)
        for kind, (count, capacity) in sorted(top.dimms.items()):
            dimm_count.add(None, count, *ids, kind)
            dimm_bytes.add(None, capacity, *ids, kind)
        for mode in NVM_MODES:
            nvm.add(None, 0, *ids, mode)
        nvm_power.add(None, 0, *ids)
        proc = self.proc_root
        failed = 0
        try:
            cores.add(None, procfs.cpu_count(proc), *ids)
            bt = procfs.boot_time(proc)
            if bt is not None:
                boot.add(None, bt, *ids)
            info = procfs.meminfo(proc)
        except (OSError, ValueError):
            scrape.error(self.name)
            failed = 1
            info = {}
        for fam, key in ((mem, "MemTotal"), (swap, "SwapTotal"), (avail, "MemAvailable")):
            if key in info:
                fam.add(None, info[key], *ids)
        error.add(None, failed)
        return nonempty(physical, cores, sockets, books, drawers, mem, swap, dimm_count, dimm_bytes, nvm,
                        nvm_power, avail, boot, error)
