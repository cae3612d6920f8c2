"""GELF 1.1 (Graylog Extended Log Format), what Docker's `--log-driver=gelf` sends: the format, pure code.

A payload is gzip (`1f 8b`), zlib (`78` with a valid zlib header check) or plain JSON (`{`); `decompress`
never inflates past the message limit, so a zip bomb costs at most that much memory. The framing (UDP
chunks, TCP NUL frames) is logshipper.codecs.gelf_framing; `GelfDecoder` puts the two together.

GELF JSON -> LogEvent (`parse`):
- message = short_message (required, a string; one trailing "\\n" is removed);
- time_ns = timestamp (seconds since the epoch). The number's own decimal digits are used, so a sender's
  nanoseconds survive (a double only holds ~0.2 us at today's epoch); a message without one gets the
  receive time;
- level 0-7 -> log.level as the syslog keyword (emerg, alert, crit, err, warning, notice, info, debug),
  and fields["log.syslog.severity.code"]; any other level value is kept as fields["gelf.level"];
- host -> fields["log.syslog.hostname"] (the sender's host; host.name stays the shipper's);
- full_message -> fields["gelf.full_message"];
- _container_id, _container_name, _image_name (Docker's gelf driver) -> container_id, container_name, image;
- every other additional field `_name` (Docker's _image_id, _command, _tag, _created, label and env extras,
  or an application's own) -> fields["gelf.<name>"], and so does any other non-standard top-level key
  (GELF 1.0's facility, file, line). Dots in a name become "_" (as ecs.dedot does for labels), so that
  "_a" and "_a.b" cannot collide in the nested ECS document;
- stream: Docker's gelf driver has exactly two levels, 6 for stdout and 3 for stderr, so for a message that
  carries _container_id, level 6 means stream "stdout" and 3 "stderr"; otherwise stream is None;
- event_id: the hex GELF message id for a chunked message, else a BLAKE2b-128 hex digest of the
  (decompressed) JSON payload; the same payload seen again among the last RECENT_PAYLOADS is another
  line written in the same millisecond, and gets `<digest>:<n>`;
- version must be "1.1" (or the legacy "1.0", the same shape); host is optional.

Anything wrong raises `GelfError` with a `reason`, the `rejected{source="gelf",reason}` label; nothing
else escapes (the fuzz tests hold that).
"""

from __future__ import annotations

import hashlib
import re
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

import orjson

from hostwatch.core.events import GELF, LogEvent
from logshipper.codecs.gelf_framing import CHUNK_MAGIC, OVERSIZED, ChunkAssembler, GelfError

GZIP_MAGIC = b"\x1f\x8b"
ZLIB_CMF = 0x78  # deflate, 32 KiB window: what every zlib writer emits
VERSIONS = ("1.1", "1.0")
LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
DOCKER_STREAMS = {6: "stdout", 3: "stderr"}
CONTAINER_KEYS = {"_container_id": "container_id", "_container_name": "container_name", "_image_name": "image"}
STANDARD_KEYS = frozenset({"version", "host", "short_message", "full_message", "timestamp", "level"})
FIELD_PREFIX = "gelf."
MAX_EPOCH_SECONDS = Decimal(2**63 - 1) / 1_000_000_000  # time_ns is an int64 (and date_nanos ends in 2262)

# rejected{reason} values of the format layer (the framing layer's are in gelf_framing)
INVALID_JSON = "invalid_json"
INVALID_UTF8 = "invalid_utf8"
SHORT_MESSAGE = "missing_short_message"
VERSION = "version"
TIMESTAMP = "timestamp"
UNKNOWN_COMPRESSION = "unknown_compression"
CORRUPT_COMPRESSION = "corrupt_compression"

_TIMESTAMP_RE = re.compile(rb'"timestamp"\s*:\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)')


def _zlib_header(data: bytes) -> bool:
    return len(data) >= 2 and data[0] == ZLIB_CMF and ((data[0] << 8) | data[1]) % 31 == 0


def _is_plain(data: bytes) -> bool:
    return data.lstrip()[:1] == b"{"


def decompress(data: bytes, limit: int) -> bytes:
    """The JSON bytes of a GELF payload, inflated at most to `limit` bytes."""
    if data[:2] == GZIP_MAGIC:
        wbits = 16 + zlib.MAX_WBITS
    elif _zlib_header(data):
        wbits = zlib.MAX_WBITS
    elif _is_plain(data):
        if len(data) > limit:
            raise GelfError(OVERSIZED, f"message of {len(data)} bytes exceeds {limit}")
        return data
    else:
        raise GelfError(UNKNOWN_COMPRESSION, f"payload starts with {data[:2].hex() or 'nothing'}")
    out = bytearray()
    rest = data
    while rest:
        d = zlib.decompressobj(wbits)
        try:
            out += d.decompress(rest, limit + 1 - len(out))
        except zlib.error as e:
            raise GelfError(CORRUPT_COMPRESSION, str(e)) from None
        if len(out) > limit:
            raise GelfError(OVERSIZED, f"message inflates past {limit} bytes")
        if not d.eof:
            raise GelfError(CORRUPT_COMPRESSION, "compressed payload is truncated")
        rest = d.unused_data
        if rest and not (wbits > zlib.MAX_WBITS and rest[:2] == GZIP_MAGIC):
            raise GelfError(CORRUPT_COMPRESSION, f"{len(rest)} bytes after the compressed payload")
    return bytes(out)


def payload_id(body: bytes) -> str:
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def _time_ns(value: Any, body: bytes, received_ns: int) -> int:
    if value is None:
        return received_ns
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise GelfError(TIMESTAMP, f"timestamp {value!r} is not a number")
    try:
        if isinstance(value, str):
            seconds = Decimal(value.strip())
        else:
            # orjson gave a double; its digits in the payload are what the sender meant, when they agree
            m = _TIMESTAMP_RE.search(body)
            if m and float(m.group(1)) == value:
                seconds = Decimal(m.group(1).decode())
            else:  # the shortest decimal that reads back as the same double
                seconds = Decimal(repr(value))
    except (InvalidOperation, ValueError, OverflowError):
        raise GelfError(TIMESTAMP, f"timestamp {value!r} is not a number") from None
    if not seconds.is_finite() or not 0 <= seconds <= MAX_EPOCH_SECONDS:
        raise GelfError(TIMESTAMP, f"timestamp {value!r} is out of range")
    return int((seconds * 1_000_000_000).to_integral_value(ROUND_HALF_EVEN))


def _level_code(value: Any) -> int | None:
    """The syslog severity 0-7 of a GELF level (an integer, or a float with no fraction), else None."""
    if type(value) is float and value.is_integer():
        value = int(value)
    return value if type(value) is int and 0 <= value < len(LEVELS) else None


def _field_name(key: str) -> str:
    return FIELD_PREFIX + (key.replace(".", "_") or "_")


def parse(body: bytes, event_id: str, received_ns: int) -> LogEvent:
    """One GELF JSON message -> LogEvent (the mapping is in the module docstring)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        try:
            body.decode()
        except UnicodeDecodeError as u:
            raise GelfError(INVALID_UTF8, f"invalid UTF-8 at byte {u.start}") from None
        raise GelfError(INVALID_JSON, str(e)) from None
    if not isinstance(doc, dict):
        raise GelfError(INVALID_JSON, f"a JSON {type(doc).__name__}, not an object")
    version = doc.get("version")
    if version not in VERSIONS:
        raise GelfError(VERSION, f"version {version!r} (expected \"1.1\")")
    short = doc.get("short_message")
    if not isinstance(short, str):
        raise GelfError(SHORT_MESSAGE, "short_message is missing" if short is None else "short_message is not a string")
    time_ns = _time_ns(doc.get("timestamp"), body, received_ns)
    fields: dict[str, Any] = {}
    container: dict[str, str] = {}
    for key, value in doc.items():
        if key in STANDARD_KEYS:
            continue
        attr = CONTAINER_KEYS.get(key)
        if attr is not None and isinstance(value, str):
            container[attr] = value
        else:
            fields[_field_name(key[1:] if key.startswith("_") else key)] = value
    host = doc.get("host")
    if isinstance(host, str):
        fields["log.syslog.hostname"] = host
    elif host is not None:
        fields[_field_name("host")] = host
    if "full_message" in doc:
        fields[_field_name("full_message")] = doc["full_message"]
    raw_level = doc.get("level")
    level = stream = None
    code = _level_code(raw_level)
    if code is not None:
        level = LEVELS[code]
        fields["log.syslog.severity.code"] = code
    elif raw_level is not None:
        fields[_field_name("level")] = raw_level
    cid = container.get("container_id")
    if cid is not None and code is not None:
        stream = DOCKER_STREAMS.get(code)
    return LogEvent(
        time_ns=time_ns,
        message=short.removesuffix("\n"),
        input_type=GELF,
        event_id=event_id,
        stream=stream,
        container_id=cid,
        container_name=container.get("container_name"),
        image=container.get("image"),
        level=level,
        fields=fields or None,
    )


# --- both together --------------------------------------------------------------------------------


RECENT_PAYLOADS = 65536

class GelfDecoder:
    """Datagrams and TCP frames -> LogEvents: framing, decompression and format in one place.

    `datagram` returns None while a chunked message is incomplete; both raise GelfError for bad input.
    `now_ns` (wall clock, for messages without a timestamp) and `clock` (monotonic, chunk timeouts) are
    injectable.
    """

    def __init__(self, *, max_message_bytes: int, chunk_timeout: float, max_pending_messages: int,
                 max_pending_bytes: int, clock: Callable[[], float] = time.monotonic,
                 now_ns: Callable[[], int] = time.time_ns, on_drop: Callable[[str], None] | None = None) -> None:
        self.max_message_bytes = max_message_bytes
        self.chunks = ChunkAssembler(timeout=chunk_timeout, max_pending=max_pending_messages,
                                     max_pending_bytes=max_pending_bytes, max_message_bytes=max_message_bytes,
                                     clock=clock, on_drop=on_drop)
        self._now_ns = now_ns
        self._seen: OrderedDict[str, int] = OrderedDict()  # recent payload ids -> times seen

    def _distinct(self, pid: str) -> str:
        """A payload seen again is another line (a container printed the same text in the same
        millisecond; GELF never re-sends), so repeats get `:2`, `:3`... and keep distinct _ids."""
        n = self._seen.get(pid, 0) + 1
        self._seen[pid] = n
        self._seen.move_to_end(pid)
        if len(self._seen) > RECENT_PAYLOADS:
            self._seen.popitem(last=False)
        return pid if n == 1 else f"{pid}:{n}"

    def datagram(self, data: bytes) -> LogEvent | None:
        if data[:2] == CHUNK_MAGIC:
            done = self.chunks.add(data)
            if done is None:
                return None
            body = decompress(done.payload, self.max_message_bytes)
            return parse(body, done.message_id.hex(), self._now_ns())
        body = decompress(data, self.max_message_bytes)
        return parse(body, self._distinct(payload_id(body)), self._now_ns())

    def frame(self, data: bytes) -> LogEvent:
        if len(data) > self.max_message_bytes:
            raise GelfError(OVERSIZED, f"frame of {len(data)} bytes exceeds {self.max_message_bytes}")
        if not _is_plain(data):
            raise GelfError(INVALID_JSON, "a GELF TCP frame is uncompressed JSON")
        return parse(data, self._distinct(payload_id(data)), self._now_ns())
