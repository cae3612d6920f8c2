"""docker_json's column path: the same events (and the same record bytes) as the line-by-line decoder,
and every chunk it cannot hold left to that decoder."""

from __future__ import annotations

import json
import random
from collections import Counter

import orjson
import pytest

from hostwatch.core.events import DOCKER_JSON, LogEvent
from hostwatch.core.timefmt import rfc3339_nano
from logshipper import ecs
from logshipper.codecs import dockerjson as dj
from logshipper.codecs.dockerjson_lines import LineBatch, decode_chunk

REF = dj.FileRef("0123456789abcdef", "/logs/c%d/c-json.log", "c" * 64)
NS = 1_700_000_000_123_456_789
WHOLE_SECOND = 1_700_000_000_000_000_000
MESSAGES = ['say "hi"', "C:\\path\\to", "a\tb", "<b>&amp;</b>", "line\u2028sep", "caf\u00e9 \U0001f600", "", "x" * 150,
            "ctrl \x01\x1f", "50% done"]


def line(log: str, stream: str = "stdout", ns: int = NS, **extra: object) -> bytes:
    return json.dumps({"log": log, "stream": stream, "time": rfc3339_nano(ns=ns), **extra}).encode() + b"\n"


def ordinary(n: int = 40) -> bytes:
    """Complete lines of both streams; Docker's times trim trailing zeros, so their lengths vary."""
    return b"".join(line(MESSAGES[i % len(MESSAGES)] + "\n", "stderr" if i % 3 == 0 else "stdout",
                         WHOLE_SECOND + i * 10 ** (i % 10)) for i in range(n))


def both(data: bytes, offset: int = 0, limit: int = 1 << 20) -> tuple[LineBatch | list[LogEvent], list[LogEvent],
                                                                      Counter[str], Counter[str]]:
    """decode_chunk's result and what decode_lines makes of the same lines, with their rejects."""
    lines, _ = dj.split_lines(data)
    fast_rejects, slow_rejects = Counter[str](), Counter[str]()
    fast = decode_chunk(lines, offset, REF, dj.Joiner(limit), fast_rejects)
    slow = dj.decode_lines(lines, offset, REF, dj.Joiner(limit), slow_rejects)
    return fast, slow, fast_rejects, slow_rejects


def test_an_ordinary_chunk_becomes_columns_holding_the_events_of_the_line_decoder() -> None:
    fast, slow, fast_rejects, slow_rejects = both(ordinary(), offset=1000)
    assert isinstance(fast, LineBatch) and fast.columnar and len(fast) == 40
    assert fast.oldest_ns == min(e.time_ns for e in slow)
    assert fast.events == slow and not fast.columnar  # built on first use, then they are the batch
    assert not fast_rejects and not slow_rejects
    assert fast.source == DOCKER_JSON and fast.ack is None


def test_rendered_records_are_the_bytes_the_event_encoder_makes() -> None:
    fast, slow, _, _ = both(ordinary())
    assert isinstance(fast, LineBatch)
    labels = {"com.docker.compose.service": "web%s", "app": "x\"y"}
    values = ecs.render_lines(fast, "node-%d", 1_796_112_000_000_000_000, 77, "d" * 64, "web", "busybox", labels)
    for e in slow:
        e.container_id, e.container_name, e.image, e.labels = "d" * 64, "web", "busybox", labels
    assert values == [ecs.encode(e, "node-%d", 1_796_112_000_000_000_000, 77 + i) for i, e in enumerate(slow)]
    bare = ecs.render_lines(fast, "h", 1, 0, None)  # a file outside Docker's layout: no container at all
    assert "container" not in orjson.loads(bare[0]) and orjson.loads(bare[0])["log"]["offset"] == 0


def test_one_stream_and_many_streams_render_alike() -> None:
    data = b"".join(line(f"m{i}\n", "stdout", NS + i) for i in range(5))
    fast, slow, _, _ = both(data)
    assert isinstance(fast, LineBatch) and set(fast.streams) == {"stdout"}
    assert ecs.render_lines(fast, "h", 5, 9, REF.container_id) == [ecs.encode(e, "h", 5, 9 + i)
                                                                    for i, e in enumerate(slow)]


@pytest.mark.parametrize("odd", [
    pytest.param(line("a Docker partial piece"), id="partial"),
    pytest.param(line("x\n", attrs={"tag": "web"}), id="attrs"),
    pytest.param(line("x\n", extra=1), id="extra-key"),
    pytest.param(b"not json\n", id="bad-json"),
    pytest.param(b'{"log":"caf\xe9\\n","stream":"stdout","time":"2023-11-14T22:13:20Z"}\n', id="bad-utf8"),
    pytest.param(b'{"log":"x\\n","stream":"stdout"}\n', id="no-time"),
    pytest.param(b'{"log":"x\\n","time":"2023-11-14T22:13:20Z"}\n', id="no-stream"),
    pytest.param(b'{"log":"x\\n","stream":7,"time":"2023-11-14T22:13:20Z"}\n', id="int-stream"),
    pytest.param(b'{"log":7,"stream":"stdout","time":"2023-11-14T22:13:20Z"}\n', id="int-log"),
    pytest.param(b'{"log":"x\\n","stream":"stdout","time":17}\n', id="int-time"),
    pytest.param(b'{"log":"x\\n","stream":"stdout","time":"2023-11-15T00:13:20.5+02:00"}\n', id="offset-time"),
    pytest.param(b'{"log":"x\\n","stream":"stdout","time":"2023-11-14t22:13:20.5Z"}\n', id="lowercase-t"),
    pytest.param(b'{"log":"x\\n","stream":"stdout","time":"2023-11-14T23:59:60Z"}\n', id="leap-second"),
    pytest.param(b'{"log":"x\\n","stream":"stdout","time":"2023-13-14T22:13:20Z"}\n', id="month-13"),
    pytest.param(b'{"log":"x\\n","stream":"stdout","time":"0001-01-01T00:00:00Z"}\n', id="zero-time"),
    pytest.param(b'{"log":"x\\n","stream":"stdout","time":"2023-11-14T22:13:20.1234567890Z"}\n', id="ten-digits"),
    pytest.param(b'{"log":"x\\n","stream":"stdout","time":"2023-11-14T22:13:20.Z"}\n', id="empty-fraction"),
    pytest.param(b'{"log":"x\\n","stream":"stdout","time":"2023-11-14T22:13:20+"}\n', id="no-zone"),
    pytest.param(b'{"log":"x\\n","stream":"stdout","time":"2023-11-14T22:13:20.12x4Z"}\n', id="letter-in-fraction"),
    pytest.param(line("y" * 400 + "\n"), id="oversized"),
])
def test_a_chunk_the_columns_cannot_hold_goes_line_by_line(odd: bytes) -> None:
    assert isinstance(both(ordinary(10) + ordinary(5), limit=300)[0], LineBatch)  # without the odd line
    data = ordinary(10) + odd + ordinary(5)
    fast, slow, fast_rejects, slow_rejects = both(data, limit=300)
    assert isinstance(fast, list)
    assert fast == slow and fast_rejects == slow_rejects


def test_a_partial_line_pending_from_the_chunk_before_keeps_the_line_path() -> None:
    joiner, rejects = dj.Joiner(1 << 20), Counter[str]()
    first, _ = dj.split_lines(line("start of it"))
    assert decode_chunk(first, 0, REF, joiner, rejects) == [] and joiner.pending
    rest, _ = dj.split_lines(line(" and its end\n") + line("next\n"))
    events = decode_chunk(rest, 100, REF, joiner, rejects)
    assert isinstance(events, list)
    assert [e.message for e in events] == ["start of it and its end", "next"]


def _mutate(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 3)):
        pos = rng.randrange(len(data) + 1)
        if rng.random() < 0.5 and data:
            data[pos % len(data)] = rng.choice(b'{}[]":,.Z\\\x00\xff\xc3u0t+')
        else:
            data[pos:pos] = rng.choice([b'"log":', b'"time":"', b"\\u00", b"\\ud800", b'"stream":1', b"1e999",
                                        b"\\n", b".5", b"Z"])
    return bytes(data).replace(b"\n", b" ")


def test_fuzz_either_path_gives_the_line_decoders_events_and_rejects() -> None:
    rng = random.Random(4321)
    paths = Counter[str]()
    for _ in range(400):
        parts = []
        for _ in range(rng.randint(1, 30)):
            good = line(rng.choice(MESSAGES) + "\n", rng.choice(["stdout", "stderr"]), NS + rng.randrange(10**12))
            parts.append(_mutate(rng, good.rstrip(b"\n")) + b"\n" if rng.random() < 0.03 else good)
        fast, slow, fast_rejects, slow_rejects = both(b"".join(parts), offset=rng.randrange(10**6), limit=200)
        paths["columns" if isinstance(fast, LineBatch) else "lines"] += 1
        events = fast.events if isinstance(fast, LineBatch) else fast
        assert events == slow and fast_rejects == slow_rejects
    assert paths["columns"] > 100 and paths["lines"] > 50


@pytest.mark.parametrize(("time", "columns"), [
    ("0999-12-31T23:59:59.5Z", False),  # a year ecs.timestamp would not print with four digits
    ("1000-01-01T00:00:00Z", True),
    ("2023-02-29T12:00:00Z", False),
    ("2024-02-29T12:00:00.000000001Z", True),
    ("1900-02-29T12:00:00Z", False),
    ("2000-02-29T12:00:00Z", True),
    ("1969-12-31T23:59:59.999999999Z", True),  # before the epoch
    ("9999-12-31T23:59:59.9Z", True),
    ("2023-11-14T24:00:00Z", False),
    ("2023-11-14T22:60:00Z", False),
    ("2023-11-31T22:00:00Z", False),
    ("2023-11-14 22:13:20Z", False),
])
def test_times_the_columns_take_are_exactly_the_canonical_ones(time: str, columns: bool) -> None:
    data = b'{"log":"x\\n","stream":"stdout","time":"%s"}\n' % time.encode() + ordinary(3)
    fast, slow, fast_rejects, slow_rejects = both(data)
    assert isinstance(fast, LineBatch) is columns
    events = fast.events if isinstance(fast, LineBatch) else fast
    assert events == slow and fast_rejects == slow_rejects
    if isinstance(fast, LineBatch):
        assert fast.oldest_ns == min(e.time_ns for e in slow)


def test_records_spell_every_message_the_way_orjson_does() -> None:
    rng = random.Random(99)
    pool = [chr(c) for c in range(0x20)] + ['"', "\\", "/", "\x7f", "é", "\u2028", "\u2029", "\U0001f600", "<", "&",
                                            "%", "a", " "]
    written: set[str] = set()
    for _ in range(200):
        msgs = ["".join(rng.choice(pool) for _ in range(rng.randrange(0, 40))) for _ in range(rng.randrange(1, 20))]
        written.update(*msgs)
        data = b"".join(line(m + "\n", rng.choice(["stdout", "stderr"]), NS + i) for i, m in enumerate(msgs))
        fast, slow, _, _ = both(data, offset=rng.randrange(10**9))
        assert isinstance(fast, LineBatch)
        seq = rng.randrange(10**18)
        assert ecs.render_lines(fast, "h%s", 7, seq, "c" * 64) == [
            ecs.encode(e, "h%s", 7, seq + i) for i, e in enumerate(slow)]
    assert written == set(pool)  # every character of the pool was rendered
