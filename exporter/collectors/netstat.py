"""The tcp and udp groups (off by default, as in cAdvisor): sockets per state from the
/proc/<pid>/net/{tcp,tcp6,udp,udp6} of a process in the container's network namespace."""

from __future__ import annotations

from collections.abc import Iterable

from exporter.collectors.base import Scrape, nonempty, untyped
from exporter.collectors.namespace import NamespaceCache
from exporter.collectors.network import host_net_inode, net_pid
from exporter.families import Family
from exporter.readers import fsread, procfs


class _SocketTable:
    name: str
    label: str
    states: tuple[str, ...]
    tables: tuple[tuple[str, str, str], ...]  # (file under net/, family name, HELP)

    def __init__(self, proc_root: str = "/proc", namespaces: NamespaceCache | None = None) -> None:
        self.proc_root = proc_root
        self.namespaces = NamespaceCache(proc_root) if namespaces is None else namespaces

    @staticmethod
    def parse(data: bytes) -> list[int]:
        raise NotImplementedError

    def collect(self, scrape: Scrape) -> Iterable[Family]:
        fams = [(fname, untyped(name, doc, self.label)) for fname, name, doc in self.tables]
        proc = self.proc_root
        host_net = host_net_inode(proc, self.namespaces.host_pid)
        for t in scrape.targets:
            try:
                pid = net_pid(self.namespaces, scrape, t, host_net)
                if pid is None:
                    continue
                counts = [self.parse(fsread.read_bytes(f"{proc}/{pid}/net/{fname}")) for fname, _ in fams]
            except FileNotFoundError:
                continue  # exited meanwhile, or a kernel without IPv6
            except (OSError, ValueError):
                scrape.error(self.name)
                continue
            ls = t.labels
            for (_, fam), values in zip(fams, counts, strict=True):
                for state, value in zip(self.states, values, strict=True):
                    fam.add(ls, value, state)
        return nonempty(*(f for _, f in fams))


class TcpCollector(_SocketTable):
    name = "tcp"
    label = "tcp_state"
    states = procfs.TCP_STATES
    tables = (
        ("tcp", "container_network_tcp_usage_total", "tcp connection usage statistic for container"),
        ("tcp6", "container_network_tcp6_usage_total", "tcp6 connection usage statistic for container"),
    )
    parse = staticmethod(procfs.parse_tcp)


class UdpCollector(_SocketTable):
    name = "udp"
    label = "udp_state"
    states = procfs.UDP_STATES
    tables = (
        ("udp", "container_network_udp_usage_total", "udp connection usage statistic for container"),
        ("udp6", "container_network_udp6_usage_total", "udp6 connection usage statistic for container"),
    )
    parse = staticmethod(procfs.parse_udp)
