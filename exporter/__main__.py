"""`python -m exporter [exporter|stats] ...`: the same commands as `hostwatch exporter|stats`."""

from __future__ import annotations

import argparse
import sys

from exporter import command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m exporter")
    sub = parser.add_subparsers(dest="cmd", required=True)
    command.register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
