"""Compiled seccomp programs, cached by content: every default container loads the same filter.

libseccomp takes ~5-10 ms to build the default profile's filter. The program it exports depends only
on the resolved profile and on libseccomp's syscall tables, so it is built once per host boot (the
cache lives under the run dir, a tmpfs) and each container gets a copy in its state directory, which
its PID 1 hands to seccomp(2) directly.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from hostwatch.core.paths import run_dir

CACHE = "seccomp"


def _key(profile: dict[str, Any]) -> str:
    from runtime.seccomp.libseccomp import version

    text = json.dumps(profile, sort_keys=True) + "\0" + ".".join(map(str, version()))
    return hashlib.sha256(text.encode()).hexdigest()


def program(profile: dict[str, Any], cache_dir: Path | None = None) -> bytes:
    """The BPF program for a resolved profile (struct sock_filter array), built or read from cache."""
    from runtime.seccomp.libseccomp import Filter

    directory = cache_dir or run_dir() / CACHE
    path = directory / f"{_key(profile)}.bpf"
    try:
        data = path.read_bytes()
        if data and len(data) % 8 == 0:
            return data
    except OSError:
        pass
    filt = Filter(profile)
    try:
        data = filt.export()
    finally:
        filt.release()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        pass  # an unwritable cache only costs the next container the compile
    return data
