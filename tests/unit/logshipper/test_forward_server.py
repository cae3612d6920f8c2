"""FluentForwardSource over loopback sockets with a hand-made client, byte for byte: acks only after
delivery and in order, backpressure, bad streams, limits, the handshake, the heartbeat, stop()."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import socket
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import msgpack
import pytest
from test_forward_fuzz import mutate, valid_frame

from hostwatch.core.config import ConfigError
from hostwatch.core.events import Batch, LogEvent
from logshipper.codecs import forward as fw
from logshipper.config import ForwardConfig
from logshipper.sources.fluent_forward import MAX_INVALID_IN_A_ROW, FluentForwardSource
from logshipper.telemetry import ShipperMetrics

T0 = 1_796_112_000
WAIT = 5.0  # upper bound for anything the server must do; the tests never depend on it being fast


class Harness:
    def __init__(self, auto_ack: bool = True, max_message_bytes: int = 1 << 20, **cfg: Any) -> None:
        self.metrics = ShipperMetrics()
        self.source = FluentForwardSource(ForwardConfig(listen_address="127.0.0.1:0", **cfg), self.metrics,
                                          max_message_bytes=max_message_bytes)
        self.auto_ack = auto_ack
        self.gate: asyncio.Event | None = None  # set: emit returns; clear: emit blocks (a full buffer)
        self.batches: list[Batch] = []
        self.clients: list[asyncio.StreamWriter] = []
        self._changed = asyncio.Event()

    async def emit(self, batch: Batch) -> None:
        self.batches.append(batch)
        self._changed.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.auto_ack and batch.ack:
            batch.ack()

    @property
    def events(self) -> list[LogEvent]:
        return [e for b in self.batches for e in b.events]

    async def until(self, done: Callable[[], bool]) -> None:
        async with asyncio.timeout(WAIT):
            while not done():
                self._changed.clear()
                await self._changed.wait()

    def rejected(self, reason: str) -> float:
        value = self.metrics.registry.get_sample_value("hostwatch_logshipper_rejected_events_total",
                                                      {"source": "fluent_forward", "reason": reason})
        return value or 0.0

    def received(self) -> float:
        return self.metrics.registry.get_sample_value("hostwatch_logshipper_received_events_total",
                                                      {"source": "fluent_forward"}) or 0.0

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.source.port)
        self.clients.append(writer)
        return reader, writer

    async def close(self) -> None:
        for writer in self.clients:
            writer.close()
        await self.source.stop()
        for writer in self.clients:
            with contextlib.suppress(OSError):
                await writer.wait_closed()


@asynccontextmanager
async def serving(**kwargs: Any) -> AsyncIterator[Harness]:
    h = Harness(**kwargs)
    await h.source.start(h.emit)
    try:
        yield h
    finally:
        await h.close()


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(test())


def msg(text: str, chunk: str | None = None, tag: str = "t") -> bytes:
    return msgpack.packb([tag, T0, {"log": text}, *([{"chunk": chunk}] if chunk else [])])


_UNPACKERS: weakref.WeakKeyDictionary[asyncio.StreamReader, msgpack.Unpacker] = weakref.WeakKeyDictionary()


async def read_obj(reader: asyncio.StreamReader) -> Any:
    """The next msgpack object the server sent (one read may bring several)."""
    unpacker = _UNPACKERS.setdefault(reader, msgpack.Unpacker(raw=False))
    async with asyncio.timeout(WAIT):
        while True:
            for obj in unpacker:
                return obj
            data = await reader.read(4096)
            assert data, "connection closed"
            unpacker.feed(data)


async def read_eof(reader: asyncio.StreamReader) -> bytes:
    async with asyncio.timeout(WAIT):
        return await reader.read()


def test_chunk_is_acked_only_after_the_batch_ack_and_no_chunk_gets_no_answer() -> None:
    async def test() -> None:
        async with serving(auto_ack=False) as h:
            reader, writer = await h.connect()
            writer.write(msg("no chunk") + msg("with chunk", "c1"))
            await h.until(lambda: len(h.events) == 2)
            pending = asyncio.ensure_future(reader.read(100))
            await asyncio.sleep(0.2)
            assert not pending.done()  # nothing is answered before delivery
            for b in h.batches:
                assert b.ack is not None
                b.ack()
            async with asyncio.timeout(WAIT):
                data = await pending
            assert msgpack.unpackb(data) == {"ack": "c1"}  # the first bytes: no answer to the first message
            assert [e.event_id for e in h.events][1] == "c1:0"
            writer.close()

    run(test)


def test_acks_go_out_in_arrival_order_whatever_order_deliveries_complete_in() -> None:
    async def test() -> None:
        async with serving(auto_ack=False) as h:
            reader, writer = await h.connect()
            for i, chunk in enumerate(["A", "B", "C"]):
                writer.write(msg(f"m{i}", chunk))
                await h.until(lambda i=i: len(h.batches) == i + 1)
            acks = [b.ack for b in h.batches]
            assert all(acks)
            acks[2]()
            acks[1]()
            pending = asyncio.ensure_future(read_obj(reader))
            await asyncio.sleep(0.2)
            assert not pending.done()  # B and C wait for A
            acks[0]()
            assert [await pending, await read_obj(reader), await read_obj(reader)] == [
                {"ack": "A"}, {"ack": "B"}, {"ack": "C"}]
            writer.close()

    run(test)


def test_a_blocked_emit_stops_reading_so_tcp_pushes_back() -> None:
    async def test() -> None:
        async with serving() as h:
            h.gate = asyncio.Event()
            reader, writer = await h.connect()
            writer.transport.set_write_buffer_limits(high=1 << 30)
            lines = [f"line {i} " + "x" * 200 for i in range(100_000)]  # ~22 MB, more than socket buffers hold
            writer.write(b"".join(msg(line) for line in lines))
            await h.until(lambda: len(h.batches) == 1)
            for _ in range(20):
                await asyncio.sleep(0.05)
            assert len(h.batches) == 1  # emit still blocked: nothing more was read...
            assert writer.transport.get_write_buffer_size() > 0  # ...so the client could not send it all
            h.gate.set()
            await h.until(lambda: len(h.events) == len(lines))
            assert [e.message for e in h.events] == lines
            writer.close()

    run(test)


def test_garbage_keeps_what_came_before_sends_its_acks_and_closes() -> None:
    async def test() -> None:
        async with serving() as h:
            reader, writer = await h.connect()
            writer.write(msg("before", "c1") + b"\xc1" + msg("after", "c2"))
            assert await read_obj(reader) == {"ack": "c1"}
            assert await read_eof(reader) == b""
            assert [e.message for e in h.events] == ["before"]
            assert h.rejected(fw.GARBAGE) == 1 and h.received() == 1
            reader2, writer2 = await h.connect()  # the server goes on
            writer2.write(msg("next", "c3"))
            assert await read_obj(reader2) == {"ack": "c3"}
            writer2.close()

    run(test)


def test_rejected_entries_are_counted_and_their_chunk_still_acked() -> None:
    async def test() -> None:
        async with serving(max_message_bytes=100) as h:
            reader, writer = await h.connect()
            writer.write(msgpack.packb(["t", [[T0, {"log": "ok"}], [T0, {"log": "x" * 101}], "junk"],
                                       {"chunk": "c"}]))
            assert await read_obj(reader) == {"ack": "c"}
            assert [e.message for e in h.events] == ["ok"]
            assert (h.rejected(fw.OVERSIZED), h.rejected(fw.SHAPE)) == (1, 1)
            writer.close()

    run(test)


def test_a_peer_speaking_something_else_is_hung_up_on() -> None:
    async def test() -> None:
        async with serving() as h:
            reader, writer = await h.connect()
            writer.write(msgpack.packb(7) * (MAX_INVALID_IN_A_ROW + 50))
            assert await read_eof(reader) == b""
            assert h.rejected(fw.SHAPE) == MAX_INVALID_IN_A_ROW

    run(test)


def test_a_message_over_the_connection_buffer_closes_it_and_keeps_the_rest() -> None:
    async def test() -> None:
        async with serving(max_buffer_bytes=4096) as h:
            reader, writer = await h.connect()
            writer.write(msg("small", "c1") + msg("y" * 10_000))
            assert await read_obj(reader) == {"ack": "c1"}
            assert await read_eof(reader) == b""
            assert [e.message for e in h.events] == ["small"] and h.rejected(fw.TOO_LARGE) == 1

    run(test)


def test_docker_partial_pieces_are_joined_and_their_chunks_acked_after_the_joined_event() -> None:
    async def test() -> None:
        async with serving(auto_ack=False) as h:
            reader, writer = await h.connect()
            for i, part in enumerate(["a" * 16384, "b" * 16384, "c"]):
                record = {"container_id": "c" * 64, "container_name": "/web", "source": "stdout", "log": part,
                          "partial_message": "true", "partial_id": "pid", "partial_ordinal": str(i + 1),
                          "partial_last": "true" if i == 2 else "false"}
                writer.write(msgpack.packb(["tag", T0, record, {"chunk": f"p{i}"}]))
                await writer.drain()
            await h.until(lambda: len(h.events) == 1)
            assert h.events[0].message == "a" * 16384 + "b" * 16384 + "c"
            assert h.events[0].event_id == "p0:0" and h.events[0].container_name == "web"
            [batch] = [b for b in h.batches if b.events]
            assert batch.ack is not None
            batch.ack()
            assert [await read_obj(reader) for _ in range(3)] == [{"ack": "p0"}, {"ack": "p1"}, {"ack": "p2"}]
            writer.close()

    run(test)


def test_a_partial_line_without_its_last_piece_is_sent_after_the_timeout() -> None:
    async def test() -> None:
        async with serving(partial_timeout=0.2) as h:
            reader, writer = await h.connect()
            record = {"log": "unfinished", "source": "stdout", "partial_message": "true", "partial_id": "x",
                      "partial_ordinal": "1", "partial_last": "false"}
            writer.write(msgpack.packb(["t", T0, record, {"chunk": "c"}]))
            assert await read_obj(reader) == {"ack": "c"}
            assert [e.message for e in h.events] == ["unfinished"]
            writer.close()

    run(test)


def test_connections_over_the_limit_are_refused() -> None:
    async def test() -> None:
        async with serving(max_connections=1) as h:
            reader1, writer1 = await h.connect()
            writer1.write(msg("first", "c1"))
            assert await read_obj(reader1) == {"ack": "c1"}
            reader2, writer2 = await h.connect()
            assert await read_eof(reader2) == b""
            writer1.close()

    run(test)


def test_udp_heartbeat_is_answered_with_one_nul_byte() -> None:
    async def test() -> None:
        async with serving() as h:
            loop = asyncio.get_running_loop()
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.setblocking(False)
                s.connect(("127.0.0.1", h.source.port))
                s.send(b"\x00")
                async with asyncio.timeout(WAIT):
                    assert await loop.sock_recv(s, 100) == b"\x00"

    run(test)


def test_tcp_nil_heartbeat_is_neither_event_nor_rejection() -> None:
    async def test() -> None:
        async with serving() as h:
            reader, writer = await h.connect()
            writer.write(msgpack.packb(None) + msg("x", "c"))
            assert await read_obj(reader) == {"ack": "c"}
            assert len(h.events) == 1 and sum(h.rejected(r) for r in fw.REASONS) == 0
            writer.close()

    run(test)


async def handshake(h: Harness, key: str, hostname: str = "client",
                    user: str = "", password: str = "") -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Any]:
    reader, writer = await h.connect()
    kind, options = await read_obj(reader)
    assert kind == "HELO" and len(options["nonce"]) == 16 and options["keepalive"] is True
    salt = "0123456789abcdef"
    digest = hashlib.sha512(salt.encode() + hostname.encode() + options["nonce"] + key.encode()).hexdigest()
    auth = options["auth"]
    pw = hashlib.sha512(auth + user.encode() + password.encode()).hexdigest() if auth else ""
    writer.write(msgpack.packb(["PING", hostname, salt, digest, user, pw]))
    pong = await read_obj(reader)
    if pong[1]:
        expected = hashlib.sha512(salt.encode() + b"server" + options["nonce"] + key.encode()).hexdigest()
        assert pong == ["PONG", True, "", "server", expected]
    return reader, writer, pong


def test_shared_key_handshake_accepts_the_key_and_refuses_others() -> None:
    async def test() -> None:
        async with serving(shared_key="s3cret", self_hostname="server") as h:
            reader, writer, pong = await handshake(h, "s3cret")
            assert pong[1] is True
            writer.write(msg("authenticated", "c"))
            assert await read_obj(reader) == {"ack": "c"}
            assert [e.message for e in h.events] == ["authenticated"]
            writer.close()
            reader, writer, pong = await handshake(h, "guess")
            assert pong == ["PONG", False, "shared_key mismatch", "", ""]
            assert await read_eof(reader) == b""
            reader, writer = await h.connect()
            await read_obj(reader)  # HELO
            writer.write(msg("no ping"))
            assert (await read_obj(reader))[:3] == ["PONG", False, "invalid ping message"]
            assert await read_eof(reader) == b""
            assert h.rejected(fw.AUTH) == 2 and len(h.events) == 1

    run(test)


def test_user_auth_needs_a_configured_login() -> None:
    async def test() -> None:
        async with serving(shared_key="k", self_hostname="server", users=("alice:pw",)) as h:
            _, writer, pong = await handshake(h, "k", user="alice", password="pw")
            assert pong[1] is True
            writer.close()
            reader, _, pong = await handshake(h, "k", user="alice", password="wrong")
            assert pong == ["PONG", False, "username/password mismatch", "", ""]
            assert await read_eof(reader) == b""

    run(test)


def test_stop_returns_while_emit_is_blocked() -> None:
    async def test() -> None:
        h = Harness()
        h.gate = asyncio.Event()
        await h.source.start(h.emit)
        reader, writer = await h.connect()
        writer.write(msg("stuck", "c"))
        await h.until(lambda: len(h.batches) == 1)
        async with asyncio.timeout(WAIT):
            await h.source.stop()
        assert h.source.connections == 0
        assert await read_eof(reader) == b""  # no ack: the client re-sends that chunk elsewhere
        await h.close()

    run(test)


def test_mutated_streams_over_sockets_never_take_the_server_down() -> None:
    async def test() -> None:
        rng = random.Random(5)
        async with serving(max_buffer_bytes=1 << 16) as h:
            for i in range(150):
                stream = b"".join(valid_frame(rng, i * 8 + k) for k in range(3))
                reader, writer = await h.connect()
                writer.write(mutate(rng, stream, valid_frame(rng, i)))
                writer.write_eof()
                await read_eof(reader)
                writer.close()
            assert sum(h.rejected(r) for r in fw.REASONS) > 50 and h.received() > 100
            reader, writer = await h.connect()
            writer.write(msg("still serving", "last"))
            assert await read_obj(reader) == {"ack": "last"}
            assert h.events[-1].message == "still serving"
            writer.close()

    run(test)


def test_stop_hands_on_a_partial_line_still_being_joined() -> None:
    async def test() -> None:
        h = Harness()
        await h.source.start(h.emit)
        reader, writer = await h.connect()
        record = {"log": "half", "partial_message": "true", "partial_id": "x", "partial_ordinal": "1",
                  "partial_last": "false"}
        writer.write(msgpack.packb(["t", T0, record]) + msg("whole", "c"))
        assert await read_obj(reader) == {"ack": "c"}
        assert [e.message for e in h.events] == ["whole"]
        await h.close()
        assert [e.message for e in h.events] == ["whole", "half"]  # Docker sends no chunk: nothing else has it

    run(test)


def test_bad_logins_in_the_config_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="USER:PASSWORD"):
        FluentForwardSource(ForwardConfig(shared_key="k", users=("nobody",)), ShipperMetrics())
    with pytest.raises(ConfigError, match="needs forward.shared_key"):
        FluentForwardSource(ForwardConfig(users=("a:b",)), ShipperMetrics())
