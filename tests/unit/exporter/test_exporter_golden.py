"""Golden exposition files for the v1, v2 and hybrid fixture trees.

Regenerate after an intended change with:  HOSTWATCH_UPDATE_GOLDEN=1 pytest tests/unit/exporter
Otherwise the output must match byte for byte, and our fast renderer must produce exactly what
prometheus_client's own encoders produce for the same families.
"""

from __future__ import annotations

import os
import re

import pytest
from prometheus_client import exposition
from prometheus_client.openmetrics import exposition as om

from exporter.families import render
from exporter.scrape import Exporter

from exporter_testdata import FIXTURES, NOW, fixture_config

GOLDEN = FIXTURES / "golden"
# Raw cgroups start when their directory appeared (its ctime): a property of the checkout, not the code.
_RAW_START = re.compile(r'^(container_start_time_seconds\{[^}]*name=""\}) .*$', re.M)


class _Fams:
    def __init__(self, fams: list) -> None:  # type: ignore[type-arg]
        self.fams = fams

    def collect(self) -> list:  # type: ignore[type-arg]
        return self.fams


def _normalize(text: str) -> str:
    return _RAW_START.sub(r"\1 <dir ctime>", text)


@pytest.mark.parametrize("tree", ["v1", "v2", "hybrid"])
def test_golden_exposition(tree: str) -> None:
    exp = Exporter(fixture_config(tree))
    fams = exp.collect(now=NOW, self_metrics=False)
    text = render(fams, openmetrics=False)
    assert text == exposition.generate_latest(_Fams(fams))  # type: ignore[arg-type]
    assert render(fams, openmetrics=True) == om.generate_latest(_Fams(fams))
    got = _normalize(text.decode())
    path = GOLDEN / f"{tree}.prom"
    if os.environ.get("HOSTWATCH_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got)
    assert got == path.read_text(), f"{path} differs; HOSTWATCH_UPDATE_GOLDEN=1 regenerates it"
