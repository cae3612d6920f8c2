"""container_processes, _threads, _threads_max, _file_descriptors, _sockets."""

from __future__ import annotations

from collections.abc import Iterable

from exporter.collectors.base import Scrape, gauge, nonempty
from exporter.collectors.spec import SpecCache
from exporter.families import Family, LabelSet
from exporter.readers import procfs


class ProcessCollector:
    name = "process"

    def __init__(self, proc_root: str = "/proc", spec: SpecCache | None = None) -> None:
        self.proc_root = proc_root
        self.spec = SpecCache() if spec is None else spec

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
        spec = self.spec
        counting: list[tuple[LabelSet, list[int]]] = []
        for t in scrape.targets:
            ls = t.labels
            try:
                current = reader.pids_current(t.cg)
                procs = t.procs()
            except (OSError, ValueError):
                scrape.error(self.name)
                continue
            limit = None
            if current is not None:
                try:
                    limit = spec.get(reader, t.cg).pids_limit
                except (OSError, ValueError):
                    limit = None  # counted by the spec collector
            processes.add(ls, len(procs))
            if current is not None:
                threads.add(ls, current)
                threads_max.add(ls, limit or 0)
            if t.cg != "/":  # every process on the host: leave fd counting to node_exporter
                counting.append((ls, procs))
        # The fd listings in one tight loop of syscalls, after the parsing above, not between it.
        fd_counts = procfs.fd_counts
        for ls, procs in counting:
            nfd = nsock = 0
            for pid in procs:
                try:
                    f, s = fd_counts(proc, pid)
                except OSError:
                    continue  # exited, or a kernel thread we may not look into
                nfd += f
                nsock += s
            fds.add(ls, nfd)
            sockets.add(ls, nsock)
        return nonempty(processes, threads, threads_max, fds, sockets)
