"""Docker's gelf driver (moby daemon/logger/gelf on Graylog2/go-gelf), GELF 1.1.

Format: ``{"version":"1.1","host":..,"short_message":..,"timestamp":<ms precision>,"level":6|3,`` then
Docker's extra fields, sorted as Go's json.Marshal sorts a map: ``_command``, ``_container_id``,
``_container_name``, ``_created``, ``_image_id``, ``_image_name``, ``_tag`` and the extra attributes
(prefixed with "_"). Framing: UDP datagrams compressed (gzip by default, zlib or none); a payload above
1420 bytes is cut into chunks of at most 1420 bytes with the 12-byte header ``1e 0f <8-byte id> <seq>
<count>``; more than 128 chunks and the message is dropped. TCP: uncompressed JSON, each message ended
by a NUL byte.
"""

from __future__ import annotations

import math
import os
import select
import socket
import threading
from dataclasses import dataclass, field

from .base import LogInfo, LogMessage
from .compression import GO_BEST_SPEED, gzip_bytes, zlib_bytes
from .jsonenc import go_float, go_json_object, go_json_string
from .options import (
    COMMON_KEYS,
    MODE_NON_BLOCKING,
    BufferConfig,
    check_keys,
    extra_attributes,
    parse_buffer,
    parse_int,
    parse_port,
    render_tag,
    split_host_port,
    validate_common,
)
from .ring import Backoff

NAME = "gelf"
KEYS = COMMON_KEYS | {
    "gelf-address",
    "gelf-compression-type",
    "gelf-compression-level",
    "gelf-tcp-max-reconnect",
    "gelf-tcp-reconnect-delay",
}
DEFAULT_MODE = MODE_NON_BLOCKING
COMPRESSION_TYPES = ("gzip", "zlib", "none")
DEFAULT_COMPRESSION = "gzip"
DEFAULT_COMPRESSION_LEVEL = GO_BEST_SPEED
DEFAULT_TCP_MAX_RECONNECT = 3
DEFAULT_TCP_RECONNECT_DELAY = 1
CHUNK_SIZE = 1420  # go-gelf ChunkSize: whole datagram, header included
CHUNK_HEADER = 12
CHUNK_DATA = CHUNK_SIZE - CHUNK_HEADER
MAX_CHUNKS = 128
CHUNK_MAGIC = b"\x1e\x0f"
SOCKET_TIMEOUT = 1.0
LEVEL_INFO = 6
LEVEL_ERR = 3
GO_ZERO_TIME = "0001-01-01T00:00:00Z"


@dataclass(frozen=True)
class GelfConfig:
    scheme: str  # "udp" | "tcp"
    host: str
    port: int
    compression: str = DEFAULT_COMPRESSION
    compression_level: int = DEFAULT_COMPRESSION_LEVEL
    tcp_max_reconnect: int = DEFAULT_TCP_MAX_RECONNECT
    tcp_reconnect_delay: int = DEFAULT_TCP_RECONNECT_DELAY  # seconds
    buffer: BufferConfig = field(default_factory=lambda: BufferConfig(non_blocking=True))


def parse_config(opts: dict[str, str]) -> GelfConfig:
    check_keys(NAME, opts, KEYS)
    validate_common(opts)
    address = opts.get("gelf-address", "")
    if not address:
        raise ValueError(
            "log opt 'gelf-address' is required for the gelf log driver (udp://host:port or tcp://host:port)"
        )
    scheme, sep, rest = address.partition("://")
    if not sep or scheme not in ("udp", "tcp"):
        raise ValueError(f"invalid gelf-address {address!r}: expected udp://host:port or tcp://host:port")
    host, port_text = split_host_port("gelf-address", rest.rstrip("/"))
    if not host:
        raise ValueError(f"invalid gelf-address {address!r}: missing host")
    port = parse_port("gelf-address", address, port_text)
    compression, level = DEFAULT_COMPRESSION, DEFAULT_COMPRESSION_LEVEL
    max_reconnect, reconnect_delay = DEFAULT_TCP_MAX_RECONNECT, DEFAULT_TCP_RECONNECT_DELAY
    for key in ("gelf-compression-type", "gelf-compression-level"):
        if key in opts and scheme != "udp":
            raise ValueError(f"log opt {key!r} is only supported with a udp:// gelf-address")
    if "gelf-compression-type" in opts:
        compression = opts["gelf-compression-type"]
        if compression not in COMPRESSION_TYPES:
            raise ValueError(f"unknown value {compression!r} for log opt 'gelf-compression-type' (gzip, zlib or none)")
    if "gelf-compression-level" in opts:
        level = parse_int("gelf-compression-level", opts["gelf-compression-level"])
        if not -1 <= level <= 9:
            raise ValueError(f"log opt 'gelf-compression-level' must be between -1 and 9, got {level}")
    for key in ("gelf-tcp-max-reconnect", "gelf-tcp-reconnect-delay"):
        if key in opts:
            if scheme != "tcp":
                raise ValueError(f"log opt {key!r} is only valid with a tcp:// gelf-address")
            if parse_int(key, opts[key]) < 0:
                raise ValueError(f"log opt {key!r} must be a positive integer")
    if "gelf-tcp-max-reconnect" in opts:
        max_reconnect = int(opts["gelf-tcp-max-reconnect"])
    if "gelf-tcp-reconnect-delay" in opts:
        reconnect_delay = int(opts["gelf-tcp-reconnect-delay"])
    return GelfConfig(
        scheme, host, port, compression, level, max_reconnect, reconnect_delay, parse_buffer(opts, DEFAULT_MODE)
    )


# --- format --------------------------------------------------------------------------------------


def extra_fields(info: LogInfo) -> dict[str, str]:
    extra = {
        "_container_id": info.container_id,
        "_container_name": info.container_name.lstrip("/"),
        "_image_id": info.image_id,
        "_image_name": info.image_name,
        "_command": " ".join(info.command),
        "_tag": render_tag(info),
        "_created": info.created or GO_ZERO_TIME,
    }
    extra.update(extra_attributes(info, lambda k: k if k.startswith("_") else "_" + k))
    return extra


def encode_message(hostname: str, raw_extra: bytes, msg: LogMessage) -> bytes:
    """go-gelf Message.MarshalJSONBuf with Docker's fields; ``raw_extra`` is a JSON object."""
    level = LEVEL_ERR if msg.stream == "stderr" else LEVEL_INFO
    timestamp = (msg.timestamp_ns // 1_000_000) / 1000.0
    head = (
        b'{"version":"1.1","host":'
        + go_json_string(hostname)
        + b',"short_message":'
        + go_json_string(msg.line)
        + b',"timestamp":'
        + go_float(timestamp)
        + b',"level":'
        + str(level).encode()
    )
    body = raw_extra[1:-1]
    return head + (b"," + body if body else b"") + b"}"


# --- framing -------------------------------------------------------------------------------------


def compress(payload: bytes, kind: str, level: int) -> bytes:
    if kind == "gzip":
        return gzip_bytes(payload, level)
    if kind == "zlib":
        return zlib_bytes(payload, level)
    return payload


def chunk(data: bytes, message_id: bytes | None = None) -> list[bytes]:
    """UDP datagrams for one (compressed) GELF payload; [] when it would need more than 128 chunks."""
    if len(data) <= CHUNK_SIZE:
        return [data]
    count = math.ceil(len(data) / CHUNK_DATA)
    if count > MAX_CHUNKS:
        return []
    mid = message_id if message_id is not None else os.urandom(8)
    return [
        CHUNK_MAGIC + mid + bytes([seq, count]) + data[seq * CHUNK_DATA : (seq + 1) * CHUNK_DATA]
        for seq in range(count)
    ]


# --- transport -----------------------------------------------------------------------------------


def _peer_closed(sock: socket.socket) -> bool:
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except OSError:
        return True


class GelfDriver:
    """Thread-safe; ``log`` never raises and never waits longer than a socket timeout or two."""

    def __init__(self, cfg: GelfConfig, info: LogInfo) -> None:
        self.dropped = 0
        self.hostname = socket.gethostname()
        self._cfg = cfg
        self._raw_extra = go_json_object(extra_fields(info))
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        base = float(cfg.tcp_reconnect_delay) if cfg.scheme == "tcp" else 1.0
        self._backoff = Backoff(base=max(base, 0.1), factor=1.5, cap=max(10.0, base))
        self._closed = False

    def retry_at(self) -> float:
        return self._backoff.until

    def _connect(self) -> socket.socket:
        kind = socket.SOCK_STREAM if self._cfg.scheme == "tcp" else socket.SOCK_DGRAM
        family, _, proto, _, addr = socket.getaddrinfo(self._cfg.host, self._cfg.port, type=kind)[0]
        sock = socket.socket(family, kind | socket.SOCK_CLOEXEC, proto)
        sock.settimeout(SOCKET_TIMEOUT)
        try:
            sock.connect(addr)
        except OSError:
            sock.close()
            raise
        return sock

    def _drop_socket(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def log(self, msg: LogMessage) -> None:
        payload = encode_message(self.hostname, self._raw_extra, msg)
        with self._lock:
            if self._closed or self._backoff.waiting():
                self.dropped += 1
                return
            try:
                if self._cfg.scheme == "udp":
                    self._send_udp(payload)
                else:
                    self._send_tcp(payload)
            except OSError:
                self._drop_socket()
                self.dropped += 1
                self._backoff.fail()
                return
            self._backoff.ok()

    def _send_udp(self, payload: bytes) -> None:
        datagrams = chunk(compress(payload, self._cfg.compression, self._cfg.compression_level))
        if not datagrams:  # too large for 128 chunks: the endpoint is fine, the message is not
            self.dropped += 1
            return
        if self._sock is None:
            self._sock = self._connect()
        for datagram in datagrams:
            self._sock.send(datagram)

    def _send_tcp(self, payload: bytes) -> None:
        frame = payload + b"\0"
        if self._sock is not None and _peer_closed(self._sock):
            self._drop_socket()
        if self._sock is not None:
            try:
                self._sock.sendall(frame)
                return
            except OSError:
                self._drop_socket()
                if self._cfg.tcp_max_reconnect == 0:
                    raise
        self._sock = self._connect()
        self._sock.sendall(frame)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._drop_socket()
