"""Tiny, fast file primitives over cgroupfs/procfs (os.open/os.read, no pathlib on the hot path).

Every function raises OSError when the file is missing or unreadable; callers decide whether that
is an error to count or an optional feature. Readers call them through this module
(`fsread.read_bytes(...)`), or through a `readers.fdcache.FdCache` for the files kept open, so every
file operation a scrape makes passes through read_bytes, listdir, readlink, scandir, fd_counts (a
/proc/<pid>/fd listing and a readlink of each entry, in C) or FdCache.read (bench/exporter_scrape.py
wraps them to record one). statvfs is here so tests can stand in for it.
"""

from __future__ import annotations

import os

from exporter import _speedups
from hostwatch.core.cgroupfs import parse_flat_keyed

_O_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)

listdir = os.listdir
readlink = os.readlink
fd_counts = _speedups.fd_counts
scandir = os.scandir
statvfs = os.statvfs


def read_bytes(path: str) -> bytes:
    fd = os.open(path, _O_FLAGS)
    try:
        data = os.read(fd, 65536)
        if len(data) < 65536:
            return data
        chunks = [data]
        while True:
            more = os.read(fd, 65536)
            if not more:
                return b"".join(chunks)
            chunks.append(more)
    finally:
        os.close(fd)


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8", "replace")


def read_int(path: str) -> int:
    """A single integer file (memory.usage_in_bytes, pids.current...). ValueError on junk."""
    return int(read_bytes(path))


def read_int_or_max(path: str) -> int | None:
    """A single integer or the literal `max` (v2 limits, pids.max): None means unlimited."""
    raw = read_bytes(path).strip()
    if raw == b"max":
        return None
    return int(raw)


def read_flat_keyed(path: str) -> dict[str, int]:
    """`key value` lines (memory.stat, cpu.stat, cpuacct.stat, memory.events, memory.oom_control)."""
    return parse_flat_keyed(read_bytes(path))


def parse_kv(data: bytes) -> dict[bytes, int]:
    """A flat-keyed file's `key value` lines, keys as raw bytes: the fast path of parse_flat_keyed
    (one pass in C; junk falls back to the careful parser)."""
    parts = data.split()
    if not len(parts) % 2:
        it = iter(parts)
        try:
            return dict(zip(it, map(int, it)))  # noqa: B905 - one iterator, pairs by construction
        except ValueError:
            pass
    return {k.encode(): v for k, v in parse_flat_keyed(data).items()}


class Fields:
    """Picks known keys out of a flat-keyed file (memory.stat, cpu.stat, ...) read on every scrape: the
    integer on each key's `key value` line, None where the file has no such line or its value is not
    an integer. Every cgroup's copy of such a file lists the same keys in the same order, so the line
    each key was last found on is tried first (exporter._speedups.pick; a pure-Python pick cost ~4 us
    of a scrape's CPU per memory.stat, the C one ~0.4)."""

    __slots__ = ("keys", "_hints")

    def __init__(self, *keys: bytes) -> None:
        self.keys = keys
        self._hints = [-1] * len(keys)

    def __call__(self, data: bytes) -> list[int | None]:
        return _speedups.pick(data, self.keys, self._hints)
