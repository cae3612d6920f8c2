"""What v1 and v2 readers share: walking a hierarchy, membership, and the PSI file format."""

from __future__ import annotations

import os
from collections.abc import Iterator

from exporter.readers import fsread
from exporter.readers.base import Pressure
from hostwatch.core.cgroupfs import parse_procs
from hostwatch.core.cgroupfs.files import PROCS


def join(base: str, cg: str) -> str:
    return base if cg == "/" else base + cg


def walk_tree(base: str) -> Iterator[str]:
    """Directories under one hierarchy root as cgroup paths (the raw handler's view): "/" first,
    then depth-first in name order, each parent before its children.

    A directory's link count is 2 + its subdirectories (kernfs, like ext4 and tmpfs), so leaves,
    nearly every container, are never opened: one lstat instead of a scandir of ~30 files each.
    A count of 1 (filesystems that do not track it) means unknown, and is descended."""
    yield "/"
    stack: list[tuple[str, bool]] = [("", True)]
    while stack:
        rel, descend = stack.pop()
        if rel:
            yield rel
        if not descend:
            continue  # a leaf: no need to look inside
        try:
            with fsread.scandir(base + rel) as it:
                subdirs = [(e.name, e.stat(follow_symlinks=False).st_nlink != 2) for e in it
                           if e.is_dir(follow_symlinks=False)]
        except OSError:
            continue  # removed while walking
        subdirs.sort(reverse=True)
        stack.extend((f"{rel}/{name}", has_subdirs) for name, has_subdirs in subdirs)


class TreeMembership:
    """The part of a reader that is the same on v1 and v2: which cgroups exist, since when, and
    their processes, all from one directory tree (`membership_root`)."""

    membership_root: str

    def walk(self) -> Iterator[str]:
        return walk_tree(self.membership_root)

    def exists(self, cg: str) -> bool:
        return os.path.isdir(join(self.membership_root, cg))

    def created(self, cg: str) -> float | None:
        try:
            return os.stat(join(self.membership_root, cg)).st_ctime
        except OSError:
            return None

    def procs(self, cg: str) -> list[int]:
        return parse_procs(fsread.read_bytes(f"{join(self.membership_root, cg)}/{PROCS}"))


def parse_pressure(path: str) -> Pressure:
    """`some avg10=.. avg60=.. avg300=.. total=N` and `full ...` (PSI, Documentation/accounting/psi.rst)."""
    some = 0
    full: int | None = None
    for line in fsread.read_bytes(path).split(b"\n"):
        if not line:
            continue
        kind, _, rest = line.partition(b" ")
        total = rest.rpartition(b"total=")[2]
        if kind == b"some":
            some = int(total)
        elif kind == b"full":
            full = int(total)
    return Pressure(some, full)
