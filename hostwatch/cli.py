"""The composition root: the only module that imports the sibling packages."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from hostwatch import up

USAGE_ERROR = 125


class Parser(argparse.ArgumentParser):
    """Bad flags get one line on stderr and exit code 125, like the Docker CLI."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(USAGE_ERROR)


def build_parser() -> Parser:
    from runtime import command as runtime_command

    parser = Parser(prog="hostwatch", description=(
        "Observability and log pipeline for container hosts: cAdvisor-compatible metrics, "
        "log shipping, alerting, and a minimal container runtime."))
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND", required=True)
    up.register(sub)
    runtime_command.register(sub)
    _register_optional(sub)
    return parser


def _register_optional(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Components that land in their own time register here once they exist."""
    try:
        from exporter import command as exporter_command
    except ImportError:
        return
    exporter_command.register(sub)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - one clear line, not a traceback, for the user
        print(f"hostwatch {args.cmd}: {e}", file=sys.stderr)
        return 1
