"""Thousands of random and mutated forward-protocol streams through the whole decoding path (framing,
carrier modes, records, partial joining, ECS encoding): no exception escapes, every message is
accounted for (events, rejections with a known reason, or a heartbeat), nothing decoded is unencodable."""

from __future__ import annotations

import gzip
import random
import struct
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgpack
import zstandard

from logshipper import ecs
from logshipper.codecs import forward as fw
from logshipper.codecs.forward_partial import PartialAssembler

LIMITS = fw.Limits(max_message_bytes=4096, max_decompressed_bytes=1 << 16)
BUFFER = 1 << 15
T0 = 1_796_112_000
STREAM_ERRORS = {None, fw.GARBAGE, fw.TOO_LARGE, fw.JSON}


@dataclass
class Outcome:
    events: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    errors: Counter[str | None] = field(default_factory=Counter)


def _empty(obj: Any) -> bool:
    """A well-formed message with no entries: the one case with neither events nor rejections."""
    return isinstance(obj, list) and len(obj) >= 2 and isinstance(obj[1], (list, bytes, str))


def run(data: bytes, rng: random.Random, out: Outcome) -> None:
    reader = fw.FrameReader(BUFFER)
    asm: PartialAssembler[int] = PartialAssembler(LIMITS.max_message_bytes, max_groups=8)
    occurrences = fw.Occurrences(kept=16)
    pos = 0
    while pos < len(data):
        step = rng.randint(1, 700)
        for frame in reader.feed(data[pos:pos + step]):
            d = fw.decode_frame(frame, LIMITS, occurrences)
            assert set(d.rejected) <= set(fw.REASONS), d.rejected
            assert d.events or d.rejected or d.heartbeat or _empty(frame.obj), frame.obj
            out.rejected.update(d.rejected)
            for event, partial in d.events:
                for joined in asm.add(event, partial, 1, now=rng.random() * 10):
                    if joined.event is not None:
                        ecs.encode(joined.event, "h")
                        out.events += 1
                    else:
                        out.rejected[fw.OVERSIZED] += 1
            for joined in asm.expire(now=rng.random() * 20, timeout=5.0):
                out.events += joined.event is not None
        pos += step
    for joined in asm.flush():
        if joined.event is not None:
            ecs.encode(joined.event, "h")
    assert reader.error in STREAM_ERRORS
    out.errors[reader.error] += 1


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(12 if depth < 6 else 8)
    if kind == 0:
        return rng.randint(-(2**63), 2**64 - 1)
    if kind == 1:
        return rng.random() * rng.choice([1, 1e9, 1e300])
    if kind == 2:
        return "".join(chr(rng.randint(0, 0x2FFF)) for _ in range(rng.randint(0, 20)))
    if kind == 3:
        return rng.randbytes(rng.randint(0, 30))
    if kind == 4:
        return rng.choice([None, True, False, 0, T0])
    if kind == 5:
        return msgpack.ExtType(rng.randint(0, 127), rng.randbytes(rng.choice([0, 4, 8, 12])))
    if kind == 6:
        return msgpack.ExtType(0, struct.pack(">II", rng.randint(0, 2**32 - 1), rng.randint(0, 2**32 - 1)))
    if kind == 7:
        return rng.choice(["log", "message", "source", "stdout", "partial_message", "true", "gzip"])
    if kind in (8, 9):
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {random_value(rng, 7): random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def record(rng: random.Random, i: int) -> dict[str, Any]:
    rec: dict[str, Any] = {"container_id": "c" * 64, "container_name": "/web",
                           "source": rng.choice(["stdout", "stderr"]), "log": f"line {i} " + "x" * rng.randint(0, 100)}
    if rng.random() < 0.3:
        rec.update(partial_message="true", partial_id=f"p{i % 3}", partial_ordinal=str(i % 4 + 1),
                   partial_last=rng.choice(["true", "false"]))
    if rng.random() < 0.3:
        rec["extra"] = random_value(rng, 3)
    return rec


def valid_frame(rng: random.Random, i: int) -> bytes:
    t = rng.choice([T0 + i, msgpack.ExtType(0, struct.pack(">II", T0, i)), T0 + 0.5])
    option: dict[str, Any] = {"chunk": f"chunk{i}"} if rng.random() < 0.5 else {}
    mode = rng.randrange(5)
    entries = [[t, record(rng, i * 10 + j)] for j in range(rng.randint(0, 4))]
    if mode == 0:
        return msgpack.packb(["tag", t, record(rng, i), *([option] if option else [])])
    if mode == 1:
        return msgpack.packb(["tag", entries, option])
    if mode == 4:
        return msgpack.packb(None)
    packed = b"".join(msgpack.packb(e) for e in entries)
    if mode == 3:
        if rng.random() < 0.5:
            packed = gzip.compress(packed[: len(packed) // 2]) + gzip.compress(packed[len(packed) // 2:])
            option["compressed"] = "gzip"
        else:
            packed = zstandard.ZstdCompressor().compress(packed)
            option["compressed"] = "zstd"
    return msgpack.packb(["tag", packed, option])


def mutate(rng: random.Random, data: bytes, other: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        at = rng.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(at, len(b) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1 and b:
            b[min(at, len(b) - 1)] = rng.randrange(256)
        elif op == 2:
            del b[at:at + rng.randint(1, 16)]
        elif op == 3:
            b[at:at] = rng.randbytes(rng.randint(1, 16))
        elif op == 4:
            del b[at:]
        elif op == 5:
            b[at:at] = b[rng.randrange(len(b) + 1):][:64]
        else:
            b[at:at] = other[rng.randrange(len(other) + 1):]
    return bytes(b)


def test_random_bytes_never_escape_the_decoder() -> None:
    rng = random.Random(7)
    out = Outcome()
    for _ in range(3000):
        data = rng.randbytes(rng.randint(1, 400))
        if rng.random() < 0.5:  # forward messages are arrays: make more streams get past the first byte
            data = bytes([rng.choice([0x92, 0x93, 0x94, 0xdc])]) + data
        run(data, rng, out)
    assert sum(out.rejected.values()) > 1000
    assert out.errors[fw.GARBAGE] > 100


def test_mutated_valid_streams_never_escape_and_keep_what_is_intact() -> None:
    rng = random.Random(11)
    out = Outcome()
    for i in range(3000):
        frames = [valid_frame(rng, i * 8 + k) for k in range(rng.randint(1, 5))]
        stream = b"".join(frames)
        run(mutate(rng, stream, valid_frame(rng, i)), rng, out)
    assert out.events > 3000  # most frames of a stream survive a mutation elsewhere
    assert sum(out.rejected.values()) > 300
    assert {fw.GARBAGE, fw.SHAPE, fw.TIME, fw.RECORD} <= set(out.rejected)


def test_random_msgpack_objects_are_events_or_counted_rejections() -> None:
    rng = random.Random(13)
    out = Outcome()
    for _ in range(2000):
        head: list[Any] = [rng.choice(["tag", b"tag", 1, None])]
        body = [random_value(rng) for _ in range(rng.randint(0, 4))]
        run(msgpack.packb(head + body if rng.random() < 0.8 else body), rng, out)
    assert sum(out.rejected.values()) > 1000
    assert out.errors[None] == 2000  # well-formed msgpack never loses the stream


def test_unmutated_valid_streams_lose_nothing() -> None:
    rng = random.Random(17)
    out = Outcome()
    for i in range(500):
        run(b"".join(valid_frame(rng, i * 8 + k) for k in range(4)), rng, out)
    assert out.rejected == Counter() and out.errors == Counter({None: 500})
    assert out.events > 1500
