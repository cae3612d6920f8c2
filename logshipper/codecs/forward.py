"""Fluentd forward protocol v1 (fluentd wiki Forward-Protocol-Specification-v1, in_forward.rb): the
format, pure. Framing (msgpack objects off the stream, packed payloads, acks) is forward_framing.

`decode_frame` takes one top-level object in any of the carrier modes,
    Message                  [tag, time, record, option?]
    Forward                  [tag, [[time, record], ...], option?]
    PackedForward            [tag, bin|str(msgpack entries back to back), option?]
    CompressedPackedForward  PackedForward with option compressed "gzip" (concatenated members allowed)
                             or "zstd" (fluentd >= 1.17)
with time an integer or float of seconds, EventTime (ext type 0: uint32 BE seconds, uint32 BE
nanoseconds), a msgpack timestamp, or v1.5's [time, metadata]; time 0 or nil means now (as
in_forward). `nil` at top level is a TCP heartbeat. The `size` option is not checked: clients
disagree on it (fluent-logger-node sends the byte length, the spec says the event count).

Event mapping (LogEvent, input.type fluent_forward):
    message         record["log"] (Docker), else "message", else "msg", else the record as JSON;
                    one trailing newline removed
    stream          record["source"] when stdout/stderr (Docker)
    container.id    record["container_id"]; container.name record["container_name"] without its "/"
    log.level       record["level"] when a known level name (fluent-logger's handler: "ERROR", ...)
    fluent.tag      the tag (Docker: the short container id, or its `tag` template)
    fluent.record.K every other record key K, dots in K replaced by "_" so a key never nests into
                    another one; values made JSON-safe (bin -> UTF-8 text, ext -> hex)
    event.id        "<chunk>:<index>" when the message has the chunk option, else
                    "<blake2b of the message bytes>[-<n>]:<index>", n counting identical messages
                    earlier on the same connection (two equal lines within one second stay apart,
                    a re-sent message keeps its id); index is the entry's position in the message
Docker's split lines (partial_message/partial_id/partial_ordinal/partial_last) are joined by
forward_partial.PartialAssembler into one event with the first piece's time and id.

Every rejection has a reason, the `reason` label of rejected_events_total (REASONS); a packed
payload that cannot be read on counts once, however many events it held.
"""

from __future__ import annotations

import hashlib
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgpack
import orjson

from hostwatch.core.events import FLUENT_FORWARD, LogEvent

from .forward_framing import (
    COMPRESSION,
    DECOMPRESS,
    GARBAGE,
    HEARTBEAT_REPLY,
    JSON,
    TOO_LARGE,
    DecodeError,
    Frame,
    FrameReader,
    ack,
    packed_payload,
    unpacker,
)

__all__ = ["AUTH", "COMPRESSION", "DECOMPRESS", "GARBAGE", "HEARTBEAT_REPLY", "JSON", "OVERSIZED", "REASONS", "RECORD",
           "SHAPE", "TIME", "TOO_LARGE", "Decoded", "Frame", "FrameReader", "Limits", "Occurrences", "Partial", "ack",
           "decode_frame", "entry_time_ns", "jsonable", "text", "to_event"]

# rejection reasons of the format (forward_framing has the framing's)
SHAPE = "shape"  # msgpack, but not a forward message or entry
TIME = "time"
RECORD = "record"  # not a map, or nested deeper than MAX_DEPTH
OVERSIZED = "oversized"  # message longer than max_message_bytes
AUTH = "auth"  # failed handshake (counted per connection)
REASONS = (GARBAGE, TOO_LARGE, JSON, SHAPE, TIME, RECORD, OVERSIZED, DECOMPRESS, COMPRESSION, AUTH)

MAX_DEPTH = 32  # record nesting kept (deeper ones are rejected, not recursed into)
MAX_INVALID_ENTRIES = 64  # malformed entries in a row end a message: the rest is one GARBAGE rejection
EVENT_TIME_EXT = 0
OCCURRENCES_KEPT = 4096  # message hashes remembered per connection for the "-<n>" suffix

MESSAGE_KEYS = ("log", "message", "msg")
STREAMS = frozenset({"stdout", "stderr"})
PARTIAL_KEYS = frozenset({"partial_message", "partial_id", "partial_ordinal", "partial_last"})
LEVELS = {"emerg": "emerg", "emergency": "emerg", "fatal": "crit", "panic": "emerg", "alert": "alert",
          "crit": "crit", "critical": "crit", "err": "err", "error": "err", "warn": "warning",
          "warning": "warning", "notice": "notice", "info": "info", "debug": "debug", "trace": "debug"}
_TRUE = frozenset({True, "true", "True", "TRUE", "1"})
_EVENT_TIME = struct.Struct(">II")
MAX_TIME_NS = (1 << 32) * 1_000_000_000  # EventTime's uint32 seconds: a later time is no time


# --- time ------------------------------------------------------------------------------------------


def entry_time_ns(value: Any, now_ns: Callable[[], int] = time.time_ns) -> int | None:
    """Nanoseconds since the epoch, or None when `value` is no forward-protocol time."""
    if isinstance(value, list) and value:  # v1.5 [time, metadata] (ExtType is a tuple: not this)
        value = value[0]
    if value is None or value == 0:
        return now_ns()
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value * 1_000_000_000 if 0 < value < 1 << 32 else None
    if isinstance(value, float):
        if not 0.0 < value < 4294967296.0:
            return None
        secs = int(value)  # apart: seconds * 1e9 in one float would round off the nanoseconds
        return secs * 1_000_000_000 + round((value - secs) * 1e9)
    if isinstance(value, msgpack.ExtType):
        if value.code != EVENT_TIME_EXT or len(value.data) != 8:
            return None
        secs, nanos = _EVENT_TIME.unpack(value.data)
        if nanos >= 1_000_000_000:
            return None
        return secs * 1_000_000_000 + nanos if secs or nanos else now_ns()
    if isinstance(value, msgpack.Timestamp):
        ns: int = value.to_unix_nano()
        return ns if 0 < ns < MAX_TIME_NS else None
    return None


# --- JSON-safe values --------------------------------------------------------------------------------


_SCALARS = (int, float, bool)


class _TooDeep(Exception):
    pass


def text(value: str | bytes) -> str:
    """Valid UTF-8 text: bytes and surrogate-escaped strings with invalid sequences get U+FFFD."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _key(k: Any) -> str:
    return text(k) if isinstance(k, (str, bytes)) else str(k)


def jsonable(value: Any, depth: int = 0) -> Any:
    """A decoded msgpack value as orjson serialises it: text keys, valid UTF-8, no ext types."""
    if isinstance(value, str):
        return text(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, msgpack.ExtType):  # a tuple: before the sequences
        return value.data.hex()
    if isinstance(value, msgpack.Timestamp):
        return value.to_unix_nano()
    if isinstance(value, bytes):
        return text(value)
    if depth >= MAX_DEPTH:
        raise _TooDeep
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():  # inlined fast paths: most records are flat maps of ASCII strings
            if type(k) is not str or not k.isascii():
                k = _key(k)
            if type(v) is str:
                if not v.isascii():
                    v = text(v)
            elif v is not None and type(v) not in _SCALARS:
                v = jsonable(v, depth + 1)
            out[k] = v
        return out
    if isinstance(value, (list, tuple)):
        return [jsonable(v, depth + 1) for v in value]
    return str(value)


# --- messages ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Partial:
    """Docker's PartialLogMetaData of one piece of a split line."""

    id: str
    ordinal: int
    last: bool


@dataclass(slots=True)
class Decoded:
    """One forward message: its events in order, what was rejected, and the ack to answer (if any)."""

    events: list[tuple[LogEvent, Partial | None]] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    chunk: Any = None  # the chunk option as received: the ack echoes it
    heartbeat: bool = False


@dataclass(frozen=True, slots=True)
class Limits:
    max_message_bytes: int
    max_decompressed_bytes: int


class Occurrences:
    """How often each message hash was seen on one connection (bounded, oldest forgotten first)."""

    def __init__(self, kept: int = OCCURRENCES_KEPT) -> None:
        self._seen: OrderedDict[str, int] = OrderedDict()
        self._kept = kept

    def next(self, digest: str) -> int:
        n = self._seen.pop(digest, -1) + 1
        self._seen[digest] = n
        if len(self._seen) > self._kept:
            self._seen.popitem(last=False)
        return n


def _id_base(frame: Frame, chunk: Any, occurrences: Occurrences) -> str:
    if isinstance(chunk, str):
        return text(chunk)
    if isinstance(chunk, bytes):
        return chunk.hex()
    digest = hashlib.blake2b(frame.raw, digest_size=16).hexdigest()
    n = occurrences.next(digest)
    return f"{digest}-{n}" if n else digest


def _option(obj: list[Any], at: int) -> dict[Any, Any] | None:
    """The option map at `at`, {} when absent or nil; None when it is something else."""
    if len(obj) <= at or obj[at] is None:
        return {}
    return obj[at] if isinstance(obj[at], dict) else None


def _packed_entries(data: bytes, out: Decoded) -> Iterator[Any]:
    entries = unpacker(max(len(data), 1))
    entries.feed(data)
    end = 0
    try:
        for entry in entries:
            end = entries.tell()
            yield entry
    except Exception:
        out.rejected.append(GARBAGE)  # the entries after the first bad byte are lost
        return
    if end != len(data):
        out.rejected.append(GARBAGE)  # a truncated last entry


def decode_frame(frame: Frame, limits: Limits, occurrences: Occurrences) -> Decoded:
    """One top-level object -> its events (with partial-line metadata) and rejections; never raises."""
    out = Decoded()
    obj = frame.obj
    if obj is None:
        out.heartbeat = True
        return out
    if not isinstance(obj, list) or len(obj) < 2 or not isinstance(obj[0], (str, bytes)):
        out.rejected.append(SHAPE)
        return out
    tag = text(obj[0])
    second = obj[1]
    entries: Iterable[Any]
    if isinstance(second, list):  # Forward
        option = _option(obj, 2) if len(obj) <= 3 else None
        entries = second
    elif isinstance(second, (bytes, str)):  # (Compressed)PackedForward
        option = _option(obj, 2) if len(obj) <= 3 else None
        entries = ()
    else:  # Message
        option = _option(obj, 3) if 3 <= len(obj) <= 4 else None
        entries = ((second, obj[2]),) if len(obj) >= 3 else ()
    if option is None:
        out.rejected.append(SHAPE)
        return out
    out.chunk = option.get("chunk")
    if not isinstance(out.chunk, (str, bytes)):
        out.chunk = None
    base = _id_base(frame, out.chunk, occurrences)
    if isinstance(second, (bytes, str)):
        try:
            payload = packed_payload(second, option.get("compressed"), limits.max_decompressed_bytes)
            entries = _packed_entries(payload, out)
        except DecodeError as e:
            out.rejected.append(e.reason)
            return out
    invalid = 0
    for index, entry in enumerate(entries):
        reason = _add_entry(out, tag, entry, f"{base}:{index}", limits)
        if reason is None:
            invalid = 0
            continue
        out.rejected.append(reason)
        invalid = invalid + 1 if reason != OVERSIZED else 0
        if invalid >= MAX_INVALID_ENTRIES:  # not entries at all: stop counting each byte of it
            out.rejected.append(GARBAGE)
            break
    return out


def _add_entry(out: Decoded, tag: str, entry: Any, event_id: str, limits: Limits) -> str | None:
    """Append the entry's event to `out`; the rejection reason when it has none."""
    if not isinstance(entry, (list, tuple)) or len(entry) != 2:
        return SHAPE
    time_ns = entry_time_ns(entry[0])
    if time_ns is None:
        return TIME
    record = entry[1]
    if not isinstance(record, dict):
        return RECORD
    try:
        result = to_event(tag, time_ns, record, event_id, limits.max_message_bytes)
    except _TooDeep:
        return RECORD
    if isinstance(result, str):
        return result
    out.events.append(result)
    return None


def utf8_len_over(s: str, limit: int) -> bool:
    """len(s.encode()) > limit, encoding only when the character count cannot tell."""
    n = len(s)
    if n > limit:
        return True
    if n * 4 <= limit or s.isascii():
        return False
    return len(s.encode()) > limit


def to_event(tag: str, time_ns: int, record: dict[Any, Any], event_id: str,
             max_message_bytes: int) -> tuple[LogEvent, Partial | None] | str:
    """A record -> (event, partial metadata), or the rejection reason."""
    rec = jsonable(record)
    used: set[str] = set()
    message = None
    for key in MESSAGE_KEYS:
        if key in rec:
            value = rec[key]
            message = value if isinstance(value, str) else orjson.dumps(value).decode()
            used.add(key)
            break
    if message is None:
        message = orjson.dumps(rec).decode()
    if message.endswith("\n"):
        message = message[:-1]
    partial = _partial(rec)
    if partial is None and utf8_len_over(message, max_message_bytes):  # pieces: checked once joined
        return OVERSIZED
    event = LogEvent(time_ns=time_ns, message=message, input_type=FLUENT_FORWARD, event_id=event_id)
    source = rec.get("source")
    if isinstance(source, str) and source in STREAMS:
        event.stream = source
        used.add("source")
    cid = rec.get("container_id")
    if isinstance(cid, str) and cid:
        event.container_id = cid
        used.add("container_id")
    name = rec.get("container_name")
    if isinstance(name, str) and name:
        event.container_name = name[1:] if name.startswith("/") else name
        used.add("container_name")
    level = rec.get("level")
    if isinstance(level, str) and level.lower() in LEVELS:
        event.level = LEVELS[level.lower()]
        used.add("level")
    if partial is not None:
        used |= PARTIAL_KEYS
    fields: dict[str, Any] = {"fluent.tag": tag}
    for k, v in rec.items():
        if k not in used:
            fields["fluent.record." + k.replace(".", "_")] = v
    event.fields = fields
    return event, partial


def _true(value: Any) -> bool:
    return isinstance(value, (bool, int, str)) and value in _TRUE


def _partial(rec: dict[str, Any]) -> Partial | None:
    if not _true(rec.get("partial_message")) or not isinstance(rec.get("partial_id"), str):
        return None
    try:
        ordinal = int(rec.get("partial_ordinal", 0))
    except (TypeError, ValueError, OverflowError):
        ordinal = 0
    return Partial(rec["partial_id"], ordinal, _true(rec.get("partial_last")))
