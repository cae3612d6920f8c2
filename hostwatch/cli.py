"""The composition root: the only module that imports the sibling packages."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

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
    parser.add_argument("--version", action="version", version=f"hostwatch {_version()}")
    sub = parser.add_subparsers(dest="cmd", metavar="COMMAND", required=True)
    _register_up(sub)
    runtime_command.register(sub)
    _register_optional(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hostwatch")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _register_up(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("up", help="run the main job: exporter on :9100 and demo workloads, until Ctrl-C")
    p.add_argument("--data-dir", default="/var/lib/hostwatch", help="where state and data live (default %(default)s)")
    p.add_argument("--web.listen-address", dest="listen_address", default=":9100",
                   help="exporter address (default %(default)s)")
    p.set_defaults(func=_up)


def _up(a: argparse.Namespace) -> int:
    import asyncio

    from exporter.config import ExporterConfig
    from exporter.server import ExporterService
    from hostwatch.up import NamedService, Up

    data_dir = Path(a.data_dir)
    exporter = ExporterService(ExporterConfig(listen_address=a.listen_address, state_root=data_dir / "containers"))
    host, _, port = a.listen_address.rpartition(":")
    services = [NamedService("exporter", exporter, f"http://{host or 'localhost'}:{port}/metrics")]
    return asyncio.run(Up(data_dir, services).run())


def _register_optional(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from exporter.command import register as register_exporter

    register_exporter(sub)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - one clear line, not a traceback, for the user
        print(f"hostwatch {args.cmd}: {e}", file=sys.stderr)
        return 1
