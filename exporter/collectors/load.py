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

from exporter.collectors.base import Scrape, gauge, nonempty
from exporter.families import Family
from exporter.readers import procfs

# FdCache owner prefix of a cgroup's /proc/<tid>/stat files (kept apart from its cgroup files, so the
# tids that left can be closed without touching those).
TASKS_OWNER = "tasks:"
LOAD_WINDOW_SECONDS = 10.0
_RUNNING, _UNINTERRUPTIBLE = procfs.TASK_STATES.index("running"), procfs.TASK_STATES.index("uninterruptible")


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

    def collect(self, scrape: Scrape) -> Iterable[Family]:
        load = gauge("container_cpu_load_average_10s", "Value of container cpu load average over the last 10 seconds.")
        load_d = gauge("container_cpu_load_d_average_10s",
                       "Value of container cpu load.d average over the last 10 seconds.")
        tasks = gauge("container_tasks_state", "Number of tasks in given state", "state")
        reader = scrape.reader
        files = reader.files  # type: ignore[attr-defined]
        proc = self.proc_root
        states = procfs.TASK_STATES
        now = time.monotonic()
        for t in scrape.targets:
            try:
                tids = reader.threads(t.cg)
            except (OSError, ValueError):
                scrape.error(self.name)
                continue
            owner = TASKS_OWNER + t.cg
            counts = [0, 0, 0, 0, 0]
            for tid in tids:
                try:
                    i = procfs.task_state(files.read(owner, f"{proc}/{tid}/stat"))
                except OSError:
                    continue  # exited since the cgroup listed it
                if i is not None:
                    counts[i] += 1
            if files.count(owner) > len(tids):  # close the files of tasks that left
                files.forget(owner, keep={f"{proc}/{tid}/stat" for tid in tids})
            ls = t.labels
            if self.load_reader:
                avg, avg_d = self._smooth(t.cg, counts[_RUNNING], counts[_UNINTERRUPTIBLE], now)
                load.add(ls, int(avg * 1000))
                load_d.add(ls, int(avg_d * 1000))
            else:
                load.add(ls, 0)
                load_d.add(ls, 0)
            for i, state in enumerate(states):
                tasks.add(ls, counts[i], state)
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
