"""Reading a container's json-file log back (`hostwatch logs`), across rotated files, optionally following."""

from __future__ import annotations

import gzip
import json
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path


def _rotated(path: Path) -> list[Path]:
    """Rotated files oldest first: name.N ... name.1 (possibly .gz)."""
    found = []
    n = 1
    while True:
        plain, gz = Path(f"{path}.{n}"), Path(f"{path}.{n}.gz")
        if plain.exists():
            found.append(plain)
        elif gz.exists():
            found.append(gz)
        else:
            break
        n += 1
    return list(reversed(found))


def _lines(path: Path) -> Iterator[bytes]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            yield from f
    except FileNotFoundError:
        return


def decode(raw: bytes) -> tuple[str, bytes] | None:
    try:
        entry = json.loads(raw)
        return str(entry.get("stream", "stdout")), str(entry["log"]).encode()
    except (ValueError, KeyError, AttributeError):
        return None


def read(path: Path, tail: int | None = None) -> list[tuple[str, bytes]]:
    entries: deque[tuple[str, bytes]] = deque(maxlen=tail if tail is not None and tail >= 0 else None)
    for f in [*_rotated(path), path]:
        for raw in _lines(f):
            item = decode(raw)
            if item is not None:
                entries.append(item)
    return list(entries)


def follow(path: Path, emit: Callable[[str, bytes], None], still_running: Callable[[], bool],
           poll: float = 0.1) -> None:
    """Continue from the end of `path`, reopening it when rotation swaps the inode."""
    f = open(path, "rb")
    f.seek(0, os.SEEK_END)
    inode = os.fstat(f.fileno()).st_ino
    pending = b""
    try:
        while True:
            chunk = f.read()
            if chunk:
                pending += chunk
                *complete, pending = pending.split(b"\n")
                for raw in complete:
                    item = decode(raw)
                    if item is not None:
                        emit(*item)
                continue
            try:
                rotated = os.stat(path).st_ino != inode
            except FileNotFoundError:
                rotated = False
            if rotated:
                f.close()
                f = open(path, "rb")
                inode = os.fstat(f.fileno()).st_ino
                continue
            if not still_running():
                return
            time.sleep(poll)
    finally:
        f.close()
