"""Filesystems, as the disk group needs them: the host's block-backed filesystems (id="/"), the
filesystem holding a directory (a container's writable layer), and where a running container's
writable layer is, read from its root process's mount table. The mount table is parsed with
hostwatch.core.cgroupfs's mountinfo parser, the one parser of that format.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

from exporter.readers import fsread
from hostwatch.core.cgroupfs.mountinfo import Mount, parse_mountinfo


@dataclass(frozen=True, slots=True)
class Filesystem:
    # A block device (/dev/vda1); for a filesystem without one, its mount point, as cAdvisor names
    # tmpfs filesystems.
    device: str
    devno: str  # "major:minor"
    mount_point: str
    fstype: str

    @property
    def block(self) -> bool:
        return self.device.startswith("/dev/")


@dataclass(frozen=True, slots=True)
class FsStat:
    capacity: int
    free: int
    inodes: int
    inodes_free: int


def fs_stat(mount_point: str) -> FsStat:
    """statvfs, in bytes and inodes (OSError when the mount point is gone)."""
    st = fsread.statvfs(mount_point)
    return FsStat(st.f_blocks * st.f_frsize, st.f_bfree * st.f_frsize, st.f_files, st.f_ffree)


def read_mounts(proc_root: str, pid: int | str) -> list[Mount]:
    return parse_mountinfo(fsread.read_text(f"{proc_root}/{pid}/mountinfo"))


class MountTable:
    """The host's mounts (PID 1's mount namespace, else the exporter's own), re-read at most every
    `refresh_seconds` (mounts change when containers start, not on every scrape)."""

    def __init__(self, proc_root: str, refresh_seconds: float = 10.0) -> None:
        self.proc_root = proc_root
        self.refresh_seconds = refresh_seconds
        self._at = -1e18
        self._mounts: list[Mount] = []
        self._block: list[Filesystem] = []
        self._lock = threading.Lock()

    def mounts(self) -> list[Mount]:
        now = time.monotonic()
        with self._lock:
            if now - self._at > self.refresh_seconds:
                for pid in ("1", "self"):
                    try:
                        self._mounts = read_mounts(self.proc_root, pid)
                        break
                    except OSError:
                        continue
                self._block = _block_filesystems(self._mounts)
                self._at = now
            return self._mounts

    def block_filesystems(self) -> list[Filesystem]:
        """Every block-backed filesystem, once per device (a bind mount of the same device repeats
        the same numbers), in mount order."""
        self.mounts()
        return self._block

    def filesystem_of(self, path: str) -> Filesystem | None:
        """The filesystem the longest mount point containing `path` holds."""
        best: Mount | None = None
        best_len = -1
        for m in self.mounts():
            mp = str(m.mount_point)
            if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) > best_len:
                best, best_len = m, len(mp)
        if best is None:
            return None
        device = best.source if best.source.startswith("/dev/") else str(best.mount_point)
        return Filesystem(device, best.devno, str(best.mount_point), best.fstype)

    def host_path(self, devno: str, root: str) -> str | None:
        """Where directory `root` of the filesystem `devno` is visible on the host."""
        for m in self.mounts():
            if m.devno != devno:
                continue
            if root == m.root or root.startswith(m.root.rstrip("/") + "/"):
                rel = root[len(m.root):].lstrip("/")
                return os.path.join(str(m.mount_point), rel) if rel else str(m.mount_point)
        return None


def _block_filesystems(mounts: list[Mount]) -> list[Filesystem]:
    seen: set[str] = set()
    out = []
    for m in mounts:
        if not m.source.startswith("/dev/") or m.source in seen or m.devno.startswith("0:"):
            continue
        seen.add(m.source)
        out.append(Filesystem(m.source, m.devno, str(m.mount_point), m.fstype))
    return out


def writable_layer(proc_root: str, pid: int, host: MountTable) -> str | None:
    """The host directory holding what a running container writes, from its root mount: an overlay's
    upperdir (Docker's overlay2, podman, containerd, CRI-O, the bundled runtime's layers), or the
    directory a bind-mounted or pivoted root comes from. None for a container on the host's own root."""
    root_mount = None
    for m in read_mounts(proc_root, pid):
        if str(m.mount_point) == "/":
            root_mount = m  # the last mount on "/" is the one visible
    if root_mount is None:
        return None
    if root_mount.fstype == "overlay":
        for opt in root_mount.super_options:
            if opt.startswith("upperdir="):
                return opt[len("upperdir="):]
        return None
    for m in host.mounts():
        if str(m.mount_point) == "/" and m.devno == root_mount.devno and m.root == root_mount.root:
            return None  # the host's own root filesystem: nothing of the container's own to measure
    return host.host_path(root_mount.devno, root_mount.root)
