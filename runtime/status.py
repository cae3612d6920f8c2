"""What the monitor tells `hostwatch run`: one typed definition that both ends of the pipe use.

The monitor writes one line per event on the status pipe, and `hostwatch run` reads them:

* ``Started(pid)``: the container's PID 1 runs (the CLI prints the id when detached, else proxies
  signals to the pid and keeps reading);
* ``StartFailed(code, message)``: the container never ran; the CLI prints the message, exits ``code``;
* ``Exited(code)``: PID 1 exited; the CLI exits ``code``.

Each line is a JSON object, so any message (a multi-line exec error, a quote) survives the round trip;
`decode` rejects anything else with `ProtocolError`. The pipe carries no more than this: the CLI and
the monitor are the same program, started from the same files, so there is no version to negotiate.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

SIGNAL_EXIT_BASE = 128  # a process killed by signal N exits 128 + N, as a shell reports it


@dataclass(frozen=True)
class Started:
    pid: int


@dataclass(frozen=True)
class StartFailed:
    code: int
    message: str


@dataclass(frozen=True)
class Exited:
    code: int


Status = Started | StartFailed | Exited

# kind -> (type, {field: type}); the one table both encode and decode follow
_KINDS: dict[str, tuple[type[Status], dict[str, type]]] = {
    "started": (Started, {"pid": int}),
    "error": (StartFailed, {"code": int, "message": str}),
    "exit": (Exited, {"code": int}),
}
_KIND_OF = {cls: kind for kind, (cls, _) in _KINDS.items()}


class ProtocolError(ValueError):
    """A status line that is not one of the three events (a bug, never user input)."""


def encode(status: Status) -> bytes:
    """One line, newline included."""
    kind = _KIND_OF[type(status)]
    fields = {name: getattr(status, name) for name in _KINDS[kind][1]}
    return json.dumps({"kind": kind, **fields}, ensure_ascii=False).encode() + b"\n"


def decode(line: bytes) -> Status:
    try:
        doc = json.loads(line)
    except ValueError:
        raise ProtocolError(f"not a status line: {line[:200]!r}") from None
    if not isinstance(doc, dict) or doc.get("kind") not in _KINDS:
        raise ProtocolError(f"unknown status: {line[:200]!r}")
    cls, spec = _KINDS[doc["kind"]]
    if set(doc) != {"kind", *spec}:
        raise ProtocolError(f"status {doc['kind']!r} expects fields {sorted(spec)}, got {line[:200]!r}")
    for name, typ in spec.items():
        value = doc[name]
        if not isinstance(value, typ) or isinstance(value, bool):  # bool is an int subclass
            raise ProtocolError(f"status {doc['kind']!r}: {name} must be {typ.__name__}, got {value!r}")
    return cls(**{name: doc[name] for name in spec})


def write(fd: int, status: Status) -> None:
    """Raises OSError when the reader went away."""
    data = encode(status)
    while data:
        data = data[os.write(fd, data):]


def read(stream: BinaryIO) -> Iterator[Status | ProtocolError]:
    """The events until the monitor closes the pipe; an unreadable line is yielded as its error."""
    for line in stream:
        try:
            yield decode(line)
        except ProtocolError as e:
            yield e


def exit_code(wait_status: int) -> int:
    """A `waitpid` status as the exit code a shell reports: the code, or 128 + the killing signal."""
    code = os.waitstatus_to_exitcode(wait_status)
    return SIGNAL_EXIT_BASE - code if code < 0 else code
