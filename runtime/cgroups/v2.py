"""cgroup v2 backend: one unified tree at the cgroup2 mount."""

from __future__ import annotations

import signal
from collections.abc import Sequence
from pathlib import Path

from hostwatch.core.cgroupfs import CPU_PERIOD_US, shares_to_weight
from hostwatch.core.cgroupfs.files import (
    CONTROLLERS,
    CPU_MAX,
    CPU_WEIGHT,
    KILL,
    MEMORY_EVENTS,
    MEMORY_MAX,
    MEMORY_SWAP_MAX,
    SUBTREE_CONTROL,
    V2_DELEGATED,
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
    read_keyed,
    read_tokens,
    split_rel,
    write_file,
)


def v2_settings(limits: Limits) -> list[Setting]:
    """The interface-file writes that apply `limits`, in order. None leaves a limit untouched;
    0 or less means unlimited (Docker's convention) for memory, nano_cpus and pids_limit."""
    out: list[Setting] = []
    if limits.memory is not None:
        memory = check_int("memory", limits.memory)
        out.append(Setting("memory", MEMORY_MAX, str(memory) if memory > 0 else "max"))
        # no swap for a limited container, so swapping cannot hide an OOM
        out.append(Setting("memory", MEMORY_SWAP_MAX, "0" if memory > 0 else "max", optional=True))
    if limits.nano_cpus is not None:
        nano = check_int("nano_cpus", limits.nano_cpus)
        quota = str(cpu_quota_us(nano)) if nano > 0 else "max"
        out.append(Setting("cpu", CPU_MAX, f"{quota} {CPU_PERIOD_US}"))
    return out + common_settings(limits, lambda n: Setting("cpu", CPU_WEIGHT, str(shares_to_weight(n))))


class CgroupsV2(TreeCgroups):
    version = 2

    def __init__(self, root: Path, fs: CgroupFS | None = None) -> None:
        """`root`: the cgroup2 mount point (normally /sys/fs/cgroup)."""
        super().__init__(fs)
        self.root = Path(root)

    def roots(self) -> list[Path]:
        return [self.root]

    def paths(self, rel: str) -> dict[str, Path]:
        return {"unified": self.root.joinpath(*split_rel(rel))}

    def create(self, rel: str, limits: Limits) -> None:
        try:
            parts = split_rel(rel)
            settings = v2_settings(limits)
            needed = {s.controller for s in settings}
            available = set(read_tokens(self.root / CONTROLLERS))
            missing = sorted(needed - available)
            if missing:
                raise CgroupError(f"controllers not available in {self.root}: {', '.join(missing)}")
        except CgroupError as e:
            raise CgroupError(f"cannot create cgroup {rel}: {e}") from e
        created: list[Path] = []
        try:
            parent = self.root
            for part in parts:
                self._enable_controllers(parent, needed)
                (parent,) = self.make_levels(parent, [part], created)
            for s in settings:
                path = parent / s.file
                if s.optional and not path.exists():
                    continue
                write_file(path, s.value)
        except CgroupError as e:
            self.rollback(created)
            raise CgroupError(f"cannot create cgroup {rel}: {e}") from e

    def _enable_controllers(self, parent: Path, needed: set[str]) -> None:
        """Delegate our controllers to the children of `parent` (its cgroup.subtree_control).

        Writes every wanted controller the parent has in one go ("+cpu +memory ..."); if the
        kernel refuses, retries one by one and fails only for controllers the limits need.
        """
        available = set(read_tokens(parent / CONTROLLERS))
        want = [c for c in V2_DELEGATED if c in available]
        enabled = {tok.lstrip("+") for tok in read_tokens(parent / SUBTREE_CONTROL)}
        if not set(want) - enabled:
            return
        control = parent / SUBTREE_CONTROL
        try:
            write_file(control, " ".join(f"+{c}" for c in want))
            return
        except CgroupError:
            pass
        for c in want:
            if c in enabled:
                continue
            try:
                write_file(control, f"+{c}")
            except CgroupError:
                if c in needed:
                    raise
                # an optional controller: the container simply runs without it

    def restrict_devices(self, rel: str, rules: Sequence[DeviceRule]) -> bool:
        """cgroup v2 has no devices controller: an eBPF program attached to the cgroup decides, as
        runc and crun do it (see devicefilter)."""
        from .devicefilter import attach

        try:
            attach(self.paths(rel)["unified"], rules)
        except OSError as e:
            raise CgroupError(f"cannot apply device rules to cgroup {rel}: {e.strerror or e}") from e
        return True

    def oom_killed(self, rel: str) -> bool:
        events = read_keyed(self.paths(rel)["unified"] / MEMORY_EVENTS)
        return events.get("oom_kill", 0) > 0

    def kill_all(self, rel: str, sig: int) -> None:
        kill = self.paths(rel)["unified"] / KILL
        if sig == signal.SIGKILL and kill.exists():
            write_file(kill, "1")  # atomic: also catches processes forking while we signal
            return
        self._signal_each(rel, sig)
