"""Where a host's cgroup hierarchies are, and which cgroup version they speak: one rule for all.

The rule, over the mounts at and below `root`:
- `root` is itself a cgroup2 mount: cgroup v2 ("unified" host), one tree at `root`;
- otherwise cgroup v1 ("legacy", or "hybrid" when a cgroup2 mount without controllers sits at
  root/unified): one hierarchy per controller, found among the v1 mounts (those below `root`
  preferred, co-mounts such as "cpu,cpuacct" serving each of their controllers);
- neither: CgroupError.

The mounts come from the kernel's mount table (/proc/self/mountinfo). A tree that nothing is mounted
on or below (a fixture tree, a simulated kernel in a temp directory) is read as the mounts it shows:
a directory holding cgroup.controllers is a cgroup2 mount (only cgroup2 has that file), every other
directory below `root` a v1 hierarchy named after its controllers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from hostwatch.core.paths import CGROUP_ROOT, PROC_ROOT

from .files import CONTROLLERS, HYBRID_UNIFIED, V1_CONTROLLERS
from .mountinfo import Mount, is_cgroup2_mount, parse_mountinfo, v1_controller_mounts

MOUNTINFO = PROC_ROOT / "self" / "mountinfo"
CGROUP_FSTYPES = ("cgroup", "cgroup2")


class CgroupError(Exception):
    """A cgroup operation failed; the message is one line naming the cgroup and the reason."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


@dataclass(frozen=True)
class Layout:
    version: int  # 2: one unified tree at `root`; 1: one hierarchy per controller
    root: Path
    # v1: controller -> mount point of its hierarchy (only V1_CONTROLLERS that are mounted); v2: empty
    controllers: Mapping[str, Path] = field(default_factory=dict)
    # the cgroup2 mount: `root` on v2, root/unified on a hybrid v1 host, else None
    unified: Path | None = None


def tree_mounts(root: Path) -> list[Mount]:
    """The mounts a tree shows by its shape (see the module docstring). Directories named exactly
    after one controller come first, so "cpu" is preferred to the "cpu,cpuacct" it may link to."""
    if (root / CONTROLLERS).is_file():
        return [Mount(root, "cgroup2", ())]
    try:
        names = sorted(os.listdir(root), key=lambda n: ("," in n, n))
    except OSError:
        return []
    mounts = []
    for name in names:
        path = root / name
        if not path.is_dir():
            continue
        if (path / CONTROLLERS).is_file():
            mounts.append(Mount(path, "cgroup2", ()))
        else:
            mounts.append(Mount(path, "cgroup", tuple(name.split(","))))
    return mounts


def layout_of(mounts: list[Mount], root: Path) -> Layout | None:
    """The rule itself, over a mount list; None when `root` holds no usable hierarchy."""
    if is_cgroup2_mount(mounts, root):
        return Layout(2, root, {}, root)
    controllers = v1_controller_mounts(mounts, V1_CONTROLLERS, root)
    if not controllers:
        return None
    unified = root / HYBRID_UNIFIED
    return Layout(1, root, controllers, unified if is_cgroup2_mount(mounts, unified) else None)


def detect(root: Path | str = CGROUP_ROOT, mountinfo: Path | str = MOUNTINFO) -> Layout:
    """The layout of the cgroup filesystem at `root`; CgroupError when there is none."""
    root = Path(os.path.normpath(root))
    try:
        text = Path(mountinfo).read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as e:
        raise CgroupError(f"cannot read {mountinfo}: {e.strerror or e}") from e
    mounts = [m for m in parse_mountinfo(text) if m.fstype in CGROUP_FSTYPES]
    source = str(mountinfo)
    if not any(m.mount_point.is_relative_to(root) for m in mounts):
        mounts, source = tree_mounts(root), str(root)
    found = layout_of(mounts, root)
    if found is None:
        raise CgroupError(f"no cgroup2 mount at {root} and no cgroup v1 controllers in {source}")
    return found
