"""hostwatch.core.cgroupfs: the one detection rule over every kind of tree both components meet, and
the value formats the runtime writes and the exporter reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostwatch.core.cgroupfs import (
    CgroupError,
    Layout,
    detect,
    is_unlimited,
    parse_cpuset,
    parse_flat_keyed,
    parse_procs,
    shares_to_weight,
    weight_to_shares,
)
from hostwatch.core.cgroupfs.values import V1_UNLIMITED_MEMORY
from runtime.cgroups.testing import make_v1_tree, make_v2_tree, v1_mountinfo, v2_mountinfo

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "exporter"
CG = Path("/sys/fs/cgroup")
V1 = ("cpu", "cpuacct", "memory", "pids", "cpuset", "blkio")

# /proc/self/mountinfo of this project's hosts: v1 hierarchies, and a cgroup2 mount without controllers
HYBRID_HOST = "".join(
    f"{32 + i} 31 0:{29 + i} / /sys/fs/cgroup/{c} rw,relatime - cgroup cgroup rw,{c}\n" for i, c in enumerate(V1)
) + (
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"
)
NOTHING_MOUNTED = "22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/root rw\n"


def mountinfo(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mountinfo"
    path.write_text(text)
    return path


def test_a_hybrid_host_is_v1_with_its_unified_mount(tmp_path: Path) -> None:
    layout = detect(CG, mountinfo(tmp_path, HYBRID_HOST))
    assert layout == Layout(1, CG, {c: CG / c for c in V1}, CG / "unified")


def test_the_exporter_fixture_trees_are_read_by_their_shape(tmp_path: Path) -> None:
    table = mountinfo(tmp_path, NOTHING_MOUNTED)
    v1 = detect(FIXTURES / "v1", table)
    assert (v1.version, v1.unified) == (1, None)
    # the directory named after the controller wins over the co-mount it links to
    assert v1.controllers == {c: FIXTURES / "v1" / c for c in ("cpu", "cpuacct", "memory", "pids", "blkio")}
    hybrid = detect(FIXTURES / "hybrid", table)
    assert (hybrid.version, hybrid.unified) == (1, FIXTURES / "hybrid" / "unified")
    assert detect(FIXTURES / "v2", table) == Layout(2, FIXTURES / "v2", {}, FIXTURES / "v2")


def test_a_simulated_kernel_is_the_same_layout_by_mount_table_or_by_shape(tmp_path: Path) -> None:
    kernel = make_v1_tree(tmp_path / "v1", comount_cpu=True)
    (tmp_path / "v1" / "unified").mkdir()
    (tmp_path / "v1" / "unified" / "cgroup.controllers").write_text("")  # the empty cgroup2 v1_mountinfo lists
    by_table = detect(tmp_path / "v1", mountinfo(tmp_path, v1_mountinfo(kernel)))
    by_shape = detect(tmp_path / "v1", mountinfo(tmp_path, NOTHING_MOUNTED))
    assert by_table == by_shape
    assert by_table.version == 1 and dict(by_table.controllers) == kernel.mounts
    assert by_table.controllers["cpu"] == by_table.controllers["cpuacct"] == tmp_path / "v1" / "cpu,cpuacct"

    make_v2_tree(tmp_path / "v2")
    by_table = detect(tmp_path / "v2", mountinfo(tmp_path, v2_mountinfo(tmp_path / "v2")))
    assert by_table == detect(tmp_path / "v2", mountinfo(tmp_path, NOTHING_MOUNTED))
    assert by_table.version == 2 and by_table.unified == tmp_path / "v2"


def test_a_mount_table_entry_below_root_is_not_overridden_by_the_tree(tmp_path: Path) -> None:
    # the tree looks like v2, but the kernel says only a v1 memory hierarchy is mounted there
    make_v2_tree(tmp_path / "cg")
    text = f"{NOTHING_MOUNTED}50 1 0:50 / {tmp_path}/cg/memory rw - cgroup cgroup rw,memory\n"
    layout = detect(tmp_path / "cg", mountinfo(tmp_path, text))
    assert layout == Layout(1, tmp_path / "cg", {"memory": tmp_path / "cg" / "memory"}, None)


def test_no_hierarchy_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(CgroupError, match=f"no cgroup2 mount at {tmp_path}/empty and no cgroup v1 controllers"):
        detect(tmp_path / "empty", mountinfo(tmp_path, NOTHING_MOUNTED))
    with pytest.raises(CgroupError, match="cannot read"):
        detect(tmp_path / "empty", tmp_path / "no-such-mountinfo")


def test_shares_and_weight_map_like_runc_and_cadvisor() -> None:
    assert [shares_to_weight(s) for s in (2, 1024, 262_144, 1, 10**7)] == [1, 39, 10_000, 1, 10_000]
    assert [weight_to_shares(w) for w in (1, 100, 10_000)] == [2, 2597, 262_144]
    # both directions round down: a weight survives the round trip within one step
    assert {w - shares_to_weight(weight_to_shares(w)) for w in range(1, 10_001)} == {0, 1}


def test_cpuset_lists() -> None:
    for ok in ("0", "0-2,4", "1,3-5,7"):
        assert parse_cpuset(ok) == ok
    for bad in ("", "0-", "-1", "2-1", "0,,1", " 0", "0\n", "a", "٣"):
        with pytest.raises(ValueError, match=r"invalid --cpuset-cpus value: .* \(expected a list like 0-2,4\)"):
            parse_cpuset(bad)
    with pytest.raises(ValueError, match="invalid cpuset_cpus value"):
        parse_cpuset("x", "cpuset_cpus")


def test_unlimited_is_above_two_to_the_62() -> None:
    assert is_unlimited(V1_UNLIMITED_MEMORY) and is_unlimited((1 << 62) + 4096)
    assert not is_unlimited(256 << 20) and not is_unlimited(1 << 62)


def test_procs_and_flat_keyed_files() -> None:
    assert parse_procs(b"42\n7\n\n42\n") == [42, 7, 42]
    assert parse_procs(b"1 x 2 -3\n") == [1, 2]
    assert parse_flat_keyed(b"oom 1\noom_kill 2\nbad x\n\nlast 3") == {"oom": 1, "oom_kill": 2, "last": 3}
