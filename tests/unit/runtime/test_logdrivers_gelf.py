"""gelf driver: UDP receiver reassembling chunks (gzip, zlib, none) and a TCP receiver with NUL framing."""

from __future__ import annotations

import gzip
import json
import random
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from runtime.logdrivers import LogInfo, LogMessage, create

from peers import UdpReceiver, decompress

CID = "1234567890ab" + "cdefcdef" * 6 + "0000"
TS = 1_700_000_000_123_456_789


def make_info(**opts: str) -> LogInfo:
    return LogInfo(
        container_id=CID,
        container_name="frontend",
        image_name="nginx:1.25",
        image_id="sha256:" + "3" * 64,
        command=["nginx", "-g", "daemon off;"],
        created="2024-02-03T04:05:06.789Z",
        labels={"tier": "edge"},
        env=["_RAW=1"],
        log_path="",
        opts=dict(opts),
    )


@pytest.fixture
def udp() -> Iterator[UdpReceiver]:
    r = UdpReceiver()
    yield r
    r.sock.close()


def test_small_message_is_one_gzip_datagram_with_docker_fields(udp: UdpReceiver) -> None:
    drv = create("gelf", make_info(**{"gelf-address": udp.address, "labels": "tier", "env": "_RAW"}))
    drv.log(LogMessage(b"GET / 200", "stdout", TS))
    raw = udp.message()
    drv.close()
    assert raw[:2] == b"\x1f\x8b" and len(udp.datagrams) == 1
    body = gzip.decompress(raw)
    msg = json.loads(body)
    assert list(msg) == [
        "version", "host", "short_message", "timestamp", "level",
        "_RAW", "_command", "_container_id", "_container_name", "_created", "_image_id", "_image_name", "_tag",
        "_tier",
    ]  # fmt: skip
    assert msg["version"] == "1.1" and msg["host"] == socket.gethostname()
    assert msg["short_message"] == "GET / 200"
    assert body.count(b'"timestamp":1700000000.123,') == 1  # millisecond precision, like Docker
    assert msg["level"] == 6
    assert msg["_container_id"] == CID and msg["_container_name"] == "frontend"
    assert msg["_image_id"] == "sha256:" + "3" * 64 and msg["_image_name"] == "nginx:1.25"
    assert msg["_command"] == "nginx -g daemon off;" and msg["_tag"] == CID[:12]
    assert msg["_created"] == "2024-02-03T04:05:06.789Z"
    assert msg["_tier"] == "edge" and msg["_RAW"] == "1"


@pytest.mark.parametrize("kind", ["gzip", "zlib", "none"])
def test_large_line_is_chunked_and_reassembles(udp: UdpReceiver, kind: str) -> None:
    line = random.Random(kind).randbytes(8000).hex().encode()  # 16000 hex chars: compresses only ~2x
    drv = create("gelf", make_info(**{"gelf-address": udp.address, "gelf-compression-type": kind}))
    drv.log(LogMessage(line, "stderr", TS))
    raw = udp.message()
    drv.close()
    assert len(udp.datagrams) > 1
    assert all(len(d) <= 1420 for d in udp.datagrams)
    assert {d[11] for d in udp.datagrams} == {len(udp.datagrams)}
    magic = {"gzip": b"\x1f\x8b", "zlib": b"\x78", "none": b"{"}[kind]
    assert raw.startswith(magic)
    msg = decompress(raw)
    assert msg["short_message"] == line.decode() and msg["level"] == 3
    assert drv.dropped == 0


def test_more_than_128_chunks_is_dropped_and_counted(udp: UdpReceiver) -> None:
    line = random.Random(7).randbytes(100_000).hex().encode()  # 200 KB uncompressed: > 128 * 1408
    drv = create("gelf", make_info(**{"gelf-address": udp.address, "gelf-compression-type": "none"}))
    drv.log(LogMessage(line, "stdout", TS))
    drv.log(LogMessage(b"small", "stdout", TS))
    msg = decompress(udp.message())  # the next datagram is already the small message
    drv.close()
    assert msg["short_message"] == "small"
    assert drv.dropped == 1


def test_tcp_messages_are_nul_framed_uncompressed_json() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(5)
    received = bytearray()

    def serve() -> None:
        conn, _ = server.accept()
        conn.settimeout(30)
        with conn:
            while received.count(b"\0") < 3:
                data = conn.recv(65536)
                if not data:
                    return
                received.extend(data)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    drv = create("gelf", make_info(**{"gelf-address": address}))
    for text in (b"first", b'with "quotes" and <tags>', b"x" * 5000):
        drv.log(LogMessage(text, "stdout", TS))
    drv.close()  # flushes what the driver still holds, then the receiver has all three frames
    t.join(30)
    server.close()
    frames = bytes(received).split(b"\0")
    assert frames[-1] == b"" and len(frames) == 4
    msgs = [json.loads(f) for f in frames[:-1]]
    assert [m["short_message"] for m in msgs] == ["first", 'with "quotes" and <tags>', "x" * 5000]
    assert b"\\u003ctags\\u003e" in frames[1]  # Go's HTML-safe escaping
    assert drv.dropped == 0


def _closed_port(kind: socket.SocketKind) -> int:
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("mode", ["blocking", "non-blocking"])
def test_unreachable_tcp_endpoint_never_blocks_and_counts_drops(mode: str) -> None:
    address = f"tcp://127.0.0.1:{_closed_port(socket.SOCK_STREAM)}"
    drv = create("gelf", make_info(**{"gelf-address": address, "mode": mode}))
    for i in range(10000):
        drv.log(LogMessage(b"lost %d" % i, "stdout", TS))
    drv.close()
    assert drv.dropped == 10000


def test_unreachable_udp_endpoint_counts_refused_sends() -> None:
    address = f"udp://127.0.0.1:{_closed_port(socket.SOCK_DGRAM)}"
    drv = create("gelf", make_info(**{"gelf-address": address, "mode": "blocking"}))
    for i in range(200):
        drv.log(LogMessage(b"lost %d" % i, "stdout", TS))
        time.sleep(0.001)  # let the ICMP port-unreachable come back
    drv.close()
    assert 0 < drv.dropped <= 200
