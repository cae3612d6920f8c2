"""`hostwatch alerting who-is-on-call [SCHEDULE] [--at T] [--config.file F]`.

`register_who(subparsers)` adds the verb to the subparsers of `hostwatch alerting`; its `--config.file`
has the core's dest (`cfg:config.file`) and no default, so `hostwatch alerting --config.file F
who-is-on-call` works too. For every schedule (or the one named) it prints who is on call at T
(default now), until when, and who is next, times in the schedule's zone (RFC 3339). `--at` is an
RFC 3339 time or a duration from now (`2h`, `-30m`). Bad input: one line on stderr, exit 125.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from alerting.oncall.config import ONCALL_KEYS, OnCallConfig, parse_oncall
from alerting.oncall.rotation import from_ns
from alerting.oncall.schedule import OnCallNow, Schedule
from hostwatch.core.config import EXIT_USAGE, ConfigError, read_yaml
from hostwatch.core.timefmt import parse_duration, parse_rfc3339_ns

VERB = "who-is-on-call"
CONFIG_DEST = "cfg:config.file"  # hostwatch.core.config.add_flags' dest for --config.file
NOBODY = "-"

Loader = Callable[[str], OnCallConfig]


def load_oncall(path: str) -> OnCallConfig:
    """The on-call sections of an Alertmanager file (the core may pass a loader that checks it all)."""
    data = read_yaml(path)
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: the file must be a mapping")
    return parse_oncall({k: v for k, v in (data or {}).items() if k in ONCALL_KEYS}, path)


def register_who(subparsers: argparse._SubParsersAction, load: Loader | None = None) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(VERB, help="who is on call now (or at --at) and who is next, per schedule",
                              description="Print, for each on-call schedule in the configuration file (or the "
                                          "one named), who is on call, until when, and who takes over then.")
    p.add_argument("schedule", nargs="?", metavar="SCHEDULE", help="only this schedule")
    p.add_argument("--at", default=None, metavar="T",
                   help="an RFC 3339 time (2024-03-31T09:00:00+02:00) or a duration from now (2h; "
                        "--at=-30m for the past)")
    p.add_argument("--config.file", dest=CONFIG_DEST, default=argparse.SUPPRESS, metavar="FILE",
                   help="the Alertmanager configuration file with people/schedules/escalation_policies")
    p.add_argument("--output", "-o", default="simple", choices=("simple", "json"), help="output format")
    p.set_defaults(func=lambda args: run_who(args, load=load))


def parse_at(text: str | None, now: datetime) -> datetime:
    if text is None or not text.strip():
        return now
    s = text.strip()
    sign = -1 if s.startswith("-") else 1
    try:
        return now + sign * timedelta(seconds=parse_duration(s[1:] if s[0] in "+-" else s))
    except ValueError:
        pass
    try:
        ns = parse_rfc3339_ns(s)
    except ValueError:
        ns = None
    if ns is None:
        raise ValueError(f"invalid --at {text!r} (expected an RFC 3339 time or a duration such as 2h or -30m)")
    return from_ns(ns)


def run_who(args: argparse.Namespace, load: Loader | None = None, now: Callable[[], datetime] | None = None,
            out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    try:
        path = getattr(args, CONFIG_DEST, None) or getattr(args, "config_file", None)
        if not path:
            raise ConfigError("--config.file is required")
        config = (load or load_oncall)(str(path))
        at = parse_at(args.at, (now or (lambda: datetime.now(UTC)))())
        schedules = select(config, args.schedule)
    except (ConfigError, ValueError) as e:
        print(f"hostwatch alerting {VERB}: {e}", file=err)
        return EXIT_USAGE
    rows = [(s, s.status(at)) for s in schedules]
    if args.output == "json":
        print(json.dumps([status_json(s, st) for s, st in rows], indent=2), file=out)
    else:
        print(format_table(rows), file=out)
    return 0


def select(config: OnCallConfig, name: str | None) -> list[Schedule]:
    if name is None:
        if not config.schedules:
            raise ConfigError(f"{config.source}: no schedules configured")
        return list(config.schedules.values())
    if name not in config.schedules:
        known = ", ".join(config.schedules) or "none"
        raise ValueError(f"unknown schedule {name!r} (configured: {known})")
    return [config.schedules[name]]


def _local(schedule: Schedule, t: datetime | None) -> str:
    return t.astimezone(schedule.zone).isoformat() if t is not None else NOBODY


def status_json(schedule: Schedule, st: OnCallNow) -> dict[str, Any]:
    return {"schedule": st.schedule, "timeZone": str(schedule.zone), "at": _local(schedule, st.at),
            "onCall": list(st.users), "nextHandoff": _local(schedule, st.next_handoff) if st.next_handoff else None,
            "next": list(st.next_users)}


def format_table(rows: list[tuple[Schedule, OnCallNow]]) -> str:
    table = [("SCHEDULE", "ON CALL", "UNTIL", "NEXT")]
    table += [(st.schedule, ",".join(st.users) or NOBODY, _local(s, st.next_handoff),
               ",".join(st.next_users) or NOBODY) for s, st in rows]
    widths = [max(len(r[i]) for r in table) for i in range(3)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)) + "  " + r[3]
                     for r in table)
