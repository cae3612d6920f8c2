"""GELF framing: chunk reassembly (order, duplicates, the 128 limit, timeouts on a fake clock, the
pending bounds) and NUL-framed TCP streams."""

from __future__ import annotations

import random

import pytest

from logshipper.codecs import gelf_framing as fr
from logshipper.codecs.gelf_framing import ChunkAssembler, Chunked, GelfError, NullFramer
from runtime.logdrivers.gelf import CHUNK_DATA
from runtime.logdrivers.gelf import chunk as docker_chunks

MID = bytes.fromhex("0123456789abcdef")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock | None = None, *, timeout: float = 5.0, max_pending: int = 100,
         max_pending_bytes: int = 1 << 30, max_message_bytes: int = 1 << 20) -> tuple[ChunkAssembler, list[str]]:
    drops: list[str] = []
    asm = ChunkAssembler(timeout=timeout, max_pending=max_pending, max_pending_bytes=max_pending_bytes,
                         max_message_bytes=max_message_bytes, clock=clock or Clock(), on_drop=drops.append)
    return asm, drops


def chunk(seq: int, count: int, data: bytes, mid: bytes = MID) -> bytes:
    return fr.CHUNK_MAGIC + mid + bytes([seq, count]) + data


def payload(n: int) -> bytes:
    return random.Random(n).randbytes(n)


def feed(asm: ChunkAssembler, datagrams: list[bytes]) -> list[Chunked | None]:
    return [asm.add(d) for d in datagrams]


def test_dockers_chunks_in_order_make_the_payload_and_keep_its_id() -> None:
    data = payload(5 * CHUNK_DATA + 17)
    datagrams = docker_chunks(data, MID)
    assert len(datagrams) == 6 and all(d[:2] == fr.CHUNK_MAGIC for d in datagrams)
    asm, drops = make()
    results = feed(asm, datagrams)
    assert results[:-1] == [None] * 5
    assert results[-1] == Chunked(MID, data)
    assert asm.pending == 0 and asm.pending_bytes == 0 and drops == []


@pytest.mark.parametrize("seed", range(5))
def test_chunks_in_any_order_make_the_payload(seed: int) -> None:
    data = payload(9 * CHUNK_DATA + seed)
    datagrams = docker_chunks(data, MID)
    random.Random(seed).shuffle(datagrams)
    asm, _ = make()
    results = feed(asm, datagrams)
    assert [r for r in results if r is not None] == [Chunked(MID, data)]
    assert results[-1] is not None


def test_reversed_chunks_make_the_payload() -> None:
    data = payload(3 * CHUNK_DATA)
    asm, _ = make()
    assert feed(asm, docker_chunks(data, MID)[::-1])[-1] == Chunked(MID, data)


def test_interleaved_messages_are_kept_apart() -> None:
    a, b = payload(4 * CHUNK_DATA), payload(4 * CHUNK_DATA - 1)
    ca, cb = docker_chunks(a, b"A" * 8), docker_chunks(b, b"B" * 8)
    mixed = [x for pair in zip(ca, cb, strict=True) for x in pair]
    asm, _ = make()
    done = [r for r in feed(asm, mixed) if r is not None]
    assert done == [Chunked(b"A" * 8, a), Chunked(b"B" * 8, b)]


def test_a_duplicated_chunk_is_rejected_and_the_message_still_completes() -> None:
    asm, _ = make()
    assert asm.add(chunk(0, 3, b"ab")) is None
    with pytest.raises(GelfError) as e:
        asm.add(chunk(0, 3, b"ab"))
    assert e.value.reason == fr.CHUNK_DUPLICATE
    assert asm.add(chunk(2, 3, b"ef")) is None
    assert asm.add(chunk(1, 3, b"cd")) == Chunked(MID, b"abcdef")


def test_a_chunk_after_its_message_completed_is_late_not_a_new_message() -> None:
    asm, drops = make()
    feed(asm, [chunk(0, 2, b"ab"), chunk(1, 2, b"cd")])
    for seq in (0, 1):
        with pytest.raises(GelfError) as e:
            asm.add(chunk(seq, 2, b"xx"))
        assert e.value.reason == fr.CHUNK_LATE
    assert asm.pending == 0 and drops == []


def test_a_single_chunk_message_completes_at_once() -> None:
    asm, _ = make()
    assert asm.add(chunk(0, 1, b"{}")) == Chunked(MID, b"{}")
    with pytest.raises(GelfError) as e:
        asm.add(chunk(0, 1, b"{}"))
    assert e.value.reason == fr.CHUNK_LATE


def test_128_chunks_are_taken_and_129_are_not() -> None:
    data = payload(128 * 10)
    asm, _ = make()
    results = feed(asm, [chunk(i, 128, data[i * 10:(i + 1) * 10]) for i in range(128)])
    assert results[-1] == Chunked(MID, data)
    for count in (129, 255, 0):
        with pytest.raises(GelfError) as e:
            asm.add(chunk(0, count, b"x", mid=b"Z" * 8))
        assert e.value.reason == fr.CHUNK_COUNT
    assert asm.pending == 0
    assert docker_chunks(payload(128 * CHUNK_DATA + 1)) == []  # the sender side of the same limit


@pytest.mark.parametrize(("datagram", "reason"), [
    (fr.CHUNK_MAGIC + MID[:5], fr.CHUNK_TRUNCATED),
    (fr.CHUNK_MAGIC + MID + b"\x00", fr.CHUNK_TRUNCATED),
    (chunk(3, 3, b"x"), fr.CHUNK_SEQUENCE),
    (chunk(200, 3, b"x"), fr.CHUNK_SEQUENCE),
])
def test_malformed_chunks_are_rejected(datagram: bytes, reason: str) -> None:
    asm, _ = make()
    with pytest.raises(GelfError) as e:
        asm.add(datagram)
    assert e.value.reason == reason and asm.pending == 0


def test_an_inconsistent_count_is_rejected_and_the_message_can_still_complete() -> None:
    asm, _ = make()
    asm.add(chunk(0, 2, b"ab"))
    with pytest.raises(GelfError) as e:
        asm.add(chunk(1, 3, b"cd"))
    assert e.value.reason == fr.CHUNK_INCONSISTENT
    assert asm.add(chunk(1, 2, b"cd")) == Chunked(MID, b"abcd")


def test_an_incomplete_message_times_out_after_5s_and_is_counted() -> None:
    clock = Clock()
    asm, drops = make(clock)
    asm.add(chunk(0, 3, b"ab"))
    clock.now += 4.9
    asm.add(chunk(1, 3, b"cd"))
    assert asm.expire() == 0 and asm.pending == 1
    clock.now += 0.1  # 5.0 s after the first chunk
    assert asm.expire() == 1
    assert drops == [fr.CHUNK_TIMEOUT] and asm.pending == 0 and asm.pending_bytes == 0
    with pytest.raises(GelfError) as e:
        asm.add(chunk(2, 3, b"ef"))  # the straggler does not start a message that could only time out
    assert e.value.reason == fr.CHUNK_LATE


def test_chunks_just_inside_the_timeout_complete() -> None:
    clock = Clock()
    asm, drops = make(clock)
    asm.add(chunk(1, 2, b"cd"))
    clock.now += 4.999
    assert asm.add(chunk(0, 2, b"ab")) == Chunked(MID, b"abcd")
    assert drops == []


def test_a_message_id_can_be_used_again_once_its_memory_expires() -> None:
    clock = Clock()
    asm, _ = make(clock)
    feed(asm, [chunk(0, 2, b"ab"), chunk(1, 2, b"cd")])
    clock.now += 5.0
    assert feed(asm, [chunk(0, 2, b"AB"), chunk(1, 2, b"CD")])[-1] == Chunked(MID, b"ABCD")


def test_adding_expires_old_messages_without_a_sweep() -> None:
    clock = Clock()
    asm, drops = make(clock)
    asm.add(chunk(0, 2, b"ab", mid=b"1" * 8))
    clock.now += 6
    asm.add(chunk(0, 2, b"ab", mid=b"2" * 8))
    assert drops == [fr.CHUNK_TIMEOUT] and asm.pending == 1


def test_a_chunk_flood_is_bounded_by_pending_messages_oldest_evicted() -> None:
    asm, drops = make(max_pending=50)
    for i in range(1000):
        asm.add(chunk(0, 2, b"x" * 100, mid=i.to_bytes(8, "big")))
        assert asm.pending <= 50
    assert drops == [fr.CHUNK_EVICTED] * 950
    assert asm.pending_bytes == 50 * 100
    newest = (999).to_bytes(8, "big")
    assert asm.add(chunk(1, 2, b"y", mid=newest)) == Chunked(newest, b"x" * 100 + b"y")  # the newest survive
    with pytest.raises(GelfError) as e:
        asm.add(chunk(1, 2, b"y", mid=(949).to_bytes(8, "big")))  # the last evicted is remembered
    assert e.value.reason == fr.CHUNK_LATE
    assert len(asm._done) <= 2 * 50  # and so is the memory of finished ids


def test_a_chunk_flood_is_bounded_by_pending_bytes() -> None:
    asm, drops = make(max_pending_bytes=10_000)
    for i in range(500):
        asm.add(chunk(0, 128, b"z" * 999, mid=i.to_bytes(8, "big")))
        assert asm.pending_bytes <= 10_000
    assert asm.pending == 10 and drops == [fr.CHUNK_EVICTED] * 490


def test_a_message_alone_over_the_byte_bound_is_dropped() -> None:
    asm, drops = make(max_pending_bytes=1000)
    assert asm.add(chunk(0, 3, b"a" * 600)) is None
    assert asm.add(chunk(1, 3, b"b" * 600)) is None  # evicted together with its message
    assert drops == [fr.CHUNK_EVICTED] and asm.pending == 0 and asm.pending_bytes == 0


def test_a_chunked_message_larger_than_the_message_limit_is_rejected() -> None:
    asm, _ = make(max_message_bytes=10_000)
    cap = fr.compressed_bound(10_000)
    asm.add(chunk(0, 3, b"a" * (cap // 2)))
    with pytest.raises(GelfError) as e:
        asm.add(chunk(1, 3, b"b" * (cap // 2 + 10)))
    assert e.value.reason == fr.OVERSIZED and asm.pending == 0 and asm.pending_bytes == 0


def test_abandon_forgets_incomplete_messages() -> None:
    asm, _ = make()
    asm.add(chunk(0, 2, b"ab", mid=b"1" * 8))
    asm.add(chunk(0, 2, b"ab", mid=b"2" * 8))
    assert asm.abandon() == 2 and asm.pending == 0 and asm.pending_bytes == 0


# --- TCP ------------------------------------------------------------------------------------------


def test_null_framing_splits_at_every_boundary() -> None:
    stream = b'{"a":1}\0{"b":2}\0\0{"c":3}\0'
    for cut in range(len(stream) + 1):
        f = NullFramer(100)
        frames1, o1 = f.feed(stream[:cut])
        frames2, o2 = f.feed(stream[cut:])
        assert frames1 + frames2 == [b'{"a":1}', b'{"b":2}', b'{"c":3}'] and o1 + o2 == 0
        assert f.finish() is None


def test_byte_at_a_time() -> None:
    f = NullFramer(100)
    out: list[bytes] = []
    for b in b'{"a":1}\0{"b":2}\0':
        out += f.feed(bytes([b]))[0]
    assert out == [b'{"a":1}', b'{"b":2}']


def test_an_oversized_frame_is_skipped_and_later_frames_kept() -> None:
    f = NullFramer(10)
    frames, oversized = f.feed(b"ok1\0" + b"x" * 11 + b"\0ok2\0")
    assert frames == [b"ok1", b"ok2"] and oversized == 1


def test_an_oversized_frame_across_many_reads_is_counted_once_and_not_buffered() -> None:
    f = NullFramer(10)
    assert f.feed(b"ok1\0" + b"x" * 8) == ([b"ok1"], 0)
    assert f.feed(b"x" * 5) == ([], 1)
    for _ in range(100):
        assert f.feed(b"y" * 1000) == ([], 0)
    assert len(f._buf) == 0  # skipping, holding nothing
    assert f.feed(b"yy\0ok2\0tail") == ([b"ok2"], 0)
    assert f.finish() == b"tail"


def test_a_frame_of_exactly_the_limit_is_kept() -> None:
    f = NullFramer(10)
    assert f.feed(b"x" * 10) == ([], 0)
    assert f.feed(b"\0") == ([b"x" * 10], 0)
