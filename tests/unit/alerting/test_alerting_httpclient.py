"""The webhook's HTTP client: the pure response parser (table-driven, fed whole and byte by byte) and the
client against real asyncio servers on loopback (keep-alive, a stale kept connection, Connection: close,
timeouts, refused connections, TLS, basic auth from the URL)."""

from __future__ import annotations

import asyncio
import base64
import socket
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from selfsigned import self_signed

from alerting.http11 import BODY_KEPT, HTTPError, Response, ResponseParser, request_bytes, target
from alerting.httpclient import HTTPClient
from alerting.stages import NotifyContext, NotifyError
from alerting.webhook import post_json

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n")

# (raw answer, expected Response, bytes left after it); None = complete only at EOF
PARSES: list[tuple[str, bytes, Response, bytes]] = [
    ("content-length", OK, Response(200, b"ok", True), b""),
    ("pipelined rest kept", OK + b"HTTP/1.1 2", Response(200, b"ok", True), b"HTTP/1.1 2"),
    ("chunked with extension and trailer", CHUNKED, Response(200, b"abcde", True), b""),
    ("chunked, no trailer", b"HTTP/1.1 500 X\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nz\r\n0\r\n\r\n",
     Response(500, b"z", True), b""),
    ("interim 100 skipped", b"HTTP/1.1 100 Continue\r\n\r\n" + OK, Response(200, b"ok", True), b""),
    ("204 has no body", b"HTTP/1.1 204 No Content\r\n\r\n", Response(204, b"", True), b""),
    ("connection: close", b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
     Response(200, b"", False), b""),
    ("HTTP/1.0 closes by default", b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", Response(200, b"", False), b""),
    ("HTTP/1.0 keep-alive", b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n",
     Response(200, b"", True), b""),
    ("headers case-insensitive", b"HTTP/1.1 202 Accepted\r\ncontent-LENGTH:  3 \r\n\r\nabc",
     Response(202, b"abc", True), b""),
    ("long body kept in part", b"HTTP/1.1 400 Bad\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000,
     Response(400, b"x" * BODY_KEPT, True), b""),
]


@pytest.mark.parametrize(("raw", "want", "rest"), [p[1:] for p in PARSES], ids=[p[0] for p in PARSES])
def test_parser_whole_and_byte_by_byte(raw: bytes, want: Response, rest: bytes) -> None:
    whole = ResponseParser()
    assert whole.feed(raw) == want and whole.rest == rest
    split = ResponseParser()
    got = [r for i in range(len(raw)) if (r := split.feed(raw[i:i + 1])) is not None]
    assert got[:1] == [want]  # the same answer, from the byte that completes it


def test_parser_close_delimited_body_completes_at_eof() -> None:
    p = ResponseParser()
    assert p.feed(b"HTTP/1.1 200 OK\r\n\r\nhello ") is None
    assert p.feed(b"world") is None
    assert p.eof() == Response(200, b"hello world", False)


def test_parser_truncated_answer_is_incomplete_at_eof() -> None:
    p = ResponseParser()
    assert p.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc") is None
    assert p.eof() is None and p.started


BAD = [
    (b"HTTX/1.1 200 OK\r\n\r\n", "malformed status line"),
    (b"HTTP/1.1 2000 OK\r\n\r\n", "malformed status line"),
    (b"HTTP/1.1 200 OK\r\nno-colon\r\n\r\n", "malformed header line"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n", "bad Content-Length"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "bad Content-Length"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "bad chunk size"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n", "chunk not followed by CRLF"),
    (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 20000, "response head over"),
]


@pytest.mark.parametrize(("raw", "error"), BAD, ids=[e for _, e in BAD])
def test_parser_rejects_malformed_answers(raw: bytes, error: str) -> None:
    with pytest.raises(HTTPError, match=error):
        ResponseParser().feed(raw)


def test_request_bytes_and_url_parsing() -> None:
    t = target("http://alice:p%40ss@example.org:8080/hook/a b?x=1#frag")
    assert (t.scheme, t.host, t.port) == ("http", "example.org", 8080)
    req = request_bytes(t, b"{}", {"Content-Type": "application/json"})
    auth = base64.b64encode(b"alice:p@ss").decode()
    assert req == (b"POST /hook/a%20b?x=1 HTTP/1.1\r\nHost: example.org:8080\r\n"
                   + f"Authorization: Basic {auth}\r\n".encode()
                   + b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
    v6 = target("https://[::1]/")
    assert v6.head == b"POST / HTTP/1.1\r\nHost: [::1]\r\n" and v6.port == 443
    for bad in ("ftp://example.org/", "http:///nohost", "http://example.org:99999/", "not a url"):
        with pytest.raises(HTTPError, match="bad URL"):
            target(bad)


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def read_request(r: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await r.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length"))
    return head, await r.readexactly(length)


class Server:
    """A loopback server running `handler` per connection; counts connections."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler, self.tls, self.connections = handler, tls, 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> str:
        async def counted(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(r, w)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                w.close()

        self.server = await asyncio.start_server(counted, "127.0.0.1", 0, ssl=self.tls)
        port = self.server.sockets[0].getsockname()[1]
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{port}/hook"

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()


async def keep_alive_ok(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    while True:
        await read_request(r)
        w.write(OK)
        await w.drain()


def test_connections_are_kept_and_reused() -> None:
    async def main() -> None:
        srv = Server(keep_alive_ok)
        async with srv as url:
            client = HTTPClient()
            for _ in range(5):
                assert (await client.post(url, b"{}", {}, timeout=5)).status == 200
            await client.close()
        assert srv.connections == 1

    asyncio.run(main())


def test_a_kept_connection_closed_before_answering_is_retried_once_on_a_new_one() -> None:
    bodies: list[bytes] = []

    async def answers_first_only(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        bodies.append((await read_request(r))[1])
        w.write(OK)  # keep-alive announced...
        await w.drain()
        bodies.append((await read_request(r))[1])  # ...then closed unanswered (the server's idle timeout)

    async def main() -> None:
        srv = Server(answers_first_only)
        async with srv as url:
            client = HTTPClient()
            assert (await client.post(url, b"1", {}, timeout=5)).status == 200
            assert (await client.post(url, b"2", {}, timeout=5)).status == 200
            await client.close()
        assert bodies == [b"1", b"2", b"2"] and srv.connections == 2

    asyncio.run(main())


def test_a_connection_lost_mid_answer_or_a_fresh_one_lost_is_not_retried() -> None:
    attempts: list[bytes] = []

    async def half_answer(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        attempts.append((await read_request(r))[1])
        w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await w.drain()

    async def no_answer(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        attempts.append((await read_request(r))[1])

    async def main() -> None:
        client = HTTPClient()
        for handler in (half_answer, no_answer):
            async with Server(handler) as url:
                with pytest.raises(HTTPError, match="connection closed before a complete response"):
                    await client.post(url, b"x", {}, timeout=5)
        await client.close()
        assert attempts == [b"x", b"x"]

    asyncio.run(main())


def test_connection_close_is_honoured_and_status_and_body_returned() -> None:
    async def close_after(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await read_request(r)
        w.write(b"HTTP/1.1 503 Unavailable\r\nConnection: close\r\nContent-Length: 4\r\n\r\nbusy")
        await w.drain()

    async def main() -> None:
        srv = Server(close_after)
        async with srv as url:
            client = HTTPClient()
            for _ in range(2):
                assert await client.post(url, b"{}", {}, timeout=5) == Response(503, b"busy", False)
            assert not client._idle.get(target(url).origin)
            await client.close()
        assert srv.connections == 2

    asyncio.run(main())


def test_a_silent_server_times_out_and_its_connection_is_dropped() -> None:
    async def silent(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await read_request(r)
        await asyncio.sleep(10)

    async def main() -> None:
        srv = Server(silent)
        async with srv as url:
            client = HTTPClient()
            with pytest.raises(TimeoutError):
                await client.post(url, b"{}", {}, timeout=0.2)
            assert not client._idle.get(target(url).origin)
            await client.close()

    asyncio.run(main())


def test_a_refused_connection_and_a_garbled_answer_are_http_errors() -> None:
    async def garbled(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        await read_request(r)
        w.write(b"SMTP ready\r\n\r\n")
        await w.drain()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]

    async def main() -> None:
        client = HTTPClient()
        with pytest.raises(HTTPError, match=f"dial tcp 127.0.0.1:{closed_port}"):
            await client.post(f"http://127.0.0.1:{closed_port}/", b"{}", {}, timeout=5)
        async with Server(garbled) as url:
            with pytest.raises(HTTPError, match="malformed status line"):
                await client.post(url, b"{}", {}, timeout=5)
        await client.close()

    asyncio.run(main())


def test_https_with_a_trusted_certificate_and_basic_auth(tmp_path: Path) -> None:
    crt, key = self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(crt, key)
    seen: list[bytes] = []

    async def record(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            head, _ = await read_request(r)
            seen.append(head)
            w.write(OK)
            await w.drain()

    async def main() -> None:
        srv = Server(record, tls=server_tls)
        async with srv as url:
            untrusting = HTTPClient()
            with pytest.raises(HTTPError, match="CERTIFICATE_VERIFY_FAILED"):
                await untrusting.post(url, b"{}", {}, timeout=5)
            await untrusting.close()
            client = HTTPClient(ssl_context=ssl.create_default_context(cafile=str(crt)))
            authed = url.replace("https://", "https://bob:secret@")
            for _ in range(2):
                assert (await client.post(authed, b"{}", {}, timeout=5)).status == 200
            await client.close()
        assert srv.connections == 1  # one kept connection (the refused handshake never reached the handler)
        assert all(b"Authorization: Basic " + base64.b64encode(b"bob:secret") in h for h in seen) and len(seen) == 2

    asyncio.run(main())


def test_webhook_attempts_retry_what_can_succeed_later_and_not_a_url_that_never_will() -> None:
    async def answer(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        while True:
            head, _ = await read_request(r)
            code = b"503 Busy" if b"/busy" in head else b"404 Not Found"
            w.write(b"HTTP/1.1 " + code + b"\r\nContent-Length: 4\r\n\r\nnope")
            await w.drain()

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    ctx = NotifyContext("{}:{}", {}, "r", 3600.0, 0, 0.0, attempt_timeout=5.0)

    async def outcome(client: HTTPClient, url: str) -> tuple[bool, str]:
        with pytest.raises(NotifyError) as e:
            await post_json(client, url, b"{}", ctx)
        return e.value.retriable, str(e.value)

    async def main() -> None:
        client = HTTPClient()
        async with Server(answer) as url:
            base = url.rsplit("/", 1)[0]
            for path, retriable, code in (("/busy", True, 503), ("/gone", False, 404)):
                want = f"webhook {base}{path}: unexpected status code {code}: nope"
                assert await outcome(client, base + path) == (retriable, want)
        retriable, message = await outcome(client, f"http://127.0.0.1:{closed_port}/")
        assert retriable and "dial tcp" in message
        retriable, message = await outcome(client, "http://127.0.0.1:99999/")
        assert not retriable and "bad URL" in message
        await client.close()

    asyncio.run(main())
