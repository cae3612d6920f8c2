"""Docker's journald driver (moby daemon/logger/journald) over journald's native protocol.

One AF_UNIX datagram per message to the socket in opt ``journald-socket``, fields encoded like
go-systemd's ``journal.Send``: ``KEY=value\\n``, or ``KEY\\n<uint64 LE length><value>\\n`` when the value
contains a newline. A datagram the kernel refuses as too large (EMSGSIZE/ENOBUFS) goes as a sealed memfd
passed with SCM_RIGHTS, as go-systemd and sd_journal_send do.

Fields: PRIORITY (6 stdout, 3 stderr), MESSAGE, CONTAINER_ID (12), CONTAINER_ID_FULL, CONTAINER_NAME,
CONTAINER_TAG, IMAGE_NAME, SYSLOG_IDENTIFIER (= tag), CONTAINER_LOG_EPOCH, extra attributes (keys sanitized
like moby's sanitizeKeyMod), SYSLOG_TIMESTAMP (RFC3339Nano), CONTAINER_PARTIAL_ID/ORDINAL/LAST and
CONTAINER_PARTIAL_MESSAGE=true on pieces that do not end their line, CONTAINER_LOG_ORDINAL.
"""

from __future__ import annotations

import array
import errno
import fcntl
import os
import socket
import struct
import threading
from dataclasses import dataclass

from hostwatch.core.timefmt import rfc3339_nano

from .base import LogInfo, LogMessage
from .copier import random_id
from .options import (
    COMMON_KEYS,
    MODE_NON_BLOCKING,
    BufferConfig,
    check_keys,
    extra_attributes,
    parse_buffer,
    render_tag,
    validate_common,
)
from .ring import Backoff

NAME = "journald"
KEYS = COMMON_KEYS | {"journald-socket"}
DEFAULT_MODE = MODE_NON_BLOCKING
DEFAULT_SOCKET = "/run/systemd/journal/socket"
SEND_TIMEOUT = 0.5  # a journald that does not read its socket must not hold the sender for long
PRIORITY_INFO = 6
PRIORITY_ERR = 3


@dataclass(frozen=True)
class JournaldConfig:
    socket_path: str = DEFAULT_SOCKET
    buffer: BufferConfig = BufferConfig(non_blocking=True)


def parse_config(opts: dict[str, str]) -> JournaldConfig:
    check_keys(NAME, opts, KEYS)
    validate_common(opts)
    path = opts.get("journald-socket", DEFAULT_SOCKET)
    if not path.startswith("/"):
        raise ValueError(f"log opt 'journald-socket' must be an absolute path, got {path!r}")
    return JournaldConfig(path, parse_buffer(opts, DEFAULT_MODE))


def sanitize_key(key: str) -> str:
    """moby sanitizeKeyMod: a-z upper-cased, anything but A-Z0-9 -> "_", leading "_" dropped."""
    out: list[str] = []
    for ch in key:
        if "a" <= ch <= "z":
            ch = ch.upper()
        elif not ("A" <= ch <= "Z" or "0" <= ch <= "9"):
            ch = "_"
        if not (not out and ch == "_"):
            out.append(ch)
    return "".join(out)


def encode_field(name: str, value: bytes) -> bytes:
    if b"\n" in value:
        return name.encode() + b"\n" + struct.pack("<Q", len(value)) + value + b"\n"
    return name.encode() + b"=" + value + b"\n"


def encode_entry(fields: list[tuple[str, bytes]]) -> bytes:
    return b"".join(encode_field(k, v) for k, v in fields)


def static_fields(info: LogInfo, epoch: str) -> dict[str, str]:
    tag = render_tag(info)
    fields = {
        "CONTAINER_ID": info.container_id[:12],
        "CONTAINER_ID_FULL": info.container_id,
        "CONTAINER_NAME": info.container_name.lstrip("/"),
        "CONTAINER_TAG": tag,
        "IMAGE_NAME": info.image_name,
        "SYSLOG_IDENTIFIER": tag,
        "CONTAINER_LOG_EPOCH": epoch,
    }
    for key, value in sorted(extra_attributes(info, sanitize_key).items()):
        if key:
            fields[key] = value
    return fields


def message_fields(static: dict[str, str], msg: LogMessage, ordinal: int) -> list[tuple[str, bytes]]:
    priority = PRIORITY_ERR if msg.stream == "stderr" else PRIORITY_INFO
    fields = [("PRIORITY", str(priority).encode()), ("MESSAGE", msg.line)]
    fields += [(k, v.encode()) for k, v in static.items()]
    fields.append(("SYSLOG_TIMESTAMP", rfc3339_nano(ns=msg.timestamp_ns).encode()))
    if msg.has_partial_meta:
        fields.append(("CONTAINER_PARTIAL_ID", msg.partial_id.encode()))
        fields.append(("CONTAINER_PARTIAL_ORDINAL", str(msg.partial_ordinal).encode()))
        fields.append(("CONTAINER_PARTIAL_LAST", b"true" if msg.partial_last else b"false"))
        if not msg.partial_last:
            fields.append(("CONTAINER_PARTIAL_MESSAGE", b"true"))
    fields.append(("CONTAINER_LOG_ORDINAL", str(ordinal).encode()))
    return fields


def _send_memfd(sock: socket.socket, data: bytes, path: str) -> None:
    fd = os.memfd_create("hostwatch-journal", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        seals = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
        sock.sendmsg([], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))], 0, path)
    finally:
        os.close(fd)


class JournaldDriver:
    """Sends each message as one native-protocol datagram. Thread-safe; never raises from ``log``."""

    def __init__(self, cfg: JournaldConfig, info: LogInfo) -> None:
        self.dropped = 0
        self.socket_path = cfg.socket_path
        self._static = static_fields(info, random_id())
        self._ordinal = 0
        self._lock = threading.Lock()
        self._backoff = Backoff(base=0.5)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        self._sock.settimeout(SEND_TIMEOUT)
        self._closed = False

    def retry_at(self) -> float:
        return self._backoff.until

    def log(self, msg: LogMessage) -> None:
        with self._lock:
            if self._closed or self._backoff.waiting():
                self.dropped += 1
                return
            self._ordinal += 1
            data = encode_entry(message_fields(self._static, msg, self._ordinal))
            try:
                try:
                    self._sock.sendto(data, self.socket_path)
                except OSError as e:
                    if e.errno not in (errno.EMSGSIZE, errno.ENOBUFS):
                        raise
                    _send_memfd(self._sock, data, self.socket_path)
            except OSError:  # includes TimeoutError
                self.dropped += 1
                self._backoff.fail()
                return
            self._backoff.ok()

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._sock.close()
