"""`hostwatch dashboards build|render|list`: what a user sees, exit codes included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dashboards import provisioning, units
from dashboards.render import legend
from hostwatch.cli import main
from hostwatch.core.config import EXIT_USAGE


def test_build_writes_dashboards_and_provisioning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["dashboards", "build", "--out", str(tmp_path), "--prometheus-url", "http://prom:9090",
                 "--scrape-interval", "30s"])
    assert code == 0
    printed = capsys.readouterr().out.split()
    assert len(printed) == 7 and all(Path(p).is_file() for p in printed)
    ds = (tmp_path / provisioning.DATASOURCES_FILE).read_text()
    assert "url: http://prom:9090" in ds and "timeInterval: 30s" in ds
    assert json.loads((tmp_path / "dashboards" / "containers.json").read_text())["uid"] == "hostwatch-containers"


@pytest.mark.parametrize("argv", [
    ["dashboards", "build", "--out", "/tmp/x", "--scrape-interval", "often"],
    ["dashboards", "render", "--prometheus", "http://127.0.0.1:9", "--dashboard", "nope", "--out", "/tmp/x.png"],
    ["dashboards", "render", "--prometheus", "http://127.0.0.1:9", "--dashboard", "containers", "--out", "/tmp/x.png",
     "--var", "novalue"],
])
def test_bad_input_is_one_line_and_exit_125(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("hostwatch dashboards: ") and err.count("\n") == 1


def test_render_against_an_unreachable_prometheus_fails_cleanly(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "x.png"
    assert main(["dashboards", "render", "--prometheus", "http://127.0.0.1:9", "--dashboard", "containers",
                 "--out", str(out)]) == 1
    assert "hostwatch dashboards: " in capsys.readouterr().err
    assert not out.exists()


def test_list_names_every_dashboard(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboards", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("host-overview", "containers", "container-detail", "log-pipeline", "alerting"):
        assert f"\n{name}  (hostwatch-{name})" in "\n" + out


@pytest.mark.parametrize(("value", "unit", "text"), [
    (0, "bytes", "0 B"), (1536, "bytes", "1.5 KiB"), (48 * 2**20, "bytes", "48 MiB"), (2048, "Bps", "2 KiB/s"),
    (0.934, "percentunit", "93.4%"), (0.0123, "short", "0.012"), (2500, "short", "2.5 k"), (90, "s", "1.5 min"),
    (0.25, "s", "250 ms"), (4000, "s", "1.11 hour"), (12, "ops", "12 ops/s"), (float("nan"), "short", "NaN"),
])
def test_units_read_as_grafana_shows_them(value: float, unit: str, text: str) -> None:
    assert units.format_value(value, unit) == text


def test_legend_formats_like_grafana() -> None:
    labels = {"instance": "h:9100", "name": "web"}
    assert legend("{{instance}} {{name}} rx", labels, "A") == "h:9100 web rx"
    assert legend("{{missing}} x", labels, "A") == "x"
    assert legend("__auto", labels, "A") == 'instance="h:9100", name="web"'
    assert legend("", {}, "A") == "A"
