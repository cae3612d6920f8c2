"""fluentd driver against a real forward-protocol receiver (threaded, msgpack.Unpacker)."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest

from runtime.logdrivers import Copier, LogInfo, LogMessage, create

from peers import ForwardReceiver

CID = "0f1e2d3c4b5a" + "69788796" * 6 + "a5b4"
TS = 1_700_000_000_123_456_789


@pytest.fixture
def receiver() -> Iterator[ForwardReceiver]:
    r = ForwardReceiver()
    yield r
    r.close()


def make_info(**opts: str) -> LogInfo:
    return LogInfo(
        container_id=CID,
        container_name="worker",
        image_name="python:3.11",
        image_id="sha256:" + "2" * 64,
        command=["python", "-m", "worker"],
        created="2024-01-01T00:00:00Z",
        labels={"team": "ml"},
        env=["QUEUE=jobs", "SECRET=x"],
        log_path="",
        opts=dict(opts),
    )


def test_docker_record_shape_and_default_tag(receiver: ForwardReceiver) -> None:
    drv = create("fluentd", make_info(**{"fluentd-address": receiver.address}))
    drv.log(LogMessage(b"job 1 done", "stdout", TS))
    drv.log(LogMessage(b"caf\xc3\xa9 \xff", "stderr", TS + 1_000_000_000))
    entries = receiver.wait_for(2)
    drv.close()
    assert len(entries) == 2
    (tag, ts, record), (tag2, ts2, record2) = entries
    assert tag == tag2 == CID[:12]
    assert (ts, ts2) == (1_700_000_000, 1_700_000_001)  # integer seconds by default
    assert record == {"container_id": CID, "container_name": "/worker", "source": "stdout", "log": "job 1 done"}
    assert record2["source"] == "stderr" and record2["log"] == "café \ufffd"
    assert drv.dropped == 0


def test_partial_fields_tag_template_and_extra_attributes(receiver: ForwardReceiver) -> None:
    opts = {"fluentd-address": "tcp://" + receiver.address, "tag": "docker.{{.Name}}", "labels": "team", "env": "QUEUE"}
    drv = create("fluentd", make_info(**opts))
    copier = Copier("stdout", drv.log)
    copier.feed(b"p" * 20000 + b"\n")
    entries = receiver.wait_for(2)
    drv.close()
    assert [e[0] for e in entries] == ["docker.worker", "docker.worker"]
    first, last = entries[0][2], entries[1][2]
    assert first["log"] == "p" * 16384 and last["log"] == "p" * 3616
    assert first["team"] == "ml" and first["QUEUE"] == "jobs" and "SECRET" not in first
    assert (first["partial_message"], first["partial_ordinal"], first["partial_last"]) == ("true", "1", "false")
    assert (last["partial_message"], last["partial_ordinal"], last["partial_last"]) == ("true", "2", "true")
    assert first["partial_id"] == last["partial_id"] and len(first["partial_id"]) == 64


def test_sub_second_precision_sends_event_time(receiver: ForwardReceiver) -> None:
    opts = {"fluentd-address": receiver.address, "fluentd-sub-second-precision": "true", "mode": "blocking"}
    drv = create("fluentd", make_info(**opts))
    drv.log(LogMessage(b"precise", "stdout", TS))
    (entry,) = receiver.wait_for(1)
    drv.close()
    ts = entry[1]
    assert isinstance(ts, msgpack.ExtType) and ts.code == 0
    assert struct.unpack(">II", ts.data) == (1_700_000_000, 123_456_789)


def test_unix_socket_address(tmp_path: Path) -> None:
    r = ForwardReceiver(socket.AF_UNIX, str(tmp_path / "fluent.sock"))
    try:
        drv = create("fluentd", make_info(**{"fluentd-address": r.address}))
        for i in range(50):
            drv.log(LogMessage(b"u%d" % i, "stdout", TS))
        entries = r.wait_for(50)
        drv.close()
    finally:
        r.close()
    assert [e[2]["log"] for e in entries] == [f"u{i}" for i in range(50)]


def test_many_messages_arrive_in_order(receiver: ForwardReceiver) -> None:
    drv = create("fluentd", make_info(**{"fluentd-address": receiver.address}))
    for i in range(2000):
        drv.log(LogMessage(b"n%d" % i, "stdout", TS))
    drv.close()
    entries = receiver.wait_for(2000)
    assert [e[2]["log"] for e in entries] == [f"n{i}" for i in range(2000)]
    assert drv.dropped == 0


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("mode", ["blocking", "non-blocking"])
def test_unreachable_endpoint_never_blocks_and_counts_drops(mode: str) -> None:
    opts = {"fluentd-address": f"127.0.0.1:{_closed_port()}", "mode": mode}
    drv = create("fluentd", make_info(**opts))
    for i in range(10000):
        drv.log(LogMessage(b"nobody listens %d" % i, "stdout", TS))
    drv.close()
    assert drv.dropped == 10000


def test_buffer_limit_overflow_is_counted() -> None:
    opts = {
        "fluentd-address": f"127.0.0.1:{_closed_port()}",
        "mode": "blocking",
        "fluentd-retry-wait": "0",
        "fluentd-buffer-limit": "1k",
    }
    drv = create("fluentd", make_info(**opts))
    for _ in range(20):
        drv.log(LogMessage(b"b" * 200, "stdout", TS))
    assert drv.dropped > 0  # FluentSender threw its buffer away while the endpoint was down
    drv.close()
    assert drv.dropped == 20
