"""pytest fixtures for the exporter's unit tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.readers import fsread

from exporter_testdata import FIXTURES, fake_statvfs


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


@pytest.fixture(autouse=True)
def fixture_host_statvfs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """statvfs of the fixture host's filesystems (the mount points of proc/1/mountinfo)."""
    monkeypatch.setattr(fsread, "statvfs", fake_statvfs)
    yield
