"""The cpuLoad group: tasks per state from /proc, the load averages 0 without the load reader and
smoothed as cAdvisor smooths them with it; the /proc files of tasks that left are closed."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from exporter.collectors.base import Scrape
from exporter.collectors.load import TASKS_OWNER, LoadCollector
from exporter.discovery import Discovery
from exporter.readers import open_reader, procfs
from exporter.scrape import Exporter

from exporter_testdata import HW_ID, NOW, fixture_config


def value(fams: list, metric: str, **labels: str) -> float | None:  # type: ignore[type-arg]
    for f in fams:
        for s in f.samples:
            if s.name == metric and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


def test_tasks_per_state_and_no_load_without_the_reader() -> None:
    fams = Exporter(fixture_config("v1")).collect(now=NOW)
    cg = f"/hostwatch/{HW_ID}"  # threads 4242 (S), 4243 (R), 4244 (D)
    got = {state: value(fams, "container_tasks_state", id=cg, state=state) for state in procfs.TASK_STATES}
    assert got == {"sleeping": 1, "running": 1, "stopped": 0, "uninterruptible": 1, "iowaiting": 0}
    assert value(fams, "container_tasks_state", id="/", state="sleeping") == 2  # 1 and 77; 2 is idle (I)
    assert value(fams, "container_cpu_load_average_10s", id=cg) == 0
    assert value(fams, "container_cpu_load_d_average_10s", id=cg) == 0


def test_the_load_reader_smooths_as_cadvisor_does() -> None:
    fams = Exporter(fixture_config("v1", load_reader=True)).collect(now=NOW)
    cg = f"/hostwatch/{HW_ID}"
    assert value(fams, "container_cpu_load_average_10s", id=cg) == 1000  # one running task, in milli-tasks
    assert value(fams, "container_cpu_load_d_average_10s", id=cg) == 1000  # one uninterruptible
    c = LoadCollector(load_reader=True)
    assert c._smooth("/x", 4, 0, 100.0) == (4.0, 0.0)  # noqa: SLF001 - the first sample as it is
    avg, _ = c._smooth("/x", 0, 0, 110.0)  # noqa: SLF001
    assert avg == pytest.approx(4 * math.exp(-1))  # decay e^(-dt/10s)


def test_files_of_tasks_that_left_are_closed(tmp_path: Path) -> None:
    cg = tmp_path / "cgroup"
    (cg / "box").mkdir(parents=True)
    (cg / "cgroup.controllers").write_text("cpu\n")
    for d in (cg, cg / "box"):
        (d / "cgroup.procs").write_text("")
        (d / "cgroup.threads").write_text("")
    proc = tmp_path / "proc"
    for tid, state in (("10", "S"), ("11", "R"), ("12", "R")):
        (proc / tid).mkdir(parents=True)
        (proc / tid / "stat").write_text(f"{tid} (sh) {state} 1 1 1 0 -1\n")
    reader = open_reader(str(cg))
    discovery = Discovery(reader, tmp_path / "state", tmp_path / "docker")
    load = LoadCollector(str(proc))
    owner = TASKS_OWNER + "/box"

    def scrape(threads: str) -> dict[str, float]:
        (cg / "box" / "cgroup.threads").write_text(threads)
        fams = list(load.collect(Scrape(discovery.targets(), reader)))
        return {s.labels["state"]: s.value for f in fams for s in f.samples
                if s.name == "container_tasks_state" and s.labels["id"] == "/box"}

    assert scrape("10\n11\n12\n")["running"] == 2
    assert reader.files.count(owner) == 3  # type: ignore[attr-defined]
    got = scrape("12\n")
    assert (got["running"], got["sleeping"]) == (1, 0)
    assert reader.files.count(owner) == 1  # type: ignore[attr-defined]
