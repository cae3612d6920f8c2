"""Paths and config for the exporter's fixture trees (tests/fixtures/exporter, see make_fixtures.py).

A uniquely named module (not conftest) so `from exporter_testdata import ...` cannot pick up another
test directory's conftest."""

from __future__ import annotations

from pathlib import Path

from exporter.config import ExporterConfig

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "exporter"
HW_ID = "a" * 64
HW2_ID = "b" * 64
NOW = 1767312000.0


def fixture_config(tree: str, **overrides: object) -> ExporterConfig:
    kwargs: dict[str, object] = dict(
        cgroup_root=str(FIXTURES / tree),
        proc_root=str(FIXTURES / "proc"),
        sys_root=str(FIXTURES / "sys"),
        etc_root=str(FIXTURES / "etc"),
        state_root=FIXTURES / "state",
        docker_root=FIXTURES / "docker",
        label_allowlist=("tier", "com.example.team"),
        self_process_metrics=False,
        spec_refresh_seconds=0.0,
    )
    kwargs.update(overrides)
    return ExporterConfig(**kwargs)  # type: ignore[arg-type]
