"""Fuzz-style tests of the GELF decoder: thousands of random and mutated datagrams, frames and chunk
sequences. Nothing but GelfError escapes, every event is one the rest of the pipeline can encode,
every input is either an event, a pending chunk or exactly one counted rejection, and the pending
chunks stay within their bounds."""

from __future__ import annotations

import asyncio
import gzip
import random
import zlib
from collections.abc import Callable

import orjson
import pytest

from hostwatch.core.events import LogEvent
from logshipper import ecs
from logshipper.codecs.gelf import GelfDecoder
from logshipper.codecs.gelf_framing import CHUNK_MAGIC, GelfError, NullFramer
from logshipper.config import GelfConfig
from logshipper.sources.gelf import GelfSource
from logshipper.telemetry import ShipperMetrics
from runtime.logdrivers.gelf import chunk

MAX_PENDING = 40
MAX_PENDING_BYTES = 200_000
LIMIT = 64 << 10


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def messages(rng: random.Random) -> list[bytes]:
    """Valid GELF JSON of many shapes."""
    out = []
    for i in range(40):
        text = "".join(rng.choice("ab é✓\n\t\"\\{}") for _ in range(rng.randrange(40)))
        doc: dict[str, object] = {"version": rng.choice(["1.1", "1.0"]), "host": f"h{i}", "short_message": text}
        if rng.random() < 0.7:
            doc["timestamp"] = rng.choice([1.7e9 + rng.random(), 1700000000, "1700000000.5", 0.001])
        if rng.random() < 0.7:
            doc["level"] = rng.choice([0, 3, 6, 7, 9, -2, "x", 2.0])
        if rng.random() < 0.5:
            doc["_container_id"] = f"{i:064x}"
            doc["_container_name"] = f"c{i}"
            doc["_image_name"] = "busybox"
        for k in range(rng.randrange(5)):
            doc[rng.choice(["_", "_a.b", f"_f{k}", "facility", "full_message", "_id"])] = rng.choice(
                ["v", 1, 2.5, None, True, [1, "2"], {"n": {"m": 1}}, 2**64 - 1, -(2**63)])
        out.append(orjson.dumps(doc))
    out.append(b'{"version":"1.1","short_message":"big","_n":123456789012345678901234567890,"timestamp":1e-999}')
    return out


def wire(rng: random.Random, body: bytes) -> bytes:
    kind = rng.choice(["gzip", "zlib", "none"])
    if kind == "gzip":
        return gzip.compress(body, rng.choice([1, 6, 9]))
    if kind == "zlib":
        return zlib.compress(body, rng.choice([1, 6, 9]))
    return body


def mutate(rng: random.Random, data: bytes, corpus: list[bytes]) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randrange(1, 4)):
        op = rng.randrange(7)
        pos = rng.randrange(len(b) + 1)
        if op == 0 and b:
            b[min(pos, len(b) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1 and b:
            b[min(pos, len(b) - 1)] = rng.randrange(256)
        elif op == 2:
            b[pos:pos] = rng.randbytes(rng.randrange(1, 16))
        elif op == 3:
            del b[pos:pos + rng.randrange(1, 32)]
        elif op == 4:
            del b[pos:]
        elif op == 5:
            other = rng.choice(corpus)
            b[pos:] = other[rng.randrange(len(other) + 1):]
        else:
            b[pos:pos] = b[max(0, pos - 20):pos]
    return bytes(b)


def random_datagram(rng: random.Random) -> bytes:
    prefix = rng.choice([b"", CHUNK_MAGIC, b"\x1f\x8b", b"\x78\x9c", b"\x78\x01", b"{", b'{"version":"1.1",'])
    return prefix + rng.randbytes(rng.randrange(0, 200))


def check_event(ev: LogEvent) -> None:
    assert isinstance(ev.message, str) and isinstance(ev.event_id, str) and ev.event_id
    assert isinstance(ev.time_ns, int) and 0 <= ev.time_ns < 2**63
    ecs.encode(ev, "host")  # whatever was decoded, the Kafka encoder takes it


def run(dec: GelfDecoder, feed: Callable[[bytes], LogEvent | None], inputs: list[bytes]) -> tuple[int, int, int]:
    events = pending = rejected = 0
    for data in inputs:
        try:
            ev = feed(data)
        except GelfError as e:
            assert e.reason and str(e)
            rejected += 1
        else:
            if ev is None:
                pending += 1
            else:
                check_event(ev)
                events += 1
        assert dec.chunks.pending <= MAX_PENDING and dec.chunks.pending_bytes <= MAX_PENDING_BYTES
    return events, pending, rejected


def make_decoder(clock: Clock, drops: list[str] | None = None) -> GelfDecoder:
    return GelfDecoder(max_message_bytes=LIMIT, chunk_timeout=5.0, max_pending_messages=MAX_PENDING,
                       max_pending_bytes=MAX_PENDING_BYTES, clock=clock,
                       on_drop=(drops.append if drops is not None else None))


@pytest.mark.parametrize("seed", range(3))
def test_mutated_and_random_datagrams_never_escape(seed: int) -> None:
    rng = random.Random(seed)
    bodies = messages(rng)
    corpus = [wire(rng, b) for b in bodies]
    for b in bodies[:10]:
        corpus += chunk(wire(rng, b + b" " * rng.randrange(3000)), rng.randbytes(8))
    inputs = [mutate(rng, rng.choice(corpus), corpus) for _ in range(2500)] + [random_datagram(rng) for _ in range(800)]
    rng.shuffle(inputs)
    clock = Clock()
    dec = make_decoder(clock)

    def feed(d: bytes) -> LogEvent | None:
        clock.now += rng.random() * 0.01
        return dec.datagram(d)

    events, pending, rejected = run(dec, feed, inputs + corpus)
    assert events + pending + rejected == len(inputs) + len(corpus)
    assert rejected > len(inputs) // 4 and events >= len(bodies)  # both outcomes are really exercised


@pytest.mark.parametrize("seed", range(3))
def test_mutated_tcp_frames_never_escape(seed: int) -> None:
    rng = random.Random(100 + seed)
    corpus = messages(rng)
    inputs = [mutate(rng, rng.choice(corpus), corpus) for _ in range(2000)] + corpus
    dec = make_decoder(Clock())
    framer = NullFramer(LIMIT)
    stream = b"\0".join(inputs) + b"\0"
    frames: list[bytes] = []
    pos = 0
    while pos < len(stream):  # reads of random sizes
        n = rng.randrange(1, 5000)
        frames += framer.feed(stream[pos:pos + n])[0]
        pos += n
    events, pending, rejected = run(dec, dec.frame, frames)
    assert pending == 0 and events + rejected == len(frames) and events >= len(corpus)


@pytest.mark.parametrize("seed", range(4))
def test_shuffled_duplicated_chunk_sequences_complete_exactly_once(seed: int) -> None:
    rng = random.Random(200 + seed)
    bodies = [orjson.dumps({**orjson.loads(b), "_pad": rng.randbytes(rng.randrange(2000, 5000)).hex()})
              for b in messages(rng)[:MAX_PENDING // 2]]  # random hex: every message needs several chunks
    sent: dict[str, bytes] = {}
    datagrams: list[bytes] = []
    for body in bodies:
        mid = rng.randbytes(8)
        sent[mid.hex()] = body
        parts = chunk(wire(rng, body), mid)
        assert len(parts) > 1
        datagrams += parts + [rng.choice(parts) for _ in range(rng.randrange(3))]  # duplicates
    rng.shuffle(datagrams)  # out of order and interleaved
    dec = make_decoder(Clock())
    got: dict[str, str] = {}
    for d in datagrams:
        try:
            ev = dec.datagram(d)
        except GelfError as e:
            assert e.reason in ("chunk_duplicate", "chunk_late")
            continue
        if ev is not None:
            assert ev.event_id not in got
            got[ev.event_id] = ev.message
    assert got == {mid: orjson.loads(body)["short_message"].removesuffix("\n") for mid, body in sent.items()}
    assert dec.chunks.pending == 0


@pytest.mark.parametrize("seed", range(3))
def test_chunk_floods_and_lost_chunks_stay_bounded_and_are_counted(seed: int) -> None:
    rng = random.Random(300 + seed)
    clock = Clock()
    drops: list[str] = []
    dec = make_decoder(clock, drops)
    started: set[bytes] = set()
    for _ in range(3000):
        clock.now += rng.random() * 0.05
        mid = rng.randbytes(8) if rng.random() < 0.8 else rng.choice(list(started) or [b"\0" * 8])
        count = rng.choice([2, 5, 128, rng.randrange(0, 256)])
        seq = rng.randrange(max(count, 1) + 1)
        data = CHUNK_MAGIC + mid + bytes([seq % 256, count]) + rng.randbytes(rng.randrange(0, 3000))
        try:
            dec.datagram(data)
            started.add(mid)
        except GelfError:
            pass
        assert dec.chunks.pending <= MAX_PENDING and dec.chunks.pending_bytes <= MAX_PENDING_BYTES
    clock.now += 5.0
    dec.chunks.expire()
    assert dec.chunks.pending == 0 and dec.chunks.pending_bytes == 0
    assert set(drops) <= {"chunk_timeout", "chunk_evicted"} and drops.count("chunk_evicted") > 100


def test_every_datagram_counts_once_in_the_source_metrics() -> None:
    """Through GelfSource's intake: received + rejected over every reason == datagrams sent (no chunks, so
    each one is an event or one rejection), and the events reach emit."""
    rng = random.Random(7)
    bodies = messages(rng)
    corpus = [wire(rng, b) for b in bodies]
    inputs = [mutate(rng, rng.choice(corpus), corpus) for _ in range(2000)] + corpus
    inputs = [d for d in inputs if d[:2] != CHUNK_MAGIC]
    metrics = ShipperMetrics()
    batches: list[int] = []

    async def main() -> None:
        async def emit(batch: object) -> None:
            batches.append(len(batch.events))  # type: ignore[attr-defined]

        src = GelfSource(GelfConfig(listen_address="127.0.0.1:0", udp_queue_events=len(inputs)), metrics,
                         max_message_bytes=LIMIT)
        await src.start(emit)
        try:
            for d in inputs:
                src._datagram(d)  # what the datagram endpoint calls, minus the kernel's chance to drop
            await asyncio.sleep(0.05)
        finally:
            await src.stop()

    asyncio.run(main())
    received = metrics.registry.get_sample_value("hostwatch_logshipper_received_events_total", {"source": "gelf"})
    rejected = sum(s.value for m in metrics.registry.collect() if m.name == "hostwatch_logshipper_rejected_events"
                   for s in m.samples if s.name.endswith("_total"))
    assert received is not None and received + rejected == len(inputs)
    assert sum(batches) == received and received >= len(corpus)
