"""Forward protocol framing, pure: msgpack objects off a connection's byte stream, packed payloads
(PackedForward's entries, gzip or zstd compressed) and the server's wire answers.

A connection carries msgpack objects back to back. `FrameReader` cuts them out, keeping each one's
bytes (event ids hash them). msgpack has no resynchronisation point, so the first undecodable byte,
or one message over the connection's buffer bound, loses the stream: the frames before it are still
returned, then `error` tells why the reader stopped.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack
import zstandard

# rejection reasons of this layer (the `reason` label of rejected_events_total)
GARBAGE = "garbage"  # not msgpack: the rest of the stream (or packed payload) is lost
TOO_LARGE = "too_large"  # one message over the connection's buffer bound
JSON = "json"  # in_forward's JSON form of the protocol, not served here
DECOMPRESS = "decompress"  # invalid gzip/zstd data, or over max_decompressed_bytes
COMPRESSION = "compression"  # unknown compression

MAX_ARRAY_LEN = 1 << 16  # msgpack preallocates arrays and maps from their headers: bound the amplification
MAX_MAP_LEN = 1 << 16
HEARTBEAT_REPLY = b"\x00"  # in_forward answers every UDP heartbeat with one NUL byte


class DecodeError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def _ext(code: int, data: bytes) -> Any:
    # msgpack.ExtType refuses the reserved negative codes (but -1, a Timestamp): keep them as text
    return msgpack.ExtType(code, data) if code >= 0 else f"ext{code}:{data.hex()}"


def unpacker(max_buffer_size: int) -> msgpack.Unpacker:
    """Strings stay byte-exact (invalid UTF-8 surrogate-escaped); any map key; bounded lengths."""
    return msgpack.Unpacker(raw=False, unicode_errors="surrogateescape", strict_map_key=False, ext_hook=_ext,
                            max_buffer_size=max_buffer_size, max_array_len=MAX_ARRAY_LEN, max_map_len=MAX_MAP_LEN)


@dataclass(slots=True)
class Frame:
    obj: Any
    raw: bytes


class FrameReader:
    """One connection's byte stream -> msgpack objects, holding at most `max_buffer_bytes` of a message."""

    def __init__(self, max_buffer_bytes: int) -> None:
        self._max = max_buffer_bytes
        self._unpacker = unpacker(max_buffer_bytes)
        self._buf = bytearray()  # the bytes since the last whole object (the unpacker holds no more)
        self._base = 0  # stream offset of _buf[0]
        self.error: str | None = None  # set once the stream is lost

    def feed(self, data: bytes) -> list[Frame]:
        if self.error is None and self._base == 0 and not self._buf and data[:1] in (b"{", b"["):
            self.error = JSON
        frames: list[Frame] = []
        while data and self.error is None:
            room = self._max - len(self._buf)
            if room <= 0:
                self.error = TOO_LARGE
                break
            piece, data = data[:room], data[room:]  # whole objects before a too large one are still taken
            self._unpacker.feed(piece)
            self._buf += piece
            self._drain(frames)
        return frames

    def _drain(self, frames: list[Frame]) -> None:
        pos = self._base  # end of the last whole object (tell() also counts a partly parsed one)
        try:
            for obj in self._unpacker:
                end = self._unpacker.tell()
                frames.append(Frame(obj, bytes(self._buf[pos - self._base:end - self._base])))
                pos = end
        except Exception:  # FormatError, StackError, over a length bound, an unhashable map key
            self.error = GARBAGE
        del self._buf[:pos - self._base]
        self._base = pos

    @property
    def buffered(self) -> int:
        return len(self._buf)


def gunzip(data: bytes, limit: int) -> bytes:
    """Every gzip member of `data` (clients may concatenate them), at most `limit` bytes out."""
    out: list[bytes] = []
    total = 0
    while data and data.strip(b"\x00"):  # gzip(1) tolerates zero padding after the last member
        d = zlib.decompressobj(wbits=31)
        try:
            piece = d.decompress(data, limit - total + 1)
        except zlib.error as e:
            raise DecodeError(DECOMPRESS, f"invalid gzip data: {e}") from None
        total += len(piece)
        if total > limit:
            raise DecodeError(DECOMPRESS, f"gzip payload larger than {limit} bytes once decompressed")
        if not d.eof:
            raise DecodeError(DECOMPRESS, "truncated gzip data")
        out.append(piece)
        data = d.unused_data
    return b"".join(out)


def unzstd(data: bytes, limit: int) -> bytes:
    try:
        reader = zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True)
        out = reader.read(limit + 1)
    except zstandard.ZstdError as e:
        raise DecodeError(DECOMPRESS, f"invalid zstd data: {e}") from None
    if len(out) > limit:
        raise DecodeError(DECOMPRESS, f"zstd payload larger than {limit} bytes once decompressed")
    return bytes(out)


DECOMPRESSORS: dict[str, Callable[[bytes, int], bytes]] = {"gzip": gunzip, "zstd": unzstd}


def packed_payload(payload: str | bytes, compressed: Any, limit: int) -> bytes:
    """A PackedForward payload as plain msgpack entries (`compressed`: the option); raises DecodeError."""
    data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else payload
    if compressed is None or compressed == "text":
        return data
    decompress = DECOMPRESSORS.get(compressed) if isinstance(compressed, str) else None
    if decompress is None:
        raise DecodeError(COMPRESSION, f"unknown compression {compressed!r}")
    return decompress(data, limit)


def ack(chunk: str | bytes) -> bytes:
    """{"ack": chunk}, the chunk's bytes exactly as they came (even when they are no valid UTF-8)."""
    return msgpack.packb({"ack": chunk}, unicode_errors="surrogateescape")
