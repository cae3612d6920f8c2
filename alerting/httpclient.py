"""The webhook's HTTP/1.1 client: keep-alive connections per origin over asyncio protocols.

A notification needs one request shape (POST a JSON body, read the status) and aiohttp's ClientSession
spent ~110 us of the event loop on each (its request/response objects, tracing hooks, cookie jar and
stream readers), a third of what a notification cost in a burst; this client spends about half of that
(the rest is the kernel's loopback send and connect). What it keeps of an HTTP client's duties:
a pool of idle connections per origin reused LIFO and dropped after `IDLE_TIMEOUT`, one retry on a fresh
connection when a reused one turns out closed before any byte of the answer (as Go's Transport does
for a server that closed an idle connection), Content-Length, chunked and close-delimited bodies,
1xx answers skipped, `Connection: close` honoured, TLS for https, basic auth from the URL's userinfo.
No redirects (Alertmanager's webhook client does not follow them for a POST either), no proxies.

The pure half (URLs, request bytes, the response parser) is alerting/http11.py.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import Mapping

from alerting.http11 import HTTPError, Response, ResponseParser, Target, request_bytes, target

IDLE_TIMEOUT = 90.0  # Go's DefaultTransport.IdleConnTimeout
MAX_IDLE_PER_ORIGIN = 256


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._parser: ResponseParser | None = None
        self._waiter: asyncio.Future[Response] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self, data: bytes) -> asyncio.Future[Response]:
        assert self.transport is not None
        self._parser = ResponseParser()
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self._waiter

    @property
    def answered(self) -> bool:
        """A byte of the current answer has arrived (a failure then is not a stale connection's)."""
        return self._parser is not None and self._parser.started

    def data_received(self, data: bytes) -> None:
        if self._parser is None or self._waiter is None:
            self.close()  # bytes nobody asked for: the connection cannot be trusted with a next request
            return
        try:
            resp = self._parser.feed(data)
        except HTTPError as e:
            self._fail(e)
            return
        if resp is not None:
            self._finish(resp, leftover=bool(self._parser.rest))

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost settles the waiter

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._parser is not None and self._waiter is not None and not self._waiter.done():
            resp = self._parser.eof()
            if resp is not None:
                self._waiter.set_result(resp)
            else:
                self._waiter.set_exception(HTTPError(f"connection closed before a complete response"
                                                     f"{': ' + str(exc) if exc else ''}"))
        self._parser = self._waiter = None

    def _finish(self, resp: Response, leftover: bool) -> None:
        waiter = self._waiter
        self._parser = self._waiter = None
        if leftover or not resp.keep_alive:
            self.close()
        if waiter is not None and not waiter.done():
            waiter.set_result(resp)

    def _fail(self, e: Exception) -> None:
        waiter = self._waiter
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(e)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class HTTPClient:
    def __init__(self, ssl_context: ssl.SSLContext | None = None, idle_timeout: float = IDLE_TIMEOUT,
                 max_idle: int = MAX_IDLE_PER_ORIGIN) -> None:
        self._ssl = ssl_context
        self._idle_timeout = idle_timeout
        self._max_idle = max_idle
        self._idle: dict[tuple[str, str, int], list[_Connection]] = {}

    async def post(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> Response:
        """One POST; HTTPError for a failed exchange, TimeoutError after `timeout` seconds."""
        t = target(url)
        data = request_bytes(t, body, headers)
        async with asyncio.timeout(timeout):
            conn = self._checkout(t)
            if conn is not None:
                try:
                    return await self._exchange(t, conn, data)
                except HTTPError:
                    if conn.answered:
                        raise
                    # a kept connection the server had closed: once more on a new one
            return await self._exchange(t, await self._connect(t), data)

    async def _exchange(self, t: Target, conn: _Connection, data: bytes) -> Response:
        try:
            resp = await conn.send(data)
        except BaseException:
            conn.close()  # cancelled or failed mid-answer: unusable for the next request
            raise
        if not conn.closed:
            self._checkin(t, conn)
        return resp

    def _checkout(self, t: Target) -> _Connection | None:
        idle = self._idle.get(t.origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self._idle_timeout:
                return conn
            conn.close()
        return None

    def _checkin(self, t: Target, conn: _Connection) -> None:
        idle = self._idle.setdefault(t.origin, [])
        if len(idle) >= self._max_idle:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    async def _connect(self, t: Target) -> _Connection:
        loop = asyncio.get_running_loop()
        tls: ssl.SSLContext | None = None
        if t.scheme == "https":
            tls = self._ssl or _default_tls()
        try:
            _, conn = await loop.create_connection(_Connection, t.host, t.port, ssl=tls,
                                                   server_hostname=t.host if tls else None)
        except OSError as e:
            raise HTTPError(f"dial tcp {t.host}:{t.port}: {e.strerror or e}") from None
        return conn

    async def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()


@functools.cache
def _default_tls() -> ssl.SSLContext:
    return ssl.create_default_context()
