"""machine_* host gauges (cAdvisor's names and its boot_id/machine_id/system_uuid labels)."""

from __future__ import annotations

from collections.abc import Iterable

from exporter.collectors.base import Scrape, gauge, nonempty
from exporter.families import Family
from exporter.readers import procfs


class MachineCollector:
    name = "machine"

    def __init__(self, proc_root: str = "/proc", etc_root: str = "/etc", sys_root: str = "/sys") -> None:
        self.proc_root = proc_root
        self.ids = (
            procfs.read_id(f"{proc_root}/sys/kernel/random/boot_id"),
            procfs.read_id(f"{etc_root}/machine-id"),
            procfs.read_id(f"{sys_root}/class/dmi/id/product_uuid"),
        )

    def collect(self, scrape: Scrape) -> Iterable[Family]:
        labels = ("boot_id", "machine_id", "system_uuid")
        cores = gauge("machine_cpu_cores", "Number of logical CPU cores.", *labels)
        mem = gauge("machine_memory_bytes", "Amount of memory installed on the machine.", *labels)
        swap = gauge("machine_swap_bytes", "Amount of swap memory available on the machine.", *labels)
        avail = gauge("machine_memory_available_bytes", "MemAvailable from /proc/meminfo.", *labels)
        boot = gauge("machine_boot_time_seconds", "Host boot time since unix epoch in seconds.", *labels)
        proc = self.proc_root
        try:
            cores.add(None, procfs.cpu_count(proc), *self.ids)
            bt = procfs.boot_time(proc)
            if bt is not None:
                boot.add(None, bt, *self.ids)
            info = procfs.meminfo(proc)
        except (OSError, ValueError):
            scrape.error(self.name)
            return nonempty(cores, boot)
        for fam, key in ((mem, "MemTotal"), (swap, "SwapTotal"), (avail, "MemAvailable")):
            if key in info:
                fam.add(None, info[key], *self.ids)
        return nonempty(cores, mem, swap, avail, boot)
