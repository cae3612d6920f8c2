"""What v1 and v2 readers share: walking a hierarchy, membership, and the PSI file format."""

from __future__ import annotations

import os
from collections.abc import Container, Iterator

from exporter.readers import fsread
from exporter.readers.base import Pressure
from exporter.readers.fdcache import FdCache
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
    their processes and threads, all from one directory tree (`membership_root`); and the kept
    files (`files`) every read goes through."""

    membership_root: str
    files: FdCache
    threads_file: str  # v1 "tasks", v2 "cgroup.threads"
    dated_file: str  # a file whose mtime dates the cgroup: v1 cgroup.clone_children, v2 cgroup.events

    def walk(self) -> Iterator[str]:
        return walk_tree(self.membership_root)

    def exists(self, cg: str) -> bool:
        return os.path.isdir(join(self.membership_root, cg))

    def created(self, cg: str) -> float | None:
        """The lower of the directory's and `dated_file`'s mtime, as cAdvisor dates a raw cgroup (a
        directory's own mtime moves when a child cgroup is made in it)."""
        base = join(self.membership_root, cg)
        times = []
        for path in (base, f"{base}/{self.dated_file}"):
            try:
                times.append(os.stat(path).st_mtime)
            except OSError:
                continue
        return min(times) if times else None

    def procs(self, cg: str) -> list[int]:
        return parse_procs(self.files.read(cg, f"{join(self.membership_root, cg)}/{PROCS}"))

    def threads(self, cg: str) -> list[int]:
        return parse_procs(self.threads_raw(cg))

    def threads_raw(self, cg: str) -> bytes:
        return self.files.read(cg, f"{join(self.membership_root, cg)}/{self.threads_file}")

    def forget(self, live: Container[str]) -> None:
        self.files.sweep(live)

    def close(self) -> None:
        self.files.close()


def parse_pressure(data: bytes) -> Pressure:
    """`some avg10=.. avg60=.. avg300=.. total=N` and `full ...` (PSI, Documentation/accounting/psi.rst)."""
    some = 0
    full: int | None = None
    for line in data.split(b"\n"):
        if not line:
            continue
        kind, _, rest = line.partition(b" ")
        total = rest.rpartition(b"total=")[2]
        if kind == b"some":
            some = int(total)
        elif kind == b"full":
            full = int(total)
    return Pressure(some, full)
