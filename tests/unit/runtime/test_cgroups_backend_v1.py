"""cgroup v1 backend against temp hierarchies with a simulated kernel (runtime.cgroups.testing)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from hostwatch.core.containers import Limits
from runtime.cgroups import CgroupError, CgroupsV1, v1
from runtime.cgroups.testing import UNLIMITED_V1, SimulatedV1, make_v1_tree
from runtime.cgroups.v1 import v1_settings

CID = "ef" * 32
REL = f"/hostwatch/{CID}"
HIERARCHIES = ("cpu", "cpuacct", "memory", "pids", "cpuset", "blkio")
# Fake PIDs written into the simulated cgroup.procs are above the kernel's PID_MAX_LIMIT (2**22), so
# a kill_all/remove can never signal a real process.
FAKE = 5_000_000


def read(path: Path) -> str:
    return path.read_text().strip()


@pytest.fixture
def kernel(tmp_path: Path) -> SimulatedV1:
    return make_v1_tree(tmp_path / "cgroup")


@pytest.fixture
def cg(kernel: SimulatedV1) -> CgroupsV1:
    return CgroupsV1(kernel.mounts, fs=kernel)


def test_create_makes_the_cgroup_in_every_hierarchy_and_writes_limits(cg: CgroupsV1, kernel: SimulatedV1) -> None:
    cg.create(REL, Limits(memory=64 << 20, nano_cpus=500_000_000, cpu_shares=512, pids_limit=64))
    paths = cg.paths(REL)
    assert set(paths) == set(HIERARCHIES)
    for controller in HIERARCHIES:
        assert paths[controller] == kernel.mounts[controller] / "hostwatch" / CID
        assert paths[controller].is_dir()
    assert read(paths["memory"] / "memory.limit_in_bytes") == str(64 << 20)
    assert read(paths["memory"] / "memory.memsw.limit_in_bytes") == str(64 << 20)
    assert read(paths["cpu"] / "cpu.cfs_period_us") == "100000"
    assert read(paths["cpu"] / "cpu.cfs_quota_us") == "50000"
    assert read(paths["cpu"] / "cpu.shares") == "512"
    assert read(paths["pids"] / "pids.max") == "64"
    assert cg.version == 1
    assert cg.exists(REL)


def test_cpuset_is_copied_down_at_every_created_level(cg: CgroupsV1, kernel: SimulatedV1) -> None:
    cg.create(REL, Limits(cpuset_cpus="1"))
    parent = kernel.mounts["cpuset"] / "hostwatch"
    assert read(parent / "cpuset.cpus") == "0-1"
    assert read(parent / "cpuset.mems") == "0"
    assert read(parent / CID / "cpuset.cpus") == "1"
    assert read(parent / CID / "cpuset.mems") == "0"


def test_cpuset_inherited_without_a_cpuset_limit(cg: CgroupsV1, kernel: SimulatedV1) -> None:
    cg.create(REL, Limits())
    leaf = kernel.mounts["cpuset"] / "hostwatch" / CID
    assert (read(leaf / "cpuset.cpus"), read(leaf / "cpuset.mems")) == ("0-1", "0")


def test_an_empty_existing_parent_cpuset_is_filled(cg: CgroupsV1, kernel: SimulatedV1) -> None:
    kernel.mkdir(kernel.mounts["cpuset"] / "hostwatch")  # left behind empty by someone else
    cg.create(REL, Limits())
    assert read(kernel.mounts["cpuset"] / "hostwatch" / "cpuset.cpus") == "0-1"


def test_unset_limits_leave_kernel_defaults(cg: CgroupsV1) -> None:
    cg.create(REL, Limits())
    paths = cg.paths(REL)
    assert read(paths["memory"] / "memory.limit_in_bytes") == UNLIMITED_V1
    assert read(paths["cpu"] / "cpu.cfs_quota_us") == "-1"
    assert read(paths["cpu"] / "cpu.shares") == "1024"
    assert read(paths["pids"] / "pids.max") == "max"


def test_create_turns_on_block_io_accounting_with_unlimited_rules(
    kernel: SimulatedV1, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sys_block = tmp_path / "block"
    for name, dev, size in (("vda", "254:0", "536870912"), ("zram0", "253:0", "0"), ("sda", "8:0", "2048")):
        (sys_block / name).mkdir(parents=True)
        (sys_block / name / "dev").write_text(dev + "\n")
        (sys_block / name / "size").write_text(size + "\n")
    (sys_block / "stray").mkdir()  # no dev/size: skipped
    writes: list[tuple[str, str]] = []

    def record(path: Path, value: str) -> None:
        writes.append((path.name, value))
        real_write(path, value)

    real_write = v1.write_file
    monkeypatch.setattr(v1, "write_file", record)
    cg = CgroupsV1(kernel.mounts, fs=kernel, sys_block=sys_block)
    cg.create(REL, Limits())
    # a rule of 0 is "no limit": the kernel starts counting the disk's I/O and throttles nothing
    assert [w for w in writes if w[0].startswith("blkio.")] == [
        ("blkio.throttle.write_bps_device", "8:0 0"),
        ("blkio.throttle.write_bps_device", "254:0 0"),
    ]
    assert v1.disks(tmp_path / "missing") == []


def test_memory_without_swap_accounting(tmp_path: Path) -> None:
    kernel = make_v1_tree(tmp_path / "cgroup", memsw=False)
    cg = CgroupsV1(kernel.mounts, fs=kernel)
    cg.create(REL, Limits(memory=32 << 20))
    memory = cg.paths(REL)["memory"]
    assert read(memory / "memory.limit_in_bytes") == str(32 << 20)
    assert not (memory / "memory.memsw.limit_in_bytes").exists()


def test_memsw_is_lifted_before_the_memory_limit_and_pinned_after() -> None:
    writes = [(s.file, s.value) for s in v1_settings(Limits(memory=100))]
    assert writes == [
        ("memory.memsw.limit_in_bytes", "-1"),
        ("memory.limit_in_bytes", "100"),
        ("memory.memsw.limit_in_bytes", "100"),
    ]


def test_unlimited_values() -> None:
    writes = [(s.file, s.value) for s in v1_settings(Limits(memory=0, nano_cpus=0, pids_limit=0))]
    assert writes == [
        ("memory.memsw.limit_in_bytes", "-1"),
        ("memory.limit_in_bytes", "-1"),
        ("cpu.cfs_period_us", "100000"),
        ("cpu.cfs_quota_us", "-1"),
        ("pids.max", "max"),
    ]


def test_co_mounted_cpu_cpuacct(tmp_path: Path) -> None:
    kernel = make_v1_tree(tmp_path / "cgroup", comount_cpu=True)
    cg = CgroupsV1(kernel.mounts, fs=kernel)
    cg.create(REL, Limits(nano_cpus=2_000_000_000))
    paths = cg.paths(REL)
    assert paths["cpu"] == paths["cpuacct"] == tmp_path / "cgroup" / "cpu,cpuacct" / "hostwatch" / CID
    assert read(paths["cpu"] / "cpu.cfs_quota_us") == "200000"
    assert (paths["cpu"] / "cpuacct.usage").exists()
    cg.add_process(REL, FAKE)
    assert read(paths["cpuacct"] / "cgroup.procs") == str(FAKE)
    for path in paths.values():
        (path / "cgroup.procs").write_text("")  # as the kernel would once FAKE exited
    cg.remove(REL)
    assert not paths["cpu"].exists()


def test_missing_controller_fails_before_creating_anything(tmp_path: Path) -> None:
    kernel = make_v1_tree(tmp_path / "cgroup")
    mounts = {c: p for c, p in kernel.mounts.items() if c != "pids"}
    cg = CgroupsV1(mounts, fs=kernel)
    assert "pids" not in cg.paths(REL)
    with pytest.raises(CgroupError, match="pids controller is not mounted"):
        cg.create(REL, Limits(pids_limit=10))
    assert not any((m / "hostwatch").exists() for m in mounts.values())
    cg.create(REL, Limits(memory=1 << 20))  # fine without the pids hierarchy
    assert not (kernel.mounts["pids"] / "hostwatch").exists()


def test_failure_removes_every_directory_create_made(cg: CgroupsV1, kernel: SimulatedV1) -> None:
    (kernel.mounts["cpuset"] / "cpuset.mems").write_text("\n")  # nothing to inherit
    with pytest.raises(CgroupError, match=r"cannot create cgroup /hostwatch/.*cpuset\.mems is empty") as err:
        cg.create(REL, Limits(memory=1 << 20))
    assert "\n" not in str(err.value)
    for mount in kernel.mounts.values():
        assert not (mount / "hostwatch").exists()


def test_failure_keeps_parents_that_existed(cg: CgroupsV1, kernel: SimulatedV1) -> None:
    cg.create("/hostwatch/other", Limits())
    with pytest.raises(CgroupError, match="0.01 CPU"):
        cg.create(REL, Limits(nano_cpus=5))
    with pytest.raises(CgroupError):
        # passes validation, then the kernel-like tree lacks the file: fails after mkdir
        (kernel.mounts["pids"] / "hostwatch" / "other" / "pids.max").unlink()
        cg.create("/hostwatch/other/inner", Limits())  # a leaf below an existing one is fine...
        cg.create("/hostwatch/other", Limits(pids_limit=3))  # ...a missing file is not
    assert (kernel.mounts["memory"] / "hostwatch" / "other" / "inner").is_dir()
    assert not (kernel.mounts["memory"] / "hostwatch" / CID).exists()


def test_pids_is_the_union_over_hierarchies(cg: CgroupsV1) -> None:
    cg.create(REL, Limits())
    paths = cg.paths(REL)
    (paths["memory"] / "cgroup.procs").write_text(f"{FAKE}\n{FAKE + 1}\n")
    (paths["cpu"] / "cgroup.procs").write_text(f"{FAKE + 1}\n{FAKE + 2}\n")
    assert cg.pids(REL) == [FAKE, FAKE + 1, FAKE + 2]


def test_add_process_writes_every_hierarchy(cg: CgroupsV1) -> None:
    cg.create(REL, Limits())
    cg.add_process(REL, FAKE)
    paths = cg.paths(REL)
    assert {c: read(paths[c] / "cgroup.procs") for c in HIERARCHIES} == dict.fromkeys(HIERARCHIES, str(FAKE))


def test_join_moves_the_caller_as_a_thread_in_every_hierarchy(cg: CgroupsV1) -> None:
    """"0" in tasks, not cgroup.procs: the kernel then skips the threadgroup lock's RCU grace period."""
    cg.create(REL, Limits())
    cg.join(REL)
    paths = cg.paths(REL)
    assert {c: read(paths[c] / "tasks") for c in HIERARCHIES} == dict.fromkeys(HIERARCHIES, "0")


def test_join_a_missing_cgroup_fails_naming_it(cg: CgroupsV1) -> None:
    with pytest.raises(CgroupError, match=f"cannot join cgroup {REL}"):
        cg.join(REL)


def test_oom_killed_reads_memory_oom_control(cg: CgroupsV1) -> None:
    cg.create(REL, Limits(memory=16 << 20))
    assert not cg.oom_killed(REL)
    control = cg.paths(REL)["memory"] / "memory.oom_control"
    control.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert cg.oom_killed(REL)
    assert not cg.oom_killed("/hostwatch/absent")


def test_kill_all_signals_each_process(cg: CgroupsV1, sleeper: subprocess.Popen[bytes]) -> None:
    cg.create(REL, Limits())
    cg.add_process(REL, sleeper.pid)
    cg.kill_all(REL, signal.SIGTERM)
    assert sleeper.wait(timeout=5) == -signal.SIGTERM


def test_remove_every_hierarchy_but_not_the_parent(cg: CgroupsV1, kernel: SimulatedV1) -> None:
    cg.create(REL, Limits())
    cg.create("/hostwatch/sibling", Limits())
    kernel.mkdir(cg.paths(REL)["memory"] / "nested")
    cg.remove(REL)
    assert not cg.exists(REL)
    assert cg.exists("/hostwatch/sibling")
    cg.remove("/hostwatch/sibling")
    for mount in kernel.mounts.values():
        assert (mount / "hostwatch").is_dir()
    cg.remove(REL)  # already gone


def test_remove_tolerates_a_partly_removed_cgroup(cg: CgroupsV1, kernel: SimulatedV1) -> None:
    cg.create(REL, Limits())
    kernel.rmdir(cg.paths(REL)["memory"])
    cg.remove(REL)
    assert not cg.exists(REL)


def test_no_controllers_at_all_is_an_error() -> None:
    with pytest.raises(CgroupError, match="no cgroup v1 hierarchy"):
        CgroupsV1({"freezer": Path("/sys/fs/cgroup/freezer")})
