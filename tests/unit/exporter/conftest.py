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


@pytest.fixture(autouse=True)
def close_exporters(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every Exporter a test made is closed after it: its disk-usage thread and kept descriptors must not
    outlive the test and close descriptor numbers a later test's sockets reuse."""
    from exporter.scrape import Exporter

    made: list[Exporter] = []
    init = Exporter.__init__

    def tracking_init(self: Exporter, *args: object, **kwargs: object) -> None:
        init(self, *args, **kwargs)  # type: ignore[arg-type]
        made.append(self)

    monkeypatch.setattr(Exporter, "__init__", tracking_init)
    yield
    for e in made:
        e.close()
