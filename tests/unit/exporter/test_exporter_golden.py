"""Golden exposition files for the v1, v2 and hybrid fixture trees.

Regenerate after an intended change with:  HOSTWATCH_UPDATE_GOLDEN=1 pytest tests/unit/exporter
Otherwise the output must match byte for byte, and our fast renderer must produce exactly what
prometheus_client's own encoders produce for the same families. The writable layers' usage is seeded
(the walk's own figures depend on the filesystem the checkout is on; test_exporter_diskusage measures).
"""

from __future__ import annotations

import os
import re

import pytest
from prometheus_client import exposition
from prometheus_client.openmetrics import exposition as om

from exporter.diskusage import Usage
from exporter.families import render
from exporter.scrape import Exporter

from exporter_testdata import API_LAYER, DB_LAYER, FIXTURES, NOW, WEB_LAYER, fixture_config

GOLDEN = FIXTURES / "golden"
# Raw cgroups are dated by their directory (its mtime): a property of the checkout, not the code.
_RAW_TIME = re.compile(r'^(container_(?:start|creation)_time_seconds\{[^}]*name=""\}) .*$', re.M)
# What is serving: this kernel, this checkout's revision.
_VERSION = re.compile(r'^cadvisor_version_info\{cadvisorRevision="[^"]*",(.*),kernelVersion="[^"]*",', re.M)
LAYERS = {WEB_LAYER: Usage(12_582_912, 420), DB_LAYER: Usage(1_048_576, 37), API_LAYER: Usage(65_536, 9)}


class _Fams:
    def __init__(self, fams: list) -> None:  # type: ignore[type-arg]
        self.fams = fams

    def collect(self) -> list:  # type: ignore[type-arg]
        return self.fams


def _normalize(text: str) -> str:
    text = _RAW_TIME.sub(r"\1 <dir mtime>", text)
    return _VERSION.sub(r'cadvisor_version_info{cadvisorRevision="<rev>",\1,kernelVersion="<uname -r>",', text)


def golden_exporter(tree: str) -> Exporter:
    """Every implemented kind on (tcp and udp too), the layers' usage already measured."""
    exp = Exporter(fixture_config(tree, disabled_metrics=frozenset(), load_reader=True))
    for path, usage in LAYERS.items():
        exp.disk_usage.put(path, usage)
    return exp


@pytest.mark.parametrize("tree", ["v1", "v2", "hybrid"])
def test_golden_exposition(tree: str) -> None:
    exp = golden_exporter(tree)
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
    assert exp.errors["cpuLoad"] == 0 and exp.errors["disk"] == 0
