"""journald driver against a real, namespaced systemd-journald, read back with journalctl.

Needs root and /lib/systemd/systemd-journald. The journald instance is started per test module with a
random namespace (it creates /run/systemd/journal.<NAME>/socket), stopped by its PID, and its runtime
directory and journal files are removed afterwards.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from runtime.logdrivers import Copier, LogInfo, LogMessage, create

from peers import Journal, namespaced_journald

pytestmark = pytest.mark.integration

CID = "c0ffee000000" + "0123abcd" * 6 + "beef"
TS = 1_700_000_000_123_456_789


@pytest.fixture(scope="module")
def journal() -> Iterator[Journal]:
    with namespaced_journald() as j:
        yield j


def make_info(socket_path: str, cid: str = CID, **opts: str) -> LogInfo:
    return LogInfo(
        container_id=cid,
        container_name="journaled",
        image_name="alpine:3.19",
        image_id="sha256:" + "4" * 64,
        command=["sh"],
        created="2024-01-01T00:00:00Z",
        labels={"com.example.owner": "sre", "notes": "first\nsecond"},
        env=["STAGE=test"],
        log_path="",
        opts={"journald-socket": socket_path, **opts},
    )


def field(entry: dict[str, Any], key: str) -> bytes:
    """journalctl -o json shows text as a string and binary (non-UTF-8, control chars) as a byte array."""
    value = entry[key]
    return bytes(value) if isinstance(value, list) else str(value).encode()


def test_fields_arrive_in_the_journal(journal: Journal) -> None:
    info = make_info(journal.socket, tag="{{.Name}}", labels="com.example.owner,notes", env="STAGE")
    drv = create("journald", info)
    drv.log(LogMessage(b"hello from stdout", "stdout", TS))
    drv.log(LogMessage(b"oops on stderr \xff", "stderr", TS + 1))
    copier = Copier("stdout", drv.log)
    copier.feed(b"L" * 20000 + b"\n")
    big = bytes(range(65, 91)) * 12000  # 312 KB: too big for a datagram, goes as a memfd
    drv.log(LogMessage(big, "stdout", TS + 2))
    drv.close()
    assert drv.dropped == 0

    entries = journal.entries(5, CID)
    assert len(entries) == 5, entries
    by_message = {field(e, "MESSAGE")[:20]: e for e in entries}
    out = by_message[b"hello from stdout"]
    err = by_message[b"oops on stderr \xff"]
    big_entry = by_message[big[:20]]
    first = next(e for e in entries if e.get("CONTAINER_PARTIAL_ORDINAL") == "1")
    last = next(e for e in entries if e.get("CONTAINER_PARTIAL_ORDINAL") == "2")

    for e in entries:
        assert e["CONTAINER_ID"] == CID[:12]
        assert e["CONTAINER_ID_FULL"] == CID
        assert e["CONTAINER_NAME"] == "journaled"
        assert e["CONTAINER_TAG"] == e["SYSLOG_IDENTIFIER"] == "journaled"
        assert e["IMAGE_NAME"] == "alpine:3.19"
        assert e["COM_EXAMPLE_OWNER"] == "sre"
        assert field(e, "NOTES") == b"first\nsecond"
        assert e["STAGE"] == "test"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", e["SYSLOG_TIMESTAMP"])
        assert e["_TRANSPORT"] == "journal"

    assert out["PRIORITY"] == "6" and err["PRIORITY"] == "3"
    assert out["SYSLOG_TIMESTAMP"] == "2023-11-14T22:13:20.123456789Z"
    assert field(err, "MESSAGE") == b"oops on stderr \xff"
    assert field(first, "MESSAGE") == b"L" * 16384 and field(last, "MESSAGE") == b"L" * 3616
    assert first["CONTAINER_PARTIAL_MESSAGE"] == "true"
    assert (first["CONTAINER_PARTIAL_ORDINAL"], first["CONTAINER_PARTIAL_LAST"]) == ("1", "false")
    assert (last["CONTAINER_PARTIAL_ORDINAL"], last["CONTAINER_PARTIAL_LAST"]) == ("2", "true")
    assert "CONTAINER_PARTIAL_MESSAGE" not in last
    assert first["CONTAINER_PARTIAL_ID"] == last["CONTAINER_PARTIAL_ID"]
    assert field(big_entry, "MESSAGE") == big
    ordinals = sorted(int(e["CONTAINER_LOG_ORDINAL"]) for e in entries)
    assert ordinals == [1, 2, 3, 4, 5]
    assert len({e["CONTAINER_LOG_EPOCH"] for e in entries}) == 1


def test_a_burst_through_the_ring_buffer_arrives_complete_and_in_order(journal: Journal) -> None:
    cid = secrets.token_hex(32)
    drv = create("journald", make_info(journal.socket, cid=cid))  # default mode: non-blocking
    n = 3000
    for i in range(n):
        drv.log(LogMessage(b"burst %05d" % i, "stdout", TS + i))
    drv.close()
    assert drv.dropped == 0
    entries = journal.entries(n, cid=cid, timeout=10.0)
    assert [e["MESSAGE"] for e in entries] == [f"burst {i:05d}" for i in range(n)]
    assert [int(e["CONTAINER_LOG_ORDINAL"]) for e in entries] == list(range(1, n + 1))
