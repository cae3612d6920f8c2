"""json-file driver: byte-exact output against hand-written fixtures, rotation, compression."""

from __future__ import annotations

import gzip
import json
import os
import struct
from pathlib import Path

import pytest

from runtime.logdrivers import Copier, LogInfo, LogMessage, create

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "jsonfile"
CID = "0123456789ab" + "cdef0123" * 6 + "4567"
TS = 1_700_000_000_123_456_789  # 2023-11-14T22:13:20.123456789Z


def make_info(tmp_path: Path, **opts: str) -> LogInfo:
    return LogInfo(
        container_id=CID,
        container_name="web",
        image_name="busybox:latest",
        image_id="sha256:" + "ab" * 32,
        command=["sh", "-c", "echo hi"],
        created="2023-11-14T22:00:00.5Z",
        labels={"com.example.team": "a<b>", "ignored": "x"},
        env=["PATH=/bin", "REGION=eu\twest", "NOVALUE"],
        log_path=str(tmp_path / f"{CID}-json.log"),
        opts=dict(opts),
    )


def feed_file(info: LogInfo, data: bytes, stream: str = "stdout") -> bytes:
    drv = create("json-file", info)
    copier = Copier(stream, drv.log, clock=lambda: TS)
    copier.feed(data)
    copier.flush()
    drv.close()
    assert drv.dropped == 0
    return Path(info.log_path).read_bytes()


def test_escaping_matches_fixture(tmp_path: Path) -> None:
    out = feed_file(make_info(tmp_path), (FIXTURES / "escaping.input").read_bytes())
    expected = (FIXTURES / "escaping.expected").read_bytes()
    assert out.splitlines(keepends=True) == expected.splitlines(keepends=True)


def test_escaping_is_the_same_when_fed_byte_by_byte(tmp_path: Path) -> None:
    info = make_info(tmp_path)
    drv = create("json-file", info)
    copier = Copier("stdout", drv.log, clock=lambda: TS)
    for b in (FIXTURES / "escaping.input").read_bytes():
        copier.feed(bytes([b]))
    copier.flush()
    drv.close()
    assert Path(info.log_path).read_bytes() == (FIXTURES / "escaping.expected").read_bytes()


def test_long_lines_split_at_16k_match_fixture(tmp_path: Path) -> None:
    out = feed_file(make_info(tmp_path), (FIXTURES / "long.input").read_bytes())
    assert out == (FIXTURES / "long.expected").read_bytes()
    lines = out.splitlines()
    assert len(lines) == 4
    assert [json.loads(x)["log"].endswith("\n") for x in lines] == [False, True, False, True]


def test_attrs_from_labels_env_and_tag_match_fixture(tmp_path: Path) -> None:
    info = make_info(tmp_path, labels="com.example.team,missing", env="REGION", tag="{{.Name}}/{{.ID}}")
    drv = create("json-file", info)
    drv.log(LogMessage(b"hello", "stderr", 1_700_000_001_000_000_000))
    drv.log(LogMessage(b"world", "stdout", 1_700_000_002_120_000_000))
    drv.close()
    assert Path(info.log_path).read_bytes() == (FIXTURES / "attrs.expected").read_bytes()


def test_no_attrs_without_labels_env_or_tag(tmp_path: Path) -> None:
    info = make_info(tmp_path)
    drv = create("json-file", info)
    drv.log(LogMessage(b"x", "stdout", TS))
    drv.close()
    assert b"attrs" not in Path(info.log_path).read_bytes()


def test_each_line_is_readable_before_close(tmp_path: Path) -> None:
    info = make_info(tmp_path)
    drv = create("json-file", info)
    drv.log(LogMessage(b"first", "stdout", TS))
    assert Path(info.log_path).read_bytes().count(b"\n") == 1
    drv.log(LogMessage(b"second", "stdout", TS))
    assert json.loads(Path(info.log_path).read_bytes().splitlines()[1])["log"] == "second\n"
    drv.close()


def test_appends_to_an_existing_log(tmp_path: Path) -> None:
    info = make_info(tmp_path)
    for word in (b"one", b"two"):
        drv = create("json-file", info)
        drv.log(LogMessage(word, "stdout", TS))
        drv.close()
    assert [json.loads(x)["log"] for x in Path(info.log_path).read_bytes().splitlines()] == ["one\n", "two\n"]


def test_log_after_close_is_counted_not_raised(tmp_path: Path) -> None:
    drv = create("json-file", make_info(tmp_path))
    drv.close()
    drv.log(LogMessage(b"late", "stdout", TS))
    assert drv.dropped == 1


def _numbered(i: int) -> bytes:
    return f"line {i:05d} ".encode() + b"x" * (i % 37)


def _read_all(path: Path) -> list[bytes]:
    """Every entry's "log" across <path>.N ... <path>.1 <path>, oldest first."""
    files = []
    for p in path.parent.iterdir():
        name = p.name
        if name == path.name:
            continue
        suffix = name[len(path.name) + 1 :].removesuffix(".gz")
        assert name.startswith(path.name + ".") and suffix.isdigit(), name
        files.append((int(suffix), p))
    out: list[bytes] = []
    for _, p in sorted(files, reverse=True):
        data = gzip.decompress(p.read_bytes()) if p.name.endswith(".gz") else p.read_bytes()
        out += [json.loads(x)["log"].encode() for x in data.splitlines()]
    out += [json.loads(x)["log"].encode() for x in path.read_bytes().splitlines()]
    return out


def test_rotation_keeps_every_line_once_in_order(tmp_path: Path) -> None:
    info = make_info(tmp_path, **{"max-size": "1k", "max-file": "1000"})
    drv = create("json-file", info)
    n = 2000
    for i in range(n):
        drv.log(LogMessage(_numbered(i), "stdout", TS + i))
    drv.close()
    path = Path(info.log_path)
    rotated = sorted(path.parent.glob(path.name + ".*"))
    assert len(rotated) > 50  # it did rotate, a lot
    for p in rotated:  # Docker rotates before the write that finds the file at or above max-size
        size = p.stat().st_size
        last = len(p.read_bytes().splitlines(keepends=True)[-1])
        assert size >= 1000 and size - last < 1000
    assert _read_all(path) == [_numbered(i) + b"\n" for i in range(n)]


def test_rotation_happens_when_the_file_has_reached_max_size(tmp_path: Path) -> None:
    entry = b'{"log":"abc\\n","stream":"stdout","time":"2023-11-14T22:13:20.123456789Z"}\n'
    info = make_info(tmp_path, **{"max-size": str(2 * len(entry)), "max-file": "5"})
    drv = create("json-file", info)
    for _ in range(6):
        drv.log(LogMessage(b"abc", "stdout", TS))
    drv.close()
    path = Path(info.log_path)
    for name in (path.name, path.name + ".1", path.name + ".2"):
        assert (tmp_path / name).read_bytes() == entry * 2
    assert not (tmp_path / (path.name + ".3")).exists()


def test_max_file_keeps_the_newest_files(tmp_path: Path) -> None:
    info = make_info(tmp_path, **{"max-size": "1k", "max-file": "3"})
    drv = create("json-file", info)
    for i in range(500):
        drv.log(LogMessage(_numbered(i), "stdout", TS))
    drv.close()
    path = Path(info.log_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name, path.name + ".1", path.name + ".2"]
    lines = _read_all(path)
    assert lines == [_numbered(i) + b"\n" for i in range(500 - len(lines), 500)]


def test_max_file_one_truncates_like_docker(tmp_path: Path) -> None:
    info = make_info(tmp_path, **{"max-size": "1k"})
    drv = create("json-file", info)
    for i in range(100):
        drv.log(LogMessage(_numbered(i), "stdout", TS))
    drv.close()
    assert [p.name for p in tmp_path.iterdir()] == [Path(info.log_path).name]
    lines = _read_all(Path(info.log_path))
    assert 0 < len(lines) < 100 and lines[-1] == _numbered(99) + b"\n"


def test_compressed_rotation_keeps_every_line_and_records_last_time(tmp_path: Path) -> None:
    info = make_info(tmp_path, **{"max-size": "2k", "max-file": "500", "compress": "true"})
    drv = create("json-file", info)
    n = 1000
    for i in range(n):
        drv.log(LogMessage(_numbered(i), "stdout", 1_700_000_000_000_000_000 + i * 1_000_000))
    drv.close()
    path = Path(info.log_path)
    rotated = list(path.parent.glob(path.name + ".*"))
    assert rotated and all(p.name.endswith(".gz") for p in rotated)
    assert _read_all(path) == [_numbered(i) + b"\n" for i in range(n)]
    raw = (path.parent / (path.name + ".1.gz")).read_bytes()
    assert raw[:4] == b"\x1f\x8b\x08\x04"  # gzip with FEXTRA, as Go writes Header.Extra
    (xlen,) = struct.unpack("<H", raw[10:12])
    extra = json.loads(raw[12 : 12 + xlen])
    last_line = gzip.decompress(raw).splitlines()[-1]
    assert extra == {"lastTime": json.loads(last_line)["time"]}


def test_non_blocking_json_file_writes_everything_on_close(tmp_path: Path) -> None:
    info = make_info(tmp_path, mode="non-blocking")
    drv = create("json-file", info)
    for i in range(300):
        drv.log(LogMessage(_numbered(i), "stdout", TS))
    drv.close()
    assert drv.dropped == 0
    assert _read_all(Path(info.log_path)) == [_numbered(i) + b"\n" for i in range(300)]


def test_unopenable_log_path_raises_at_create(tmp_path: Path) -> None:
    info = make_info(tmp_path)
    os.mkdir(info.log_path)  # a directory where the log file should be
    with pytest.raises(OSError):
        create("json-file", info)
