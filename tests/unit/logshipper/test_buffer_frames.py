"""Record batches as runs, and the disk buffer's frames: compressed, and the format before them still read."""

from __future__ import annotations

import struct
import zlib

import msgpack
import pytest

from logshipper.buffer import segments
from logshipper.buffer.base import Record, RecordBatch, Run, runs_of

RECORDS = [Record("t", b"a", b"1"), Record("t", b"a", b"2"), Record("t", None, b"3"), Record("u", None, b"4"),
           Record("t", b"a", b"5")]


def body_of(frame: list[bytes]) -> bytes:
    header, body = frame[0], b"".join(frame[1:])
    length, crc = segments.HEADER.unpack(header)
    assert length == len(body) and crc == zlib.crc32(body)
    return body


def test_records_group_into_runs_in_order() -> None:
    runs = runs_of(RECORDS)
    assert [(r.topic, r.key, r.values) for r in runs] == [
        ("t", b"a", [b"1", b"2"]), ("t", None, [b"3"]), ("u", None, [b"4"]), ("t", b"a", [b"5"])]
    batch = RecordBatch(None, None, "gelf", runs=runs).sized()
    assert len(batch) == 5 and batch.nbytes == 5 + 3 * 1 + 5 * 1
    assert batch.records == RECORDS and batch.runs == runs_of(RECORDS)


def test_records_of_a_batch_may_be_changed_until_it_is_pushed() -> None:
    batch = RecordBatch(None, None, "gelf", runs=runs_of(RECORDS))
    batch.records[0] = Record("t", b"a", b"changed")
    assert batch.runs[0].values == [b"changed", b"2"] and batch.sized().nbytes == 11 + 3 + 5


def test_forgetting_values_keeps_what_release_needs() -> None:
    batch = RecordBatch(list(RECORDS), None, "gelf", 7).sized()
    nbytes = batch.nbytes
    batch.forget_values()
    assert (len(batch), batch.nbytes, batch.oldest_ns, batch.runs) == (5, nbytes, 7, [])


def test_a_frame_is_compressed_and_decodes_to_the_same_batch() -> None:
    values = [b'{"message":"GET /api/items/%d","host":{"name":"node-1"},"container":{"id":"%s"}}' % (i, b"c" * 64)
              for i in range(500)]
    batch = RecordBatch(None, None, "docker_json", 42, runs=[Run("logs", b"c" * 64, values), Run("x", None, [b"y"])])
    batch.sized()
    body = body_of(segments.encode(batch))
    assert len(body) * 5 < batch.nbytes  # ECS documents of one file repeat most of their text
    back = segments.decode(body)
    assert (back.source, back.oldest_ns, back.nbytes, len(back)) == ("docker_json", 42, batch.nbytes, 501)
    assert back.runs == batch.runs and back.ack is None


@pytest.mark.parametrize("topic", ["one-topic", None])
def test_frames_written_before_runs_still_decode(topic: str | None) -> None:
    """[source, topic, [[key, value], ...]] or [source, nil, [[topic, key, value], ...]], uncompressed."""
    rows = [(b"k", b"v1"), (None, b"v2")] if topic else [("t1", b"k", b"v1"), ("t2", None, b"v2")]
    payload = msgpack.packb(("journald", topic, rows))
    body = segments.META.pack(2, 9, 100) + payload
    back = segments.decode(body)
    expected = ([Record("one-topic", b"k", b"v1"), Record("one-topic", None, b"v2")] if topic
                else [Record("t1", b"k", b"v1"), Record("t2", None, b"v2")])
    assert back.records == expected and (back.source, back.oldest_ns, back.nbytes) == ("journald", 9, 100)


@pytest.mark.parametrize("damage", [b"L\x00\x00\x10\x00garbage", b"L", b"\x92\xa1x", b"\xc1"])
def test_an_undecodable_body_is_a_corrupt_frame(damage: bytes) -> None:
    with pytest.raises(segments.CorruptFrame):
        segments.decode(segments.META.pack(1, 0, 1) + damage)
    with pytest.raises(segments.CorruptFrame):
        segments.decode(struct.pack("<I", 1))  # shorter than the meta
