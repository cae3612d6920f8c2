"""Simulated cgroup kernels over plain temp directories, for unit tests (here and in the runtime's).

A temp directory does not behave like cgroupfs: mkdir does not populate interface files and rmdir
refuses a directory that lists files. `SimulatedV1`/`SimulatedV2` are `CgroupFS` implementations
that do what the kernel does on those two operations, with the kernel's file names, initial
contents and formats; everything else (reads, writes) goes to ordinary files, so a test drives a
backend and then asserts what it wrote. The file tables below are written out from the kernel's
documentation, not from hostwatch.core.cgroupfs.files, so a wrong name in that module fails a test.

    kernel = make_v2_tree(tmp_path / "cgroup")
    cg = CgroupsV2(tmp_path / "cgroup", fs=kernel)
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from hostwatch.core.cgroupfs.files import V1_CONTROLLERS, V2_CONTROLLERS
from hostwatch.core.cgroupfs.values import V1_UNLIMITED_MEMORY

from .base import CgroupFS

UNLIMITED_V1 = str(V1_UNLIMITED_MEMORY)  # memory.limit_in_bytes of an unlimited v1 memcg


def _write(path: Path, text: str) -> None:
    path.write_text(text)


def _write_all(directory: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        _write(directory / name, text)


def _procs_nonempty(path: Path) -> bool:
    try:
        return bool((path / "cgroup.procs").read_text().split())
    except FileNotFoundError:
        return False


class _SimulatedFS(CgroupFS):
    def populate(self, path: Path) -> None:
        raise NotImplementedError

    def mkdir(self, path: Path) -> None:
        os.mkdir(path)
        self.populate(path)

    def rmdir(self, path: Path) -> None:
        """Like the kernel: EBUSY with child cgroups or member processes, else gone with its files."""
        if not path.is_dir():
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
        if any(p.is_dir() for p in path.iterdir()) or _procs_nonempty(path):
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), str(path))
        shutil.rmtree(path)


def _v1_files(controller: str, memsw: bool) -> dict[str, str]:
    files = {"cgroup.procs": "", "tasks": "", "notify_on_release": "0", "cgroup.clone_children": "0"}
    if controller == "memory":
        files |= {
            "memory.limit_in_bytes": UNLIMITED_V1 + "\n",
            "memory.usage_in_bytes": "0\n",
            "memory.max_usage_in_bytes": "0\n",
            "memory.failcnt": "0\n",
            "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
            "memory.stat": "cache 0\nrss 0\n",
        }
        if memsw:
            files["memory.memsw.limit_in_bytes"] = UNLIMITED_V1 + "\n"
            files["memory.memsw.usage_in_bytes"] = "0\n"
    elif controller == "cpu":
        files |= {
            "cpu.cfs_period_us": "100000\n",
            "cpu.cfs_quota_us": "-1\n",
            "cpu.shares": "1024\n",
            "cpu.stat": "nr_periods 0\nnr_throttled 0\nthrottled_time 0\n",
        }
    elif controller == "cpuacct":
        files |= {"cpuacct.usage": "0\n", "cpuacct.stat": "user 0\nsystem 0\n"}
    elif controller == "pids":
        files |= {"pids.max": "max\n", "pids.current": "0\n"}
    elif controller == "cpuset":
        files |= {"cpuset.cpus": "\n", "cpuset.mems": "\n"}  # empty until written: no tasks allowed
    elif controller == "blkio":
        files |= {"blkio.weight": "500\n", "blkio.throttle.io_service_bytes": "Total 0\n",
                  "blkio.throttle.write_bps_device": ""}
    return files


class SimulatedV1(_SimulatedFS):
    """Separate v1 hierarchies under one directory (`mounts`: controller -> mount point)."""

    def __init__(self, mounts: dict[str, Path], memsw: bool = True) -> None:
        self.mounts = mounts
        self.memsw = memsw

    def populate(self, path: Path) -> None:
        files: dict[str, str] = {}
        for controller, mount in self.mounts.items():
            if path.is_relative_to(mount):
                files |= _v1_files(controller, self.memsw)
        _write_all(path, files)


def make_v1_tree(base: Path, memsw: bool = True, comount_cpu: bool = False) -> SimulatedV1:
    """Root cgroups of the six v1 hierarchies under `base` (cpu and cpuacct co-mounted as
    "cpu,cpuacct" when `comount_cpu`), as the kernel shows them on a 2-CPU, 1-node host."""
    mounts: dict[str, Path] = {}
    for controller in V1_CONTROLLERS:
        if comount_cpu and controller in ("cpu", "cpuacct"):
            mounts[controller] = base / "cpu,cpuacct"
        else:
            mounts[controller] = base / controller
    kernel = SimulatedV1(mounts, memsw)
    for mount in dict.fromkeys(mounts.values()):
        mount.mkdir(parents=True)
        kernel.populate(mount)
    _write_all(mounts["cpuset"], {"cpuset.cpus": "0-1\n", "cpuset.mems": "0\n"})
    return kernel


def v1_mountinfo(kernel: SimulatedV1) -> str:
    """mountinfo lines for a hybrid host: tmpfs at the parent, each v1 hierarchy, an empty cgroup2."""
    mounts = list(dict.fromkeys(kernel.mounts.values()))
    base = mounts[0].parent
    lines = [f"31 23 0:28 / {base} rw,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755"]
    for i, mount in enumerate(mounts):
        opts = ",".join(c for c, m in kernel.mounts.items() if m == mount)
        fields = f"{32 + i} 31 0:{29 + i} / {mount} rw,nosuid,nodev,noexec shared:{10 + i}"
        lines.append(f"{fields} - cgroup cgroup rw,{opts}")
    lines.append(f"50 31 0:50 / {base}/unified rw,nosuid,nodev,noexec shared:30 - cgroup2 cgroup2 rw")
    return "\n".join(lines) + "\n"


def _v2_files(controllers: Iterable[str], swap: bool, kill: bool, cpus: str) -> dict[str, str]:
    enabled = list(controllers)
    files = {
        "cgroup.controllers": " ".join(enabled) + "\n",
        "cgroup.subtree_control": "\n",
        "cgroup.procs": "",
        "cgroup.threads": "",
        "cgroup.type": "domain\n",
        "cgroup.events": "populated 0\nfrozen 0\n",
        "cgroup.freeze": "0\n",
        "cgroup.max.depth": "max\n",
        "cgroup.max.descendants": "max\n",
        "cgroup.stat": "nr_descendants 0\nnr_dying_descendants 0\n",
    }
    if kill:
        files["cgroup.kill"] = ""  # write-only in the kernel
    if "cpu" in enabled:
        files |= {
            "cpu.max": "max 100000\n",
            "cpu.weight": "100\n",
            "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\nnr_periods 0\nnr_throttled 0\nthrottled_usec 0\n",
        }
    if "memory" in enabled:
        files |= {
            "memory.max": "max\n",
            "memory.high": "max\n",
            "memory.current": "0\n",
            "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
            "memory.oom.group": "0\n",
        }
        if swap:
            files |= {"memory.swap.max": "max\n", "memory.swap.current": "0\n"}
    if "pids" in enabled:
        files |= {"pids.max": "max\n", "pids.current": "0\n", "pids.events": "max 0\n"}
    if "cpuset" in enabled:
        files |= {"cpuset.cpus": "\n", "cpuset.mems": "\n", "cpuset.cpus.effective": cpus + "\n"}
    if "io" in enabled:
        files |= {"io.max": "", "io.weight": "default 100\n", "io.stat": ""}
    return files


class SimulatedV2(_SimulatedFS):
    """A cgroup2 tree: a new cgroup's cgroup.controllers is its parent's cgroup.subtree_control."""

    def __init__(self, root: Path, swap: bool = True, kill: bool = True, cpus: str = "0-1") -> None:
        self.root = root
        self.swap = swap
        self.kill = kill
        self.cpus = cpus

    def populate(self, path: Path) -> None:
        # the backend writes "+cpu +memory ..."; the kernel would list "cpu memory ..."
        enabled = {t.lstrip("+") for t in (path.parent / "cgroup.subtree_control").read_text().split()}
        controllers = [c for c in V2_CONTROLLERS if c in enabled]
        _write_all(path, _v2_files(controllers, self.swap, self.kill, self.cpus))


def make_v2_tree(
    root: Path,
    controllers: Iterable[str] = ("cpuset", "cpu", "io", "memory", "pids"),
    subtree_control: Iterable[str] = (),
    swap: bool = True,
    kill: bool = True,
) -> SimulatedV2:
    """The root of a cgroup2 mount (no limit files at the root, as in the kernel)."""
    root.mkdir(parents=True)
    kernel = SimulatedV2(root, swap, kill)
    _write_all(
        root,
        {
            "cgroup.controllers": " ".join(controllers) + "\n",
            "cgroup.subtree_control": " ".join(subtree_control) + "\n",
            "cgroup.procs": "",
            "cgroup.threads": "",
            "cgroup.stat": "nr_descendants 0\nnr_dying_descendants 0\n",
            "cgroup.max.depth": "max\n",
            "cpuset.cpus.effective": "0-1\n",
            "cpuset.mems.effective": "0\n",
            "memory.stat": "anon 0\nfile 0\n",
        },
    )
    return kernel


def v2_mountinfo(root: Path) -> str:
    """mountinfo lines for a unified host with its cgroup2 mount at `root`."""
    return (
        "22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/root rw\n"
        f"30 22 0:26 / {root} rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
        "rw,nsdelegate,memory_recursiveprot\n"
    )
