"""cgroup v1 backend: one hierarchy per controller (or per co-mounted group, e.g. "cpu,cpuacct")."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from hostwatch.core.cgroupfs import CPU_PERIOD_US
from hostwatch.core.cgroupfs.files import (
    BLKIO_WRITE_BPS_DEVICE,
    CPU_CFS_PERIOD,
    CPU_CFS_QUOTA,
    CPU_SHARES,
    CPUSET_CPUS,
    CPUSET_MEMS,
    MEMORY_LIMIT,
    MEMORY_MEMSW_LIMIT,
    MEMORY_OOM_CONTROL,
    V1_CONTROLLERS,
)
from hostwatch.core.containers import Limits

from .base import (
    CgroupError,
    CgroupFS,
    DeviceRule,
    Setting,
    TreeCgroups,
    check_int,
    common_settings,
    cpu_quota_us,
    read_file,
    read_keyed,
    split_rel,
    write_file,
)

UNLIMITED = "-1"
DEVICES = "devices"
DEVICES_ALLOW = "devices.allow"
DEVICES_DENY = "devices.deny"
SYS_BLOCK = Path("/sys/block")


def v1_settings(limits: Limits) -> list[Setting]:
    """The interface-file writes that apply `limits`, in order. None leaves a limit untouched;
    0 or less means unlimited (Docker's convention) for memory, nano_cpus and pids_limit."""
    out: list[Setting] = []
    if limits.memory is not None:
        memory = check_int("memory", limits.memory)
        value = str(memory) if memory > 0 else UNLIMITED
        # memsw must stay >= the memory limit: lift it first, then pin it to the same value so the
        # container cannot spill into swap and hide an OOM.
        out.append(Setting("memory", MEMORY_MEMSW_LIMIT, UNLIMITED, optional=True))
        out.append(Setting("memory", MEMORY_LIMIT, value))
        if memory > 0:
            out.append(Setting("memory", MEMORY_MEMSW_LIMIT, value, optional=True))
    if limits.nano_cpus is not None:
        nano = check_int("nano_cpus", limits.nano_cpus)
        out.append(Setting("cpu", CPU_CFS_PERIOD, str(CPU_PERIOD_US)))
        out.append(Setting("cpu", CPU_CFS_QUOTA, str(cpu_quota_us(nano)) if nano > 0 else UNLIMITED))
    # cpu.shares: the kernel clamps to 2..262144
    return out + common_settings(limits, lambda n: Setting("cpu", CPU_SHARES, str(n)))


class CgroupsV1(TreeCgroups):
    version = 1
    join_file = "tasks"  # "0" moves the calling thread without cgroup_threadgroup_rwsem (see join)

    def __init__(self, mounts: Mapping[str, Path], fs: CgroupFS | None = None, sys_block: Path = SYS_BLOCK) -> None:
        """`mounts`: controller name -> mount point of its hierarchy (see mountinfo); `sys_block`:
        the disks whose I/O the blkio controller should count (see `count_block_io`)."""
        super().__init__(fs)
        self.sys_block = Path(sys_block)
        self.mounts = {c: Path(mounts[c]) for c in (*V1_CONTROLLERS, DEVICES) if c in mounts}
        if not self.mounts:
            raise CgroupError(f"no cgroup v1 hierarchy for any of {', '.join(V1_CONTROLLERS)}")

    def roots(self) -> list[Path]:
        return list(dict.fromkeys(self.mounts.values()))

    def paths(self, rel: str) -> dict[str, Path]:
        parts = split_rel(rel)
        return {c: root.joinpath(*parts) for c, root in self.mounts.items()}

    def create(self, rel: str, limits: Limits) -> None:
        try:
            parts = split_rel(rel)
            settings = v1_settings(limits)
            for s in settings:
                if s.controller not in self.mounts:
                    raise CgroupError(f"the {s.controller} controller is not mounted (needed for {s.file})")
        except CgroupError as e:
            raise CgroupError(f"cannot create cgroup {rel}: {e}") from e
        created: list[Path] = []
        try:
            cpuset_root = self.mounts.get("cpuset")
            for root in self.roots():
                levels = self.make_levels(root, parts, created)
                if root == cpuset_root:
                    _inherit_cpuset([root, *levels])
            target = self.paths(rel)
            for s in settings:
                path = target[s.controller] / s.file
                if s.optional and not path.exists():
                    continue
                write_file(path, s.value)
        except CgroupError as e:
            self.rollback(created)
            raise CgroupError(f"cannot create cgroup {rel}: {e}") from e
        if "blkio" in target:
            count_block_io(target["blkio"], self.sys_block)

    def restrict_devices(self, rel: str, rules: Sequence[DeviceRule]) -> bool:
        devices = self.paths(rel).get(DEVICES)
        if devices is None:
            return False
        for rule in rules:
            write_file(devices / (DEVICES_ALLOW if rule.allow else DEVICES_DENY), rule.v1())
        return True

    def oom_killed(self, rel: str) -> bool:
        memory = self.paths(rel).get("memory")
        if memory is None:
            return False
        return read_keyed(memory / MEMORY_OOM_CONTROL).get("oom_kill", 0) > 0


def disks(sys_block: Path = SYS_BLOCK) -> list[str]:
    """The "major:minor" of every whole disk with media (size > 0) listed in /sys/block."""
    out: list[str] = []
    try:
        names = sorted(os.listdir(sys_block))
    except OSError:
        return out
    for name in names:
        try:
            if int(read_file(sys_block / name / "size")) > 0:
                out.append(read_file(sys_block / name / "dev").strip())
        except (CgroupError, ValueError):
            continue  # removed meanwhile, or not a block device directory
    return out


def count_block_io(blkio: Path, sys_block: Path = SYS_BLOCK) -> None:
    """Make the kernel count this cgroup's disk I/O in blkio.throttle.io_service_bytes/io_serviced.

    Recent kernels (6.18 on this project's hosts) set up blk-throttle on a disk only when a throttle
    rule is first written for it, and until then v1 counts no I/O at all (block/blk-throttle.h,
    blk_should_throtl), so every container showed 0 bytes written. A rule of 0 means "no limit":
    writing one per disk turns the accounting on and throttles nothing. Best effort: a disk that
    refuses it (no throttling support, gone) just stays uncounted.
    """
    rule = blkio / BLKIO_WRITE_BPS_DEVICE
    if not rule.exists():
        return
    for dev in disks(sys_block):
        try:
            write_file(rule, f"{dev} 0")
        except CgroupError:
            continue


def _inherit_cpuset(levels: list[Path]) -> None:
    """A new v1 cpuset cgroup starts with empty cpuset.cpus/mems and refuses tasks (ENOSPC):
    copy them down from the parent at every level that has none (created or left empty)."""
    for parent, child in zip(levels, levels[1:], strict=False):
        for name in (CPUSET_MEMS, CPUSET_CPUS):
            if not read_file(child / name).strip():
                value = read_file(parent / name).strip()
                if not value:
                    raise CgroupError(f"{parent / name} is empty: nothing to inherit")
                write_file(child / name, value)
