"""container_namespace_info{namespace,inode}: which containers share a pid/net/mnt/... namespace."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterable

from exporter.collectors.base import BlockCache, Scrape, gauge, nonempty
from exporter.discovery import Target
from exporter.families import Family
from exporter.readers import procfs


class NamespaceCache:
    """Namespace inodes of each cgroup's first process, re-read when that PID changes or after
    `refresh_seconds` (a process moves namespaces only by calling setns/unshare itself).

    Shared by the network and namespace collectors, either of which may be switched off, so the
    cache prunes itself: the first `get` of each scrape forgets the cgroups that scrape no longer has.
    """

    def __init__(self, proc_root: str, refresh_seconds: float = 0.0) -> None:
        self.proc_root = proc_root
        self.refresh_seconds = refresh_seconds
        self.host_pid = procfs.host_pid(proc_root)
        self._cache: dict[str, tuple[int | str, float, dict[str, int]]] = {}
        self._pruned_for: weakref.ref[Scrape] | None = None
        self._lock = threading.Lock()  # collectors may run on several threads

    def __len__(self) -> int:
        return len(self._cache)

    def pid_of(self, t: Target) -> int | str | None:
        return self.host_pid if t.cg == "/" else t.first_pid()

    def get(self, scrape: Scrape, t: Target) -> dict[str, int]:
        """Raises OSError when the process is gone or unreadable."""
        self._prune(scrape)
        pid = self.pid_of(t)
        if pid is None:
            return {}
        now = time.monotonic()
        hit = self._cache.get(t.cg)
        if hit is not None and hit[0] == pid and hit[1] > now:
            return hit[2]
        nss = procfs.namespaces(self.proc_root, pid)
        if self.refresh_seconds > 0:
            with self._lock:
                self._cache[t.cg] = (pid, now + self.refresh_seconds, nss)
        return nss

    def _prune(self, scrape: Scrape) -> None:
        pruned = self._pruned_for
        if pruned is not None and pruned() is scrape:
            return  # this scrape's first get already did
        with self._lock:
            if self._pruned_for is not None and self._pruned_for() is scrape:
                return
            self._pruned_for = weakref.ref(scrape)
            if self._cache:
                for cg in self._cache.keys() - {t.cg for t in scrape.targets}:
                    del self._cache[cg]


class NamespaceCollector:
    name = "namespace"

    def __init__(self, proc_root: str = "/proc", cache: NamespaceCache | None = None) -> None:
        self.cache = NamespaceCache(proc_root) if cache is None else cache
        self.blocks = BlockCache()  # a process keeps its namespaces: rendered once per change
        # Most cgroups share the host's namespaces: one (inode, namespace) label pair each, shared.
        self._pairs: dict[tuple[str, int], tuple[str, str]] = {}

    def collect(self, scrape: Scrape) -> Iterable[Family]:
        info = gauge(
            "container_namespace_info",
            "Namespaces of the container's first process, by inode; equal inodes mean a shared namespace.",
            "inode",
            "namespace",
        )
        blocks = self.blocks
        blocks.prune(scrape.targets)
        for t in scrape.targets:
            try:
                nss = self.cache.get(scrape, t)
            except FileNotFoundError:
                continue  # exited
            except (OSError, ValueError):
                scrape.error(self.name)
                continue
            ls = t.labels
            made = blocks.get(t.cg, (ls, nss))
            if made is None:
                made = blocks.put(t.cg, (ls, nss), [info.block([(ls, self._pair(ns, inode), 1)
                                                                for ns, inode in sorted(nss.items())])])
            if made[0].rows:
                info.add_block(made[0])
        return nonempty(info)

    def _pair(self, ns: str, inode: int) -> tuple[str, str]:
        pair = self._pairs.get((ns, inode))
        if pair is None:
            if len(self._pairs) > 65536:
                self._pairs.clear()  # namespaces come and go: never let it grow without bound
            pair = self._pairs[(ns, inode)] = (str(inode), ns)
        return pair
