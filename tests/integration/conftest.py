"""Shared fixtures for tests that drive the real runtime as root."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.rootfs import build_busybox_rootfs

from hostwatch_cli import HW


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
