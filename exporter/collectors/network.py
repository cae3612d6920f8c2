"""container_network_*_total{interface} from /proc/<pid>/net/dev of a process in the container.

Only cgroups with their own network namespace (and the root cgroup, for the host) are reported:
a raw cgroup in the host namespace would just repeat the host's counters.
"""

from __future__ import annotations

from collections.abc import Iterable

from exporter.collectors.base import Scrape, counter, nonempty
from exporter.collectors.namespace import NamespaceCache
from exporter.discovery import Target
from exporter.families import Family
from exporter.readers import procfs

_FIELDS = [
    (f"container_network_{way}_{what}_total", doc.format(done=done, doing=doing), f"{prefix}_{attr}")
    for way, done, doing, prefix in (
        ("receive", "received", "receiving", "rx"),
        ("transmit", "transmitted", "transmitting", "tx"),
    )
    for what, attr, doc in (
        ("bytes", "bytes", "Cumulative count of bytes {done}"),
        ("packets", "packets", "Cumulative count of packets {done}"),
        ("packets_dropped", "dropped", "Cumulative count of packets dropped while {doing}"),
        ("errors", "errors", "Cumulative count of errors encountered while {doing}"),
    )
]


def host_net_inode(proc_root: str, host_pid: int | str) -> int | None:
    try:
        return procfs.namespace_inode(proc_root, host_pid, "net")
    except (OSError, ValueError):
        return None


def net_pid(namespaces: NamespaceCache, scrape: Scrape, t: Target, host_net: int | None) -> int | str | None:
    """The process whose /proc/<pid>/net speaks for this cgroup's network: the host's for the root
    cgroup, the first process of a cgroup with a network namespace of its own, else None (a raw
    cgroup in the host's namespace would only repeat the host's counters). OSError when it is gone."""
    if t.cg == "/":
        return namespaces.host_pid
    first = t.first_pid()
    if first is None:
        return None  # no process, no namespace to read
    if namespaces.get(scrape, t).get("net") == host_net:
        return None
    return first


class NetworkCollector:
    name = "network"

    def __init__(self, proc_root: str = "/proc", namespaces: NamespaceCache | None = None) -> None:
        self.proc_root = proc_root
        self.namespaces = NamespaceCache(proc_root) if namespaces is None else namespaces
        self.host_pid = self.namespaces.host_pid

    def collect(self, scrape: Scrape) -> Iterable[Family]:
        fams = [(counter(n, doc, "interface"), attr) for n, doc, attr in _FIELDS]
        proc = self.proc_root
        host_net = host_net_inode(proc, self.host_pid)
        for t in scrape.targets:
            try:
                pid = net_pid(self.namespaces, scrape, t, host_net)
                if pid is None:
                    continue
                ifaces = procfs.net_dev(proc, pid)
            except FileNotFoundError:
                continue  # the process exited between listing and reading: no series, not an error
            except (OSError, ValueError):
                scrape.error(self.name)
                continue
            ls = t.labels
            for iface, c in sorted(ifaces.items()):
                for fam, attr in fams:
                    fam.add(ls, getattr(c, attr), iface)
        return nonempty(*(f for f, _ in fams))
