"""pytest fixtures for the exporter's unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from exporter_testdata import FIXTURES


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES
