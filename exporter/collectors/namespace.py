"""container_namespace_info{namespace,inode}: which containers share a pid/net/mnt/... namespace."""

from __future__ import annotations

from collections.abc import Iterable

from exporter import procfs
from exporter.collectors.base import Scrape, gauge, nonempty
from exporter.families import Family


class NamespaceCollector:
    name = "namespace"

    def __init__(self, proc_root: str = "/proc") -> None:
        self.proc_root = proc_root
        self.host_pid = procfs.host_pid(proc_root)

    def collect(self, scrape: Scrape) -> Iterable[Family]:
        info = gauge(
            "container_namespace_info",
            "Namespaces of the container's first process, by inode; equal inodes mean a shared namespace.",
            "inode",
            "namespace",
        )
        proc = self.proc_root
        for t in scrape.targets:
            try:
                pid = self.host_pid if t.cg == "/" else t.first_pid()
                if pid is None:
                    continue
                nss = procfs.namespaces(proc, pid, t.memo)
            except FileNotFoundError:
                continue  # exited
            except (OSError, ValueError):
                scrape.error(self.name)
                continue
            for ns, inode in nss.items():
                info.add(t.labels, 1, str(inode), ns)
        return nonempty(info)
