"""The runtime's cgroup layer: one `Cgroups` interface, a v1 and a v2 backend, and `detect()`.

cg = detect()
cg.create("/hostwatch/<id>", Limits(memory=64 << 20))
cg.add_process("/hostwatch/<id>", pid)
...
cg.remove("/hostwatch/<id>")
"""

from __future__ import annotations

from pathlib import Path

from .base import CgroupError, CgroupFS, Cgroups
from .mountinfo import is_cgroup2_mount, parse_mountinfo, v1_controller_mounts
from .v1 import CONTROLLERS as V1_CONTROLLERS
from .v1 import CgroupsV1
from .v2 import CgroupsV2

__all__ = ["CgroupError", "CgroupFS", "Cgroups", "CgroupsV1", "CgroupsV2", "detect"]


def detect(
    root: Path = Path("/sys/fs/cgroup"),
    mounts: Path = Path("/proc/self/mountinfo"),
    fs: CgroupFS | None = None,
) -> Cgroups:
    """The backend for this host: v2 when `root` itself is a cgroup2 mount ("unified" host),
    otherwise v1 over the controllers' v1 mounts (a "hybrid" host's cgroup2 mount at
    root/unified carries no controllers and is ignored)."""
    try:
        text = Path(mounts).read_text(encoding="utf-8", errors="surrogateescape")
    except OSError as e:
        raise CgroupError(f"cannot read {mounts}: {e.strerror or e}") from e
    entries = parse_mountinfo(text)
    if is_cgroup2_mount(entries, root):
        return CgroupsV2(root, fs)
    controllers = v1_controller_mounts(entries, V1_CONTROLLERS, root)
    if controllers:
        return CgroupsV1(controllers, fs)
    raise CgroupError(f"no cgroup2 mount at {root} and no cgroup v1 controllers in {mounts}")
