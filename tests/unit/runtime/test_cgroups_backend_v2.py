"""cgroup v2 backend against a temp tree with a simulated kernel (runtime.cgroups.testing)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from hostwatch.core.cgroupfs import shares_to_weight
from hostwatch.core.containers import Limits
from runtime.cgroups import CgroupError, CgroupsV2
from runtime.cgroups.testing import SimulatedV2, make_v2_tree
from runtime.cgroups.v2 import v2_settings

CID = "ab" * 32
REL = f"/hostwatch/{CID}"
ALL = "+cpu +memory +pids +cpuset +io"
# Fake PIDs written into the simulated cgroup.procs are above the kernel's PID_MAX_LIMIT (2**22), so
# a kill_all/remove can never signal a real process.
FAKE = 5_000_000


def read(path: Path) -> str:
    return path.read_text().strip()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "cgroup"


@pytest.fixture
def cg(root: Path) -> CgroupsV2:
    return CgroupsV2(root, fs=make_v2_tree(root))


def test_create_delegates_controllers_down_to_the_parent_and_writes_limits(cg: CgroupsV2, root: Path) -> None:
    limits = Limits(memory=64 << 20, nano_cpus=1_500_000_000, cpu_shares=512, pids_limit=100, cpuset_cpus="1")
    cg.create(REL, limits)

    leaf = root / "hostwatch" / CID
    assert read(root / "cgroup.subtree_control") == ALL
    assert read(root / "hostwatch" / "cgroup.subtree_control") == ALL
    assert read(leaf / "cgroup.subtree_control") == ""  # the container's own cgroup delegates nothing
    assert read(leaf / "cgroup.controllers") == "cpuset cpu io memory pids"
    assert read(leaf / "memory.max") == str(64 << 20)
    assert read(leaf / "memory.swap.max") == "0"
    assert read(leaf / "cpu.max") == "150000 100000"
    assert read(leaf / "cpu.weight") == "20"  # 1 + (510 * 9999) // 262142
    assert read(leaf / "pids.max") == "100"
    assert read(leaf / "cpuset.cpus") == "1"
    assert cg.exists(REL)
    assert cg.paths(REL) == {"unified": leaf}
    assert cg.version == 2


def test_unset_limits_leave_kernel_defaults(cg: CgroupsV2, root: Path) -> None:
    cg.create(REL, Limits())
    leaf = root / "hostwatch" / CID
    assert read(leaf / "memory.max") == "max"
    assert read(leaf / "memory.swap.max") == "max"
    assert read(leaf / "cpu.max") == "max 100000"
    assert read(leaf / "cpu.weight") == "100"
    assert read(leaf / "pids.max") == "max"
    assert read(leaf / "cpuset.cpus") == ""


def test_only_controllers_the_ancestor_has_are_enabled(root: Path) -> None:
    cg = CgroupsV2(root, fs=make_v2_tree(root, controllers=("cpu", "memory", "pids")))
    cg.create(REL, Limits(memory=1 << 30))
    assert read(root / "cgroup.subtree_control") == "+cpu +memory +pids"
    assert read(root / "hostwatch" / CID / "cgroup.controllers") == "cpu memory pids"
    assert not (root / "hostwatch" / CID / "cpuset.cpus").exists()


def test_already_delegated_ancestor_is_not_rewritten(root: Path) -> None:
    kernel = make_v2_tree(root, subtree_control=("cpuset", "cpu", "io", "memory", "pids"))
    CgroupsV2(root, fs=kernel).create(REL, Limits(pids_limit=5))
    assert read(root / "cgroup.subtree_control") == "cpuset cpu io memory pids"
    assert read(root / "hostwatch" / CID / "pids.max") == "5"


def test_memory_without_swap_accounting(root: Path) -> None:
    cg = CgroupsV2(root, fs=make_v2_tree(root, swap=False))
    cg.create(REL, Limits(memory=32 << 20))
    leaf = root / "hostwatch" / CID
    assert read(leaf / "memory.max") == str(32 << 20)
    assert not (leaf / "memory.swap.max").exists()


def test_controller_missing_at_root_fails_before_creating_anything(root: Path) -> None:
    cg = CgroupsV2(root, fs=make_v2_tree(root, controllers=("cpu", "memory")))
    with pytest.raises(CgroupError, match="pids") as err:
        cg.create(REL, Limits(pids_limit=10))
    assert "\n" not in str(err.value)
    assert not (root / "hostwatch").exists()


class NoPidsFiles(SimulatedV2):
    """A kernel whose leaf lacks pids.max (e.g. the controller got disabled under us)."""

    def populate(self, path: Path) -> None:
        super().populate(path)
        (path / "pids.max").unlink(missing_ok=True)


def test_failure_after_mkdir_removes_what_create_made(root: Path) -> None:
    cg = CgroupsV2(root, fs=NoPidsFiles(root))
    make_v2_tree(root)
    with pytest.raises(CgroupError, match=r"cannot create cgroup /hostwatch/.*pids\.max"):
        cg.create(REL, Limits(memory=1 << 30, pids_limit=10))
    assert not (root / "hostwatch").exists()


def test_failure_keeps_a_parent_that_existed(root: Path) -> None:
    cg = CgroupsV2(root, fs=NoPidsFiles(root))
    make_v2_tree(root)
    cg.create("/hostwatch/other", Limits())
    with pytest.raises(CgroupError):
        cg.create(REL, Limits(pids_limit=10))
    assert (root / "hostwatch" / "other").is_dir()
    assert not (root / "hostwatch" / CID).exists()


def test_invalid_limits_are_rejected_with_one_line(cg: CgroupsV2, root: Path) -> None:
    for limits, match in [
        (Limits(nano_cpus=1_000_000), "0.01 CPU"),
        (Limits(cpuset_cpus="0-x"), "cpuset_cpus"),
        (Limits(cpu_shares=-5), "cpu_shares"),
        (Limits(memory="1g"), "memory"),  # type: ignore[arg-type]
    ]:
        with pytest.raises(CgroupError, match=match):
            cg.create(REL, limits)
    assert not (root / "hostwatch").exists()


@pytest.mark.parametrize("rel", ["/", "hostwatch/x", "/hostwatch/../x", "/hostwatch/./x", ""])
def test_bad_paths_are_refused(cg: CgroupsV2, rel: str) -> None:
    with pytest.raises(CgroupError, match="invalid cgroup path"):
        cg.create(rel, Limits())
    with pytest.raises(CgroupError):
        cg.remove(rel)


def test_create_reuses_an_existing_cgroup(cg: CgroupsV2, root: Path) -> None:
    cg.create(REL, Limits(pids_limit=10))
    cg.create(REL, Limits(pids_limit=20))
    assert read(root / "hostwatch" / CID / "pids.max") == "20"


@pytest.mark.parametrize(
    ("shares", "weight"),
    [(2, 1), (1, 1), (0, 1), (1024, 39), (512, 20), (262_144, 10_000), (10**7, 10_000)],
)
def test_shares_to_weight(shares: int, weight: int) -> None:
    assert shares_to_weight(shares) == weight


def test_unlimited_values() -> None:
    writes = {(s.file, s.value) for s in v2_settings(Limits(memory=0, nano_cpus=0, pids_limit=-1))}
    assert writes == {
        ("memory.max", "max"),
        ("memory.swap.max", "max"),
        ("cpu.max", "max 100000"),
        ("pids.max", "max"),
    }


def test_add_process_pids_and_descendants(cg: CgroupsV2, root: Path) -> None:
    cg.create(REL, Limits())
    cg.add_process(REL, FAKE)
    assert read(root / "hostwatch" / CID / "cgroup.procs") == str(FAKE)
    nested = root / "hostwatch" / CID / "inner"
    cg.fs.mkdir(nested)
    (nested / "cgroup.procs").write_text(f"{FAKE + 1}\n{FAKE + 2}\n")
    assert cg.pids(REL) == [FAKE, FAKE + 1, FAKE + 2]
    assert cg.pids("/hostwatch/absent") == []


def test_add_process_to_missing_cgroup_fails(cg: CgroupsV2) -> None:
    with pytest.raises(CgroupError, match="does not exist"):
        cg.add_process(REL, FAKE)


def test_join_writes_zero_to_cgroup_procs(cg: CgroupsV2, root: Path) -> None:
    cg.create(REL, Limits())
    cg.join(REL)
    assert read(root / "hostwatch" / CID / "cgroup.procs") == "0"


def test_oom_killed_reads_memory_events(cg: CgroupsV2, root: Path) -> None:
    assert not cg.oom_killed(REL)  # not created yet
    cg.create(REL, Limits(memory=16 << 20))
    assert not cg.oom_killed(REL)
    events = root / "hostwatch" / CID / "memory.events"
    events.write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 0\n")
    assert cg.oom_killed(REL)
    events.write_text("low 0\nhigh 0\nmax 7\noom 2\noom_kill 0\noom_group_kill 0\n")
    assert not cg.oom_killed(REL)  # hit the limit, reclaimed, nothing killed


def test_sigkill_uses_cgroup_kill(cg: CgroupsV2, root: Path) -> None:
    cg.create(REL, Limits())
    cg.kill_all(REL, signal.SIGKILL)
    assert read(root / "hostwatch" / CID / "cgroup.kill") == "1"


def test_other_signals_go_to_each_process(cg: CgroupsV2, root: Path, sleeper: subprocess.Popen[bytes]) -> None:
    cg.create(REL, Limits())
    cg.add_process(REL, sleeper.pid)
    cg.kill_all(REL, signal.SIGTERM)
    assert sleeper.wait(timeout=5) == -signal.SIGTERM
    assert read(root / "hostwatch" / CID / "cgroup.kill") == ""


def test_sigkill_without_cgroup_kill_signals_each_process(root: Path, sleeper: subprocess.Popen[bytes]) -> None:
    cg = CgroupsV2(root, fs=make_v2_tree(root, kill=False))
    cg.create(REL, Limits())
    cg.add_process(REL, sleeper.pid)
    cg.kill_all(REL, signal.SIGKILL)
    assert sleeper.wait(timeout=5) == -signal.SIGKILL


def test_remove_keeps_the_shared_parent(cg: CgroupsV2, root: Path) -> None:
    other = "/hostwatch/" + "cd" * 32
    cg.create(REL, Limits())
    cg.create(other, Limits())
    cg.fs.mkdir(root / "hostwatch" / CID / "nested")
    cg.remove(REL)
    assert not cg.exists(REL)
    assert cg.exists(other)
    cg.remove(other)
    assert (root / "hostwatch").is_dir()  # an empty parent is left in place
    cg.remove(REL)  # already gone: fine


def test_remove_reports_processes_that_do_not_leave(root: Path, sleeper: subprocess.Popen[bytes]) -> None:
    # cgroup.kill absent, and a plain file keeps listing the (killed, unreaped) sleeper
    cg = CgroupsV2(root, fs=make_v2_tree(root, kill=False))
    cg.remove_timeout = 0.1
    cg.create(REL, Limits())
    cg.add_process(REL, sleeper.pid)
    with pytest.raises(CgroupError, match=rf"cannot remove cgroup {REL}: .*still running"):
        cg.remove(REL)
    assert sleeper.wait(timeout=5) == -signal.SIGKILL
