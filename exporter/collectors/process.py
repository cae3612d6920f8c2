"""container_processes, _threads, _threads_max, _file_descriptors, _sockets."""

from __future__ import annotations

from collections.abc import Iterable

from exporter.collectors.base import Scrape, gauge, nonempty
from exporter.families import Family
from exporter.readers import procfs


class ProcessCollector:
    name = "process"

    def __init__(self, proc_root: str = "/proc") -> None:
        self.proc_root = proc_root

    def collect(self, scrape: Scrape) -> Iterable[Family]:
        processes = gauge("container_processes", "Number of processes running inside the container.")
        threads = gauge("container_threads", "Number of threads running inside the container")
        threads_max = gauge(
            "container_threads_max", "Maximum number of threads allowed inside the container, infinity if value is zero"
        )
        fds = gauge("container_file_descriptors", "Number of open file descriptors for the container.")
        sockets = gauge("container_sockets", "Number of open sockets for the container.")
        reader = scrape.reader
        proc = self.proc_root
        for t in scrape.targets:
            ls = t.labels
            try:
                pids = reader.pids(t.cg)
                procs = t.procs()
            except (OSError, ValueError):
                scrape.error(self.name)
                continue
            processes.add(ls, len(procs))
            if pids.current is not None:
                threads.add(ls, pids.current)
                threads_max.add(ls, pids.limit or 0)
            if t.cg == "/":
                continue  # every process on the host: leave fd counting to node_exporter
            nfd = nsock = 0
            for pid in procs:
                try:
                    f, s = procfs.fd_counts(proc, pid)
                except OSError:
                    continue  # exited, or a kernel thread we may not look into
                nfd += f
                nsock += s
            fds.add(ls, nfd)
            sockets.add(ls, nsock)
        return nonempty(processes, threads, threads_max, fds, sockets)
