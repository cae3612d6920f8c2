"""GelfSource on loopback sockets: UDP and TCP on one port, counted rejections, TCP backpressure (the
connection is not read while emit blocks, and nothing is lost), the bounded UDP queue, chunk timeouts
swept without traffic, and a clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

import orjson

from hostwatch.core.events import Batch, LogEvent
from logshipper.config import GelfConfig
from logshipper.sources.gelf import GelfSource
from logshipper.telemetry import ShipperMetrics
from runtime.logdrivers.gelf import chunk, compress

CONFIG = GelfConfig(listen_address="127.0.0.1:0")
LIMIT = 64 << 10
WAIT = 10.0


def msg(text: str, **extra: object) -> bytes:
    return orjson.dumps({"version": "1.1", "host": "h", "short_message": text, **extra})


class Recorder:
    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self.gate: asyncio.Event | None = None  # while set to an unset Event, emit blocks

    async def emit(self, batch: Batch) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.batches.append(batch)

    @property
    def events(self) -> list[LogEvent]:
        return [e for b in self.batches for e in b.events]

    @property
    def messages(self) -> list[str]:
        return [e.message for e in self.events]


async def until(pred: Callable[[], bool], timeout: float = WAIT) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def sample(metrics: ShipperMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(f"hostwatch_logshipper_{name}_events_total",
                                              {"source": "gelf", **labels})
    return value or 0.0


@contextlib.asynccontextmanager
async def running(config: GelfConfig = CONFIG) -> AsyncIterator[tuple[GelfSource, Recorder, ShipperMetrics]]:
    metrics = ShipperMetrics()
    rec = Recorder()
    src = GelfSource(config, metrics, max_message_bytes=LIMIT)
    await src.start(rec.emit)
    try:
        yield src, rec, metrics
    finally:
        if rec.gate is not None:
            rec.gate.set()
        await src.stop()


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


def udp_send(port: int, datagrams: list[bytes]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for d in datagrams:
            s.sendto(d, ("127.0.0.1", port))


def test_udp_and_tcp_share_the_port_and_events_arrive_in_order() -> None:
    async def main() -> None:
        async with running() as (src, rec, metrics):
            assert src.udp_port == src.tcp_port > 0
            long_line = random.Random(0).randbytes(3000).hex()
            udp_send(src.udp_port, [compress(msg("one"), "gzip", 1), compress(msg("two"), "zlib", 1), msg("three")]
                     + chunk(compress(msg(long_line), "gzip", 1), b"\x01" * 8))
            assert await until(lambda: len(rec.events) == 4)
            _, writer = await asyncio.open_connection("127.0.0.1", src.tcp_port)
            writer.write(msg("tcp-1") + b"\0" + msg("tcp-2") + b"\0")
            await writer.drain()
            assert await until(lambda: len(rec.events) == 6)
            await close(writer)
            assert rec.messages == ["one", "two", "three", long_line, "tcp-1", "tcp-2"]
            assert rec.events[3].event_id == "01" * 8
            assert all(b.source == "gelf" and b.ack is None for b in rec.batches)
            assert sample(metrics, "received") == 6

    asyncio.run(main())


def test_bad_datagrams_and_frames_are_counted_by_reason_and_the_rest_still_arrive() -> None:
    async def main() -> None:
        async with running() as (src, rec, metrics):
            udp_send(src.udp_port, [b"garbage", msg("ok-udp"), b'{"version":"1.1"}', b"\x1e\x0f\x00",
                                    b"\x1e\x0f" + b"\x02" * 8 + bytes([0, 200]) + b"x"])
            _, writer = await asyncio.open_connection("127.0.0.1", src.tcp_port)
            writer.write(b"{not json\0" + b"x" * (LIMIT + 1) + b"\0" + msg("ok-tcp") + b"\0"
                         + b'{"version":"1.1","short_message":"\xff"}\0')
            await writer.drain()
            assert await until(lambda: len(rec.events) == 2)
            assert await until(lambda: sample(metrics, "rejected", reason="invalid_utf8") == 1)
            await close(writer)
            assert sorted(rec.messages) == ["ok-tcp", "ok-udp"]
            assert {r: sample(metrics, "rejected", reason=r) for r in
                    ("unknown_compression", "missing_short_message", "chunk_truncated", "chunk_count",
                     "invalid_json", "oversized", "invalid_utf8")} == {
                "unknown_compression": 1, "missing_short_message": 1, "chunk_truncated": 1, "chunk_count": 1,
                "invalid_json": 1, "oversized": 1, "invalid_utf8": 1}

    asyncio.run(main())


def test_a_blocked_emit_stops_reading_the_tcp_connection_and_loses_nothing() -> None:
    frames = [msg(f"line-{i:06d}", _pad="p" * 900) + b"\0" for i in range(20_000)]  # ~19 MiB
    data = b"".join(frames)
    blocked = threading.Event()
    sent = [0]

    def client(port: int) -> None:
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.settimeout(1.0)
            view = memoryview(data)
            while sent[0] < len(data):
                try:
                    sent[0] += s.send(view[sent[0]:sent[0] + 65536])
                except TimeoutError:
                    blocked.set()  # the receiver's window is shut: it stopped reading
                    s.settimeout(None)
            s.shutdown(socket.SHUT_WR)

    async def main() -> None:
        async with running() as (src, rec, metrics):
            rec.gate = asyncio.Event()
            thread = asyncio.create_task(asyncio.to_thread(client, src.tcp_port))
            assert await asyncio.to_thread(blocked.wait, WAIT), "the sender was never blocked"
            assert sent[0] < len(data)
            assert rec.batches == []  # the first batch is still in emit
            rec.gate.set()
            await thread
            assert await until(lambda: len(rec.events) == len(frames), 30)
            assert rec.messages == [f"line-{i:06d}" for i in range(len(frames))]
            assert sample(metrics, "received") == len(frames)

    asyncio.run(main())


def test_udp_events_beyond_the_queue_are_dropped_and_counted_while_emit_blocks() -> None:
    async def main() -> None:
        async with running(replace(CONFIG, udp_queue_events=50)) as (src, rec, metrics):
            rec.gate = asyncio.Event()
            udp_send(src.udp_port, [msg(f"m{i}") for i in range(200)])
            assert await until(lambda: sample(metrics, "received") == 200)
            # the pump holds the first batch in emit; 50 more wait; the rest did not fit
            queued_or_in_emit = 200 - sample(metrics, "dropped", reason="queue_full")
            assert 50 <= queued_or_in_emit <= 100
            rec.gate.set()
            assert await until(lambda: len(rec.events) == queued_or_in_emit)
            assert rec.messages == [f"m{i}" for i in range(int(queued_or_in_emit))]

    asyncio.run(main())


def test_incomplete_chunked_messages_are_swept_and_counted_without_more_traffic() -> None:
    async def main() -> None:
        async with running(replace(CONFIG, chunk_timeout=0.2)) as (src, rec, metrics):
            parts = chunk(msg(random.Random(1).randbytes(3000).hex()), b"\x03" * 8)
            udp_send(src.udp_port, parts[:-1])
            assert await until(lambda: sample(metrics, "rejected", reason="chunk_timeout") == 1)
            assert src.decoder.chunks.pending == 0
            udp_send(src.udp_port, parts[-1:])
            assert await until(lambda: sample(metrics, "rejected", reason="chunk_late") == 1)
            assert rec.events == []

    asyncio.run(main())


def test_stop_releases_the_port_and_counts_what_was_incomplete() -> None:
    async def main() -> None:
        metrics = ShipperMetrics()
        src = GelfSource(CONFIG, metrics, max_message_bytes=LIMIT)
        rec = Recorder()
        await src.start(rec.emit)
        port = src.udp_port
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        udp_send(port, chunk(msg(random.Random(2).randbytes(3000).hex()), b"\x04" * 8)[:1] + [msg("last")])
        assert await until(lambda: len(rec.events) == 1)
        await src.stop()
        assert sample(metrics, "rejected", reason="chunk_incomplete") == 1
        await close(writer)
        again = GelfSource(replace(CONFIG, listen_address=f"127.0.0.1:{port}"), metrics, max_message_bytes=LIMIT)
        await again.start(rec.emit)  # both protocols' port is free again
        assert again.udp_port == again.tcp_port == port
        udp_send(port, [msg("after restart")])
        assert await until(lambda: len(rec.events) == 2)
        await again.stop()
        assert rec.messages == ["last", "after restart"]

    asyncio.run(main())


def test_stop_while_a_connection_waits_in_emit_returns() -> None:
    async def main() -> None:
        async with running() as (src, rec, metrics):
            rec.gate = asyncio.Event()
            _, writer = await asyncio.open_connection("127.0.0.1", src.tcp_port)
            writer.write(msg("stuck") + b"\0")
            await writer.drain()
            assert await until(lambda: sample(metrics, "received") == 1)
            await asyncio.wait_for(src.stop(), WAIT)
            await close(writer)
            assert rec.batches == [] and sample(metrics, "dropped", reason="shutdown") == 1

    asyncio.run(main())
