"""Docker json-file lines into LogEvents: pure functions over bytes, used by the docker_json tailer.

A line is `{"log":"...\\n","stream":"stdout","attrs":{...}?,"time":"<RFC3339Nano>"}` (moby jsonfilelog).
Docker cuts a message longer than 16 KiB into pieces whose "log" lacks the trailing newline; the pieces
of one message are consecutive lines of the same stream (the other stream may interleave), possibly
across a rotation. `Joiner` reassembles them: the event has the first piece's time and position.

- message: the (joined) "log" without its trailing newline;
- time_ns: "time" exactly, nanoseconds kept (the per-second prefix is cached: this is the hot path);
- offset / event_id: the byte offset of the (first) line, `f"{fingerprint}:{offset}"`, so a line read
  again after a restart carries the same id;
- fields["docker.attrs"]: the optional "attrs" object (labels/env/tag the log opts asked for).

Lines that are not JSON objects, not UTF-8, lack "log" or a valid "time", or whose message exceeds
`max_message_bytes` (a partial being joined included) are counted in `rejects[reason]` and skipped.

A file is identified by `fingerprint(head)`: the checksum of its first line, or of its first
`max_bytes` bytes when that line is longer (Vector's first-line checksum). Since a json-file line
ends in its nanosecond time, two files with the same first line are the same file (a copytruncate
copy), and a file whose first line is still incomplete is not fingerprinted yet.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson

from hostwatch.core.events import DOCKER_JSON, LogEvent
from hostwatch.core.timefmt import parse_rfc3339_ns

# rejected{source="docker_json",reason} values
INVALID_JSON = "invalid_json"  # not JSON, or JSON but not an object
INVALID_UTF8 = "invalid_utf8"
MISSING_LOG = "missing_log"  # no "log" string
INVALID_TIME = "invalid_time"
OVERSIZED = "oversized"  # message (or raw line) beyond max_message_bytes
TRUNCATED = "truncated"  # an unterminated last line in a file nobody writes any more

FINGERPRINT_DIGEST_BYTES = 8
# A raw line may be this much longer than the message it carries: each byte can be escaped as \u00XX
# (6 bytes), plus the stream, attrs and time keys around it.
LINE_ESCAPE_FACTOR = 6
LINE_OVERHEAD = 64 << 10

_NS = 1_000_000_000
_FRACTION_SCALE = tuple(10 ** (9 - n) for n in range(10))  # digits -> multiplier to nanoseconds
_SECONDS: dict[str, int] = {}  # "YYYY-MM-DDTHH:MM:SS" -> epoch seconds
_SECONDS_CACHE_MAX = 4096
_ROTATED_RE = re.compile(r"^(.*?)\.(\d+)$")
_CONTAINER_ID_RE = re.compile(r"[0-9a-f]{64}")


def fingerprint(head: bytes, max_bytes: int) -> str | None:
    """The identity of a file from its first bytes (at least `max_bytes` of them when it has that many);
    None while the first line is incomplete and shorter than `max_bytes`."""
    nl = head.find(b"\n", 0, max_bytes)
    if nl >= 0:
        region = head[: nl + 1]
    elif len(head) >= max_bytes:
        region = head[:max_bytes]
    else:
        return None
    return hashlib.blake2b(region, digest_size=FINGERPRINT_DIGEST_BYTES).hexdigest()


def max_line_bytes(max_message_bytes: int) -> int:
    """The longest raw line kept whole: beyond it the line is skipped unread (counted oversized)."""
    return max_message_bytes * LINE_ESCAPE_FACTOR + LINE_OVERHEAD


def split_rotated(path: str) -> tuple[str, int]:
    """(the live file's path, rotation index): "x-json.log.2" -> ("x-json.log", 2), "x-json.log" -> (.., 0)."""
    m = _ROTATED_RE.match(path)
    if m and not m.group(1).endswith(os.sep) and m.group(1):
        return m.group(1), int(m.group(2))
    return path, 0


def container_id_from_path(path: str) -> str | None:
    """Docker's and the runtime's layout: <root>/<64 hex id>/<64 hex id>-json.log."""
    name = os.path.basename(split_rotated(path)[0])
    cid = name.removesuffix("-json.log")
    if cid != name and _CONTAINER_ID_RE.fullmatch(cid):
        return cid
    parent = os.path.basename(os.path.dirname(path))
    return parent if _CONTAINER_ID_RE.fullmatch(parent) else None


def parse_time_ns(value: str) -> int:
    """Nanoseconds since the epoch of an RFC3339Nano time; raises ValueError when it is not one.
    Docker writes UTC with "Z" and up to nine fraction digits: once a second has been parsed, its other
    times only need their fraction read."""
    n = len(value)
    fast = value[-1:] == "Z" and (n == 20 or (22 <= n <= 30 and value[19] == "."))
    frac = value[20:-1]
    if fast and (not frac or (frac.isdigit() and frac.isascii())):
        secs = _SECONDS.get(value[:19])
        if secs is not None:
            return secs * _NS + (int(frac) * _FRACTION_SCALE[len(frac)] if frac else 0)
    ns = parse_rfc3339_ns(value)
    if ns is None:
        raise ValueError(f"zero or empty time {value!r}")
    if fast:
        if len(_SECONDS) >= _SECONDS_CACHE_MAX:
            _SECONDS.clear()
        _SECONDS[value[:19]] = ns // _NS
    return ns


@dataclass(slots=True, frozen=True)
class FileRef:
    """Where lines come from: what every event of a file carries."""

    fingerprint: str
    path: str
    container_id: str | None


@dataclass(slots=True)
class Pending:
    """A message still being joined from Docker's partial pieces (one per stream)."""

    ref: FileRef  # of the file holding the first piece
    offset: int
    time_ns: int
    fields: dict[str, Any] | None
    parts: list[str] = field(default_factory=list)
    size: int = 0  # UTF-8 bytes joined so far
    skipping: bool = False  # already too long: its remaining pieces are dropped
    hold: dict[str, int] = field(default_factory=dict)  # the tailer's: positions it may commit meanwhile


@dataclass(slots=True)
class Joiner:
    """Partial-line state across chunks and files of one log (one container's file and its rotations)."""

    max_message_bytes: int
    pending: dict[str | None, Pending] = field(default_factory=dict)
    started: list[Pending] = field(default_factory=list)  # pendings begun since the caller last looked

    def flush(self) -> list[LogEvent]:
        """Every message still waiting for a continuation, as it is (the writer ended mid-message)."""
        out = [_event(p.ref, p.offset, p.time_ns, "".join(p.parts), stream, p.fields)
               for stream, p in self.pending.items() if not p.skipping]
        self.pending.clear()
        return out


def _event(ref: FileRef, offset: int, time_ns: int, message: str, stream: str | None,
           fields: dict[str, Any] | None) -> LogEvent:
    return LogEvent(time_ns, message, DOCKER_JSON, f"{ref.fingerprint}:{offset}", stream, ref.container_id,
                    None, None, None, None, ref.path, offset, fields)


def split_lines(data: bytes) -> tuple[list[bytes], int]:
    """The complete lines of `data` (without newlines) and the bytes they span."""
    end = data.rfind(b"\n") + 1
    if not end:
        return [], 0
    return data[: end - 1].split(b"\n"), end


def _reason(line: bytes) -> str:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return INVALID_UTF8
    return INVALID_JSON


def load_chunk(lines: list[bytes]) -> list[Any] | None:
    """Every line's JSON value with one orjson call for the whole chunk (a third of the cost of one call
    per line); None when some line is not JSON (or a line is several values)."""
    try:
        docs = orjson.loads(b"[" + b",".join(lines) + b"]")
    except orjson.JSONDecodeError:
        return None
    return docs if isinstance(docs, list) and len(docs) == len(lines) else None


def _load_all(lines: list[bytes], rejects: Counter[str]) -> list[Any]:
    """Each line's JSON value, None for a line that is not JSON."""
    docs = load_chunk(lines)
    if docs is not None:
        return docs
    out: list[Any] = []
    for line in lines:
        try:
            out.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            rejects[_reason(line)] += 1
            out.append(None)
    return out


def decode_lines(lines: list[bytes], offset: int, ref: FileRef, joiner: Joiner,
                 rejects: Counter[str], docs: list[Any] | None = None) -> list[LogEvent]:
    """Events of consecutive complete lines starting at byte `offset` of `ref`'s file (`docs`: the lines'
    JSON values when the caller has them from load_chunk)."""
    events: list[LogEvent] = []
    append = events.append
    pending = joiner.pending
    limit = joiner.max_message_bytes
    fp, path, cid = ref.fingerprint, ref.path, ref.container_id
    seconds = _SECONDS
    scale = _FRACTION_SCALE
    off = offset
    for line, doc in zip(lines, docs if docs is not None else _load_all(lines, rejects), strict=True):
        start = off
        off += len(line) + 1
        if type(doc) is not dict:
            if doc is not None:
                rejects[INVALID_JSON] += 1
            continue
        log = doc.get("log")
        if type(log) is not str:
            rejects[MISSING_LOG] += 1
            continue
        t = doc.get("time")
        if type(t) is not str:
            rejects[INVALID_TIME] += 1
            continue
        # parse_time_ns inlined for "YYYY-MM-DDTHH:MM:SS.fffffffffZ" in an already seen second
        secs = seconds.get(t[:19])
        frac = t[20:-1]
        if secs is not None and t[19:20] == "." and t[-1:] == "Z" and frac.isdigit() and frac.isascii() \
                and len(frac) <= 9:
            ns = secs * _NS + int(frac) * scale[len(frac)]
        else:
            try:
                ns = parse_time_ns(t)
            except (ValueError, OverflowError):
                rejects[INVALID_TIME] += 1
                continue
        stream = doc.get("stream")
        if type(stream) is not str:
            stream = None
        attrs = doc.get("attrs")
        fields = {"docker.attrs": attrs} if attrs and type(attrs) is dict else None
        if log[-1:] == "\n":
            if pending and stream in pending:
                p = pending.pop(stream)
                if p.skipping:
                    continue
                message = "".join(p.parts) + log[:-1]
                if p.size + len(line) > limit and len(message.encode()) > limit:
                    rejects[OVERSIZED] += 1
                    continue
                append(_event(p.ref, p.offset, p.time_ns, message, stream, p.fields))
                continue
            if len(line) > limit and len(log.encode()) - 1 > limit:
                rejects[OVERSIZED] += 1
                continue
            append(LogEvent(ns, log[:-1], DOCKER_JSON, f"{fp}:{start}", stream, cid, None, None, None, None,
                            path, start, fields))
            continue
        piece = pending.get(stream)
        if piece is None:
            piece = pending[stream] = Pending(ref, start, ns, fields)
            joiner.started.append(piece)
        if not piece.skipping:
            piece.size += len(log.encode())
            if piece.size > limit:
                piece.skipping = True
                piece.parts.clear()
                rejects[OVERSIZED] += 1
            else:
                piece.parts.append(log)
    return events


# --- checkpoints ---------------------------------------------------------------------------------

CHECKPOINT_VERSION = 1


@dataclass(slots=True, frozen=True)
class Checkpoint:
    """Everything before `offset` of the file whose fingerprint is `fingerprint` has been delivered."""

    fingerprint: str
    path: str
    offset: int


def dump_checkpoints(checkpoints: list[Checkpoint]) -> bytes:
    return orjson.dumps({"version": CHECKPOINT_VERSION, "checkpoints": [
        {"fingerprint": c.fingerprint, "path": c.path, "offset": c.offset} for c in checkpoints]})


def load_checkpoints(data: bytes) -> list[Checkpoint]:
    """Raises ValueError, saying what is wrong, on anything but what dump_checkpoints writes."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as e:
        raise ValueError(f"not JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"not a version {CHECKPOINT_VERSION} checkpoint document")
    items = doc.get("checkpoints")
    if not isinstance(items, list):
        raise ValueError('"checkpoints" is not a list')
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"checkpoint {i} is not an object")
        fp, path, offset = item.get("fingerprint"), item.get("path"), item.get("offset")
        if not (isinstance(fp, str) and isinstance(path, str) and type(offset) is int and offset >= 0):
            raise ValueError(f"checkpoint {i} needs a fingerprint, a path and an offset >= 0")
        out.append(Checkpoint(fp, path, offset))
    return out
