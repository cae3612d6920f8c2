"""Parse /proc/<pid>/mountinfo (proc(5)): mount points, filesystem types, cgroup controllers."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class Mount:
    mount_point: Path
    fstype: str
    super_options: tuple[str, ...]
    source: str = ""  # the mount source: a block device (/dev/vda1), or a name (tmpfs, overlay)
    devno: str = ""  # st_dev of the filesystem, "major:minor"
    root: str = ""  # the directory of that filesystem mounted here ("/" unless a bind mount)


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo octal."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mountinfo(text: str) -> list[Mount]:
    """Mounts in file order; malformed lines are skipped.

    Line: id parent major:minor root mount_point options [optional...] - fstype source super_options
    """
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        try:
            sep = fields.index("-", 6)
        except ValueError:
            continue
        if len(fields) < sep + 3:
            continue
        mounts.append(
            Mount(
                mount_point=Path(os.path.normpath(_unescape(fields[4]))),
                fstype=fields[sep + 1],
                super_options=tuple(fields[sep + 3].split(",")),
                source=_unescape(fields[sep + 2]),
                devno=fields[2],
                root=_unescape(fields[3]),
            )
        )
    return mounts


def is_cgroup2_mount(mounts: list[Mount], path: Path) -> bool:
    """True when the mount visible at `path` (the last one mounted there) is cgroup2."""
    target = Path(os.path.normpath(path))
    fstype = None
    for m in mounts:
        if m.mount_point == target:
            fstype = m.fstype
    return fstype == "cgroup2"


def v1_controller_mounts(mounts: list[Mount], wanted: tuple[str, ...], root: Path) -> dict[str, Path]:
    """controller -> mount point of its cgroup v1 hierarchy (handles co-mounts like "cpu,cpuacct").

    Mount points under `root` are preferred; the first mount of a controller wins.
    """
    target = Path(os.path.normpath(root))
    found: dict[str, Path] = {}
    for prefer_root in (True, False):
        for m in mounts:
            if m.fstype != "cgroup":
                continue
            if prefer_root and not m.mount_point.is_relative_to(target):
                continue
            for option in m.super_options:
                if option in wanted and option not in found:
                    found[option] = m.mount_point
    return {c: found[c] for c in wanted if c in found}
