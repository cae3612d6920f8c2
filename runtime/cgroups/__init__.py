"""The runtime's cgroup layer: one `Cgroups` interface, a v1 and a v2 backend, and `detect()`.

cg = detect()
cg.create("/hostwatch/<id>", Limits(memory=64 << 20))
cg.add_process("/hostwatch/<id>", pid)
...
cg.remove("/hostwatch/<id>")

Which backend, and where its hierarchies are, is hostwatch.core.cgroupfs's one detection rule.
"""

from __future__ import annotations

from pathlib import Path

from hostwatch.core import cgroupfs
from hostwatch.core.cgroupfs.layout import MOUNTINFO
from hostwatch.core.paths import CGROUP_ROOT

from .base import CgroupError, CgroupFS, Cgroups
from .v1 import CgroupsV1
from .v2 import CgroupsV2

__all__ = ["CgroupError", "CgroupFS", "Cgroups", "CgroupsV1", "CgroupsV2", "detect"]


def detect(root: Path = CGROUP_ROOT, mounts: Path = MOUNTINFO, fs: CgroupFS | None = None) -> Cgroups:
    """The backend for this host: v2 on a unified host (`root` is a cgroup2 mount), otherwise v1 over
    the controllers' v1 mounts (a hybrid host's cgroup2 mount at root/unified carries none)."""
    layout = cgroupfs.detect(root, mounts)
    if layout.version == 2:
        return CgroupsV2(layout.root, fs)
    return CgroupsV1(layout.controllers, fs)
