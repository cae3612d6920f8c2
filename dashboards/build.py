"""`hostwatch dashboards build`: dashboards as JSON, Grafana provisioning beside them, validated
before anything is written. The output is deterministic (sorted keys), so a change shows as a diff."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grafanalib._gen import DashboardEncoder

from dashboards import provisioning
from dashboards.boards import BOARDS
from dashboards.boards.base import Board
from dashboards.catalogue import Catalogue
from dashboards.validate import problems


class BuildError(Exception):
    """The dashboards do not validate; `problems` lists every reason."""

    def __init__(self, found: Sequence[str]) -> None:
        super().__init__(f"{len(found)} problem(s) in the dashboards:\n" + "\n".join(found))
        self.problems = list(found)


def dashboard_json(board: Board, catalogue: Catalogue) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(json.dumps(board.dashboard(catalogue).to_json_data(), cls=DashboardEncoder))
    return data


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def generate(settings: provisioning.Settings = provisioning.DEFAULT, catalogue: Catalogue | None = None,
             boards: Sequence[Board] = BOARDS) -> dict[str, str]:
    """Relative path -> file text, for every file `build` writes. Raises BuildError (listing every
    problem) when a dashboard does not validate."""
    catalogue = catalogue or Catalogue()
    dashboards = {b.name: dashboard_json(b, catalogue) for b in boards}
    datasources = provisioning.datasources(settings)
    found = problems(dashboards, provisioning.datasource_uids(datasources), catalogue)
    if found:
        raise BuildError(found)
    files = {provisioning.DATASOURCES_FILE: provisioning.dump(datasources),
             provisioning.PROVIDERS_FILE: provisioning.dump(provisioning.providers(settings))}
    for name, data in dashboards.items():
        files[f"{provisioning.DASHBOARDS_DIR}/{name}.json"] = dumps(data)
    return files


def build(out: Path, settings: provisioning.Settings = provisioning.DEFAULT) -> list[Path]:
    files = generate(settings)
    written = []
    for rel, text in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        written.append(path)
    return written
