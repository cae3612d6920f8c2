"""The v1 backend on this host's real /sys/fs/cgroup hierarchies (needs root and cgroup v1)."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hostwatch.core.containers import Limits
from runtime.cgroups import CgroupError, CgroupsV1, detect

pytestmark = pytest.mark.integration

PARENT = "/hostwatch"
MiB = 1 << 20


def _v1_or_fail() -> CgroupsV1:
    if os.geteuid() != 0:
        pytest.fail("needs root")
    try:
        cg = detect()
    except CgroupError as e:
        pytest.fail(str(e))
    if not isinstance(cg, CgroupsV1) or not {"cpu", "memory", "pids", "cpuset"} <= set(cg.mounts):
        pytest.fail("needs cgroup v1 cpu, memory, pids and cpuset hierarchies")
    return cg


def _proc_cgroups(pid: int) -> dict[str, str]:
    """controller -> cgroup path, from /proc/<pid>/cgroup ("4:memory:/hostwatch/...")."""
    out = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for c in controllers.split(","):
            out[c] = path
    return out


@pytest.fixture
def cg() -> CgroupsV1:
    return _v1_or_fail()


@pytest.fixture
def new_rel(cg: CgroupsV1) -> Iterator[Callable[[], str]]:
    """Hands out fresh /hostwatch/<64 hex> paths; removes them (and a parent the test made) at the end."""
    made_parent = [m for m in dict.fromkeys(cg.mounts.values()) if not (m / PARENT.lstrip("/")).exists()]
    rels: list[str] = []

    def make() -> str:
        rels.append(f"{PARENT}/{secrets.token_hex(32)}")
        return rels[-1]

    yield make
    for rel in rels:
        cg.remove(rel)
    for mount in made_parent:
        try:
            os.rmdir(mount / PARENT.lstrip("/"))
        except OSError:
            pass  # another user's cgroup lives there now: leave it


@pytest.fixture
def procs() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)


def _v1_mounts_in_mountinfo() -> dict[str, Path]:
    """controller -> mount point of its v1 hierarchy, read independently of the runtime's parser."""
    out = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields, _, tail = line.partition(" - ")
        fstype, _source, options = tail.split(" ", 2)
        if fstype == "cgroup":
            for option in options.split(","):
                out[option] = Path(fields.split(" ")[4])
    return out


def test_detect_finds_the_hierarchies_mountinfo_lists(cg: CgroupsV1) -> None:
    mounted = _v1_mounts_in_mountinfo()
    assert {"cpu", "memory", "pids", "cpuset"} <= set(cg.mounts) <= set(mounted)
    assert cg.mounts == {c: mounted[c] for c in cg.mounts}
    assert cg.version == 1


def test_detect_takes_every_controller_the_runtime_limits(cg: CgroupsV1) -> None:
    managed = {"cpu", "cpuacct", "memory", "pids", "cpuset", "blkio", "devices"}  # what `run` limits/accounts
    assert set(cg.mounts) == managed & set(_v1_mounts_in_mountinfo())


def test_limits_process_membership_and_removal(
    cg: CgroupsV1, new_rel: Callable[[], str], procs: list[subprocess.Popen[bytes]]
) -> None:
    rel = new_rel()
    cg.create(rel, Limits(memory=64 * MiB, nano_cpus=500_000_000, cpu_shares=512, pids_limit=64, cpuset_cpus="0"))
    paths = cg.paths(rel)
    assert set(paths) == set(cg.mounts) and all(path.is_dir() for path in paths.values()), paths

    def kernel(controller: str, name: str) -> str:
        return (paths[controller] / name).read_text().strip()

    assert kernel("memory", "memory.limit_in_bytes") == str(64 * MiB)
    # swap accounting is the kernel's choice (swapaccount=1); where it is on, swap is capped too
    swap_accounting = (cg.mounts["memory"] / "memory.memsw.limit_in_bytes").exists()
    memsw = paths["memory"] / "memory.memsw.limit_in_bytes"
    assert (memsw.read_text().strip() if memsw.exists() else None) == (str(64 * MiB) if swap_accounting else None)
    assert kernel("cpu", "cpu.cfs_period_us") == "100000"
    assert kernel("cpu", "cpu.cfs_quota_us") == "50000"
    assert kernel("cpu", "cpu.shares") == "512"
    assert kernel("pids", "pids.max") == "64"
    assert kernel("cpuset", "cpuset.cpus") == "0"
    parent_cpuset = cg.mounts["cpuset"] / PARENT.lstrip("/")
    assert kernel("cpuset", "cpuset.mems") == (parent_cpuset / "cpuset.mems").read_text().strip() != ""
    assert (parent_cpuset / "cpuset.cpus").read_text().strip() != ""

    sleeper = subprocess.Popen(["sleep", "30"])
    procs.append(sleeper)
    cg.add_process(rel, sleeper.pid)
    assert cg.pids(rel) == [sleeper.pid]
    membership = _proc_cgroups(sleeper.pid)
    assert {c: membership[c] for c in paths} == dict.fromkeys(paths, rel)
    assert not cg.oom_killed(rel)

    cg.remove(rel)
    assert sleeper.wait(timeout=5) == -signal.SIGKILL
    assert not cg.exists(rel)
    assert [p for p in paths.values() if p.exists()] == []


def test_kill_all_sends_the_signal(
    cg: CgroupsV1, new_rel: Callable[[], str], procs: list[subprocess.Popen[bytes]]
) -> None:
    rel = new_rel()
    cg.create(rel, Limits())
    for _ in range(2):
        procs.append(subprocess.Popen(["sleep", "30"]))
        cg.add_process(rel, procs[-1].pid)
    assert cg.pids(rel) == sorted(p.pid for p in procs)
    cg.kill_all(rel, signal.SIGTERM)
    assert [p.wait(timeout=5) for p in procs] == [-signal.SIGTERM] * 2
    cg.remove(rel)
    assert not cg.exists(rel)


def test_memory_limit_triggers_the_oom_killer(
    cg: CgroupsV1, new_rel: Callable[[], str], procs: list[subprocess.Popen[bytes]]
) -> None:
    rel = new_rel()
    cg.create(rel, Limits(memory=48 * MiB))
    # waits on stdin until it is in the cgroup, then touches 256 MiB
    hog = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.readline(); b = b'x' * (256 << 20)"],
        stdin=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    procs.append(hog)
    cg.add_process(rel, hog.pid)
    assert hog.stdin is not None
    hog.stdin.write(b"go\n")
    hog.stdin.close()
    assert hog.wait(timeout=30) == -signal.SIGKILL
    assert cg.oom_killed(rel)


def test_failed_create_leaves_nothing_behind(cg: CgroupsV1, new_rel: Callable[[], str]) -> None:
    rel = new_rel()
    cpus = os.cpu_count() or 1
    with pytest.raises(CgroupError, match=r"cpuset\.cpus") as err:
        cg.create(rel, Limits(memory=64 * MiB, cpuset_cpus=str(cpus + 64)))  # no such CPU
    assert "\n" not in str(err.value)
    assert not cg.exists(rel)
