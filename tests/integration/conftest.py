"""Shared fixtures for tests that drive the real runtime as root."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.rootfs import build_busybox_rootfs

from hostwatch_cli import HW

CGROUP_PARENTS = [Path("/sys/fs/cgroup") / c / "hostwatch" for c in
                  ("cpu", "cpuacct", "memory", "pids", "cpuset", "blkio")]
BRIDGE_NETNS = Path("/run/netns/hostwatch")


@pytest.fixture(scope="session", autouse=True)
def _remove_what_the_runtime_left() -> Iterator[None]:
    """The runtime keeps its bridge netns and cgroup parent for later containers; a test session
    that brought them into being takes them away again."""
    existed = {p for p in [*CGROUP_PARENTS, BRIDGE_NETNS] if p.exists()}
    yield
    if BRIDGE_NETNS not in existed and BRIDGE_NETNS.exists():
        subprocess.run(["ip", "netns", "del", "hostwatch"], check=False)
    for parent in CGROUP_PARENTS:
        if parent not in existed:
            try:
                parent.rmdir()
            except OSError:
                pass  # gone already, or still holds a cgroup someone else made


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
