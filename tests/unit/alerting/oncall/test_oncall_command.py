"""`hostwatch alerting who-is-on-call`: attached under a parser shaped like the core's `alerting`
command, with an injected clock; bad input is one line and exit 125."""

from __future__ import annotations

import argparse
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerting.oncall.command import register_who, run_who
from hostwatch.core.config import EXIT_USAGE

CONFIG = """
route: {receiver: r}
receivers: [{name: r}]
people:
  - {name: alice, contacts: [{email: alice@example.com}]}
  - {name: bob, contacts: [{email: bob@example.com}]}
schedules:
  - name: primary
    time_zone: Europe/Berlin
    layers: [{users: [alice, bob], rotation: 1d, start: 2024-03-29T09:00:00}]
  - name: business
    time_zone: America/New_York
    layers:
      - users: [bob]
        rotation: 1w
        start: 2024-03-04T00:00:00
        restrictions: [{days: [mon, tue, wed, thu, fri], start_time: "09:00", end_time: "17:00"}]
"""
NOW = datetime(2024, 3, 30, 12, 0, tzinfo=UTC)  # Saturday 13:00 in Berlin


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hostwatch alerting")
    p.add_argument("--config.file", dest="cfg:config.file", default=None)  # as the core's add_flags spells it
    register_who(p.add_subparsers(dest="verb"))
    return p


def run(tmp_path: Path, *argv: str, text: str = CONFIG) -> tuple[int, str, str]:
    path = tmp_path / "am.yml"
    path.write_text(text)
    args = parser().parse_args([a.replace("FILE", str(path)) for a in argv])
    out, err = io.StringIO(), io.StringIO()
    rc = run_who(args, now=lambda: NOW, out=out, err=err)
    return rc, out.getvalue(), err.getvalue()


def test_every_schedule_now(tmp_path: Path) -> None:
    rc, out, err = run(tmp_path, "who-is-on-call", "--config.file", "FILE")
    assert (rc, err) == (0, "")
    assert out.splitlines() == [
        "SCHEDULE  ON CALL  UNTIL                      NEXT",
        "primary   bob      2024-03-31T09:00:00+02:00  alice",  # the hand-off after spring-forward
        "business  -        2024-04-01T09:00:00-04:00  bob",
    ]


def test_one_schedule_at_a_time_and_the_parent_config_flag(tmp_path: Path) -> None:
    rc, out, _ = run(tmp_path, "--config.file", "FILE", "who-is-on-call", "business", "--at",
                     "2024-04-01T13:00:00Z")
    assert rc == 0 and out.splitlines()[1:] == ["business  bob      2024-04-01T17:00:00-04:00  -"]


@pytest.mark.parametrize(("at", "who"), [("25h", "alice"), ("+1d", "alice"), ("-2h", "bob"),
                                         ("2024-03-29T07:59:59Z", "-"), ("2024-03-29T09:00:00+01:00", "alice")])
def test_at_is_a_time_or_a_duration_from_now(tmp_path: Path, at: str, who: str) -> None:
    rc, out, _ = run(tmp_path, "who-is-on-call", "primary", "--config.file", "FILE", f"--at={at}")
    assert rc == 0 and out.splitlines()[1].split()[1] == who


def test_json_output(tmp_path: Path) -> None:
    rc, out, _ = run(tmp_path, "who-is-on-call", "-o", "json", "--config.file", "FILE")
    doc = json.loads(out)
    assert rc == 0 and [d["schedule"] for d in doc] == ["primary", "business"]
    assert doc[0] == {"schedule": "primary", "timeZone": "Europe/Berlin", "at": "2024-03-30T13:00:00+01:00",
                      "onCall": ["bob"], "nextHandoff": "2024-03-31T09:00:00+02:00", "next": ["alice"]}


@pytest.mark.parametrize(("argv", "text", "message"), [
    (("who-is-on-call",), CONFIG, "--config.file is required"),
    (("who-is-on-call", "--config.file", "/nonexistent/am.yml"), CONFIG, "/nonexistent/am.yml: cannot read"),
    (("who-is-on-call", "--config.file", "FILE"), "people: [", "am.yml: invalid YAML"),
    (("who-is-on-call", "--config.file", "FILE"), "- a list", "am.yml: the file must be a mapping"),
    (("who-is-on-call", "--config.file", "FILE"), CONFIG.replace("rotation: 1d", "rotation: daily"),
     "am.yml: schedules[0].layers[0].rotation: invalid rotation 'daily'"),
    (("who-is-on-call", "--config.file", "FILE"), "route: {receiver: r}\n", "am.yml: no schedules configured"),
    (("who-is-on-call", "nope", "--config.file", "FILE"), CONFIG, "unknown schedule 'nope' (configured: primary, "
                                                                  "business)"),
    (("who-is-on-call", "--config.file", "FILE", "--at", "tomorrow"), CONFIG, "invalid --at 'tomorrow'"),
    (("who-is-on-call", "--config.file", "FILE", "--at", "2024-02-30T00:00:00Z"), CONFIG, "invalid --at"),
])
def test_bad_input_is_one_line_and_exit_125(tmp_path: Path, argv: tuple[str, ...], text: str, message: str) -> None:
    rc, out, err = run(tmp_path, *argv, text=text)
    assert (rc, out) == (EXIT_USAGE, "")
    assert err.count("\n") == 1 and err.startswith("hostwatch alerting who-is-on-call: ") and message in err


def test_registered_func_runs_the_verb(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "am.yml"
    path.write_text(CONFIG)
    args = parser().parse_args(["who-is-on-call", "primary", "--config.file", str(path), "--at",
                                "2024-03-30T12:00:00Z"])
    assert args.func(args) == 0
    assert capsys.readouterr().out.splitlines()[1].split()[:2] == ["primary", "bob"]
