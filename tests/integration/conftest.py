"""Shared fixtures for tests that drive the real runtime as root."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostwatch.core.paths import CGROUP_PARENT, CGROUP_ROOT
from runtime.network import BRIDGE, NETNS
from runtime.rootfs import build_busybox_rootfs

from host_sessions import HostSessions
from hostwatch_cli import HW

CONTROLLERS = ("cpu", "cpuacct", "memory", "pids", "cpuset", "blkio", "devices")  # devices: the runtime's device rules
CGROUP_PARENTS = [CGROUP_ROOT / c / CGROUP_PARENT for c in CONTROLLERS]
BRIDGE_NETNS = Path("/run/netns") / NETNS


def _remove(resource: Path) -> None:
    if resource == BRIDGE_NETNS:
        ports = subprocess.run(["ip", "-n", NETNS, "-o", "link", "show", "master", BRIDGE],
                               capture_output=True, text=True)
        if ports.returncode == 0 and not ports.stdout.strip():  # no container is plugged in
            subprocess.run(["ip", "netns", "del", NETNS], check=False)
        return
    try:
        resource.rmdir()
    except OSError:
        pass  # gone already, or still holds a cgroup someone else made


@pytest.fixture(scope="session", autouse=True)
def _remove_what_the_runtime_left() -> Iterator[None]:
    """The runtime keeps its bridge netns and cgroup parents for later containers; the test sessions
    that brought them into being take them away again, once the last of them ends."""
    sessions = HostSessions([*CGROUP_PARENTS, BRIDGE_NETNS], _remove)
    sessions.join()
    try:
        yield
    finally:
        sessions.leave()


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
