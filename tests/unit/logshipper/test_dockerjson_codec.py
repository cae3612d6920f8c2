"""The json-file codec: Docker's lines and escapes, 16 KiB partial lines, bad lines, fingerprints, checkpoints."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest

from hostwatch.core.timefmt import parse_rfc3339_ns, rfc3339_nano
from logshipper.codecs import dockerjson as dj

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "jsonfile"
FIXTURE_NS = 1_700_000_000_123_456_789  # 2023-11-14T22:13:20.123456789Z, the fixtures' clock
REF = dj.FileRef("0123456789abcdef", "/logs/c/c-json.log", "c" * 64)
CID = "0123456789abcdef" * 4


def decode(data: bytes, limit: int = 1 << 20, ref: dj.FileRef = REF) -> tuple[list, Counter[str], dj.Joiner, int]:
    lines, used = dj.split_lines(data)
    joiner, rejects = dj.Joiner(limit), Counter[str]()
    return dj.decode_lines(lines, 0, ref, joiner, rejects), rejects, joiner, used


def stdlib_messages(data: bytes) -> list[str]:
    """The reference: json.loads each line, join pieces without a trailing newline, per stream."""
    out, pending = [], {}
    for raw in data.splitlines():
        entry = json.loads(raw)
        text = pending.pop(entry["stream"], "") + entry["log"]
        if text.endswith("\n"):
            out.append(text[:-1])
        else:
            pending[entry["stream"]] = text
    return out + list(pending.values())


def line(log: str, stream: str = "stdout", ns: int = FIXTURE_NS) -> bytes:
    return json.dumps({"log": log, "stream": stream, "time": rfc3339_nano(ns=ns)}).encode() + b"\n"


def test_escaping_fixture_decodes_to_what_the_container_wrote() -> None:
    data = (FIXTURES / "escaping.expected").read_bytes()
    events, rejects, joiner, used = decode(data)
    events += joiner.flush()  # the unterminated last line Docker wrote at EOF
    assert not rejects and used == len(data)
    messages = [e.message for e in events]
    assert messages == stdlib_messages(data)
    assert messages[:4] == ['say "hi"', "C:\\path\\to", "a\tb", "<b>&amp;</b>"]
    assert "line\u2028sep\u2029par" in messages and messages[-1] == "tail" and "" in messages
    starts = [0]
    for raw in data.splitlines(keepends=True)[:-1]:
        starts.append(starts[-1] + len(raw))
    assert [e.offset for e in events] == starts
    assert [e.event_id for e in events] == [f"{REF.fingerprint}:{o}" for o in starts]
    assert {e.time_ns for e in events} == {FIXTURE_NS}
    assert {(e.input_type, e.stream, e.container_id, e.file_path) for e in events} == {
        ("docker_json", "stdout", REF.container_id, REF.path)}


def test_16k_pieces_are_joined_with_the_first_pieces_position() -> None:
    data = (FIXTURES / "long.expected").read_bytes()
    events, rejects, joiner, _ = decode(data)
    assert not rejects and not joiner.pending
    assert [e.message for e in events] == stdlib_messages(data)
    first, second = events
    assert len(first.message) == 20000 and first.offset == 0
    second_offset = sum(len(raw) for raw in data.splitlines(keepends=True)[:2])
    assert second.offset == second_offset and second.event_id == f"{REF.fingerprint}:{second_offset}"
    assert second.message.endswith("\ufffd\ufffd\ufffd")  # the euro sign Docker cut in two


def test_attrs_are_kept_and_times_without_nine_digits_parse() -> None:
    events, rejects, _, _ = decode((FIXTURES / "attrs.expected").read_bytes())
    assert not rejects
    assert [e.time_ns for e in events] == [1_700_000_001_000_000_000, 1_700_000_002_120_000_000]
    assert events[0].stream == "stderr"
    assert events[0].fields == {"docker.attrs": {"REGION": "eu\twest", "com.example.team": "a<b>",
                                                 "tag": "web/0123456789ab"}}


def test_a_partial_line_waits_for_its_stream_while_the_other_stream_goes_on() -> None:
    data = line("a" * 10, "stdout") + line("err\n", "stderr", FIXTURE_NS + 1) + line("b\n", "stdout", FIXTURE_NS + 2)
    events, rejects, joiner, _ = decode(data)
    assert not rejects and not joiner.pending
    assert [(e.message, e.stream, e.offset, e.time_ns) for e in events] == [
        ("err", "stderr", len(line("a" * 10)), FIXTURE_NS + 1), ("a" * 10 + "b", "stdout", 0, FIXTURE_NS)]


def test_a_partial_line_continues_in_the_next_file() -> None:
    joiner, rejects = dj.Joiner(1 << 20), Counter[str]()
    old, new = dj.FileRef("old", "/l.1", None), dj.FileRef("new", "/l", None)
    before, first = line("z\n"), line("x" * 100, ns=FIXTURE_NS)
    assert dj.decode_lines(dj.split_lines(before + first)[0], 5, old, joiner, rejects)[0].message == "z"
    assert [p.offset for p in joiner.started] == [5 + len(before)]
    [event] = dj.decode_lines(dj.split_lines(line("y\n"))[0], 0, new, joiner, rejects)
    assert (event.message, event.event_id, event.file_path) == ("x" * 100 + "y", f"old:{5 + len(before)}", "/l.1")


def test_oversized_messages_and_partials_are_rejected_and_reading_goes_on() -> None:
    data = (line("x" * 300 + "\n") + line("p" * 60) + line("p" * 60) + line("p" * 60 + "\n")
            + line("ok\n") + line("é" * 60 + "\n"))
    events, rejects, joiner, _ = decode(data, limit=150)
    assert rejects == Counter({dj.OVERSIZED: 2})  # the long line; the partial once its pieces exceed 150
    assert [e.message for e in events] == ["ok", "é" * 60]  # 120 bytes of UTF-8 in a 130-byte line: kept
    assert not joiner.pending


@pytest.mark.parametrize(("raw", "reason"), [
    (b"not json", dj.INVALID_JSON),
    (b'{"log":"cut', dj.INVALID_JSON),
    (b"", dj.INVALID_JSON),
    (b'["log"]', dj.INVALID_JSON),
    (b'{"log":"caf\xe9\\n","time":"2023-11-14T22:13:20Z"}', dj.INVALID_UTF8),
    (b'{"stream":"stdout","time":"2023-11-14T22:13:20Z"}', dj.MISSING_LOG),
    (b'{"log":7,"time":"2023-11-14T22:13:20Z"}', dj.MISSING_LOG),
    (b'{"log":"x\\n","time":"yesterday"}', dj.INVALID_TIME),
    (b'{"log":"x\\n"}', dj.INVALID_TIME),
    (b'{"log":"x\\n","time":"0001-01-01T00:00:00Z"}', dj.INVALID_TIME),
])
def test_bad_lines_are_counted_by_reason_and_skipped(raw: bytes, reason: str) -> None:
    good = line("before\n")
    data = good + raw + b"\n" + line("after\n")
    events, rejects, _, _ = decode(data)
    assert rejects == Counter({reason: 1})
    assert [(e.message, e.offset) for e in events] == [("before", 0), ("after", len(good) + len(raw) + 1)]


@pytest.mark.parametrize("text", [
    "2023-11-14T22:13:20Z", "2023-11-14T22:13:20.1Z", "2023-11-14T22:13:20.123456789Z", "2023-11-14T22:13:20.000001Z",
    "2023-11-15T00:13:20.5+02:00", "2023-11-14T21:43:20-00:30", "1970-01-01T00:00:00.000000001Z",
])
def test_time_parse_agrees_with_the_core_parser(text: str) -> None:
    assert dj.parse_time_ns(text) == parse_rfc3339_ns(text)
    assert dj.parse_time_ns(text) == dj.parse_time_ns(text)  # again, now through the cached second


def test_time_parse_is_exact_for_random_nanoseconds() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        ns = rng.randrange(0, 4_102_444_800 * 10**9)
        assert dj.parse_time_ns(rfc3339_nano(ns=ns)) == ns


@pytest.mark.parametrize("text", ["2023-11-14 22:13:20Z", "2023-11-14T22:13:20.12a4Z", "2023-13-14T22:13:20Z",
                                  "2023-11-14T22:13:20.5+0x:00", "yesterday", "0001-01-01T00:00:00Z", ""])
def test_invalid_times_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        dj.parse_time_ns(text)


def test_fingerprint_is_the_first_line_capped() -> None:
    a = line("first\n", ns=1) + line("second\n")
    b = line("first\n", ns=1) + line("other\n")
    assert dj.fingerprint(a, 4096) == dj.fingerprint(b, 4096)  # a copy: same first line
    assert dj.fingerprint(line("first\n", ns=2), 4096) != dj.fingerprint(a, 4096)  # other time, other file
    assert dj.fingerprint(a[:30], 4096) is None  # first line still being written
    long_a, long_b = line("L" * 5000 + "a\n"), line("L" * 5000 + "b\n")
    assert dj.fingerprint(long_a, 4096) == dj.fingerprint(long_b, 4096)  # beyond the cap only the cap counts
    assert dj.fingerprint(long_a[:4095], 4096) is None and dj.fingerprint(long_a[:4096], 4096) is not None
    assert len(dj.fingerprint(a, 4096) or "") == 2 * dj.FINGERPRINT_DIGEST_BYTES


def test_paths_give_rotation_index_and_container_id() -> None:
    live = f"/var/lib/docker/containers/{CID}/{CID}-json.log"
    assert dj.split_rotated(live) == (live, 0)
    assert dj.split_rotated(live + ".12") == (live, 12)
    assert dj.container_id_from_path(live + ".3") == CID
    assert dj.container_id_from_path(f"/state/{CID}/other.log") == CID
    assert dj.container_id_from_path("/tmp/x/app-json.log") is None


def test_checkpoints_round_trip_and_bad_documents_raise() -> None:
    cps = [dj.Checkpoint("ab", "/x-json.log.1", 10), dj.Checkpoint("cd", "/x-json.log", 0)]
    assert dj.load_checkpoints(dj.dump_checkpoints(cps)) == cps
    for bad in (b"", b"[]", b'{"version":2,"checkpoints":[]}', b'{"version":1}',
                b'{"version":1,"checkpoints":[{"fingerprint":"a","path":"/p","offset":-1}]}',
                b'{"version":1,"checkpoints":[{"fingerprint":"a","path":"/p","offset":1.5}]}', b"\xff"):
        with pytest.raises(ValueError):
            dj.load_checkpoints(bad)


def _mutate(rng: random.Random, raw: bytes) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:
            del data[pos % len(data)]
        elif op == 1:
            data[pos:pos] = bytes([rng.randrange(256)])
        elif op == 2 and data:
            data[pos % len(data)] = rng.choice(b'{}[]":,\\\x00\xff\xc3u0')
        else:
            data[pos:pos] = rng.choice([b'"log":', b'"time":"', b"\\u00", b"\\ud800", b'"stream":1', b"1e999"])
    return bytes(data).replace(b"\n", b" ")


def test_fuzz_random_and_mutated_lines_never_raise() -> None:
    rng = random.Random(1234)
    seeds = [line(f"msg {i}\n") for i in range(20)] + [line("p" * 30), line("x\n", "stderr")]
    seeds += (FIXTURES / "escaping.expected").read_bytes().splitlines(keepends=True)
    seeds += (FIXTURES / "attrs.expected").read_bytes().splitlines(keepends=True)
    total = Counter[str]()
    joiner = dj.Joiner(200)
    for _ in range(300):
        chunk = []
        for _ in range(20):
            pick = rng.random()
            if pick < 0.4:
                chunk.append(_mutate(rng, rng.choice(seeds).rstrip(b"\n")))
            elif pick < 0.5:
                chunk.append(bytes(rng.randrange(256) for _ in range(rng.randrange(60))).replace(b"\n", b""))
            else:
                chunk.append(rng.choice(seeds).rstrip(b"\n"))
        events = dj.decode_lines(chunk, 0, REF, joiner, total)
        assert all(isinstance(e.message, str) and isinstance(e.time_ns, int) for e in events)
        assert all(len(e.message.encode()) <= 200 for e in events)
    joiner.flush()
    assert set(total) <= {dj.INVALID_JSON, dj.INVALID_UTF8, dj.MISSING_LOG, dj.INVALID_TIME, dj.OVERSIZED}
    assert total[dj.INVALID_JSON] > 100  # the mutations did produce bad lines


def test_fuzz_chunk_boundaries_do_not_change_events() -> None:
    """Decoding a file in random chunks (as the tailer reads it) gives the same events as in one go."""
    rng = random.Random(99)
    parts = []
    for i in range(400):
        pick = rng.random()
        if pick < 0.1:
            parts.append(_mutate(rng, line(f"m{i}\n").rstrip(b"\n")) + b"\n")
        elif pick < 0.25:
            parts.append(line("piece" * rng.randint(1, 5), rng.choice(["stdout", "stderr"]), FIXTURE_NS + i))
        else:
            parts.append(line(f"m{i}\n", rng.choice(["stdout", "stderr"]), FIXTURE_NS + i))
    data = b"".join(parts)
    whole, whole_rejects, joiner, _ = decode(data)
    whole += joiner.flush()
    joiner, rejects, events, offset = dj.Joiner(1 << 20), Counter[str](), [], 0
    while offset < len(data):
        lines, used = dj.split_lines(data[offset:offset + rng.randint(1, 3000)])
        events += dj.decode_lines(lines, offset, REF, joiner, rejects)
        offset += used
    events += joiner.flush()
    assert [(e.message, e.offset, e.stream, e.time_ns) for e in events] == [
        (e.message, e.offset, e.stream, e.time_ns) for e in whole]
    assert rejects == whole_rejects and len(whole) > 250
