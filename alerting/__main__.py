"""`python -m alerting [alerting] ...`: the same command as `hostwatch alerting`."""

from __future__ import annotations

import argparse
import sys

from alerting import command


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"{self.prog}: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(command.USAGE_ERROR)


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m alerting")
    sub = parser.add_subparsers(dest="cmd", required=True, parser_class=_Parser)
    command.register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
