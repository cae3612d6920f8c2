"""GELF framing: UDP chunks back into payloads, and a TCP stream into NUL-ended frames (pure code).

UDP: a datagram is either a whole payload or a chunk, `1e 0f <8-byte message id> <seq> <count> <data>`,
count at most 128. `ChunkAssembler` puts chunks back together whatever order they arrive in, rejects
duplicates, drops a message whose chunks do not all arrive within the timeout, and bounds what it holds
(messages and bytes), evicting the oldest incomplete message first, so a chunk flood cannot grow memory.
TCP (Graylog's GELF TCP): uncompressed JSON messages each ended by a NUL byte (`NullFramer`).
The format (decompression, GELF JSON) is logshipper.codecs.gelf.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

CHUNK_MAGIC = b"\x1e\x0f"
CHUNK_HEADER = 12  # magic, 8-byte message id, sequence number, sequence count
MAX_CHUNKS = 128

# rejected{reason} values of the framing layer
OVERSIZED = "oversized"
CHUNK_TRUNCATED = "chunk_truncated"  # shorter than the chunk header
CHUNK_COUNT = "chunk_count"  # sequence count 0 or above 128
CHUNK_SEQUENCE = "chunk_sequence"  # sequence number not below the count
CHUNK_INCONSISTENT = "chunk_inconsistent"  # a count that differs from the message's other chunks
CHUNK_DUPLICATE = "chunk_duplicate"
CHUNK_LATE = "chunk_late"  # for a message already completed, timed out or evicted
CHUNK_TIMEOUT = "chunk_timeout"  # a whole message: not all chunks arrived in time
CHUNK_EVICTED = "chunk_evicted"  # a whole message: pushed out by the pending-message or pending-byte bound
CHUNK_INCOMPLETE = "chunk_incomplete"  # a whole message: still incomplete when the source stopped


class GelfError(ValueError):
    """Bad GELF input; `reason` is the rejected{source="gelf",reason} label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"GELF {reason}: {detail}")
        self.reason = reason


# --- framing: UDP chunks --------------------------------------------------------------------------


def compressed_bound(limit: int) -> int:
    """The most compressed bytes a payload of `limit` bytes can take (deflate's stored blocks, headers)."""
    return limit + limit // 64 + 1024


@dataclass(slots=True)
class _Pending:
    first_seen: float
    count: int
    parts: dict[int, bytes] = field(default_factory=dict)
    nbytes: int = 0


@dataclass(frozen=True, slots=True)
class Chunked:
    message_id: bytes
    payload: bytes


class ChunkAssembler:
    """Reassembles chunked GELF messages; `clock` (monotonic seconds) is injectable for tests.

    `add` returns the completed message or None, and raises GelfError for a chunk it rejects; whole
    messages dropped (timed out, evicted) are reported through `on_drop(reason)`. A message id stays
    remembered for `timeout` after it completed or was dropped, so its late or duplicated chunks are
    recognised instead of starting a new message that could only time out.
    """

    def __init__(self, *, timeout: float, max_pending: int, max_pending_bytes: int, max_message_bytes: int,
                 clock: Callable[[], float] = time.monotonic, on_drop: Callable[[str], None] | None = None) -> None:
        self._timeout = timeout
        self._max_pending = max(1, max_pending)
        self._max_bytes = max_pending_bytes
        self._message_cap = compressed_bound(max_message_bytes)
        self._clock = clock
        self._on_drop = on_drop or (lambda reason: None)
        self._pending: OrderedDict[bytes, _Pending] = OrderedDict()  # oldest first
        self._done: OrderedDict[bytes, float] = OrderedDict()
        self.pending_bytes = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, datagram: bytes) -> Chunked | None:
        now = self._clock()
        self.expire(now)
        if len(datagram) < CHUNK_HEADER:
            raise GelfError(CHUNK_TRUNCATED, f"chunk of {len(datagram)} bytes is shorter than its header")
        mid, seq, count = datagram[2:10], datagram[10], datagram[11]
        if count == 0 or count > MAX_CHUNKS:
            raise GelfError(CHUNK_COUNT, f"sequence count {count} (1 to {MAX_CHUNKS} allowed)")
        if seq >= count:
            raise GelfError(CHUNK_SEQUENCE, f"sequence number {seq} of {count}")
        if mid in self._done:
            raise GelfError(CHUNK_LATE, f"chunk {seq} of message {mid.hex()}, already completed or dropped")
        data = datagram[CHUNK_HEADER:]
        msg = self._pending.get(mid)
        if msg is None:
            if count == 1:
                self._finish(mid, now)
                return Chunked(mid, data)
            if len(self._pending) >= self._max_pending:
                self._evict_oldest(now)
            msg = self._pending[mid] = _Pending(now, count)
        elif msg.count != count:
            raise GelfError(CHUNK_INCONSISTENT, f"message {mid.hex()} has {msg.count} chunks, this one says {count}")
        if seq in msg.parts:
            raise GelfError(CHUNK_DUPLICATE, f"chunk {seq} of message {mid.hex()} again")
        if msg.nbytes + len(data) > self._message_cap:
            self._remove(mid, now)
            raise GelfError(OVERSIZED, f"chunked message {mid.hex()} exceeds {self._message_cap} bytes")
        while self.pending_bytes + len(data) > self._max_bytes:
            if self._evict_oldest(now) == mid:  # the oldest itself: this chunk goes with it
                return None
        msg.parts[seq] = data
        msg.nbytes += len(data)
        self.pending_bytes += len(data)
        if len(msg.parts) < count:
            return None
        self._remove(mid, now)
        return Chunked(mid, b"".join(msg.parts[i] for i in range(count)))

    def expire(self, now: float | None = None) -> int:
        """Drop incomplete messages older than the timeout (each reported); returns how many."""
        now = self._clock() if now is None else now
        dropped = 0
        while self._pending:
            mid, msg = next(iter(self._pending.items()))
            if now - msg.first_seen < self._timeout:
                break
            self._remove(mid, now)
            self._on_drop(CHUNK_TIMEOUT)
            dropped += 1
        while self._done and now - next(iter(self._done.values())) >= self._timeout:
            self._done.popitem(last=False)
        return dropped

    def abandon(self) -> int:
        """Forget every incomplete message (the source stops); returns how many there were."""
        n = len(self._pending)
        self._pending.clear()
        self.pending_bytes = 0
        return n

    def _evict_oldest(self, now: float) -> bytes:
        mid = next(iter(self._pending))
        self._remove(mid, now)
        self._on_drop(CHUNK_EVICTED)
        return mid

    def _remove(self, mid: bytes, now: float) -> None:
        msg = self._pending.pop(mid)
        self.pending_bytes -= msg.nbytes
        self._finish(mid, now)

    def _finish(self, mid: bytes, now: float) -> None:
        self._done[mid] = now
        if len(self._done) > 2 * self._max_pending:
            self._done.popitem(last=False)


# --- framing: TCP ---------------------------------------------------------------------------------


class NullFramer:
    """Splits a TCP stream into NUL-ended frames; a frame longer than `max_frame` is skipped up to its
    NUL and counted, and the frames after it are kept."""

    def __init__(self, max_frame: int) -> None:
        self._max = max_frame
        self._buf = bytearray()
        self._skipping = False

    def feed(self, data: bytes) -> tuple[list[bytes], int]:
        """(complete frames, oversized frames skipped) for the next bytes of the stream."""
        oversized = 0
        start = 0
        if self._skipping:
            end = data.find(b"\0")
            if end < 0:
                return [], 0
            self._skipping = False
            start = end + 1
        frames: list[bytes] = []
        scan_from = len(self._buf)
        self._buf += memoryview(data)[start:]
        pos = 0
        while True:
            end = self._buf.find(b"\0", max(pos, scan_from))
            if end < 0:
                break
            if end - pos > self._max:
                oversized += 1
            elif end > pos:
                frames.append(bytes(self._buf[pos:end]))
            pos = end + 1
        del self._buf[:pos]
        if len(self._buf) > self._max:
            self._buf.clear()
            self._skipping = True
            oversized += 1
        return frames, oversized

    def finish(self) -> bytes | None:
        """The unterminated bytes left when the stream ends (a sender that never wrote the last NUL)."""
        rest, self._buf = bytes(self._buf), bytearray()
        self._skipping = False
        return rest if rest.strip() else None
