"""The dashboards, in the order `hostwatch dashboards build` writes and documents them."""

from __future__ import annotations

from dashboards.boards import alerting, containers, detail, host, pipeline
from dashboards.boards.base import Board

BOARDS: tuple[Board, ...] = (host.BOARD, containers.BOARD, detail.BOARD, pipeline.BOARD, alerting.BOARD)


def board(name: str) -> Board:
    for b in BOARDS:
        if name in (b.name, b.uid):
            return b
    raise KeyError(f"no dashboard {name!r}; there are {', '.join(b.name for b in BOARDS)}")
