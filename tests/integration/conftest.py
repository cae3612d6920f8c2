"""Shared fixtures for tests that drive the real runtime as root."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime.rootfs import build_busybox_rootfs


class HW:
    """Runs the `hostwatch` CLI the way a user does, against a private state root."""

    def __init__(self, state_root: Path) -> None:
        self.state_root = state_root
        self.env = dict(os.environ, HOSTWATCH_STATE_ROOT=str(state_root))

    def __call__(self, *args: str, timeout: float = 60, check: bool = False) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "hostwatch", *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"hostwatch {' '.join(args)} -> {proc.returncode}: {proc.stderr}")
        return proc

    def inspect(self, ref: str) -> dict[str, Any]:
        return json.loads(self("inspect", ref, check=True).stdout)[0]

    def cleanup(self) -> None:
        ids = self("ps", "-a", "-q").stdout.split()
        if ids:
            self("rm", "-f", *ids)


@pytest.fixture
def hw(tmp_path: Path) -> Iterator[HW]:
    if os.geteuid() != 0:
        pytest.fail("runtime integration tests need root")
    h = HW(tmp_path / "state")
    yield h
    h.cleanup()


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_busybox_rootfs(tmp_path_factory.mktemp("images") / "busybox")
