"""container_fs_{reads,writes}_{bytes_,}total{device}: blkio (v1) / io.stat (v2), devices by name."""

from __future__ import annotations

from collections.abc import Iterable

from exporter.collectors.base import Scrape, counter, nonempty
from exporter.families import Family
from exporter.readers import fsread


class DeviceNames:
    """major:minor -> /dev/<name> from /sys/dev/block/M:m/uevent, cached (a miss is re-tried)."""

    def __init__(self, sys_root: str) -> None:
        self.sys_root = sys_root
        self._cache: dict[str, str] = {}

    def __call__(self, majmin: str) -> str:
        name = self._cache.get(majmin)
        if name is None:
            name = majmin
            try:
                for line in fsread.read_text(f"{self.sys_root}/dev/block/{majmin}/uevent").splitlines():
                    if line.startswith("DEVNAME="):
                        name = "/dev/" + line[8:]
                        self._cache[majmin] = name
                        break
            except OSError:
                pass  # unknown device: report major:minor, look again next scrape
        return name


class DiskIOCollector:
    name = "diskIO"

    def __init__(self, sys_root: str = "/sys") -> None:
        self.devices = DeviceNames(sys_root)

    def collect(self, scrape: Scrape) -> Iterable[Family]:
        rb = counter("container_fs_reads_bytes_total", "Cumulative count of bytes read", "device")
        wb = counter("container_fs_writes_bytes_total", "Cumulative count of bytes written", "device")
        rc = counter("container_fs_reads_total", "Cumulative count of reads completed", "device")
        wc = counter("container_fs_writes_total", "Cumulative count of writes completed", "device")
        reader = scrape.reader
        devname = self.devices
        for t in scrape.targets:
            try:
                stats = reader.io(t.cg)
            except (OSError, ValueError):
                scrape.error(self.name)
                continue
            ls = t.labels
            for majmin, c in sorted(stats.items()):
                dev = devname(majmin)
                rb.add(ls, c.read_bytes, dev)
                wb.add(ls, c.write_bytes, dev)
                rc.add(ls, c.reads, dev)
                wc.add(ls, c.writes, dev)
        return nonempty(rb, wb, rc, wc)
