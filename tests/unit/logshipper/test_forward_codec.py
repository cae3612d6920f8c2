"""The forward protocol codec over bytes: every carrier mode, times, ids, the record mapping, Docker's
split lines, the handshake digests and each kind of bad input."""

from __future__ import annotations

import gzip
import hashlib
import struct
import time
from typing import Any

import msgpack
import orjson
import pytest
import zstandard

from hostwatch.core.events import FLUENT_FORWARD, LogEvent
from logshipper import ecs
from logshipper.codecs import forward as fw
from logshipper.codecs.forward_auth import check_ping, helo, parse_users, pong, sha512_hex
from logshipper.codecs.forward_partial import Joined, PartialAssembler

LIMITS = fw.Limits(max_message_bytes=1000, max_decompressed_bytes=100_000)
CID = "f" * 64
T0 = 1_796_112_000


def event_time(secs: int, nanos: int) -> msgpack.ExtType:
    return msgpack.ExtType(0, struct.pack(">II", secs, nanos))


def frames_of(*objs: Any) -> list[fw.Frame]:
    reader = fw.FrameReader(1 << 20)
    frames = reader.feed(b"".join(msgpack.packb(o) for o in objs))
    assert reader.error is None
    return frames


def decode(obj: Any, limits: fw.Limits = LIMITS, occurrences: fw.Occurrences | None = None) -> fw.Decoded:
    [frame] = frames_of(obj)
    return fw.decode_frame(frame, limits, occurrences or fw.Occurrences())


def messages(d: fw.Decoded) -> list[str]:
    return [e.message for e, _ in d.events]


def docker_record(line: str, source: str = "stdout", **extra: str) -> dict[str, str]:
    return {"container_id": CID, "container_name": "/web", "source": source, "log": line, **extra}


# --- carrier modes and times --------------------------------------------------------------------------


def test_message_mode_docker_record() -> None:
    d = decode([CID[:12], T0, docker_record("hello <world>", env="prod", **{"com.example.x": "1"})])
    assert d.rejected == [] and d.chunk is None
    [(event, partial)] = d.events
    assert partial is None
    assert event.time_ns == T0 * 1_000_000_000
    assert (event.message, event.stream, event.container_id, event.container_name) == (
        "hello <world>", "stdout", CID, "web")
    assert event.input_type == FLUENT_FORWARD
    assert event.fields == {"fluent.tag": CID[:12], "fluent.record.env": "prod", "fluent.record.com_example_x": "1"}
    doc = orjson.loads(ecs.encode(event, "h"))
    assert doc["fluent"] == {"tag": CID[:12], "record": {"env": "prod", "com_example_x": "1"}}
    assert doc["container"] == {"id": CID, "name": "web"} and doc["stream"] == "stdout"


def test_event_time_keeps_nanoseconds_and_float_and_v15_array_times() -> None:
    d = decode(["t", [[event_time(T0, 123_456_789), {"log": "a"}], [T0 + 0.25, {"log": "b"}],
                      [[event_time(T0, 7), {"meta": 1}], {"log": "c"}],
                      [msgpack.Timestamp(T0, 5), {"log": "d"}]]])
    assert d.rejected == []
    assert [e.time_ns for e, _ in d.events] == [T0 * 10**9 + 123_456_789, T0 * 10**9 + 250_000_000,
                                                T0 * 10**9 + 7, T0 * 10**9 + 5]


def test_time_zero_or_nil_means_now() -> None:
    before = time.time_ns()
    d = decode(["t", [[0, {"log": "a"}], [None, {"log": "b"}], [event_time(0, 0), {"log": "c"}]]])
    after = time.time_ns()
    assert len(d.events) == 3 and all(before <= e.time_ns <= after for e, _ in d.events)


def test_forward_mode_keeps_order_and_ids_follow_the_chunk() -> None:
    entries = [[T0 + i, {"message": f"line {i}"}] for i in range(5)]
    d = decode(["app", entries, {"chunk": "Y2h1bms=", "size": 5}])
    assert messages(d) == [f"line {i}" for i in range(5)]
    assert [e.event_id for e, _ in d.events] == [f"Y2h1bms=:{i}" for i in range(5)]
    assert d.chunk == "Y2h1bms="


def test_packed_forward_bin_and_str_payloads() -> None:
    packed = b"".join(msgpack.packb([T0, {"msg": f"p{i}"}]) for i in range(3))
    assert messages(decode(["app", packed, {"size": 3}])) == ["p0", "p1", "p2"]
    # old msgpack has no bin type: the payload comes as a (non-UTF-8) str
    as_str = msgpack.packb(["app", packed], use_bin_type=False)
    [frame] = fw.FrameReader(1 << 20).feed(as_str)
    assert messages(fw.decode_frame(frame, LIMITS, fw.Occurrences())) == ["p0", "p1", "p2"]


def test_compressed_packed_forward_gzip_members_and_zstd() -> None:
    part1 = b"".join(msgpack.packb([T0, {"log": f"a{i}"}]) for i in range(2))
    part2 = msgpack.packb([T0, {"log": "b"}])
    members = gzip.compress(part1) + gzip.compress(part2)  # fluentd appends one member per write
    d = decode(["app", members, {"compressed": "gzip", "chunk": "c1"}])
    assert (messages(d), d.rejected) == (["a0", "a1", "b"], [])
    z = zstandard.ZstdCompressor().compress(part1)
    assert messages(decode(["app", z, {"compressed": "zstd"}])) == ["a0", "a1"]
    assert messages(decode(["app", part2, {"compressed": "text"}])) == ["b"]


def test_heartbeat_nil_is_no_event_and_no_rejection() -> None:
    d = decode(None)
    assert d.heartbeat and d.events == [] and d.rejected == []


# --- ids ----------------------------------------------------------------------------------------------


def test_ids_without_chunk_hash_the_message_and_count_repeats() -> None:
    msg = ["t", T0, {"log": "same"}]
    occ = fw.Occurrences()
    first, second = decode(msg, occurrences=occ), decode(msg, occurrences=occ)
    digest = hashlib.blake2b(msgpack.packb(msg), digest_size=16).hexdigest()
    assert first.events[0][0].event_id == f"{digest}:0"
    assert second.events[0][0].event_id == f"{digest}-1:0"  # the same line twice in one second stays two
    # a re-sent message on a new connection is recognised
    assert decode(msg, occurrences=fw.Occurrences()).events[0][0].event_id == f"{digest}:0"
    other = decode(["t", T0, {"log": "other"}], occurrences=occ)
    assert other.events[0][0].event_id.endswith(":0") and "-" not in other.events[0][0].event_id


def test_a_chunk_that_is_no_utf8_is_echoed_byte_for_byte() -> None:
    raw = b"\x94\xa1t" + msgpack.packb(T0) + b"\x81\xa3log\xa1x\x81\xa5chunk\xa3c\xccz"
    [frame] = fw.FrameReader(1000).feed(raw)
    d = fw.decode_frame(frame, LIMITS, fw.Occurrences())
    assert fw.ack(d.chunk) == b"\x81\xa3ack\xa3c\xccz"
    assert d.events[0][0].event_id == "c\ufffdz:0"


def test_bytes_chunk_is_echoed_and_ids_use_its_hex() -> None:
    d = decode(["t", T0, {"log": "x"}, {"chunk": b"\x01\x02"}])
    assert d.chunk == b"\x01\x02" and d.events[0][0].event_id == "0102:0"
    assert msgpack.unpackb(fw.ack(d.chunk)) == {"ack": b"\x01\x02"}


# --- record mapping -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("record", "message"), [
    ({"log": "docker"}, "docker"),
    ({"message": "generic\n"}, "generic"),
    ({"msg": "short", "x": 1}, "short"),
    ({"log": "first", "message": "second"}, "first"),
    ({"a": 1, "b": [1, "x"]}, '{"a":1,"b":[1,"x"]}'),
    ({"log": {"nested": True}}, '{"nested":true}'),
    ({"log": b"bin \xff"}, "bin \ufffd"),
])
def test_message_field_choice(record: dict[str, Any], message: str) -> None:
    assert messages(decode(["t", T0, record])) == [message]


def test_level_names_map_to_syslog_keywords_and_unknown_ones_stay_fields() -> None:
    [(err, _)] = decode(["t", T0, {"message": "m", "level": "ERROR"}]).events
    [(odd, _)] = decode(["t", T0, {"message": "m", "level": "loud"}]).events
    assert err.level == "err" and "fluent.record.level" not in (err.fields or {})
    assert odd.level is None and (odd.fields or {})["fluent.record.level"] == "loud"


def test_values_become_json_safe() -> None:
    record = {"log": "x", 7: "int key", "ext": msgpack.ExtType(5, b"\xab"), "big": 2**64 - 1, "neg": -(2**63)}
    [(e, _)] = decode(["t", T0, record]).events
    f = e.fields or {}
    assert f["fluent.record.7"] == "int key" and f["fluent.record.ext"] == "ab"
    assert orjson.loads(ecs.encode(e, "h"))["fluent"]["record"]["big"] == 2**64 - 1


def test_invalid_utf8_in_a_str_becomes_replacement_characters() -> None:
    raw = b"\x93\xa1t\xce" + struct.pack(">I", T0) + b"\x81\xa3log\xa3a\xffb"  # ["t", T0, {"log": "a\xffb"}]
    [frame] = fw.FrameReader(1 << 20).feed(raw)
    d = fw.decode_frame(frame, LIMITS, fw.Occurrences())
    assert messages(d) == ["a\ufffdb"]
    ecs.encode(d.events[0][0], "h")


# --- Docker's split lines -------------------------------------------------------------------------------


def pieces(pid: str, parts: list[str], source: str = "stdout") -> list[list[Any]]:
    return [[CID[:12], T0 + i, docker_record(p, source, partial_message="true", partial_id=pid,
                                              partial_ordinal=str(i + 1),
                                              partial_last="true" if i == len(parts) - 1 else "false")]
            for i, p in enumerate(parts)]


def assemble(objs: list[Any], asm: PartialAssembler[str], hold: str | None = None) -> list[Joined[str]]:
    out = []
    for obj in objs:
        for event, partial in decode(obj).events:
            out.extend(asm.add(event, partial, hold, now=0.0))
    return out


def test_partial_pieces_join_into_one_event_with_the_first_pieces_time_and_id() -> None:
    asm: PartialAssembler[str] = PartialAssembler(max_message_bytes=100_000)
    objs = pieces("p1", ["a" * 16384, "b" * 16384, "c" * 10])
    first_id = decode(objs[0]).events[0][0].event_id
    interleaved = [objs[0], [CID[:12], T0, docker_record("err line", "stderr")], objs[1], objs[2]]
    out = [j.event for j in assemble(interleaved, asm)]
    assert [e.message if e else None for e in out] == ["err line", "a" * 16384 + "b" * 16384 + "c" * 10]
    joined = out[1]
    assert joined is not None and joined.time_ns == T0 * 10**9 and joined.event_id == first_id
    assert not any(k.startswith("fluent.record.partial") for k in joined.fields or {})
    assert len(asm) == 0


def test_partial_join_over_the_limit_is_rejected_and_keeps_its_holds() -> None:
    asm: PartialAssembler[str] = PartialAssembler(max_message_bytes=50)
    out = assemble(pieces("p", ["x" * 30, "y" * 30]), asm, hold="chunk")
    assert [(j.event, j.holds) for j in out] == [(None, ["chunk", "chunk"])]


def test_partial_without_last_piece_expires_flushes_and_is_bounded() -> None:
    asm: PartialAssembler[str] = PartialAssembler(max_message_bytes=1000, max_groups=2)
    for pid in ("a", "b"):
        assert assemble(pieces(pid, ["1", "2", "3"])[:2], asm) == []
    evicted = assemble(pieces("c", ["x", "y"])[:1], asm)  # a third line pushes out the oldest
    assert [j.event.message for j in evicted if j.event] == ["12"]
    assert asm.expire(now=1.0, timeout=5.0) == []
    assert sorted(j.event.message for j in asm.expire(now=5.0, timeout=5.0) if j.event) == ["12", "x"]
    assemble(pieces("d", ["q", "r"])[:1], asm)
    assert [j.event.message for j in asm.flush() if j.event] == ["q"] and len(asm) == 0


def test_partial_ordinal_one_again_ends_the_previous_line() -> None:
    asm: PartialAssembler[str] = PartialAssembler(max_message_bytes=1000)
    out = assemble(pieces("same", ["a", "b"])[:1] + pieces("same", ["c", "d"]), asm)
    assert [j.event.message for j in out if j.event] == ["a", "cd"]


# --- handshake ------------------------------------------------------------------------------------------


def test_helo_carries_nonce_and_auth_salt() -> None:
    assert msgpack.unpackb(helo(b"n" * 16, None)) == ["HELO", {"nonce": b"n" * 16, "auth": "", "keepalive": True}]
    assert msgpack.unpackb(helo(b"n" * 16, b"s" * 16))[1]["auth"] == b"s" * 16


def client_ping(nonce: bytes, key: str, hostname: str = "client", salt: str = "saltsalt",
                auth: bytes = b"", user: str = "", password: str = "") -> list[Any]:
    digest = hashlib.sha512((salt + hostname).encode() + nonce + key.encode()).hexdigest()
    pw = hashlib.sha512(auth + user.encode() + password.encode()).hexdigest() if auth else ""
    return ["PING", hostname, salt, digest, user, pw]


def test_ping_with_the_right_key_gets_a_pong_the_client_can_verify() -> None:
    nonce = b"\x00\xff" * 8
    result = check_ping(client_ping(nonce, "secret"), nonce, "secret", None, {})
    assert result.ok and result.hostname == "client"
    _, ok, reason, server, digest = msgpack.unpackb(pong(result, "server", nonce, "secret"))
    assert (ok, reason, server) == (True, "", "server")
    assert digest == hashlib.sha512(b"saltsalt" + b"server" + nonce + b"secret").hexdigest()
    assert sha512_hex("a", b"b") == hashlib.sha512(b"ab").hexdigest()


@pytest.mark.parametrize(("ping", "reason"), [
    (client_ping(b"N" * 16, "wrong"), "shared_key mismatch"),
    (client_ping(b"other nonce.....", "secret"), "shared_key mismatch"),
    (["PING", "h", "s"], "invalid ping message"),
    (["t", T0, {"log": "data before the handshake"}], "invalid ping message"),
    (["PING", "h", 1, "d", "", ""], "invalid ping message"),
])
def test_bad_pings_are_refused(ping: list[Any], reason: str) -> None:
    result = check_ping(ping, b"N" * 16, "secret", None, {})
    assert (result.ok, result.reason) == (False, reason)
    assert msgpack.unpackb(pong(result, "server", b"N" * 16, "secret")) == ["PONG", False, reason, "", ""]


def test_user_auth_checks_the_password_digest() -> None:
    nonce, auth = b"N" * 16, b"A" * 16
    users = parse_users(("alice:s3cr:et",))
    assert users == {"alice": "s3cr:et"}
    good = client_ping(nonce, "k", auth=auth, user="alice", password="s3cr:et")
    assert check_ping(good, nonce, "k", auth, users).ok
    for user, password in [("alice", "nope"), ("bob", "s3cr:et"), ("", "")]:
        bad = client_ping(nonce, "k", auth=auth, user=user, password=password)
        assert check_ping(bad, nonce, "k", auth, users).reason == "username/password mismatch"
    assert check_ping(["PING", *client_ping(nonce, "k")[1:4], None, None], nonce, "k", None, {}).ok
    with pytest.raises(ValueError, match="USER:PASSWORD"):
        parse_users(("nobody",))


# --- bad input -------------------------------------------------------------------------------------------


def test_garbage_after_good_frames_keeps_them_and_loses_the_stream() -> None:
    reader = fw.FrameReader(1 << 20)
    good = msgpack.packb(["t", T0, {"log": "kept"}])
    frames = reader.feed(good + good[:5])
    frames += reader.feed(good[5:] + b"\xc1" + good)  # 0xc1 is never used in msgpack
    assert [f.obj[2]["log"] for f in frames] == ["kept", "kept"] and frames[1].raw == good
    assert reader.error == fw.GARBAGE and reader.feed(good) == []


def test_a_message_over_the_buffer_bound_loses_the_stream() -> None:
    reader = fw.FrameReader(1000)
    assert reader.feed(msgpack.packb(["t", T0, {"log": "ok"}])) != []
    big = msgpack.packb(["t", T0, {"log": "x" * 5000}])
    assert reader.feed(big[:900]) == [] and reader.error is None
    assert reader.feed(big[900:1800]) == [] and reader.error == fw.TOO_LARGE


def test_json_form_is_refused() -> None:
    reader = fw.FrameReader(1000)
    assert reader.feed(b'["tag", 1, {"a": 1}]') == [] and reader.error == fw.JSON


@pytest.mark.parametrize(("obj", "reasons"), [
    (42, [fw.SHAPE]),
    ({"tag": "t"}, [fw.SHAPE]),
    (["t"], [fw.SHAPE]),
    ([1, T0, {}], [fw.SHAPE]),
    (["t", T0, {"log": "x"}, "not a map"], [fw.SHAPE]),
    (["t", T0, {"log": "x"}, {}, "extra"], [fw.SHAPE]),
    (["t", [[T0, {}]], {}, {}], [fw.SHAPE]),
    (["t", T0], [fw.SHAPE]),
    (["t", -5, {"log": "x"}], [fw.TIME]),
    (["t", {"when": "yesterday"}, {"log": "x"}], [fw.TIME]),
    (["t", "ab", {"log": "x"}], [fw.SHAPE, fw.SHAPE]),  # a str second element is PackedForward (0x61, 0x62)
    (["t", True, {"log": "x"}], [fw.TIME]),
    (["t", 1 << 40, {"log": "x"}], [fw.TIME]),
    (["t", msgpack.ExtType(1, b"\x00" * 8), {"log": "x"}], [fw.TIME]),
    (["t", msgpack.ExtType(0, b"\x00" * 4), {"log": "x"}], [fw.TIME]),
    (["t", event_time(T0, 1_000_000_000), {"log": "x"}], [fw.TIME]),
    (["t", T0, "record"], [fw.RECORD]),
    (["t", T0, None], [fw.RECORD]),
    (["t", T0, {"log": "x" * 1001}], [fw.OVERSIZED]),
    (["t", T0, {"log": "é" * 501}], [fw.OVERSIZED]),  # bytes, not characters
    (["t", [[T0, {"log": "ok"}], "junk", [T0], [T0, {"log": "y" * 2000}], [T0, {"log": "ok2"}]]],
     [fw.SHAPE, fw.SHAPE, fw.OVERSIZED]),
    (["t", b"\x1f\x8bnot gzip", {"compressed": "gzip"}], [fw.DECOMPRESS]),
    (["t", gzip.compress(b"\x92\x01\x80")[:-6], {"compressed": "gzip"}], [fw.DECOMPRESS]),
    (["t", gzip.compress(b"\x00" * 200_000), {"compressed": "gzip"}], [fw.DECOMPRESS]),
    (["t", b"\x28\xb5\x2f\xfd junk", {"compressed": "zstd"}], [fw.DECOMPRESS]),
    (["t", b"\x92\x01\x80", {"compressed": "lzma"}], [fw.COMPRESSION]),
    (["t", b"\x92\x01\x80", {"compressed": 7}], [fw.COMPRESSION]),
])
def test_bad_messages_are_rejected_with_a_reason(obj: Any, reasons: list[str]) -> None:
    d = decode(obj)
    assert d.rejected == reasons
    assert all(r in fw.REASONS for r in d.rejected)


def test_rejected_entries_do_not_take_the_rest_with_them() -> None:
    d = decode(["t", [[T0, {"log": "ok"}], "junk", [T0, {"log": "y" * 2000}], [T0, {"log": "ok2"}]],
                {"chunk": "c"}])
    assert messages(d) == ["ok", "ok2"] and d.chunk == "c"
    assert [e.event_id for e, _ in d.events] == ["c:0", "c:3"]  # ids keep each entry's position


def test_garbage_inside_a_packed_payload_keeps_the_entries_before_it() -> None:
    good = msgpack.packb([T0, {"log": "a"}])
    d = decode(["t", good + b"\xc1" + good, {"chunk": "c"}])
    assert (messages(d), d.rejected, d.chunk) == (["a"], [fw.GARBAGE], "c")
    truncated = decode(["t", good + good[:-2]])
    assert (messages(truncated), truncated.rejected) == (["a"], [fw.GARBAGE])


def test_a_payload_of_junk_is_not_counted_entry_by_entry() -> None:
    d = decode(["t", b"\x01" * 10_000 + msgpack.packb([T0, {"log": "after"}])])
    assert d.rejected == [fw.SHAPE] * fw.MAX_INVALID_ENTRIES + [fw.GARBAGE] and d.events == []
    mixed = [[T0, {"log": "y" * 2000}]] * 100 + [[T0, {"log": "ok"}]]  # oversized ones are entries still
    assert messages(decode(["t", mixed])) == ["ok"]


def test_records_nested_too_deep_are_rejected() -> None:
    deep: Any = "leaf"
    for _ in range(fw.MAX_DEPTH + 5):
        deep = {"k": deep}
    assert decode(["t", T0, {"log": "x", "deep": deep}]).rejected == [fw.RECORD]
    ok: Any = "leaf"
    for _ in range(fw.MAX_DEPTH - 2):
        ok = [ok]
    assert messages(decode(["t", T0, {"log": "x", "deep": ok}])) == ["x"]


def test_reserved_negative_ext_types_are_kept_as_text() -> None:
    raw = b"\x93\xa1t" + msgpack.packb(T0) + b"\x82\xa3log\xa1x\xa1e\xd4\xfe\x07"  # "e": fixext1 type -2
    [frame] = fw.FrameReader(1000).feed(raw)
    [(event, _)] = fw.decode_frame(frame, LIMITS, fw.Occurrences()).events
    assert (event.fields or {})["fluent.record.e"] == "ext-2:07"


def test_every_decoded_event_encodes_as_ecs() -> None:
    d = decode(["t", [[T0, {"log": "a", "v": [None, 1.5, {"b": b"\x00"}]}], [T0, {1: 2}]]])
    for e, _ in d.events:
        assert isinstance(e, LogEvent)
        orjson.loads(ecs.encode(e, "h"))
