"""GELF format: decompression (gzip, zlib, plain, bombs), GELF JSON -> LogEvent, and the decoder over
the bundled runtime's gelf driver's own datagrams (byte-compatible with Docker's)."""

from __future__ import annotations

import gzip
import random
import zlib

import orjson
import pytest

from hostwatch.core.events import GELF
from logshipper import ecs
from logshipper.codecs import gelf as g
from logshipper.codecs import gelf_framing as fr
from logshipper.codecs.gelf import GelfDecoder, decompress, parse, payload_id
from logshipper.codecs.gelf_framing import GelfError
from runtime.logdrivers import LogInfo, LogMessage
from runtime.logdrivers.gelf import chunk, compress, encode_message, extra_fields
from runtime.logdrivers.jsonenc import go_json_object

CID = "1234567890ab" + "cdefcdef" * 6 + "0000"
TS_NS = 1_700_000_000_123_456_789
RECEIVED_NS = 1_800_000_000_000_000_000
LIMIT = 1 << 20


def docker_info(**opts: str) -> LogInfo:
    return LogInfo(container_id=CID, container_name="frontend", image_name="nginx:1.25",
                   image_id="sha256:" + "3" * 64, command=["nginx", "-g", "daemon off;"],
                   created="2024-02-03T04:05:06.789Z", labels={"com.example.tier": "edge"}, env=["_RAW=1"],
                   opts=dict(opts))


def docker_payload(line: bytes, stream: str = "stdout", **opts: str) -> bytes:
    return encode_message("node-7", go_json_object(extra_fields(docker_info(**opts))), LogMessage(line, stream, TS_NS))


def decoder(**kw: object) -> GelfDecoder:
    args: dict[str, object] = dict(max_message_bytes=LIMIT, chunk_timeout=5.0, max_pending_messages=100,
                                   max_pending_bytes=1 << 26, now_ns=lambda: RECEIVED_NS)
    args.update(kw)
    return GelfDecoder(**args)  # type: ignore[arg-type]


def gelf(**fields: object) -> bytes:
    doc: dict[str, object] = {"version": "1.1", "host": "h", "short_message": "hello"}
    doc.update(fields)
    return orjson.dumps({k: v for k, v in doc.items() if v is not None})


# --- decompression --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gzip", "zlib", "none"])
def test_each_compression_of_dockers_driver_is_detected(kind: str) -> None:
    body = docker_payload(b"GET / 200")
    wire = compress(body, kind, 1)
    assert wire[:2] == {"gzip": b"\x1f\x8b", "zlib": b"\x78\x01", "none": b'{"'}[kind]
    assert decompress(wire, LIMIT) == body


@pytest.mark.parametrize("level", [0, 1, 5, 9])
def test_every_zlib_level_header_is_detected(level: int) -> None:
    body = gelf()
    assert decompress(zlib.compress(body, level), LIMIT) == body


def test_concatenated_gzip_members_are_one_payload() -> None:
    body = gelf()
    assert decompress(gzip.compress(body[:10]) + gzip.compress(body[10:]), LIMIT) == body


def test_leading_whitespace_is_still_plain_json() -> None:
    assert decompress(b"  \n" + gelf(), LIMIT) == b"  \n" + gelf()


@pytest.mark.parametrize("kind", ["gzip", "zlib"])
def test_a_zip_bomb_is_rejected_without_inflating_it(kind: str) -> None:
    bomb = compress(b"{" + b" " * (64 << 20), kind, 9)  # 64 MiB of spaces in ~64 KiB
    assert len(bomb) < 1 << 20
    with pytest.raises(GelfError) as e:
        decompress(bomb, LIMIT)
    assert e.value.reason == fr.OVERSIZED


def test_a_payload_of_exactly_the_limit_is_taken() -> None:
    body = gelf(short_message="x" * 1000)
    assert decompress(gzip.compress(body), len(body)) == body
    with pytest.raises(GelfError):
        decompress(gzip.compress(body), len(body) - 1)
    with pytest.raises(GelfError) as e:
        decompress(body, len(body) - 1)
    assert e.value.reason == fr.OVERSIZED


@pytest.mark.parametrize(("wire", "reason"), [
    (b"", g.UNKNOWN_COMPRESSION),
    (b"\x00\x01\x02", g.UNKNOWN_COMPRESSION),
    (b"\x78\x02junk", g.UNKNOWN_COMPRESSION),  # 0x78 without a valid zlib header check
    (b"[1,2]", g.UNKNOWN_COMPRESSION),
    (gzip.compress(b'{"a":1}')[:-6], g.CORRUPT_COMPRESSION),  # truncated
    (zlib.compress(b'{"a":1}')[:-3], g.CORRUPT_COMPRESSION),
    (b"\x1f\x8b" + b"\x00" * 20, g.CORRUPT_COMPRESSION),
    (b"\x78\x9c" + b"\xff" * 20, g.CORRUPT_COMPRESSION),
    (zlib.compress(b'{"a":1}') + b"trailing", g.CORRUPT_COMPRESSION),
    (gzip.compress(b'{"a":1}') + b"trailing", g.CORRUPT_COMPRESSION),
])
def test_bad_payloads_are_rejected_with_a_reason(wire: bytes, reason: str) -> None:
    with pytest.raises(GelfError) as e:
        decompress(wire, LIMIT)
    assert e.value.reason == reason


# --- GELF JSON -> LogEvent -----------------------------------------------------------------------


def test_dockers_message_maps_onto_the_event() -> None:
    body = docker_payload(b"GET / 200", labels="com.example.tier", env="_RAW")
    ev = parse(body, "the-id", RECEIVED_NS)
    assert ev.message == "GET / 200" and ev.input_type == GELF and ev.event_id == "the-id"
    assert ev.time_ns == TS_NS // 1_000_000 * 1_000_000  # Docker sends milliseconds; they are kept exactly
    assert (ev.container_id, ev.container_name, ev.image) == (CID, "frontend", "nginx:1.25")
    assert ev.level == "info" and ev.stream == "stdout"
    assert ev.fields == {
        "log.syslog.hostname": "node-7",
        "log.syslog.severity.code": 6,
        "gelf.command": "nginx -g daemon off;",
        "gelf.created": "2024-02-03T04:05:06.789Z",
        "gelf.image_id": "sha256:" + "3" * 64,
        "gelf.tag": CID[:12],
        "gelf.com_example_tier": "edge",  # Docker's label extra, de-dotted
        "gelf.RAW": "1",
    }


def test_stderr_is_level_3_and_stream_stderr() -> None:
    ev = parse(docker_payload(b"oops", "stderr"), "x", RECEIVED_NS)
    assert (ev.level, ev.stream) == ("err", "stderr")


def test_the_ecs_document_of_a_docker_message() -> None:
    ev = parse(docker_payload(b"GET / 200"), "abc", RECEIVED_NS)
    doc = ecs.document(ev, "shipper-host", created_ns=RECEIVED_NS)
    assert doc["@timestamp"] == "2023-11-14T22:13:20.123000000Z"
    assert doc["container"] == {"id": CID, "name": "frontend", "image": {"name": "nginx:1.25"}}
    assert doc["log"] == {"level": "info", "syslog": {"hostname": "node-7", "severity": {"code": 6}}}
    assert doc["host"] == {"name": "shipper-host"} and doc["stream"] == "stdout"
    assert doc["gelf"]["tag"] == CID[:12] and doc["input"] == {"type": "gelf"}


@pytest.mark.parametrize(("code", "keyword"), list(enumerate(
    ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"])))
def test_syslog_levels_become_keywords(code: int, keyword: str) -> None:
    ev = parse(gelf(level=code), "x", RECEIVED_NS)
    assert ev.level == keyword and ev.fields is not None and ev.fields["log.syslog.severity.code"] == code
    assert ev.stream is None  # not Docker's driver: a level says nothing about the stream


@pytest.mark.parametrize("level", [8, -1, "6", True, 6.5])
def test_an_unknown_level_is_kept_as_a_field(level: object) -> None:
    ev = parse(gelf(level=level), "x", RECEIVED_NS)
    assert ev.level is None and ev.fields is not None and ev.fields["gelf.level"] == level


def test_an_integral_float_level_is_a_level() -> None:
    assert parse(gelf(level=4.0), "x", RECEIVED_NS).level == "warning"


@pytest.mark.parametrize(("raw", "ns"), [
    (b"1700000000.123456789", 1_700_000_000_123_456_789),  # nanoseconds survive (a double cannot hold them)
    (b"1700000000.123", 1_700_000_000_123_000_000),
    (b"1700000000", 1_700_000_000_000_000_000),
    (b"1.7e9", 1_700_000_000_000_000_000),
    (b"1700000000.0000001", 1_700_000_000_000_000_100),
    (b"0.5", 500_000_000),
    (b'"1700000000.25"', 1_700_000_000_250_000_000),
])
def test_timestamps_keep_their_precision(raw: bytes, ns: int) -> None:
    body = b'{"version":"1.1","host":"h","short_message":"m","timestamp":' + raw + b"}"
    assert parse(body, "x", RECEIVED_NS).time_ns == ns


def test_a_misleading_timestamp_text_elsewhere_is_not_used() -> None:
    # the first "timestamp" key in the text is a nested one; the real one is used, to the double's precision
    body = b'{"_meta":{"timestamp":5},"version":"1.1","short_message":"m","timestamp":1700000000.5}'
    assert parse(body, "x", RECEIVED_NS).time_ns == 1_700_000_000_500_000_000


def test_no_timestamp_means_the_receive_time() -> None:
    assert parse(gelf(), "x", RECEIVED_NS).time_ns == RECEIVED_NS


@pytest.mark.parametrize("ts", [-1, 1e12, "soon", True, [1], {"s": 1}, "NaN", "Infinity", "1e99999999999"])
def test_bad_timestamps_are_rejected(ts: object) -> None:
    with pytest.raises(GelfError) as e:
        parse(gelf(timestamp=ts), "x", RECEIVED_NS)
    assert e.value.reason == g.TIMESTAMP


def test_full_message_host_and_other_fields() -> None:
    ev = parse(gelf(full_message="trace\nline 2", facility="app", _user_id=42, _a={"b": 1},
                    **{"_x.y": "dotted", "_": "bare"}), "x", RECEIVED_NS)
    assert ev.message == "hello" and ev.fields == {
        "log.syslog.hostname": "h", "gelf.full_message": "trace\nline 2", "gelf.facility": "app",
        "gelf.user_id": 42, "gelf.a": {"b": 1}, "gelf.x_y": "dotted", "gelf._": "bare"}
    assert ev.container_id is None and ev.stream is None and ev.level is None


def test_a_non_string_container_field_is_kept_as_a_field() -> None:
    ev = parse(gelf(_container_id=7, level=6), "x", RECEIVED_NS)
    assert ev.container_id is None and ev.stream is None
    assert ev.fields is not None and ev.fields["gelf.container_id"] == 7


def test_one_trailing_newline_is_removed_and_nothing_else() -> None:
    assert parse(gelf(short_message="  a\tb \n"), "x", RECEIVED_NS).message == "  a\tb "
    assert parse(gelf(short_message="a\n\n"), "x", RECEIVED_NS).message == "a\n"
    assert parse(gelf(short_message=""), "x", RECEIVED_NS).message == ""


def test_legacy_version_and_missing_host_are_accepted() -> None:
    ev = parse(gelf(version="1.0", host=None), "x", RECEIVED_NS)
    assert ev.message == "hello" and ev.fields is None


def test_unicode_is_kept() -> None:
    text = 'é ✓ 日本 \U0001f600 <a> & "q" \\'
    assert parse(gelf(short_message=text), "x", RECEIVED_NS).message == text


@pytest.mark.parametrize(("body", "reason"), [
    (b'{"version":"1.1","short_message":"a"', g.INVALID_JSON),
    (b"{}garbage", g.INVALID_JSON),
    (b'["version","1.1"]', g.INVALID_JSON),
    (b'"just a string"', g.INVALID_JSON),
    (b'{"version":"1.1","short_message":"\xff\xfe"}', g.INVALID_UTF8),
    (b'{"version":"1.1","short_message":"\xed\xa0\x80"}', g.INVALID_UTF8),  # an encoded surrogate
    (b'{"version":"1.1","short_message":"\\ud800"}', g.INVALID_JSON),  # a lone surrogate escape
    (b'{"version":"1.1","host":"h"}', g.SHORT_MESSAGE),
    (b'{"version":"1.1","short_message":null}', g.SHORT_MESSAGE),
    (b'{"version":"1.1","short_message":42}', g.SHORT_MESSAGE),
    (b'{"host":"h","short_message":"a"}', g.VERSION),
    (b'{"version":"2.0","short_message":"a"}', g.VERSION),
    (b'{"version":1.1,"short_message":"a"}', g.VERSION),
    (b"[" * 2000 + b"]" * 2000, g.INVALID_JSON),
])
def test_bad_messages_are_rejected_with_a_reason(body: bytes, reason: str) -> None:
    with pytest.raises(GelfError) as e:
        parse(body, "x", RECEIVED_NS)
    assert e.value.reason == reason


# --- the decoder over the wire -------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gzip", "zlib", "none"])
def test_a_datagram_of_each_compression_decodes_with_a_payload_hash_id(kind: str) -> None:
    body = docker_payload(b"hello")
    ev = decoder().datagram(compress(body, kind, 1))
    assert ev is not None and ev.message == "hello" and ev.container_id == CID
    assert ev.event_id == payload_id(body)  # of the JSON, so gzip and zlib copies of a message share it


def test_payload_ids_are_deterministic_and_distinct() -> None:
    a, b = docker_payload(b"one"), docker_payload(b"two")
    assert payload_id(a) == payload_id(a) and payload_id(a) != payload_id(b)
    assert len(payload_id(a)) == 32


@pytest.mark.parametrize("kind", ["gzip", "zlib", "none"])
def test_a_chunked_message_decodes_with_the_gelf_message_id(kind: str) -> None:
    line = random.Random(1).randbytes(4000).hex().encode()  # 8000 chars, poorly compressible
    datagrams = chunk(compress(docker_payload(line), kind, 1), b"\xaa" * 8)
    assert len(datagrams) >= 3
    dec = decoder()
    random.Random(2).shuffle(datagrams)
    results = [dec.datagram(d) for d in datagrams]
    assert results[:-1] == [None] * (len(datagrams) - 1)
    ev = results[-1]
    assert ev is not None and ev.message == line.decode() and ev.event_id == "aa" * 8


def test_tcp_frames_are_plain_json_only() -> None:
    dec = decoder()
    ev = dec.frame(docker_payload(b"over tcp"))
    assert ev.message == "over tcp" and ev.event_id == payload_id(docker_payload(b"over tcp"))
    assert dec.frame(docker_payload(b"nl") + b"\n").message == "nl"  # go-gelf style JSON + newline before the NUL
    with pytest.raises(GelfError) as e:
        dec.frame(gzip.compress(docker_payload(b"x")))
    assert e.value.reason == g.INVALID_JSON
    with pytest.raises(GelfError) as e:
        decoder(max_message_bytes=10).frame(docker_payload(b"x"))
    assert e.value.reason == fr.OVERSIZED


def test_a_chunked_zip_bomb_is_rejected() -> None:
    bomb = gzip.compress(b"{" + b" " * (50 << 20), 9)
    datagrams = chunk(bomb, b"\xbb" * 8)
    assert 1 < len(datagrams) <= 128
    dec = decoder()
    for d in datagrams[:-1]:
        assert dec.datagram(d) is None
    with pytest.raises(GelfError) as e:
        dec.datagram(datagrams[-1])
    assert e.value.reason == fr.OVERSIZED
    assert dec.chunks.pending == 0


def test_a_chunked_message_that_times_out_reports_its_drop() -> None:
    now = [0.0]
    drops: list[str] = []
    dec = decoder(clock=lambda: now[0], on_drop=drops.append)
    datagrams = chunk(docker_payload(random.Random(3).randbytes(3000).hex().encode()), b"\xcc" * 8)
    for d in datagrams[:-1]:
        dec.datagram(d)
    now[0] = 5.0
    assert dec.chunks.expire() == 1 and drops == [fr.CHUNK_TIMEOUT]
    with pytest.raises(GelfError) as e:
        dec.datagram(datagrams[-1])
    assert e.value.reason == fr.CHUNK_LATE


def test_the_same_line_twice_in_one_millisecond_stays_two_events() -> None:
    from logshipper.codecs.gelf import GelfDecoder

    d = GelfDecoder(max_message_bytes=1 << 20, chunk_timeout=5, max_pending_messages=10, max_pending_bytes=1 << 20)
    payload = b'{"version":"1.1","host":"h","short_message":"same","timestamp":1796112000.001}'
    first, second = d.datagram(payload), d.datagram(payload)
    assert first is not None and second is not None
    assert first.event_id != second.event_id and second.event_id == first.event_id + ":2"
