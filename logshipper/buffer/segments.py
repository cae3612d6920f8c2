"""The disk buffer's file format: segment files of framed batches, and the acknowledged position.

A segment `NNNNNNNNNNNN.seg` is a sequence of frames, one per batch:
    u32 body length | u32 CRC32 of the body | body
    body = u32 events | u64 oldest event ns | u64 nbytes | "L" | LZ4 block (with its size) of
           msgpack [source, [[topic, key, [value, ...]], ...]]
(little-endian; the batch's runs: one value per record, topic and key once per run). LZ4 costs less CPU
than it saves in writing and reading back ~15 times as many bytes (ECS documents of one file repeat
most of their text). Frames written before this, a plain msgpack `[source, topic, [[key, value], ...]]`
or `[source, nil, [[topic, key, value], ...]]`, still decode.
A frame cut short or whose CRC does not match ends the valid part of its segment: that is the torn tail
of a write a crash interrupted. `position` holds the (segment, offset) before which every frame was
delivered, replaced atomically (write, fsync, rename).
"""

from __future__ import annotations

import json
import logging
import os
import struct
import zlib
from dataclasses import dataclass, field
from functools import partial
from itertools import starmap
from pathlib import Path

import lz4.block
import msgpack

from logshipper.buffer.base import Record, RecordBatch, Run, runs_of

HEADER = struct.Struct("<II")
META = struct.Struct("<IQQ")
SUFFIX = ".seg"
POSITION_FILE = "position"
MAX_BODY = 1 << 30  # a length beyond this is garbage, not a frame
LZ4 = b"L"  # first payload byte of a compressed frame (a plain msgpack payload starts with an array byte)
SCAN_CHUNK = 4 << 20

Position = tuple[int, int]  # (segment id, byte offset)

log = logging.getLogger("hostwatch.logshipper.buffer")


class CorruptFrame(ValueError):
    pass


def encode(batch: RecordBatch) -> list[bytes]:
    """One frame for the whole batch, as parts for one writev (no per-record syscalls, no copy of the
    whole frame to join its parts)."""
    packed = lz4.block.compress(msgpack.packb((batch.source, [(r.topic, r.key, r.values) for r in batch.runs])))
    meta = META.pack(len(batch), batch.oldest_ns, batch.nbytes)
    crc = zlib.crc32(packed, zlib.crc32(LZ4, zlib.crc32(meta)))
    return [HEADER.pack(len(meta) + 1 + len(packed), crc), meta, LZ4, packed]


def decode(body: bytes | memoryview) -> RecordBatch:
    """The batch of a frame body (its ack is None: the caller attaches one if it has it)."""
    try:
        _events, oldest, nbytes = META.unpack_from(body)
        payload = body[META.size:]
        if payload[:1] == LZ4:
            payload = lz4.block.decompress(payload[1:])
        doc = msgpack.unpackb(payload)
        if len(doc) == 2:
            source, rows = doc
            runs = [Run(topic, key, values) for topic, key, values in rows]
        else:  # the format before runs
            source, topic, rows = doc
            records = list(starmap(Record, rows)) if topic is None else list(starmap(partial(Record, topic), rows))
            runs = runs_of(records)
    except (ValueError, TypeError, IndexError, struct.error, msgpack.UnpackException, lz4.block.LZ4BlockError) as e:
        raise CorruptFrame(f"undecodable frame body: {e}") from e
    return RecordBatch(None, None, source, oldest, nbytes, runs=runs)


def segment_path(directory: Path, seg: int) -> Path:
    return directory / f"{seg:012d}{SUFFIX}"


def list_segments(directory: Path) -> list[int]:
    ids = []
    for p in directory.iterdir():
        if p.name.endswith(SUFFIX) and p.name[:-len(SUFFIX)].isdigit():
            ids.append(int(p.name[:-len(SUFFIX)]))
    return sorted(ids)


@dataclass
class Scan:
    end: int  # offset after the last valid frame
    size: int  # the file's size (larger than end when the tail is torn)
    frames: int = 0
    events: int = 0
    bytes: int = 0  # record bytes (the batches' nbytes), what the buffer's bound counts
    first_oldest_ns: int = 0


def scan(path: Path, start: int) -> Scan:
    """Validate the frames of a segment from `start`: count them and find where the valid part ends."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        result = Scan(end=min(start, size), size=size)
        f.seek(result.end)
        buf = b""
        i = 0  # buf[i:] is not consumed yet; it starts at file offset result.end
        while True:
            avail = len(buf) - i
            if avail < HEADER.size:
                more = f.read(SCAN_CHUNK)
                if not more:
                    break
                buf, i = buf[i:] + more, 0
                continue
            length, crc = HEADER.unpack_from(buf, i)
            need = HEADER.size + length
            if length < META.size or length > MAX_BODY or result.end + need > size:
                break
            if avail < need:
                buf, i = buf[i:] + f.read(max(SCAN_CHUNK, need - avail)), 0
                if len(buf) < need:
                    break
            body = memoryview(buf)[i + HEADER.size:i + need]
            ok = zlib.crc32(body) == crc
            events, oldest, nbytes = META.unpack_from(body)
            body.release()
            if not ok:
                break
            if not result.frames:
                result.first_oldest_ns = oldest
            result.frames += 1
            result.events += events
            result.bytes += nbytes
            i += need
            result.end += need
    return result


def read_frames(fd: int, offset: int, end: int, max_bytes: int) -> list[tuple[int, int, memoryview]]:
    """Frames of one segment from `offset` up to `end`: about max_bytes of them (one at least, however
    large), as [(end offset of the frame, frame length, body)]. A bad frame raises CorruptFrame."""
    data = os.pread(fd, min(end - offset, max_bytes), offset)
    if len(data) >= HEADER.size:
        first = HEADER.size + HEADER.unpack_from(data)[0]
        if len(data) < first <= end - offset:
            data = os.pread(fd, first, offset)  # one frame larger than the read-ahead
    view = memoryview(data)
    out: list[tuple[int, int, memoryview]] = []
    pos = 0
    while offset + pos < end:
        if len(data) - pos < HEADER.size:
            if out:
                break
            raise CorruptFrame(f"short frame header at {offset + pos}")
        length, crc = HEADER.unpack_from(view, pos)
        frame_len = HEADER.size + length
        if length < META.size or length > MAX_BODY or offset + pos + frame_len > end:
            raise CorruptFrame(f"bad frame length {length} at {offset + pos}")
        if pos + frame_len > len(data):
            if out:
                break
            raise CorruptFrame(f"frame at {offset + pos} cut short")
        body = view[pos + HEADER.size:pos + frame_len]
        if zlib.crc32(body) != crc:
            raise CorruptFrame(f"CRC mismatch in the frame at {offset + pos}")
        pos += frame_len
        out.append((offset + pos, frame_len, body))
    return out


def load_position(directory: Path) -> Position | None:
    try:
        data = json.loads((directory / POSITION_FILE).read_text())
        return int(data["segment"]), int(data["offset"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        return None  # unreadable: replay everything still on disk (duplicates, never a loss)


def save_position(directory: Path, pos: Position) -> None:
    tmp = directory / (POSITION_FILE + ".tmp")
    with open(tmp, "w") as f:
        json.dump({"segment": pos[0], "offset": pos[1]}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, directory / POSITION_FILE)
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


@dataclass
class Recovered:
    position: Position  # where reading starts: the saved position, or the first segment left
    next_segment: int  # the id of the segment to write next
    live: dict[int, Scan] = field(default_factory=dict)  # segments with frames to replay, in order


def recover(directory: Path) -> Recovered:
    """Open a buffer directory: delete the segments before the saved position, validate the rest and cut
    off a torn or corrupt tail."""
    directory.mkdir(parents=True, exist_ok=True)
    ids = list_segments(directory)
    pos = load_position(directory) or ((ids[0], 0) if ids else (0, 0))
    for seg in ids:
        if seg < pos[0]:
            segment_path(directory, seg).unlink(missing_ok=True)
    live = [seg for seg in ids if seg >= pos[0]]
    if live and live[0] != pos[0]:
        pos = (live[0], 0)
    out = Recovered(pos, max([pos[0], *(seg + 1 for seg in ids)]))
    for seg in live:
        path = segment_path(directory, seg)
        found = scan(path, pos[1] if seg == pos[0] else 0)
        if found.end < found.size:
            log.warning("disk buffer %s: %d bytes after offset %d are a torn or corrupt frame; cut off",
                        path, found.size - found.end, found.end)
            os.truncate(path, found.end)
        out.live[seg] = found
    return out


def sync_files(directory: Path, to_close: list[int], wfd: int, pos: Position | None, doomed: list[int]) -> None:
    """fsync (and close) rolled-over segments and the one being written, delete fully delivered
    segments, then save the delivered position."""
    failed: OSError | None = None
    for fd in to_close:
        try:
            os.fsync(fd)
        except OSError as e:
            failed = failed or e
        finally:
            os.close(fd)
    if failed is not None:
        raise failed
    if wfd >= 0:
        os.fsync(wfd)
    # delivered segments go before the position is saved: that frees room on a full disk, and a
    # position naming a deleted segment just starts at the next one on open
    for seg in doomed:
        segment_path(directory, seg).unlink(missing_ok=True)
    if pos is not None:
        save_position(directory, pos)
