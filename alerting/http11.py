"""HTTP/1.1 for the webhook client, the pure half: URLs parsed into where to connect and a request head,
request bytes, and `ResponseParser` (bytes in, a `Response` out). No I/O and no asyncio or ssl import,
so config parsing can validate webhook URLs with the same parser the client uses."""

from __future__ import annotations

import base64
import functools
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

MAX_HEAD_BYTES = 64 << 10  # status line + headers; beyond it the answer is malformed
BODY_KEPT = 1024  # of an answer's body, for error messages (Alertmanager quotes the body it got)


class HTTPError(Exception):
    """The exchange failed: connection refused or lost, a malformed answer, a bad URL."""


class BadURL(HTTPError):
    """The URL cannot be requested at all (retrying cannot help)."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes  # its first BODY_KEPT bytes
    keep_alive: bool


@dataclass(frozen=True)
class Target:
    """A parsed URL: where to connect and the request's head apart from per-request headers."""

    scheme: str
    host: str
    port: int
    head: bytes  # "POST <target> HTTP/1.1\r\nHost: ...\r\n[Authorization: ...\r\n]"

    @property
    def origin(self) -> tuple[str, str, int]:
        return self.scheme, self.host, self.port


@functools.lru_cache(maxsize=1024)
def target(url: str) -> Target:
    """A POST to `url` (the one request webhooks make). Raises BadURL for a URL that is not absolute
    http(s) with a host and a valid port."""
    try:
        u = urllib.parse.urlsplit(url)
        port = u.port
    except ValueError as e:
        raise BadURL(f"bad URL {url!r}: {e}") from None
    if u.scheme not in ("http", "https") or not u.hostname:
        raise BadURL(f"bad URL {url!r}: want http:// or https:// and a host")
    host = u.hostname
    default = 443 if u.scheme == "https" else 80
    port = port or default
    ascii_host = host.encode("idna").decode() if not host.isascii() else host
    host_header = f"[{ascii_host}]" if ":" in ascii_host else ascii_host
    if port != default:
        host_header += f":{port}"
    path = urllib.parse.quote(u.path or "/", safe="/%:@!$&'()*+,;=-._~")
    if u.query:
        path += "?" + urllib.parse.quote(u.query, safe="/%:@!$&'()*+,;=-._~?")
    head = f"POST {path} HTTP/1.1\r\nHost: {host_header}\r\n"
    if u.username is not None:
        creds = f"{urllib.parse.unquote(u.username)}:{urllib.parse.unquote(u.password or '')}"
        head += f"Authorization: Basic {base64.b64encode(creds.encode()).decode()}\r\n"
    return Target(u.scheme, ascii_host, port, head.encode())


def request_bytes(t: Target, body: bytes, headers: Mapping[str, str]) -> bytes:
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return b"".join((t.head, extra.encode("latin-1"), b"Content-Length: %d\r\n\r\n" % len(body), body))


class ResponseParser:
    """One answer at a time: `feed` returns the Response once it is complete (bytes after it are kept
    in `rest`), None while more is needed; HTTPError for a malformed answer."""

    def __init__(self, no_body: bool = False) -> None:
        self._buf = bytearray()
        self._no_body = no_body
        self._status = 0
        self._keep_alive = True
        self._remaining = -1  # bytes of body (or of the current chunk) still to come
        self._mode = "head"  # head, length, chunk-size, chunk-data, chunk-crlf, trailers, close
        self._kept = bytearray()
        self.rest = b""
        self.started = False  # a byte of the answer has arrived

    def feed(self, data: bytes) -> Response | None:
        if data:
            self.started = True
            self._buf += data
        while True:
            if self._mode == "head":
                end = self._buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(self._buf) > MAX_HEAD_BYTES:
                        raise HTTPError(f"response head over {MAX_HEAD_BYTES} bytes")
                    return None
                head = bytes(self._buf[:end])
                del self._buf[:end + 4]
                if not self._head(head):
                    continue  # a 1xx: the real answer follows
            elif self._mode == "length":
                if not self._take(self._remaining):
                    return None
                return self._done()
            elif self._mode == "chunk-size":
                eol = self._buf.find(b"\r\n")
                if eol < 0:
                    if len(self._buf) > MAX_HEAD_BYTES:
                        raise HTTPError("chunk size line too long")
                    return None
                size = self._buf[:eol].split(b";", 1)[0].strip()
                del self._buf[:eol + 2]
                try:
                    self._remaining = int(size, 16)
                except ValueError:
                    raise HTTPError(f"bad chunk size {bytes(size)[:20]!r}") from None
                if self._remaining < 0:
                    raise HTTPError(f"bad chunk size {bytes(size)[:20]!r}")
                self._mode = "chunk-data" if self._remaining else "trailers"
            elif self._mode == "chunk-data":
                if not self._take(self._remaining):
                    return None
                self._mode = "chunk-crlf"
            elif self._mode == "chunk-crlf":
                if len(self._buf) < 2:
                    return None
                if self._buf[:2] != b"\r\n":
                    raise HTTPError("chunk not followed by CRLF")
                del self._buf[:2]
                self._mode = "chunk-size"
            elif self._mode == "trailers":
                if self._buf[:2] == b"\r\n":
                    del self._buf[:2]
                    return self._done()
                end = self._buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(self._buf) > MAX_HEAD_BYTES:
                        raise HTTPError("trailers too long")
                    return None
                del self._buf[:end + 4]
                return self._done()
            else:  # close-delimited: complete at EOF only
                self._take(len(self._buf))
                return None

    def eof(self) -> Response | None:
        """The connection closed: the answer if EOF completes it, else None."""
        if self._mode == "close":
            self._take(len(self._buf))
            return self._done()
        return None

    def _head(self, head: bytes) -> bool:
        """Parses a status line and headers; False for an interim (1xx) answer."""
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit() or len(parts[1]) != 3:
            raise HTTPError(f"malformed status line {lines[0][:80]!r}")
        status = int(parts[1])
        if 100 <= status < 200 and status != 101:
            return False
        self._status = status
        length: int | None = None
        chunked = False
        connection = b""
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                raise HTTPError(f"malformed header line {line[:80]!r}")
            name = name.strip().lower()
            if name == b"content-length":
                try:
                    length = int(value.strip())
                except ValueError:
                    raise HTTPError(f"bad Content-Length {value.strip()[:20]!r}") from None
                if length < 0:
                    raise HTTPError(f"bad Content-Length {length}")
            elif name == b"transfer-encoding":
                chunked = value.strip().lower().endswith(b"chunked")
            elif name == b"connection":
                connection = value.strip().lower()
        http10 = parts[0] == b"HTTP/1.0"
        self._keep_alive = b"keep-alive" in connection if http10 else b"close" not in connection
        if self._no_body or status in (204, 304):
            self._mode, self._remaining = "length", 0
        elif chunked:
            self._mode = "chunk-size"
        elif length is not None:
            self._mode, self._remaining = "length", length
        else:
            self._mode, self._keep_alive = "close", False
        return True

    def _take(self, n: int) -> bool:
        """Consumes up to n body bytes (keeping the first BODY_KEPT); True once n were there."""
        got = min(n, len(self._buf))
        if len(self._kept) < BODY_KEPT:
            self._kept += self._buf[:min(got, BODY_KEPT - len(self._kept))]
        del self._buf[:got]
        self._remaining = n - got
        return got == n

    def _done(self) -> Response:
        self.rest = bytes(self._buf)
        return Response(self._status, bytes(self._kept), self._keep_alive)
