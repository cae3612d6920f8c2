"""The filesystems each cgroup reports, cAdvisor's ContainerStats.Filesystem: for id="/" every
block-backed filesystem of the host (statvfs), for a named container the filesystem holding its
writable layer, with the layer's usage measured in the background (exporter.diskusage). The disk
group exposes them (container_fs_usage_bytes & co.), and the diskIO group adds their /proc/diskstats
counters, as cAdvisor does (for a container: its filesystem's device's counters).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from exporter.collectors.base import Scrape
from exporter.discovery import Target
from exporter.diskusage import DiskUsage
from exporter.readers import procfs
from exporter.readers.fdcache import FdCache
from exporter.readers.mounts import FsStat, MountTable, fs_stat, writable_layer

_SHARED_KEY = "filesystems"
# A running container whose layer could not be found is looked at again after this long.
LAYER_RECHECK_SECONDS = 30.0


@dataclass(slots=True)
class FsEntry:
    device: str
    limit: int
    usage: int
    inodes: int
    inodes_free: int
    diskstats: tuple[int, ...] | None  # procfs.DISKSTAT_FIELDS of the device, when it has any


class Filesystems:
    def __init__(self, proc_root: str, files: FdCache, mounts: MountTable, usage: DiskUsage) -> None:
        self.proc_root = proc_root
        self.files = files
        self.mounts = mounts
        self.usage = usage

    def of(self, scrape: Scrape) -> dict[str, list[FsEntry]]:
        """cgroup -> its filesystems, computed once per scrape whichever collector asks first."""
        cached = scrape.shared.get(_SHARED_KEY)
        if cached is None:
            cached = scrape.shared[_SHARED_KEY] = self._compute(scrape)
        return cached  # type: ignore[return-value]

    def _compute(self, scrape: Scrape) -> dict[str, list[FsEntry]]:
        try:
            stats = procfs.parse_diskstats(self.files.read("/", f"{self.proc_root}/diskstats"))
        except (OSError, ValueError):
            stats = {}
        statvfs: dict[str, FsStat | None] = {}

        def stat_of(mount_point: str) -> FsStat | None:
            if mount_point not in statvfs:
                try:
                    statvfs[mount_point] = fs_stat(mount_point)
                except OSError:
                    scrape.error("disk")
                    statvfs[mount_point] = None
            return statvfs[mount_point]

        out: dict[str, list[FsEntry]] = {}
        for t in scrape.targets:
            if t.cg == "/":
                entries = []
                for fs in self.mounts.block_filesystems():
                    st = stat_of(fs.mount_point)
                    if st is not None:
                        entries.append(FsEntry(fs.device, st.capacity, st.capacity - st.free, st.inodes,
                                               st.inodes_free, stats.get(fs.devno)))
                out["/"] = entries
            elif t.meta.ref is not None:
                layer = self._layer(t)
                if layer is None:
                    continue
                used = self.usage.get(layer)
                home = self.mounts.filesystem_of(layer)
                if used is None or home is None:
                    continue
                st = stat_of(home.mount_point)
                if st is not None:
                    # As cAdvisor: the layer's inodes as the total, none free (it reports no free count).
                    out[t.cg] = [FsEntry(home.device, st.capacity, used.bytes, used.inodes, 0,
                                         stats.get(home.devno))]
        return out

    def _layer(self, t: Target) -> str | None:
        meta = t.meta
        ref = meta.ref
        if ref is None:
            return None
        if ref.writable_layer:
            return ref.writable_layer
        now = time.monotonic()
        if meta.layer is not None or now - meta.layer_checked < LAYER_RECHECK_SECONDS:
            return meta.layer
        meta.layer_checked = now
        try:
            pid = ref.pid or t.first_pid()
            meta.layer = writable_layer(self.proc_root, pid, self.mounts) if pid else None
        except (OSError, ValueError):
            meta.layer = None
        return meta.layer
