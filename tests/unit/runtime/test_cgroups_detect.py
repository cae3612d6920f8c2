"""detect() and mountinfo parsing over fake mountinfo text and temp trees."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostwatch.core.cgroupfs.mountinfo import is_cgroup2_mount, parse_mountinfo, v1_controller_mounts
from hostwatch.core.containers import Limits
from runtime.cgroups import CgroupError, CgroupsV1, CgroupsV2, detect
from runtime.cgroups.testing import make_v1_tree, make_v2_tree, v1_mountinfo, v2_mountinfo

# /proc/self/mountinfo of a hybrid host like the one this project is developed on
HYBRID = """\
23 1 253:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""

# systemd's classic layout: co-mounted pairs, optional fields, xattr/release_agent options
CLASSIC = """\
25 21 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:24 / /sys/fs/cgroup/systemd rw,nosuid shared:11 - cgroup cgroup rw,xattr,name=systemd
30 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:14 - cgroup cgroup rw,cpu,cpuacct
31 25 0:28 / /sys/fs/cgroup/memory rw,nosuid shared:15 master:3 - cgroup cgroup rw,memory
32 25 0:29 / /sys/fs/cgroup/pids rw,nosuid shared:16 - cgroup cgroup rw,pids
33 25 0:30 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid shared:17 - cgroup cgroup rw,net_cls,net_prio
34 25 0:31 / /sys/fs/cgroup/cpuset rw,nosuid shared:18 - cgroup cgroup rw,cpuset,clone_children
"""

UNIFIED = """\
22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw
26 22 0:5 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
"""

CG = Path("/sys/fs/cgroup")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mountinfo"
    path.write_text(text)
    return path


def test_hybrid_host_is_v1_with_separate_cpu_and_cpuacct(tmp_path: Path) -> None:
    cg = detect(CG, write(tmp_path, HYBRID))
    assert isinstance(cg, CgroupsV1)
    assert cg.version == 1
    # the devices hierarchy too: the runtime applies Docker's device rules there
    assert cg.mounts == {c: CG / c for c in ("cpu", "cpuacct", "memory", "pids", "cpuset", "blkio", "devices")}
    assert cg.paths("/hostwatch/x")["memory"] == CG / "memory/hostwatch/x"


def test_classic_host_with_co_mounted_cpu_cpuacct(tmp_path: Path) -> None:
    cg = detect(CG, write(tmp_path, CLASSIC))
    assert isinstance(cg, CgroupsV1)
    assert cg.mounts["cpu"] == cg.mounts["cpuacct"] == CG / "cpu,cpuacct"
    assert "blkio" not in cg.mounts  # not mounted on this host
    assert "devices" not in cg.mounts
    assert len(cg.roots()) == 4


def test_unified_host_is_v2(tmp_path: Path) -> None:
    cg = detect(CG, write(tmp_path, UNIFIED))
    assert isinstance(cg, CgroupsV2)
    assert cg.version == 2
    assert cg.paths("/hostwatch/x") == {"unified": CG / "hostwatch/x"}


def test_nothing_usable_is_an_error(tmp_path: Path) -> None:
    text = "22 1 259:2 / / rw - ext4 /dev/sda1 rw\n41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
    with pytest.raises(CgroupError, match="no cgroup2 mount at /sys/fs/cgroup"):
        detect(CG, write(tmp_path, text))
    with pytest.raises(CgroupError, match="cannot read"):
        detect(CG, tmp_path / "missing")


def test_detect_on_simulated_trees_drives_the_right_backend(tmp_path: Path) -> None:
    kernel1 = make_v1_tree(tmp_path / "v1")
    cg1 = detect(tmp_path / "v1", write(tmp_path, v1_mountinfo(kernel1)), fs=kernel1)
    assert isinstance(cg1, CgroupsV1) and cg1.mounts == kernel1.mounts
    cg1.create("/hostwatch/a", Limits(pids_limit=7))
    assert (kernel1.mounts["pids"] / "hostwatch/a/pids.max").read_text() == "7"

    root2 = tmp_path / "v2"
    kernel2 = make_v2_tree(root2)
    cg2 = detect(root2, write(tmp_path, v2_mountinfo(root2)), fs=kernel2)
    assert isinstance(cg2, CgroupsV2) and cg2.root == root2
    cg2.create("/hostwatch/a", Limits(pids_limit=7))
    assert (root2 / "hostwatch/a/pids.max").read_text() == "7"


def test_mountinfo_unescapes_paths_and_handles_optional_fields() -> None:
    text = r"36 35 98:0 /mnt1 /mnt/my\040cgroups rw,noatime master:1 shared:7 - cgroup cgroup rw,memory" + "\n"
    (mount,) = parse_mountinfo(text + "garbage line\n")
    assert mount.mount_point == Path("/mnt/my cgroups")
    assert mount.fstype == "cgroup"
    assert mount.super_options == ("rw", "memory")


def test_last_mount_on_a_path_wins() -> None:
    text = "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n60 31 0:60 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
    assert is_cgroup2_mount(parse_mountinfo(text), CG)
    assert is_cgroup2_mount(parse_mountinfo(text), Path("/sys/fs/cgroup/"))
    assert not is_cgroup2_mount(parse_mountinfo(text + "70 60 0:70 / /sys/fs/cgroup rw - tmpfs t rw\n"), CG)


def test_v1_mounts_under_root_are_preferred() -> None:
    text = (
        "50 1 0:50 / /cgroup/memory rw - cgroup cgroup rw,memory\n"
        "51 1 0:51 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
        "52 1 0:52 / /cgroup/pids rw - cgroup cgroup rw,pids\n"
    )
    found = v1_controller_mounts(parse_mountinfo(text), ("memory", "pids"), CG)
    assert found == {"memory": CG / "memory", "pids": Path("/cgroup/pids")}
