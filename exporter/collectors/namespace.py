"""container_namespace_info{namespace,inode}: which containers share a pid/net/mnt/... namespace."""

from __future__ import annotations

import time
from collections.abc import Iterable

from exporter import procfs
from exporter.collectors.base import Scrape, gauge, nonempty
from exporter.discovery import Target
from exporter.families import Family


class NamespaceCache:
    """Namespace inodes of each cgroup's first process, re-read when that PID changes or after
    `refresh_seconds` (a process moves namespaces only by calling setns/unshare itself)."""

    def __init__(self, proc_root: str, refresh_seconds: float = 0.0) -> None:
        self.proc_root = proc_root
        self.refresh_seconds = refresh_seconds
        self.host_pid = procfs.host_pid(proc_root)
        self._cache: dict[str, tuple[int | str, float, dict[str, int]]] = {}

    def pid_of(self, t: Target) -> int | str | None:
        return self.host_pid if t.cg == "/" else t.first_pid()

    def get(self, t: Target) -> dict[str, int]:
        """Raises OSError when the process is gone or unreadable."""
        pid = self.pid_of(t)
        if pid is None:
            return {}
        now = time.monotonic()
        hit = self._cache.get(t.cg)
        if hit is not None and hit[0] == pid and hit[1] > now:
            return hit[2]
        nss = procfs.namespaces(self.proc_root, pid)
        if self.refresh_seconds > 0:
            self._cache[t.cg] = (pid, now + self.refresh_seconds, nss)
        return nss

    def prune(self, targets: list[Target]) -> None:
        if len(self._cache) > len(targets):
            live = {t.cg for t in targets}
            self._cache = {cg: v for cg, v in self._cache.items() if cg in live}


class NamespaceCollector:
    name = "namespace"

    def __init__(self, proc_root: str = "/proc", cache: NamespaceCache | None = None) -> None:
        self.cache = cache or NamespaceCache(proc_root)

    def collect(self, scrape: Scrape) -> Iterable[Family]:
        info = gauge(
            "container_namespace_info",
            "Namespaces of the container's first process, by inode; equal inodes mean a shared namespace.",
            "inode",
            "namespace",
        )
        self.cache.prune(scrape.targets)
        for t in scrape.targets:
            try:
                nss = self.cache.get(t)
            except FileNotFoundError:
                continue  # exited
            except (OSError, ValueError):
                scrape.error(self.name)
                continue
            for ns, inode in sorted(nss.items()):
                info.add(t.labels, 1, str(inode), ns)
        return nonempty(info)
