"""Thousands of random and mutated journalctl lines: parse returns an Entry or raises Rejected, nothing
else escapes, and partial reassembly over any sequence of them never fails or holds more than it may."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from logshipper.codecs import journald as codec
from logshipper.codecs.journald import Entry, Partials, Rejected, parse

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "journald" / "entries.jsonl"
SEED_LINES = FIXTURE.read_bytes().splitlines()
REASONS = {codec.MALFORMED_JSON, codec.NOT_AN_OBJECT, codec.NO_CURSOR, codec.NO_MESSAGE, codec.BAD_FIELD,
           codec.BAD_TIMESTAMP, codec.OVERSIZED}
KEYS = ["__CURSOR", "MESSAGE", "__REALTIME_TIMESTAMP", "PRIORITY", "CONTAINER_ID", "CONTAINER_ID_FULL",
        "CONTAINER_NAME", "IMAGE_NAME", "CONTAINER_TAG", "CONTAINER_PARTIAL_MESSAGE", "CONTAINER_PARTIAL_ID",
        "CONTAINER_PARTIAL_LAST", "SYSLOG_TIMESTAMP", "SYSLOG_FACILITY", "_PID", "_HOSTNAME", "X", "_X", "__X", "a", ""]


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False, 0, -1, 2**64, 3.5, 1e308])
    if kind == 2:
        return "".join(chr(rng.randrange(0, 0x2FF)) for _ in range(rng.randrange(0, 20)))
    if kind == 3:
        return [rng.randrange(-5, 300) for _ in range(rng.randrange(0, 10))]
    if kind == 4:
        return rng.choice(["6", "3", "true", "false", "", "2023-11-14T22:13:20.5Z", "Jan  2 15:04:05", "s=1;i=2",
                           "1700000000000000", "9" * 30, "\n", "x\n"])
    if kind == 5:
        return [rng.randrange(0, 256) for _ in range(rng.randrange(0, 10))]
    if kind == 6:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))]
    if kind == 7:
        return {rng.choice(KEYS): random_value(rng, depth + 1) for _ in range(rng.randrange(0, 4))}
    return [[rng.randrange(0, 256)], random_value(rng, depth + 1)]


def random_entry(rng: random.Random) -> bytes:
    d = {k: random_value(rng) for k in rng.sample(KEYS, rng.randrange(0, len(KEYS)))}
    if rng.random() < 0.5:
        d["__CURSOR"] = f"s=ab;i={rng.randrange(1000)}"
    return json.dumps(d).encode()  # the stdlib writes integers beyond 64 bits too


def mutate(rng: random.Random, line: bytes) -> bytes:
    b = bytearray(line)
    for _ in range(rng.randrange(1, 6)):
        op = rng.randrange(4)
        pos = rng.randrange(len(b) + 1)
        if op == 0 and b:
            del b[pos % len(b): pos % len(b) + rng.randrange(1, 40)]
        elif op == 1:
            b[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 8)))
        elif op == 2 and b:
            b[pos % len(b)] = rng.choice(b'{}[]",:0123456789\\ntfn\xff\x00')
        else:
            b = b[:pos]
    return bytes(b)


def reshape(rng: random.Random, line: bytes) -> bytes:
    """A real entry with some fields replaced or removed: still JSON, often still acceptable."""
    d = json.loads(line)
    for _ in range(rng.randrange(1, 4)):
        key = rng.choice([*d, *KEYS])
        if rng.random() < 0.3:
            d.pop(key, None)
        else:
            d[key] = random_value(rng)
    if rng.random() < 0.7 and isinstance(d.get("MESSAGE"), str):
        d["MESSAGE"] = d["MESSAGE"][:rng.randrange(0, 80)]
    return json.dumps(d).encode()


def check(line: bytes, limit: int) -> Entry | None:
    try:
        entry = parse(line, limit)
    except Rejected as r:
        assert r.reason in REASONS
        return None
    assert isinstance(entry.event.message, str) and isinstance(entry.cursor, str) and entry.cursor
    assert len(entry.event.message.encode("utf-8", "surrogatepass")) <= limit
    assert isinstance(entry.event.time_ns, int)
    return entry


def test_random_and_mutated_lines_never_raise_anything_but_rejected() -> None:
    rng = random.Random(20261201)
    accepted = rejected = 0
    partials = Partials(64)
    prev = None
    for i in range(6000):
        if i % 3 == 0:
            line = random_entry(rng)
        elif i % 3 == 1:
            line = reshape(rng, rng.choice(SEED_LINES))
        else:
            line = mutate(rng, rng.choice(SEED_LINES))
        entry = check(line, 64)
        if entry is None:
            rejected += 1
            continue
        accepted += 1
        for event in partials.add(entry, prev, float(i)):
            assert len(event.message.encode("utf-8", "surrogatepass")) <= 64  # joined lines keep the limit too
        prev = entry.cursor
        partials.expired(float(i), 50.0)
        assert len(partials) <= codec.MAX_PENDING_PARTIALS
    partials.expired(1e9, 1.0)
    assert len(partials) == 0 and partials.hold() == (False, None)
    assert accepted > 500 and rejected > 500  # both paths were exercised


def test_every_truncation_of_real_lines_is_handled() -> None:
    for line in SEED_LINES:
        for cut in range(0, len(line), 7):
            assert check(line[:cut], 1 << 20) is None  # a cut JSON object is never valid
        assert check(line, 1 << 20) is not None
