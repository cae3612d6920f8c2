"""The cpuLoad group: container_tasks_state{state} from the /proc state of the tasks directly in each
cgroup (the tasks cAdvisor's netlink cgroupstats counts), and container_cpu_load_average_10s /
container_cpu_load_d_average_10s: 0, as cAdvisor reports them without its load reader; with
`load_reader` (cAdvisor's --enable_load_reader) the running and uninterruptible task counts smoothed
over 10 s, in cAdvisor's unit (thousandths of a task).
"""

from __future__ import annotations

import math
import time
from collections.abc import Container, Iterable

from exporter._speedups import add_labelled
from exporter.collectors.base import BlockCache, Scrape, gauge, nonempty
from exporter.families import Family
from exporter.readers import procfs
from hostwatch.core.cgroupfs import parse_procs

# FdCache owner prefix of a cgroup's /proc/<tid>/stat files (kept apart from its cgroup files, so the
# tids that left can be closed without touching those).
TASKS_OWNER = "tasks:"
LOAD_WINDOW_SECONDS = 10.0
_RUNNING, _UNINTERRUPTIBLE = procfs.TASK_STATES.index("running"), procfs.TASK_STATES.index("uninterruptible")
_STATE_LABELS = tuple((state,) for state in procfs.TASK_STATES)


class LiveOwners:
    """The FdCache owners still in use: the scrape's cgroups and their task-file owners."""

    def __init__(self, cgroups: Container[str]) -> None:
        self.cgroups = cgroups

    def __contains__(self, owner: object) -> bool:
        if isinstance(owner, str) and owner.startswith(TASKS_OWNER):
            owner = owner[len(TASKS_OWNER):]
        return owner in self.cgroups


class LoadCollector:
    name = "cpuLoad"

    def __init__(self, proc_root: str = "/proc", load_reader: bool = False) -> None:
        self.proc_root = proc_root
        self.load_reader = load_reader
        self._avg: dict[str, tuple[float, float, float]] = {}  # cg -> (load, load_d, when)
        self.blocks = BlockCache()  # without the load reader the averages are a constant 0
        self._tasks: dict[str, tuple[bytes, str, tuple[str, ...]]] = {}  # cg -> (tasks file, owner, stat paths)

    def collect(self, scrape: Scrape) -> Iterable[Family]:
        load = gauge("container_cpu_load_average_10s", "Value of container cpu load average over the last 10 seconds.")
        load_d = gauge("container_cpu_load_d_average_10s",
                       "Value of container cpu load.d average over the last 10 seconds.")
        tasks = gauge("container_tasks_state", "Number of tasks in given state", "state")
        reader = scrape.reader
        files = reader.files  # type: ignore[attr-defined]
        proc = self.proc_root
        state_labels = _STATE_LABELS
        blocks = self.blocks
        blocks.prune(scrape.targets)
        now = time.monotonic()
        known = self._tasks
        if len(known) > len(scrape.targets):
            live = {t.cg for t in scrape.targets}
            self._tasks = known = {cg: v for cg, v in known.items() if cg in live}
        task_state = procfs.task_state
        for t in scrape.targets:
            cg = t.cg
            try:
                raw = reader.threads_raw(cg)
            except (OSError, ValueError):
                scrape.error(self.name)
                continue
            hit = known.get(cg)
            if hit is None or hit[0] != raw:  # the task list changed: new paths, close the old files
                owner = TASKS_OWNER + cg
                paths = tuple(f"{proc}/{tid}/stat" for tid in parse_procs(raw))
                if files.count(owner) > len(paths):
                    files.forget(owner, keep=set(paths))
                hit = known[cg] = (raw, owner, paths)
            owner, paths = hit[1], hit[2]
            counts = [0, 0, 0, 0, 0]
            for path in paths:
                try:
                    i = task_state(files.read(owner, path))
                except OSError:
                    continue  # exited since the cgroup listed it
                if i is not None:
                    counts[i] += 1
            ls = t.labels
            if self.load_reader:
                avg, avg_d = self._smooth(t.cg, counts[_RUNNING], counts[_UNINTERRUPTIBLE], now)
                load.add(ls, int(avg * 1000))
                load_d.add(ls, int(avg_d * 1000))
            else:
                zeros = blocks.get(t.cg, ls)
                if zeros is None:
                    zeros = blocks.put(t.cg, ls, [load.block([(ls, (), 0)]), load_d.block([(ls, (), 0)])])
                load.add_block(zeros[0])
                load_d.add_block(zeros[1])
            add_labelled(tasks.rows, ls, state_labels, counts)
        if self.load_reader and len(self._avg) > len(scrape.targets):
            live = {t.cg for t in scrape.targets}
            self._avg = {cg: v for cg, v in self._avg.items() if cg in live}
        return nonempty(load, load_d, tasks)

    def _smooth(self, cg: str, running: int, blocked: int, now: float) -> tuple[float, float]:
        """cAdvisor's update: the first sample as is, then avg*decay + new*(1-decay), decay = e^(-dt/10s)."""
        prev = self._avg.get(cg)
        if prev is None:
            avg, avg_d = float(running), float(blocked)
        else:
            decay = math.exp(-(now - prev[2]) / LOAD_WINDOW_SECONDS)
            avg = prev[0] * decay + running * (1 - decay)
            avg_d = prev[1] * decay + blocked * (1 - decay)
        self._avg[cg] = (avg, avg_d, now)
        return avg, avg_d
