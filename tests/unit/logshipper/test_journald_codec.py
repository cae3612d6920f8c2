"""journalctl JSON entries -> LogEvent: real journalctl output (tests/fixtures/journald), the byte-array
and multi-value forms, every rejection reason, and Docker's partial pieces."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import orjson
import pytest

from hostwatch.core.events import JOURNALD
from hostwatch.core.timefmt import parse_rfc3339_ns, rfc3339_nano
from logshipper.codecs import journald as codec
from logshipper.codecs.journald import Partials, Rejected, parse, rfc3339_ns

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "journald" / "entries.jsonl"
CID = "c0ffee" * 10 + "beef"
LIMIT = 1 << 20


def lines() -> list[bytes]:
    return FIXTURE.read_bytes().splitlines()


def entry(**fields: Any) -> bytes:
    base: dict[str, Any] = {"__CURSOR": "s=ab;i=1", "__REALTIME_TIMESTAMP": "1700000000123456", "MESSAGE": "m"}
    base.update(fields)
    return orjson.dumps({k: v for k, v in base.items() if v is not ...})


def test_dockers_entries_from_the_bundled_runtime_driver() -> None:
    out, err, esc = (parse(line, LIMIT) for line in lines()[:3])
    e = out.event
    assert (e.message, e.stream, e.level, e.input_type) == ("hello from stdout", "stdout", "info", JOURNALD)
    assert (e.container_id, e.container_name, e.image, e.labels) == (CID, "web", "nginx:1.25", None)
    assert e.time_ns == 1_700_000_000_123_456_789  # SYSLOG_TIMESTAMP: the nanoseconds json-file would record
    assert e.event_id == hashlib.blake2b(out.cursor.encode(), digest_size=16).hexdigest()
    assert e.fields is not None
    assert {k: e.fields[k] for k in ("log.syslog.appname", "container.log.tag", "log.syslog.severity.code",
                                     "systemd.transport", "journald.custom.com_example_team")} == {
        "log.syslog.appname": CID[:12], "container.log.tag": CID[:12], "log.syslog.severity.code": 6,
        "systemd.transport": "journal", "journald.custom.com_example_team": "core"}
    assert "process.pid" not in e.fields and "process.name" not in e.fields  # the daemon's, not the container's
    assert not any("partial" in k or "ordinal" in k or "epoch" in k for k in e.fields)
    assert (err.event.message, err.event.stream, err.event.level) == ("oops on stderr \ufffd\ufffd", "stderr", "err")
    assert esc.event.message == "\x1b[31mred\x1b[0m"  # a byte array of valid UTF-8 comes back exactly
    assert len({out.event.event_id, err.event.event_id, esc.event.event_id}) == 3


def test_partial_pieces_from_the_driver_join_into_one_line() -> None:
    first, last = (parse(line, LIMIT) for line in lines()[3:5])
    assert first.more and not last.more and first.partial_key == last.partial_key
    p = Partials(LIMIT)
    assert p.add(first, "c0", 1.0) == []
    assert p.hold() == (True, "c0")
    [joined] = p.add(last, first.cursor, 1.0)
    assert joined.message == "L" * 20000 and joined.event_id == first.event.event_id
    assert p.hold() == (False, None) and len(p) == 0


def test_native_entries_that_are_not_a_containers() -> None:
    native, multi = (parse(line, LIMIT).event for line in lines()[5:7])
    assert (native.message, native.level, native.stream, native.container_id) == ("native one", "warning", None, None)
    assert native.fields is not None
    assert native.fields["log.syslog.appname"] == "app" and native.fields["log.syslog.facility.code"] == 3
    assert native.fields["journald.custom.code_file"] == "app.c"
    assert native.fields["journald.custom.tags"] == "a"  # a repeated field: its first value
    assert native.fields["process.name"] == "python" and isinstance(native.fields["process.pid"], int)
    assert native.fields["host.hostname"] and native.fields["journald.namespace"].startswith("hwtest")
    assert native.time_ns % 1000 == 0 and native.time_ns // 1000 == int(orjson.loads(lines()[5])[
        "__REALTIME_TIMESTAMP"])
    assert (multi.message, multi.level) == ("two\nlines", "debug")


@pytest.mark.parametrize(("value", "expected"), [
    ("text", "text"),
    ([104, 105, 0, 10, 33], "hi\x00\n!"),
    ([0xE2, 0x82, 0xAC], "\u20ac"),
    ([0xFF, 0x41], "\ufffdA"),
    (["first", "second"], "first"),
    ([[104, 0], [105]], "h\x00"),
    ([], ""),
])
def test_message_forms(value: Any, expected: str) -> None:
    assert parse(entry(MESSAGE=value), LIMIT).event.message == expected


def test_one_trailing_newline_is_removed() -> None:
    assert parse(entry(MESSAGE="line\n"), LIMIT).event.message == "line"
    assert parse(entry(MESSAGE="line\n\n"), LIMIT).event.message == "line\n"


@pytest.mark.parametrize(("line", "reason"), [
    (b"{not json", codec.MALFORMED_JSON),
    (b"", codec.MALFORMED_JSON),
    (b"\xff\xfe", codec.MALFORMED_JSON),
    (b"[1, 2]", codec.NOT_AN_OBJECT),
    (b'"string"', codec.NOT_AN_OBJECT),
    (entry(__CURSOR=...), codec.NO_CURSOR),
    (entry(__CURSOR=""), codec.NO_CURSOR),
    (entry(__CURSOR=5), codec.NO_CURSOR),
    (entry(MESSAGE=...), codec.NO_MESSAGE),
    (entry(MESSAGE=None), codec.NO_MESSAGE),
    (entry(MESSAGE=3.5), codec.BAD_FIELD),
    (entry(MESSAGE={"a": 1}), codec.BAD_FIELD),
    (entry(MESSAGE=[300]), codec.BAD_FIELD),
    (entry(MESSAGE=[1, "x"]), codec.BAD_FIELD),
    (entry(MESSAGE=[[[1]]]), codec.BAD_FIELD),
    (entry(MESSAGE=[True]), codec.BAD_FIELD),
    (entry(CONTAINER_NAME=[-1]), codec.BAD_FIELD),
    (entry(__REALTIME_TIMESTAMP=...), codec.BAD_TIMESTAMP),
    (entry(__REALTIME_TIMESTAMP="soon"), codec.BAD_TIMESTAMP),
    (entry(MESSAGE="x" * 101), codec.OVERSIZED),
    (entry(MESSAGE=[65] * 101), codec.OVERSIZED),
    (entry(MESSAGE="\u20ac" * 34), codec.OVERSIZED),  # 34 characters, 102 bytes
])
def test_bad_entries_are_rejected_with_a_reason(line: bytes, reason: str) -> None:
    with pytest.raises(Rejected) as info:
        parse(line, 100)
    assert info.value.reason == reason


def test_exactly_the_limit_is_accepted() -> None:
    assert parse(entry(MESSAGE="\u20ac" * 33 + "x"), 100).event.message == "\u20ac" * 33 + "x"


def test_malformed_optional_fields_are_left_out_not_fatal() -> None:
    e = parse(entry(PRIORITY="9", SYSLOG_FACILITY="kern", _PID="x", SYSLOG_IDENTIFIER="ok"), LIMIT).event
    assert e.level is None and e.fields == {"log.syslog.appname": "ok"}


def test_docker_entry_without_syslog_timestamp_uses_the_journals_time() -> None:
    e = parse(entry(CONTAINER_ID="abcdefabcdef", PRIORITY="3", SYSLOG_TIMESTAMP="Jan  2 15:04:05"), LIMIT).event
    assert (e.container_id, e.stream, e.time_ns) == ("abcdefabcdef", "stderr", 1_700_000_000_123_456_000)


def docker_piece(n: int, msg: str, *, more: bool, pid: str | None = "p1", cid: str = CID, prio: str = "6") -> bytes:
    fields: dict[str, Any] = {"__CURSOR": f"s=ab;i={n}", "CONTAINER_ID_FULL": cid, "PRIORITY": prio,
                              "SYSLOG_TIMESTAMP": rfc3339_nano(ns=1_700_000_000_000_000_000 + n)}
    if pid is not None:
        fields.update(CONTAINER_PARTIAL_ID=pid, CONTAINER_PARTIAL_ORDINAL=str(n),
                      CONTAINER_PARTIAL_LAST="false" if more else "true")
    if more:
        fields["CONTAINER_PARTIAL_MESSAGE"] = "true"
    return entry(MESSAGE=msg, **fields)


def feed(p: Partials, raw: list[bytes], now: float = 0.0) -> list[str]:
    out: list[str] = []
    prev = None
    for line in raw:
        e = parse(line, LIMIT)
        out += [ev.message for ev in p.add(e, prev, now)]
        prev = e.cursor
    return out


def test_pieces_without_ids_join_per_stream_as_older_dockers_send_them() -> None:
    p = Partials(LIMIT)
    raw = [docker_piece(1, "a1", more=True, pid=None), docker_piece(2, "b-err", more=False, pid=None, prio="3"),
           docker_piece(3, "a2", more=True, pid=None), docker_piece(4, "a3", more=False, pid=None),
           docker_piece(5, "whole", more=False, pid=None)]
    assert feed(p, raw) == ["b-err", "a1a2a3", "whole"]


def test_interleaved_lines_join_by_partial_id_and_hold_the_oldest_start() -> None:
    p = Partials(LIMIT)
    assert feed(p, [docker_piece(1, "x", more=False, pid=None)]) == ["x"]
    a1 = parse(docker_piece(2, "A1", more=True, pid="A"), LIMIT)
    b1 = parse(docker_piece(3, "B1", more=True, pid="B"), LIMIT)
    a2 = parse(docker_piece(4, "A2", more=False, pid="A"), LIMIT)
    b2 = parse(docker_piece(5, "B2", more=False, pid="B"), LIMIT)
    assert p.add(a1, "s=ab;i=1", 0) == [] and p.add(b1, a1.cursor, 0) == []
    assert p.hold() == (True, "s=ab;i=1")
    assert [e.message for e in p.add(a2, b1.cursor, 0)] == ["A1A2"]
    assert p.hold() == (True, a1.cursor)  # B began after A1: entries up to A1 are all out now
    assert [e.message for e in p.add(b2, a2.cursor, 0)] == ["B1B2"]
    assert p.hold() == (False, None)


def test_a_last_piece_without_its_first_is_shipped_alone() -> None:
    assert feed(Partials(LIMIT), [docker_piece(7, "tail", more=False)]) == ["tail"]


def test_an_oversized_joined_line_is_rejected_and_counted() -> None:
    p = Partials(10)
    raw = [docker_piece(1, "123456", more=True), docker_piece(2, "789012", more=True),
           docker_piece(3, "end", more=False), docker_piece(4, "ok", more=False, pid=None)]
    assert feed(p, raw) == ["ok"]
    assert p.rejected == [codec.OVERSIZED] and len(p) == 0


def test_an_unfinished_line_is_shipped_after_the_timeout() -> None:
    p = Partials(LIMIT)
    feed(p, [docker_piece(1, "half", more=True)], now=10.0)
    assert p.expired(14.9, 5.0) == []
    assert [e.message for e in p.expired(15.0, 5.0)] == ["half"]
    assert len(p) == 0


def test_too_many_unfinished_lines_ship_the_oldest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codec, "MAX_PENDING_PARTIALS", 3)
    p = Partials(LIMIT)
    out = feed(p, [docker_piece(i, f"p{i}", more=True, pid=f"id{i}") for i in range(5)])
    assert out == ["p0", "p1"] and len(p) == 3


@pytest.mark.parametrize("value", [
    "2023-11-14T22:13:20.123456789Z", "2023-11-14T22:13:20Z", "2023-11-14T22:13:20.1Z",
    "1970-01-01T00:00:00.000000001Z", "2023-11-14T23:13:20.5+01:00", "2038-01-19T03:14:08.999999999Z",
])
def test_fast_rfc3339_matches_the_core_parser(value: str) -> None:
    assert rfc3339_ns(value) == parse_rfc3339_ns(value)


@pytest.mark.parametrize("value", ["Jan  2 15:04:05", "2023-11-14T22:13:20.12x4Z", "", "2023-13-40T99:99:99Z"])
def test_not_rfc3339_is_none(value: str) -> None:
    assert rfc3339_ns(value) is None


def test_a_rejected_entry_with_a_cursor_says_which_so_reading_moves_past_it() -> None:
    for line, cursor in [(entry(MESSAGE="x" * 200), "s=ab;i=1"), (entry(MESSAGE=None), "s=ab;i=1"),
                         (entry(__CURSOR=...), None), (b"{", None)]:
        with pytest.raises(Rejected) as info:
            parse(line, 100)
        assert info.value.cursor == cursor
