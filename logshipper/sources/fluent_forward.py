"""The fluent_forward source: a forward protocol v1 server on TCP plus the UDP heartbeat on the same
address: what Docker's `--log-driver=fluentd` and the fluent-logger libraries talk to (fluentd's
out_forward and Fluent Bit speak the same protocol).

Per connection: bytes -> `FrameReader` (msgpack objects) -> `decode_frame` (events, rejections) ->
`PartialAssembler` (Docker's split lines joined) -> one `Batch` per read. The connection is not read
again until `emit` returned, so a full buffer stops the client through TCP's own flow control.
A message with the `chunk` option is answered `{"ack": chunk}` once every event taken from it is
delivered (the batch acks ran), in the order the chunks came; rejected entries do not hold an ack
back (in_forward acks them too: a re-send would be rejected again). No chunk option, no answer.
received_events_total counts the events handed to `emit` (a joined line once).

Bad input is counted in rejected_events_total{source="fluent_forward",reason} (logshipper.codecs.
forward REASONS) and logged at most once a minute per reason. Bytes that are not msgpack, or a message
over `max_buffer_bytes`, lose the stream: the connection stops reading, keeps what it took before, sends
those acks as their batches are delivered (for up to DRAIN_TIMEOUT), and is closed with a log line.
Memory: a connection holds at most `max_buffer_bytes` of an unfinished message's bytes (its decoded
objects a small multiple of that) and one payload of at most `max_decompressed_bytes`; at most
`max_connections` are served, more are refused.

With `shared_key` every connection starts with the HELO/PING/PONG handshake (logshipper.codecs.
forward_auth); a bad key or login is answered PONG false, counted (reason "auth") and closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections import deque
from typing import Any, cast

from hostwatch.core.addresses import parse_listen_address
from hostwatch.core.config import ConfigError
from hostwatch.core.events import FLUENT_FORWARD, Batch, LogEvent
from logshipper.codecs.forward import AUTH, OVERSIZED, Limits, Occurrences, decode_frame
from logshipper.codecs.forward_auth import check_ping, helo, parse_users, pong
from logshipper.codecs.forward_framing import HEARTBEAT_REPLY, FrameReader, ack
from logshipper.codecs.forward_partial import Joined, PartialAssembler
from logshipper.config import DEFAULT_MAX_MESSAGE_BYTES, ForwardConfig
from logshipper.sources.base import Emit
from logshipper.sources.complaints import Complaints
from logshipper.telemetry import ShipperMetrics

log = logging.getLogger(__name__)

NAME = FLUENT_FORWARD
READ_BYTES = 256 << 10
HANDSHAKE_TIMEOUT = 10.0  # seconds a client has to answer HELO with PING
DRAIN_TIMEOUT = 30.0  # seconds a lost stream's connection waits to send the acks of what it took
STOP_TIMEOUT = 2.0  # seconds stop() lets connections hand their last events on
MAX_INVALID_IN_A_ROW = 64  # wrong-shaped messages in a row: the peer speaks something else; hang up
BIND_ATTEMPTS = 20  # port 0: a free TCP port whose UDP twin is taken is retried
HEARTBEAT_MAX_BYTES = 128  # a heartbeat is one byte; larger datagrams are no heartbeat, not answered


class _Chunk:
    """One message's chunk option; `refs` counts what still holds its ack back."""

    __slots__ = ("value", "refs")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.refs = 1  # the message itself, until all of it is handed on


class _Acks:
    """A connection's chunks, answered in arrival order as each one's references drop to zero."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._queue: deque[_Chunk] = deque()
        self.settled = asyncio.Event()
        self.settled.set()

    def open(self, value: Any) -> _Chunk:
        chunk = _Chunk(value)
        self._queue.append(chunk)
        self.settled.clear()
        return chunk

    def release(self, chunk: _Chunk) -> None:
        chunk.refs -= 1
        while self._queue and self._queue[0].refs <= 0:
            done = self._queue.popleft()
            if not self._writer.is_closing():
                self._writer.write(ack(done.value))
        if not self._queue:
            self.settled.set()


def _bind(kind: int, family: int, addr: Any) -> socket.socket:
    sock = socket.socket(family, kind | socket.SOCK_CLOEXEC)
    try:
        if kind == socket.SOCK_STREAM:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class _Heartbeat(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self.transport is not None and len(data) <= HEARTBEAT_MAX_BYTES:
            self.transport.sendto(HEARTBEAT_REPLY, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("fluent_forward: heartbeat socket error: %s", exc)


class FluentForwardSource:
    name = NAME

    def __init__(self, config: ForwardConfig, metrics: ShipperMetrics, *,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> None:
        self.config = config
        self.metrics = metrics
        self.limits = Limits(max_message_bytes, config.max_decompressed_bytes)
        try:
            self.users = parse_users(config.users)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        if self.users and config.shared_key is None:
            raise ConfigError("forward.users needs forward.shared_key (logins travel in the shared-key handshake)")
        self.self_hostname = config.self_hostname or socket.gethostname()
        self.complain = Complaints("fluent_forward", log)
        self.received = metrics.received.labels(NAME)
        self.emit: Emit | None = None
        self.stopping = False
        self._server: asyncio.Server | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None, "not started"
        host, port = self._server.sockets[0].getsockname()[:2]
        return str(host), int(port)

    @property
    def port(self) -> int:
        return self.address[1]

    @property
    def connections(self) -> int:
        return len(self._connections)

    async def start(self, emit: Emit) -> None:
        self.emit = emit
        tcp, udp = self._bind_pair()
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(_Heartbeat, sock=udp)
        self._server = await asyncio.start_server(self._serve, sock=tcp, limit=READ_BYTES)
        auth = "shared key" + (" and users" if self.users else "") if self.config.shared_key is not None else "none"
        log.info("fluent_forward: listening on %s:%d (TCP and UDP heartbeat; auth: %s)", *self.address, auth)

    def _bind_pair(self) -> tuple[socket.socket, socket.socket]:
        host, port = parse_listen_address(self.config.listen_address)
        family, _, _, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        for attempt in range(BIND_ATTEMPTS if port == 0 else 1):
            tcp = _bind(socket.SOCK_STREAM, family, addr)
            try:
                udp = _bind(socket.SOCK_DGRAM, family, (addr[0], tcp.getsockname()[1], *addr[2:]))
            except OSError:
                tcp.close()
                if port != 0 or attempt == BIND_ATTEMPTS - 1:
                    raise
                continue
            return tcp, udp
        raise AssertionError("unreachable")

    async def stop(self) -> None:
        self.stopping = True
        if self._udp is not None:
            self._udp.close()
        if self._server is not None:
            self._server.close()
        for writer in self._connections.values():
            writer.transport.abort()  # acks can no longer be sent: the clients re-send those chunks
        if self._connections:
            _, late = await asyncio.wait(list(self._connections), timeout=STOP_TIMEOUT)
            for task in late:
                task.cancel()  # still waiting in emit
            await asyncio.gather(*late, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def reject(self, reason: str, detail: str, n: int = 1) -> None:
        self.metrics.rejected.labels(NAME, reason).inc(n)
        self.complain(reason, detail)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        if self.stopping or len(self._connections) >= self.config.max_connections:
            log.warning("fluent_forward: refusing %s: %d connections open (max_connections)", peer,
                        len(self._connections))
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        try:
            await _Connection(self, reader, writer, peer).run()
        except asyncio.CancelledError:
            if not self.stopping:
                raise
            # stop() ended it: finish normally (asyncio 3.11 reports a cancelled callback task as crashed)
        except Exception:  # a bug must cost one connection, never the listener
            log.exception("fluent_forward: connection from %s failed", peer)
        finally:
            self._connections.pop(task, None)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class _Connection:
    def __init__(self, source: FluentForwardSource, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 peer: Any) -> None:
        cfg = source.config
        self.src = source
        self.reader = reader
        self.writer = writer
        self.peer = peer
        self.frames = FrameReader(cfg.max_buffer_bytes)
        self.occurrences = Occurrences()
        self.partials: PartialAssembler[_Chunk] = PartialAssembler(source.limits.max_message_bytes)
        self.acks = _Acks(writer)
        self.loop = asyncio.get_running_loop()
        self.nonce = b""
        self.auth_salt: bytes | None = None
        self.established = cfg.shared_key is None
        self.invalid_in_a_row = 0
        self.closing = ""  # why this connection stops reading

    async def run(self) -> None:
        if not self.established:
            self.nonce = os.urandom(16)
            self.auth_salt = os.urandom(16) if self.src.users else None
            self.writer.write(helo(self.nonce, self.auth_salt))
        try:
            while not self.closing and not self.src.stopping:
                data = await self._read()
                if data == b"":
                    break
                events, holds = self._take(self.frames.feed(data)) if data else ([], [])
                if self.frames.error:
                    self.src.reject(self.frames.error, f"stream from {self.peer} lost after "
                                                       f"{self.frames.buffered} buffered bytes")
                    self.closing = f"unreadable stream ({self.frames.error})"
                if self.partials:
                    self._joined(self.partials.expire(self.loop.time(), self.src.config.partial_timeout),
                                 events, holds)
                await self._send(events, holds)
        except (ConnectionError, OSError) as e:
            log.debug("fluent_forward: connection from %s lost: %s", self.peer, e)
        finally:
            events, holds = [], []
            self._joined(self.partials.flush(), events, holds)  # no more pieces will come for these
            await self._send(events, holds)  # also on stop(), which gives it STOP_TIMEOUT
            if self.closing:
                log.warning("fluent_forward: closing connection from %s: %s", self.peer, self.closing)
            if not self.src.stopping and not self.writer.is_closing():
                # what was taken is answered as it is delivered; a half-closed client may still read acks
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self.acks.settled.wait(), DRAIN_TIMEOUT)

    async def _read(self) -> bytes | None:
        """The next bytes, b"" at EOF, None when a partial line is due to expire."""
        if not self.established:
            try:
                return await asyncio.wait_for(self.reader.read(READ_BYTES), HANDSHAKE_TIMEOUT)
            except TimeoutError:
                self.src.reject(AUTH, f"{self.peer} sent no PING within {HANDSHAKE_TIMEOUT:g} s")
                self.closing = "handshake timed out"
                return None
        if not self.partials:
            return await self.reader.read(READ_BYTES)
        try:
            return await asyncio.wait_for(self.reader.read(READ_BYTES), self.src.config.partial_timeout)
        except TimeoutError:
            return None

    def _take(self, frames: list[Any]) -> tuple[list[LogEvent], list[_Chunk]]:
        """Decode frames into events to send and the chunk references their batch holds."""
        events: list[LogEvent] = []
        holds: list[_Chunk] = []
        now = self.loop.time()
        for frame in frames:
            if self.closing:
                break
            if not self.established:
                self._handshake(frame.obj)
                continue
            decoded = decode_frame(frame, self.src.limits, self.occurrences)
            for reason in decoded.rejected:
                self.src.reject(reason, f"from {self.peer}")
            if decoded.rejected and not decoded.events and decoded.chunk is None:
                self.invalid_in_a_row += 1
                if self.invalid_in_a_row >= MAX_INVALID_IN_A_ROW:
                    self.closing = f"{MAX_INVALID_IN_A_ROW} invalid messages in a row"
            else:
                self.invalid_in_a_row = 0
            chunk = self.acks.open(decoded.chunk) if decoded.chunk is not None else None
            for event, partial in decoded.events:
                if chunk is not None:
                    chunk.refs += 1  # released when the batch carrying the event is delivered
                self._joined(self.partials.add(event, partial, chunk, now), events, holds)
            if chunk is not None:
                self.acks.release(chunk)
        return events, holds

    def _joined(self, joined: list[Joined[_Chunk]], events: list[LogEvent], holds: list[_Chunk]) -> None:
        for j in joined:
            if j.event is None:
                self.src.reject(OVERSIZED, f"joined partial message from {self.peer} over "
                                           f"{self.src.limits.max_message_bytes} bytes")
                for chunk in j.holds:
                    self.acks.release(chunk)
            else:
                events.append(j.event)
                holds.extend(j.holds)

    def _handshake(self, obj: Any) -> None:
        shared_key = self.src.config.shared_key
        assert shared_key is not None
        result = check_ping(obj, self.nonce, shared_key, self.auth_salt, self.src.users)
        self.writer.write(pong(result, self.src.self_hostname, self.nonce, shared_key))
        if result.ok:
            self.established = True
            log.debug("fluent_forward: %s authenticated as %s", self.peer, result.hostname)
        else:
            self.src.reject(AUTH, f"{self.peer} ({result.hostname or '?'}): {result.reason}")
            self.closing = f"authentication failed: {result.reason}"

    async def _send(self, events: list[LogEvent], holds: list[_Chunk]) -> None:
        if not events:
            for chunk in holds:
                self.acks.release(chunk)
            return
        assert self.src.emit is not None
        self.src.received.inc(len(events))

        def delivered() -> None:
            for chunk in holds:
                self.acks.release(chunk)

        try:
            await self.src.emit(Batch(events, delivered if holds else None, NAME))  # no reads meanwhile: backpressure
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("fluent_forward: the pipeline refused a batch of %d events from %s", len(events),
                          self.peer)
            self.closing = "pipeline error"

