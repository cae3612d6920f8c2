"""docker_json's fast path: a chunk of ordinary json-file lines kept as columns, not one LogEvent each.

Most chunks are nothing but complete lines of the shape Docker writes without log-opts,
`{"log":"...\\n","stream":"stdout","time":"<UTC RFC3339Nano>"}`. For those, `decode_columns` returns a
`LineBatch`: the messages, times, streams and offsets as lists, checked for the whole chunk at once
(one orjson call, then logshipper._fastpath.columns in C) instead of a Python step per line, and the
pipeline renders the Kafka records straight from the columns (logshipper.ecs.render_lines, in C too).

Everything else (a Docker partial line, a partial pending from an earlier chunk, `attrs`, a bad or
oversized line, a time that is not UTC with "Z") returns None, and the chunk goes through
`dockerjson.decode_lines`, which handles every case line by line. Both give the same events: the
columns hold what decode_lines would put in each LogEvent, and `LineBatch.events` builds those LogEvents
when a transform (multiline) or any other reader asks for them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from hostwatch.core.events import DOCKER_JSON, Ack, Batch, LogEvent
from logshipper import _fastpath
from logshipper.codecs.dockerjson import FileRef, Joiner, decode_lines, load_chunk, parse_time_ns


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


def decode_columns(lines: list[bytes], docs: list[Any], offset: int, ref: FileRef,
                   max_message_bytes: int) -> LineBatch | None:
    """The chunk's events as a LineBatch when every line is an ordinary complete one (the caller has
    checked that no partial line is pending); None to take the line-by-line path. `docs` are the
    lines' JSON values (one orjson call for the chunk). Ordinary: each a dict of exactly log, stream
    and time, all str, no line longer than max_message_bytes, the log ending in its newline (else a
    Docker partial line: the joiner's business), the time UTC RFC 3339 (fraction padded to nine
    digits) with a canonical second (what ecs.timestamp prints for it, so the @timestamp copied from
    the line is the one the slow path would format). Checked and split into columns in C
    (logshipper._fastpath.columns)."""
    cols = _fastpath.columns(lines, docs, offset, max_message_bytes)
    if cols is None:
        return None
    messages, times, streams, offsets, oldest_ns = cols
    return LineBatch(ref, messages, times, streams, offsets, oldest_ns)


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
