"""The runtime's cgroup layer: one `Cgroups` interface, a v1 and a v2 backend, and `detect()`.

cg = detect()
cg.create("/hostwatch/<id>", Limits(memory=64 << 20))
cg.add_process("/hostwatch/<id>", pid)   # or, from a freshly forked child: cg.join("/hostwatch/<id>")
...
cg.remove("/hostwatch/<id>")

Which backend, and where its hierarchies are, is hostwatch.core.cgroupfs's one detection rule.
"""

from __future__ import annotations

from pathlib import Path

from hostwatch.core import cgroupfs
from hostwatch.core.cgroupfs.layout import MOUNTINFO, tree_mounts
from hostwatch.core.cgroupfs.mountinfo import parse_mountinfo, v1_controller_mounts
from hostwatch.core.paths import CGROUP_ROOT

from .base import CgroupError, CgroupFS, Cgroups
from .v1 import DEVICES, CgroupsV1
from .v2 import CgroupsV2

__all__ = ["CgroupError", "CgroupFS", "Cgroups", "CgroupsV1", "CgroupsV2", "detect"]


def detect(root: Path = CGROUP_ROOT, mounts: Path = MOUNTINFO, fs: CgroupFS | None = None) -> Cgroups:
    """The backend for this host: v2 on a unified host (`root` is a cgroup2 mount), otherwise v1 over
    the controllers' v1 mounts (a hybrid host's cgroup2 mount at root/unified carries none)."""
    layout = cgroupfs.detect(root, mounts)
    if layout.version == 2:
        return CgroupsV2(layout.root, fs)
    return CgroupsV1({**layout.controllers, **_devices(Path(root), mounts)}, fs)


def _devices(root: Path, mounts: Path) -> dict[str, Path]:
    """The v1 devices hierarchy, found by the same mount rule as the others (it is the runtime's
    alone: the exporter reads no device rules, so it is not among the shared V1_CONTROLLERS)."""
    try:
        table = [m for m in parse_mountinfo(Path(mounts).read_text(errors="surrogateescape")) if m.fstype == "cgroup"]
    except OSError:
        table = []
    if not any(m.mount_point.is_relative_to(root) for m in table):
        table = tree_mounts(root)
    return v1_controller_mounts(table, (DEVICES,), root)
