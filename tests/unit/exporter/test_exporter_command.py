"""`hostwatch exporter` / `hostwatch stats` argument handling and the stats output."""

from __future__ import annotations

import argparse
import io
import json

import pytest

from exporter import command
from exporter.config import ExporterConfig, parse_listen_address
from exporter.discovery import Discovery
from exporter.stats import StatsView, binary_size, decimal_size, format_table, run
from hostwatch.core.config import EXIT_USAGE

from exporter_testdata import FIXTURES, HW_ID, fixture_config


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hostwatch")
    sub = p.add_subparsers(dest="cmd", required=True)
    command.register(sub)
    return p


def test_help_for_both(capsys: pytest.CaptureFixture[str]) -> None:
    for cmd in ("exporter", "stats"):
        with pytest.raises(SystemExit) as e:
            parser().parse_args([cmd, "--help"])
        assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--web.listen-address" in out and "--no-stream" in out


def test_flags_to_config() -> None:
    args = parser().parse_args([
        "exporter", "--web.listen-address", "127.0.0.1:9999", "--disable-metrics", "network,pressure",
        "--cgroup-root", "/x", "--proc-root", "/p", "--state-root", "/s", "--docker-root", "/d",
        "--container-labels", "tier, com.example.team",
    ])
    cfg = command.config_from_args(args)
    assert args.func is command.run_exporter
    assert cfg.listen_address == "127.0.0.1:9999" and cfg.disabled_metrics == {"network", "pressure"}
    assert (cfg.cgroup_root, cfg.proc_root, str(cfg.state_root), str(cfg.docker_root)) == ("/x", "/p", "/s", "/d")
    assert cfg.label_allowlist == ("tier", "com.example.team")
    default = command.config_from_args(parser().parse_args(["exporter"]))
    assert default.listen_address == ":9100" and default.web_config_file is None


@pytest.mark.parametrize("argv", [
    ["exporter", "--disable-metrics", "nope"],
    ["exporter", "--cgroup-root", str(FIXTURES / "proc")],  # no cgroup hierarchy there
    ["exporter", "--web.listen-address", "9100"],
    ["stats", "--no-stream", "--cgroup-root", str(FIXTURES / "proc")],
    ["exporter", "--no-such-flag"],
])
def test_every_usage_error_exits_125_like_the_rest_of_hostwatch(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from hostwatch.cli import main

    try:
        code = main(argv)
    except SystemExit as e:  # argparse's own errors
        code = e.code  # type: ignore[assignment]
    assert code == EXIT_USAGE == 125
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err


def test_a_bad_group_names_itself(capsys: pytest.CaptureFixture[str]) -> None:
    args = parser().parse_args(["exporter", "--disable-metrics", "nope"])
    assert args.func(args) == EXIT_USAGE
    assert "unknown metric kind(s) nope" in capsys.readouterr().err


def test_listen_address() -> None:
    assert parse_listen_address(":9100") == (None, 9100)
    assert parse_listen_address("[::1]:80") == ("::1", 80)
    with pytest.raises(ValueError):
        parse_listen_address("9100")


def test_config_from_mapping_rejects_unknown_keys() -> None:
    cfg = ExporterConfig.from_mapping({"web.listen-address": ":1", "disabled_metrics": "network"}, "agent.yml")
    assert cfg.listen_address == ":1" and cfg.disabled_metrics == {"network"}
    with pytest.raises(ValueError, match="agent.yml: unknown key 'listen'"):
        ExporterConfig.from_mapping({"listen": ":1"}, "agent.yml")


def _view(tree: str, **kw: object) -> StatsView:
    cfg = fixture_config(tree)
    from exporter.readers import open_reader

    d = Discovery(open_reader(cfg.cgroup_root), cfg.state_root, cfg.docker_root)
    return StatsView(d, cfg.proc_root, **kw)  # type: ignore[arg-type]


def test_stats_json_and_table() -> None:
    out = io.StringIO()
    assert run(_view("v1"), stream=False, fmt="json", interval=0.0, out=out) == 0
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["Name"] for r in rows] == ["web"]  # running named containers only by default
    web = rows[0]
    assert web["ID"] == HW_ID[:12] and web["PIDs"] == "3"
    assert web["MemUsage"] == "96MiB / 256MiB" and web["MemPerc"] == "37.50%"
    assert web["NetIO"] == "1kB / 2kB" and web["BlockIO"] == "8.19kB / 8.19kB"
    assert web["CPUPerc"] == "0.00%"  # fixture counters do not move
    table = format_table(_view("v1", include_raw=True).rows())
    assert table.splitlines()[0].split("   ")[0] == "CONTAINER ID"
    assert "/system.slice/cron.service" in table and "web" in table


def test_stats_select_by_name_or_id_prefix() -> None:
    assert [r.name for r in _view("v1", select=["aaaa"]).rows()] == ["web"]
    assert _view("v1", select=["nope"]).rows() == []


def test_sizes() -> None:
    assert binary_size(0) == "0B" and binary_size(1536) == "1.5KiB" and binary_size(256 * 2**20) == "256MiB"
    assert decimal_size(999) == "999B" and decimal_size(12345) == "12.3kB"
