"""The diskIO group (blkio v1 / io.stat v2, plus the filesystems' /proc/diskstats as cAdvisor adds
them) and the disk group (container_fs_usage_bytes, _limit_bytes, _inodes_free, _inodes_total).

Devices are named from /sys/dev/block/M:m/uevent; an unknown device is device="" (as cAdvisor). A
device that both blkio and a filesystem entry report keeps blkio's (the cgroup's own) value, and two
devices of the same name in one family are summed, so no series is ever repeated.
"""

from __future__ import annotations

from collections.abc import Iterable

from exporter.collectors.base import Scrape, counter, gauge, nonempty, untyped
from exporter.collectors.filesystems import Filesystems, FsEntry
from exporter.families import Family
from exporter.readers import IoStats, fsread

# procfs.DISKSTAT_FIELDS positions
_READS, _READS_MERGED, _SECTORS_READ, _READ_MS, _WRITES, _WRITES_MERGED, _SECTORS_WRITTEN, _WRITE_MS, \
    _IO_NOW, _IO_MS, _WEIGHTED_MS = range(11)


class DeviceNames:
    """major:minor -> /dev/<name> from /sys/dev/block/M:m/uevent, cached; "" for a device sysfs does not
    know (looked up again on the next scrape)."""

    def __init__(self, sys_root: str) -> None:
        self.sys_root = sys_root
        self._cache: dict[str, str] = {}

    def __call__(self, majmin: str) -> str:
        name = self._cache.get(majmin)
        if name is None:
            name = ""
            try:
                for line in fsread.read_text(f"{self.sys_root}/dev/block/{majmin}/uevent").splitlines():
                    if line.startswith("DEVNAME="):
                        name = "/dev/" + line[8:]
                        self._cache[majmin] = name
                        break
            except OSError:
                pass
        return name


def _ms(value: int) -> float:
    return value / 1e3


def _ns(value: int) -> float:
    return value / 1e9


def _us(value: int) -> float:
    return value / 1e6


def _one(value: int) -> float:
    return value


# (name, type, HELP, IoStats table or None, operation, unit, diskstats field or None), in cAdvisor
# v0.60's order (lib/metrics/prometheus.go). diskstats times are milliseconds (cAdvisor divides
# them by 1e9, reporting a millionth of the real seconds; these are seconds).
_FAMILIES = (
    ("container_fs_reads_bytes_total", "counter", "Cumulative count of bytes read", "service_bytes", "Read",
     _one, None),
    ("container_fs_reads_total", "counter", "Cumulative count of reads completed", "serviced", "Read",
     _one, (_READS, _one)),
    ("container_fs_sector_reads_total", "counter", "Cumulative count of sector reads completed", "sectors",
     "Read", _one, (_SECTORS_READ, _one)),
    ("container_fs_reads_merged_total", "counter", "Cumulative count of reads merged", "merged", "Read",
     _one, (_READS_MERGED, _one)),
    ("container_fs_read_seconds_total", "counter", "Cumulative count of seconds spent reading",
     "service_time", "Read", _ns, (_READ_MS, _ms)),
    ("container_fs_writes_bytes_total", "counter", "Cumulative count of bytes written", "service_bytes",
     "Write", _one, None),
    ("container_fs_writes_total", "counter", "Cumulative count of writes completed", "serviced", "Write",
     _one, (_WRITES, _one)),
    ("container_fs_sector_writes_total", "counter", "Cumulative count of sector writes completed", "sectors",
     "Write", _one, (_SECTORS_WRITTEN, _one)),
    ("container_fs_writes_merged_total", "counter", "Cumulative count of writes merged", "merged", "Write",
     _one, (_WRITES_MERGED, _one)),
    ("container_fs_write_seconds_total", "counter", "Cumulative count of seconds spent writing",
     "service_time", "Write", _ns, (_WRITE_MS, _ms)),
    ("container_fs_io_current", "gauge", "Number of I/Os currently in progress", "queued", "Total", _one,
     (_IO_NOW, _one)),
    ("container_fs_io_time_seconds_total", "counter", "Cumulative count of seconds spent doing I/Os",
     "service_time", "Total", _ns, (_IO_MS, _ms)),
    ("container_fs_io_time_weighted_seconds_total", "counter", "Cumulative weighted I/O time in seconds",
     None, "", _one, (_WEIGHTED_MS, _ms)),
    ("container_fs_io_cost_usage_seconds_total", "counter", "Cumulative IOCost usage in seconds", "cost_usage",
     "Count", _us, None),
    ("container_fs_io_cost_wait_seconds_total", "counter", "Cumulative IOCost wait in seconds", "cost_wait",
     "Count", _us, None),
    ("container_fs_io_cost_indebt_seconds_total", "counter", "Cumulative IOCost debt in seconds", "cost_indebt",
     "Count", _us, None),
    ("container_fs_io_cost_indelay_seconds_total", "counter", "Cumulative IOCost delay in seconds",
     "cost_indelay", "Count", _us, None),
)


class DiskIOCollector:
    name = "diskIO"

    def __init__(self, sys_root: str = "/sys", filesystems: Filesystems | None = None) -> None:
        """`filesystems`: the disk group's entries, whose diskstats join these families (None when
        the disk group is off, as cAdvisor has no filesystem stats then)."""
        self.devices = DeviceNames(sys_root)
        self.filesystems = filesystems

    def collect(self, scrape: Scrape) -> Iterable[Family]:
        fams = [(Family(n, doc, typ, ("device",)), table, op, unit, ds) for n, typ, doc, table, op, unit, ds
                in _FAMILIES]
        usage = counter("container_blkio_device_usage_total", "Blkio Device bytes usage",
                        "device", "major", "minor", "operation")
        reader = scrape.reader
        devname = self.devices
        fs_of = self.filesystems.of(scrape) if self.filesystems is not None else {}
        for t in scrape.targets:
            try:
                io = reader.io(t.cg)
            except (OSError, ValueError):
                scrape.error(self.name)
                continue
            entries = fs_of.get(t.cg)
            if not io.service_bytes and not io.serviced and not entries:
                continue  # nothing: a cgroup that never did block I/O (nearly every one)
            ls = t.labels
            for fam, table, op, unit, ds in fams:
                values = _device_values(io, table, op, unit, ds, entries, devname)
                for dev in sorted(values):
                    fam.add(ls, values[dev], dev)
            for majmin in sorted(io.service_bytes):
                major, _, minor = majmin.partition(":")
                dev = devname(majmin)
                for op, value in sorted(io.service_bytes[majmin].items()):
                    usage.add(ls, value, dev, major, minor, op)
        return nonempty(*(f[0] for f in fams), usage)


def _device_values(io: IoStats, table: str | None, op: str, unit: object, ds: tuple[int, object] | None,
                   entries: list[FsEntry] | None, devname: DeviceNames) -> dict[str, float]:
    values: dict[str, float] = {}
    if table is not None:
        for majmin, ops in getattr(io, table).items():
            # A table without the operation (v1's sectors table has totals only) says nothing here:
            # cAdvisor reports 0 for it, which would hide the filesystem's counters.
            if op in ops:
                dev = devname(majmin)
                values[dev] = values.get(dev, 0) + unit(ops[op])  # type: ignore[operator]
    if ds is not None and entries:
        field, ds_unit = ds
        blkio = set(values)
        for e in entries:
            if e.device in blkio:
                continue
            value = ds_unit(e.diskstats[field]) if e.diskstats is not None else 0  # type: ignore[operator]
            values[e.device] = values.get(e.device, 0) + value
    return values


class DiskCollector:
    name = "disk"

    def __init__(self, filesystems: Filesystems) -> None:
        self.filesystems = filesystems

    def collect(self, scrape: Scrape) -> Iterable[Family]:
        free = gauge("container_fs_inodes_free", "Number of available Inodes", "device")
        # cAdvisor's gauge named like a counter: untyped keeps promtool quiet and claims nothing false.
        total = untyped("container_fs_inodes_total", "Number of Inodes", "device")
        limit = gauge("container_fs_limit_bytes",
                      "Number of bytes that can be consumed by the container on this filesystem.", "device")
        usage = gauge("container_fs_usage_bytes",
                      "Number of bytes that are consumed by the container on this filesystem.", "device")
        fs_of = self.filesystems.of(scrape)
        for t in scrape.targets:
            entries = fs_of.get(t.cg)
            if not entries:
                continue
            ls = t.labels
            seen: set[str] = set()
            for e in entries:
                if e.device in seen:
                    continue
                seen.add(e.device)
                free.add(ls, e.inodes_free, e.device)
                total.add(ls, e.inodes, e.device)
                limit.add(ls, e.limit, e.device)
                usage.add(ls, e.usage, e.device)
        return nonempty(free, total, limit, usage)
