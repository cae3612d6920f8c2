"""journald driver: native-protocol datagrams decoded by a receiver bound in the test."""

from __future__ import annotations

import array
import os
import re
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.logdrivers import Copier, LogInfo, LogMessage, create
from runtime.logdrivers.journald import sanitize_key

CID = "abcdef012345" + "6789abcd" * 6 + "ef01"
TS = 1_700_000_000_123_456_789


def decode(datagram: bytes) -> list[tuple[str, bytes]]:
    """Parse journald's native protocol (KEY=value\\n, or KEY\\n<u64 LE len><value>\\n)."""
    fields = []
    pos = 0
    while pos < len(datagram):
        nl = datagram.index(b"\n", pos)
        head = datagram[pos:nl]
        if b"=" in head:
            key, _, value = head.partition(b"=")
            pos = nl + 1
        else:
            key = head
            (size,) = struct.unpack("<Q", datagram[nl + 1 : nl + 9])
            value = datagram[nl + 9 : nl + 9 + size]
            assert datagram[nl + 9 + size : nl + 10 + size] == b"\n"
            pos = nl + 10 + size
        fields.append((key.decode(), value))
    return fields


class Receiver:
    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.sock.settimeout(5)

    def entry(self) -> dict[str, bytes]:
        data, anc, _, _ = self.sock.recvmsg(1 << 20, socket.CMSG_SPACE(4))
        if not data:  # the entry came as a memfd (SCM_RIGHTS)
            fds = array.array("i")
            for level, kind, payload in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
            assert len(fds) == 1
            with os.fdopen(fds[0], "rb") as f:
                f.seek(0)  # the offset is shared with the sender's write; journald mmaps the file
                data = f.read()
        fields = decode(data)
        result = dict(fields)
        assert len(result) == len(fields), "duplicate field"
        return result

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Receiver]:
    r = Receiver(tmp_path / "journal.sock")
    yield r
    r.close()


def make_info(socket_path: str, **opts: str) -> LogInfo:
    return LogInfo(
        container_id=CID,
        container_name="db",
        image_name="postgres:16",
        image_id="sha256:" + "1" * 64,
        command=["postgres"],
        created="2024-01-01T00:00:00Z",
        labels={"com.example.team": "data", "multi": "line1\nline2", "___": "empty key"},
        env=["PGDATA=/var/lib/pg"],
        log_path="",
        opts={"journald-socket": socket_path, **opts},
    )


def test_fields_of_a_stdout_line(receiver: Receiver) -> None:
    drv = create("journald", make_info(receiver.path, mode="blocking"))
    drv.log(LogMessage(b"ready to accept connections", "stdout", TS))
    e = receiver.entry()
    drv.close()
    assert e["MESSAGE"] == b"ready to accept connections"
    assert e["PRIORITY"] == b"6"
    assert e["CONTAINER_ID"] == CID[:12].encode()
    assert e["CONTAINER_ID_FULL"] == CID.encode()
    assert e["CONTAINER_NAME"] == b"db"
    assert e["CONTAINER_TAG"] == CID[:12].encode()
    assert e["SYSLOG_IDENTIFIER"] == CID[:12].encode()
    assert e["IMAGE_NAME"] == b"postgres:16"
    assert e["SYSLOG_TIMESTAMP"] == b"2023-11-14T22:13:20.123456789Z"
    assert re.fullmatch(rb"[0-9a-f]{64}", e["CONTAINER_LOG_EPOCH"])
    assert e["CONTAINER_LOG_ORDINAL"] == b"1"
    assert not any(k.startswith("CONTAINER_PARTIAL") for k in e)
    assert drv.dropped == 0


def test_stderr_priority_tag_and_ordinals(receiver: Receiver) -> None:
    drv = create("journald", make_info(receiver.path, mode="blocking", tag="{{.Name}}-{{.ImageName}}"))
    drv.log(LogMessage(b"one", "stderr", TS))
    drv.log(LogMessage(b"two", "stdout", TS))
    first, second = receiver.entry(), receiver.entry()
    drv.close()
    assert (first["PRIORITY"], second["PRIORITY"]) == (b"3", b"6")
    assert first["SYSLOG_IDENTIFIER"] == first["CONTAINER_TAG"] == b"db-postgres:16"
    assert (first["CONTAINER_LOG_ORDINAL"], second["CONTAINER_LOG_ORDINAL"]) == (b"1", b"2")
    assert first["CONTAINER_LOG_EPOCH"] == second["CONTAINER_LOG_EPOCH"]


def test_partial_pieces_carry_partial_fields(receiver: Receiver) -> None:
    drv = create("journald", make_info(receiver.path))  # default mode: non-blocking ring
    copier = Copier("stdout", drv.log)
    copier.feed(b"x" * 20000 + b"\n")
    first, last = receiver.entry(), receiver.entry()
    drv.close()
    assert first["MESSAGE"] == b"x" * 16384 and last["MESSAGE"] == b"x" * 3616
    assert first["CONTAINER_PARTIAL_MESSAGE"] == b"true"
    assert "CONTAINER_PARTIAL_MESSAGE" not in last
    assert first["CONTAINER_PARTIAL_ID"] == last["CONTAINER_PARTIAL_ID"]
    assert re.fullmatch(rb"[0-9a-f]{64}", first["CONTAINER_PARTIAL_ID"])
    assert (first["CONTAINER_PARTIAL_ORDINAL"], last["CONTAINER_PARTIAL_ORDINAL"]) == (b"1", b"2")
    assert (first["CONTAINER_PARTIAL_LAST"], last["CONTAINER_PARTIAL_LAST"]) == (b"false", b"true")
    assert first["SYSLOG_TIMESTAMP"] == last["SYSLOG_TIMESTAMP"]


def test_values_with_newlines_use_the_binary_form(receiver: Receiver) -> None:
    drv = create("journald", make_info(receiver.path, mode="blocking", labels="multi,com.example.team,___"))
    drv.log(LogMessage(b"cr\r and bytes \xff\x00 ok", "stdout", TS))
    data = receiver.sock.recv(1 << 20)
    drv.close()
    assert b"\nMULTI\n" + struct.pack("<Q", 11) + b"line1\nline2\n" in data
    e = dict(decode(data))
    assert e["MULTI"] == b"line1\nline2"
    assert e["COM_EXAMPLE_TEAM"] == b"data"
    assert e["MESSAGE"] == b"cr\r and bytes \xff\x00 ok"
    assert "" not in e  # a label whose sanitized key is empty is left out


def test_env_attributes(receiver: Receiver) -> None:
    drv = create("journald", make_info(receiver.path, mode="blocking", env="PGDATA"))
    drv.log(LogMessage(b"m", "stdout", TS))
    e = receiver.entry()
    drv.close()
    assert e["PGDATA"] == b"/var/lib/pg"


def test_an_entry_too_big_for_a_datagram_goes_as_a_memfd(receiver: Receiver) -> None:
    drv = create("journald", make_info(receiver.path, mode="blocking"))
    line = bytes(range(32, 127)) * 4000  # 380 KB: over the AF_UNIX datagram limit
    drv.log(LogMessage(line, "stdout", TS))
    e = receiver.entry()
    drv.close()
    assert e["MESSAGE"] == line
    assert drv.dropped == 0


@pytest.mark.parametrize("mode", ["blocking", "non-blocking"])
def test_missing_journal_socket_drops_and_counts(tmp_path: Path, mode: str) -> None:
    drv = create("journald", make_info(str(tmp_path / "no-journal.sock"), mode=mode))
    for i in range(10000):
        drv.log(LogMessage(b"lost %d" % i, "stdout", TS))
    drv.close()
    assert drv.dropped == 10000


def test_ring_buffer_full_drops_newest(tmp_path: Path) -> None:
    drv = create("journald", make_info(str(tmp_path / "no-journal.sock"), **{"max-buffer-size": "1k"}))
    for _ in range(100):
        drv.log(LogMessage(b"y" * 100, "stdout", TS))
    assert drv.dropped >= 80  # at most ~10 fit in 1 KiB; the rest were refused at once
    drv.close()
    assert drv.dropped == 100


@pytest.mark.parametrize(
    ("key", "expected"),
    [("com.example.team", "COM_EXAMPLE_TEAM"), ("_private", "PRIVATE"), ("a-b9", "A_B9"), ("Ünï", "N_"), ("__", "")],
)
def test_sanitize_key_like_moby(key: str, expected: str) -> None:
    assert sanitize_key(key) == expected
