"""Docker's split lines over the forward protocol, joined again (pure; the clock is a parameter).

Docker's fluentd driver cuts a line longer than 16 KiB into pieces, each a record with
partial_message "true", partial_id (the same on every piece), partial_ordinal (1, 2, ...) and
partial_last ("true" on the last piece). `PartialAssembler` turns the pieces back into one event with
the first piece's time, id and fields; the joined line is checked against max_message_bytes.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

from hostwatch.core.events import LogEvent

from .forward import Partial

T = TypeVar("T")  # what the caller attaches to a piece (the source: the chunk whose ack waits on it)
DEFAULT_MAX_GROUPS = 1024  # lines being joined at once on one connection


@dataclass(slots=True)
class _Group(Generic[T]):
    event: LogEvent
    parts: list[str]
    size: int
    holds: list[T]
    updated: float
    oversized: bool = False


@dataclass(slots=True)
class Joined(Generic[T]):
    """A complete event, or None for a joined line over max_message_bytes; the `holds` of every piece."""

    event: LogEvent | None
    holds: list[T]


class PartialAssembler(Generic[T]):
    """Joins the pieces of a split line (same container or tag, stream and partial_id) into one event.

    `add` returns what is complete: the event itself when it is no piece, the joined event on the last
    piece. A line whose last piece never comes leaves through `expire(now, timeout)` or `flush()` as
    far as it got; at most `max_groups` lines are held (the oldest leaves first).
    """

    def __init__(self, max_message_bytes: int, max_groups: int = DEFAULT_MAX_GROUPS) -> None:
        self._groups: OrderedDict[tuple[object, str | None, str], _Group[T]] = OrderedDict()
        self._max_bytes = max_message_bytes
        self._max_groups = max_groups

    def __len__(self) -> int:
        return len(self._groups)

    def add(self, event: LogEvent, partial: Partial | None, hold: T | None, now: float) -> list[Joined[T]]:
        holds = [hold] if hold is not None else []
        if partial is None:
            return [Joined(event, holds)]
        key = (event.container_id or (event.fields or {}).get("fluent.tag"), event.stream, partial.id)
        out: list[Joined[T]] = []
        group = self._groups.get(key)
        if group is not None and partial.ordinal == 1:  # a new line under an old id: the old one ended
            out.append(self._finish(self._groups.pop(key)))
            group = None
        if group is None:
            group = self._groups[key] = _Group(event, [], 0, [], now)
        group.size += len(event.message.encode())
        group.holds.extend(holds)
        group.updated = now
        group.oversized = group.oversized or group.size > self._max_bytes
        if not group.oversized:
            group.parts.append(event.message)
        else:
            group.parts.clear()  # hold no more than the limit in memory
        if partial.last:
            out.append(self._finish(self._groups.pop(key)))
        while len(self._groups) > self._max_groups:
            out.append(self._finish(self._groups.popitem(last=False)[1]))
        return out

    def expire(self, now: float, timeout: float) -> list[Joined[T]]:
        old = [k for k, g in self._groups.items() if now - g.updated >= timeout]
        return [self._finish(self._groups.pop(k)) for k in old]

    def flush(self) -> list[Joined[T]]:
        out = [self._finish(g) for g in self._groups.values()]
        self._groups.clear()
        return out

    def _finish(self, group: _Group[T]) -> Joined[T]:
        if group.oversized:
            return Joined(None, group.holds)
        group.event.message = "".join(group.parts)
        return Joined(group.event, group.holds)
