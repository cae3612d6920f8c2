"""docker_json's fast path: a chunk of ordinary json-file lines kept as columns, not one LogEvent each.

Most chunks are nothing but complete lines of the shape Docker writes without log-opts,
`{"log":"...\\n","stream":"stdout","time":"<UTC RFC3339Nano>"}`. For those, `decode_columns` returns a
`LineBatch`: the messages, times, streams and offsets as lists, checked for the whole chunk at once with
C-level operations (one orjson call, then map/set over the columns) instead of a Python step per line,
and the pipeline renders the Kafka records straight from the columns (logshipper.ecs.render_lines).

Everything else (a Docker partial line, a partial pending from an earlier chunk, `attrs`, a bad or
oversized line, a time that is not UTC with "Z") returns None, and the chunk goes through
`dockerjson.decode_lines`, which handles every case line by line. Both give the same events: the
columns hold what decode_lines would put in each LogEvent, and `LineBatch.events` builds those LogEvents
when a transform (multiline) or any other reader asks for them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import accumulate, count, islice, repeat
from operator import add, itemgetter
from typing import Any

from hostwatch.core.events import DOCKER_JSON, Ack, Batch, LogEvent
from logshipper.codecs.dockerjson import FileRef, Joiner, decode_lines, load_chunk, parse_time_ns

_NS = 1_000_000_000
TIME_LEN = 30  # "YYYY-MM-DDTHH:MM:SS.fffffffffZ": the form @timestamp takes (nine fraction digits)
_SECOND_LEN = 19
_LOG, _STREAM, _TIME = itemgetter("log"), itemgetter("stream"), itemgetter("time")
_SECOND = itemgetter(slice(0, _SECOND_LEN))
_CHOP = itemgetter(slice(0, -1))
_KEYS = 3
_CANONICAL: dict[str, int] = {}  # "YYYY-MM-DDTHH:MM:SS" written the way ecs.timestamp writes it -> seconds
_CANONICAL_MAX = 4096


class LineBatch(Batch):
    """A `Batch` of docker_json events of one file, held as columns.

    `times` are UTC RFC 3339 with nine fraction digits (exactly ECS @timestamp); `messages` are without
    their trailing newline; `offsets` are each line's byte offset in `ref`'s file (event.id is
    `<fingerprint>:<offset>`). `events` builds the equivalent LogEvents on first use; from then on they
    are the batch (a transform may change them) and `columnar` is False.
    """

    __slots__ = ("ref", "messages", "times", "streams", "offsets", "oldest_ns", "columnar")

    def __init__(self, ref: FileRef, messages: list[str], times: list[str], streams: list[str],
                 offsets: list[int], oldest_ns: int, ack: Ack | None = None, source: str = DOCKER_JSON) -> None:
        self.ref = ref
        self.messages = messages
        self.times = times
        self.streams = streams
        self.offsets = offsets
        self.oldest_ns = oldest_ns
        Batch.__init__(self, [], ack, source, True)  # re-read from the file's checkpoint until acked
        self.columnar = True

    def __len__(self) -> int:
        return len(self.offsets)

    @property  # type: ignore[override]  # the dataclass field, computed on first use
    def events(self) -> list[LogEvent]:
        if self.columnar:
            self.events = self._build()
        return _EVENTS.__get__(self)  # type: ignore[no-any-return]

    @events.setter
    def events(self, value: list[LogEvent]) -> None:
        self.columnar = False
        _EVENTS.__set__(self, value)

    def _build(self) -> list[LogEvent]:
        ref = self.ref
        fp, cid, path = ref.fingerprint, ref.container_id, ref.path
        return [LogEvent(parse_time_ns(t), m, DOCKER_JSON, f"{fp}:{off}", st, cid, None, None, None, None, path,
                         off, None)
                for m, t, st, off in zip(self.messages, self.times, self.streams, self.offsets, strict=True)]


_EVENTS: Any = Batch.__dict__["events"]  # the slot LineBatch.events stands in front of


def _second(prefix: str) -> int | None:
    """Epoch seconds of a "YYYY-MM-DDTHH:MM:SS" that is valid and canonical (what ecs.timestamp prints
    for it, so the @timestamp copied from the line is the one the slow path would format)."""
    secs = _CANONICAL.get(prefix)
    if secs is not None:
        return secs
    from logshipper.ecs import timestamp

    try:
        ns = parse_time_ns(prefix + "Z")
    except (ValueError, OverflowError):
        return None
    secs = ns // _NS
    if timestamp(secs * _NS)[:_SECOND_LEN] != prefix:
        return None
    if len(_CANONICAL) >= _CANONICAL_MAX:
        _CANONICAL.clear()
    _CANONICAL[prefix] = secs
    return secs


def _pad(t: str) -> str:
    """Docker trims trailing zeros of the fraction (RFC3339Nano); @timestamp keeps nine digits. Anything
    else is returned as it is (and fails _times_ok)."""
    if t[-1:] != "Z":
        return t
    if len(t) == 20:
        return t[:19] + ".000000000Z"
    if 21 < len(t) < TIME_LEN and t[19] == ".":
        return t[:-1].ljust(TIME_LEN - 1, "0") + "Z"
    return t


def _times_ok(times: list[str]) -> bool:
    """Every time is "YYYY-MM-DDTHH:MM:SS.fffffffffZ" with a valid, canonical second."""
    n = len(times)
    joined = "".join(times)
    if len(joined) != n * TIME_LEN:
        return False
    if joined[19::TIME_LEN] != "." * n or joined[29::TIME_LEN] != "Z" * n:
        return False
    fraction = "".join([joined[i::TIME_LEN] for i in range(20, 29)])
    if not (fraction.isascii() and fraction.isdigit()):
        return False
    return all(_second(s) is not None for s in set(map(_SECOND, times)))


def decode_columns(lines: Sequence[bytes], docs: list[Any], offset: int, ref: FileRef,
                   max_message_bytes: int) -> LineBatch | None:
    """The chunk's events as a LineBatch when every line is an ordinary complete one (the caller has
    checked that no partial line is pending); None to take the line-by-line path. `docs` are the
    lines' JSON values (one orjson call for the chunk)."""
    if not lines or set(map(type, docs)) != {dict} or set(map(len, docs)) != {_KEYS}:
        return None
    if max(map(len, lines)) > max_message_bytes:
        return None  # may be oversized: the slow path measures the message itself
    try:
        logs, streams, times = list(map(_LOG, docs)), list(map(_STREAM, docs)), list(map(_TIME, docs))
        if set(map(type, streams)) != {str}:
            return None
        # str methods raise TypeError on anything but a str: the type checks of logs and times
        if not all(map(str.endswith, logs, repeat("\n"))):
            return None  # a Docker partial line (16 KiB piece): the joiner's business
        if set(map(len, times)) != {TIME_LEN}:
            times = [t if len(t) == TIME_LEN else _pad(t) for t in times]
        if not _times_ok(times):
            return None
    except (KeyError, TypeError):
        return None
    oldest = min(times)
    oldest_ns = (_second(oldest[:_SECOND_LEN]) or 0) * _NS + int(oldest[20:29])
    # line i starts at offset + (the lengths of the lines before it) + i newlines
    offsets = list(map(add, accumulate(islice(map(len, lines), len(lines) - 1), initial=offset), count()))
    return LineBatch(ref, list(map(_CHOP, logs)), times, streams, offsets, oldest_ns)


def decode_chunk(lines: list[bytes], offset: int, ref: FileRef, joiner: Joiner,
                 rejects: Counter[str]) -> LineBatch | list[LogEvent]:
    """The events of consecutive complete lines starting at byte `offset` of `ref`'s file: as columns
    when the chunk allows it, else as decode_lines makes them (rejects counted there)."""
    docs = load_chunk(lines)
    if docs is not None and not joiner.pending:
        batch = decode_columns(lines, docs, offset, ref, joiner.max_message_bytes)
        if batch is not None:
            return batch
    return decode_lines(lines, offset, ref, joiner, rejects, docs)
