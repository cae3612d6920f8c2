"""Tiny, fast file primitives over cgroupfs/procfs (os.open/os.read, no pathlib on the hot path).

Every function raises OSError when the file is missing or unreadable; callers decide whether that
is an error to count or an optional feature. `TRACE` lets the benchmark record exactly which files a
scrape touched (it replays them as the raw-read floor); it is None in normal operation.
"""

from __future__ import annotations

import os

# A list to append (op, path) to while tracing, else None. Set only by bench/exporter_scrape.py and tests.
TRACE: list[tuple[str, str]] | None = None

_O_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


def read_bytes(path: str) -> bytes:
    if TRACE is not None:
        TRACE.append(("read", path))
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
    out: dict[str, int] = {}
    for line in read_bytes(path).split(b"\n"):
        key, _, value = line.partition(b" ")
        if value:
            try:
                out[key.decode()] = int(value)
            except ValueError:
                continue
    return out


def listdir(path: str) -> list[str]:
    if TRACE is not None:
        TRACE.append(("listdir", path))
    return os.listdir(path)


def readlink(path: str) -> str:
    if TRACE is not None:
        TRACE.append(("readlink", path))
    return os.readlink(path)


def replay(ops: list[tuple[str, str]]) -> int:
    """Perform the recorded operations as fast as Python can (the raw-read floor). Returns failures."""
    failures = 0
    flags = _O_FLAGS
    for op, path in ops:
        try:
            if op == "read":
                fd = os.open(path, flags)
                os.read(fd, 65536)
                os.close(fd)
            elif op == "listdir":
                os.listdir(path)
            elif op == "readlink":
                os.readlink(path)
            elif op == "scandir":
                with os.scandir(path) as it:
                    for _ in it:
                        pass
        except OSError:
            failures += 1
    return failures
