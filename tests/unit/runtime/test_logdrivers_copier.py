"""Copier: Docker's line splitting, 16 KiB pieces and partial metadata."""

from __future__ import annotations

import itertools
import random
import re

import pytest

from runtime.logdrivers import Copier, LogMessage

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def run(data: bytes | list[bytes], max_line: int = 16384, eof: bool = True) -> list[LogMessage]:
    out: list[LogMessage] = []
    ticks = itertools.count(1000)
    copier = Copier("stdout", out.append, max_line, clock=lambda: next(ticks))
    for chunk in [data] if isinstance(data, bytes) else data:
        copier.feed(chunk)
    if eof:
        copier.flush()
    return out


def test_lines_are_split_on_newline_without_it() -> None:
    msgs = run(b"one\ntwo\n\nthree\n")
    assert [m.line for m in msgs] == [b"one", b"two", b"", b"three"]
    assert all(m.stream == "stdout" and not m.partial and not m.partial_id for m in msgs)
    assert [m.timestamp_ns for m in msgs] == [1000, 1001, 1002, 1003]


def test_a_line_can_arrive_in_many_reads() -> None:
    msgs = run([b"he", b"llo\nwor", b"ld", b"\n"])
    assert [m.line for m in msgs] == [b"hello", b"world"]


def test_20000_byte_line_is_split_into_16384_and_rest() -> None:
    line = bytes(random.Random(1).randrange(32, 127) for _ in range(20000))
    msgs = run(line + b"\nnext\n")
    first, last, nxt = msgs
    assert first.line == line[:16384] and last.line == line[16384:]
    assert (first.partial, first.partial_ordinal, first.partial_last) == (True, 1, False)
    assert (last.partial, last.partial_ordinal, last.partial_last) == (False, 2, True)
    assert HEX64.match(first.partial_id) and last.partial_id == first.partial_id
    assert first.timestamp_ns == last.timestamp_ns  # pieces share the first piece's time
    assert nxt.line == b"next" and not nxt.partial_id and nxt.timestamp_ns > first.timestamp_ns


def test_three_pieces_count_ordinals() -> None:
    msgs = run(b"z" * 40000 + b"\n")
    assert [len(m.line) for m in msgs] == [16384, 16384, 40000 - 2 * 16384]
    assert [m.partial_ordinal for m in msgs] == [1, 2, 3]
    assert [m.partial for m in msgs] == [True, True, False]
    assert [m.partial_last for m in msgs] == [False, False, True]
    assert len({m.partial_id for m in msgs}) == 1


def test_line_of_exactly_max_line_gives_an_empty_last_piece() -> None:
    # Docker's buffer fills up before the newline is seen: full piece, then "" with last=true.
    msgs = run(b"q" * 16384 + b"\n")
    assert [(len(m.line), m.partial, m.partial_last) for m in msgs] == [(16384, True, False), (0, False, True)]


def test_line_one_byte_shorter_than_max_line_is_whole() -> None:
    msgs = run(b"q" * 16383 + b"\n")
    assert len(msgs) == 1 and len(msgs[0].line) == 16383 and not msgs[0].partial_id


def test_each_split_line_gets_a_new_partial_id() -> None:
    msgs = run(b"a" * 20 + b"\n" + b"b" * 20 + b"\n", max_line=8)
    ids = [m.partial_id for m in msgs]
    assert len(msgs) == 6 and len(set(ids)) == 2
    assert [m.line for m in msgs] == [b"a" * 8, b"a" * 8, b"a" * 4, b"b" * 8, b"b" * 8, b"b" * 4]


def test_unterminated_rest_at_eof_is_a_partial_piece() -> None:
    msgs = run(b"done\ntail")
    assert msgs[1].line == b"tail"
    assert (msgs[1].partial, msgs[1].partial_ordinal, msgs[1].partial_last) == (True, 1, False)
    assert HEX64.match(msgs[1].partial_id)


def test_eof_after_pieces_continues_the_ordinals() -> None:
    msgs = run(b"y" * 20, max_line=8)
    assert [(m.line, m.partial_ordinal, m.partial) for m in msgs] == [
        (b"y" * 8, 1, True),
        (b"y" * 8, 2, True),
        (b"y" * 4, 3, True),
    ]


def test_nothing_left_means_nothing_at_eof() -> None:
    assert run(b"a\n") == run(b"a\n", eof=False)
    assert run(b"") == []


def test_without_flush_the_unterminated_rest_is_held() -> None:
    assert [m.line for m in run(b"a\nb", eof=False)] == [b"a"]


@pytest.mark.parametrize("seed", range(5))
def test_read_sizes_do_not_change_the_result(seed: int) -> None:
    rng = random.Random(seed)
    data = (
        b"".join(
            bytes(rng.choice(b"abc ") for _ in range(rng.choice([0, 1, 7, 8, 9, 16, 17, 30]))) + b"\n"
            for _ in range(200)
        )
        + b"trailing"
    )
    chunks, pos = [], 0
    while pos < len(data):
        n = rng.randint(1, 40)
        chunks.append(data[pos : pos + n])
        pos += n

    def shape(msgs: list[LogMessage]) -> list[tuple[bytes, bool, int, bool]]:
        return [(m.line, m.partial, m.partial_ordinal, m.partial_last) for m in msgs]

    assert shape(run(chunks, max_line=8)) == shape(run(data, max_line=8))


def test_max_line_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Copier("stdout", lambda m: None, max_line=0)
