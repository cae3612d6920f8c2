"""Docker's fluentd driver (moby daemon/logger/fluentd) on fluent-logger's FluentSender.

Forward protocol Message mode: ``[tag, time, record]`` with the record Docker sends:
``container_id`` (full), ``container_name`` ("/name", Docker keeps the slash), ``source``, ``log``, the
extra attributes, and ``partial_message``/``partial_id``/``partial_ordinal``/``partial_last`` (strings)
on every piece of a split line. Time is integer seconds, or EventTime with fluentd-sub-second-precision.

FluentSender keeps unsent bytes in its own buffer (up to fluentd-buffer-limit) and resends them with the
next message; what it throws away (buffer overflow, fluentd-max-retries failures in a row, close while
the endpoint is down) is counted in ``dropped``. After a failure the driver backs off
(fluentd-retry-wait, x1.5 per failure, at most 10 s): meanwhile the ring buffer in front holds messages,
and in blocking mode ``log`` drops them instead of waiting.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from fluent.sender import EventTime, FluentSender

from .base import LogInfo, LogMessage
from .options import (
    COMMON_KEYS,
    MODE_NON_BLOCKING,
    BufferConfig,
    check_keys,
    extra_attributes,
    parse_bool,
    parse_buffer,
    parse_duration,
    parse_int,
    parse_port,
    parse_size,
    render_tag,
    split_host_port,
    validate_common,
)
from .ring import Backoff

NAME = "fluentd"
KEYS = COMMON_KEYS | {
    "fluentd-address",
    "fluentd-async",
    "fluentd-async-connect",
    "fluentd-async-reconnect-interval",
    "fluentd-buffer-limit",
    "fluentd-max-retries",
    "fluentd-request-ack",
    "fluentd-retry-wait",
    "fluentd-sub-second-precision",
}
DEFAULT_MODE = MODE_NON_BLOCKING
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 24224
DEFAULT_BUFFER_LIMIT = 1024 * 1024
DEFAULT_RETRY_WAIT = 1.0
DEFAULT_MAX_RETRIES = 2**31 - 1
MAX_RETRY_WAIT = 10.0
SOCKET_TIMEOUT = 1.0  # connect/send timeout of FluentSender
_TRANSPORT_PREFIXES = ("tcp://", "tcp+tls://", "udp://", "unix://", "unixgram://")


@dataclass(frozen=True)
class FluentdConfig:
    host: str = DEFAULT_HOST  # FluentSender's host: a name/IP, or "unix:///path"
    port: int = DEFAULT_PORT
    buffer_limit: int = DEFAULT_BUFFER_LIMIT
    retry_wait: float = DEFAULT_RETRY_WAIT
    max_retries: int = DEFAULT_MAX_RETRIES
    sub_second_precision: bool = False
    buffer: BufferConfig = field(default_factory=lambda: BufferConfig(non_blocking=True))


def parse_address(address: str) -> tuple[str, int]:
    """fluentd-address -> (host or "unix:///path", port), like moby's parseAddress."""
    key = "fluentd-address"
    if not address:
        return DEFAULT_HOST, DEFAULT_PORT
    rest = address
    if address.startswith(_TRANSPORT_PREFIXES):
        scheme, _, rest = address.partition("://")
        if scheme == "unix":
            if not rest.startswith("/"):
                raise ValueError(f"invalid {key} {address!r}: expected unix:///absolute/path")
            return "unix://" + rest, 0
        if scheme != "tcp":
            raise ValueError(f"invalid {key} {address!r}: protocol {scheme} is not supported (use tcp:// or unix://)")
        rest = rest.rstrip("/")
    if ":" not in rest:
        host, port = rest, DEFAULT_PORT
    else:
        host, port_text = split_host_port(key, rest)
        port = parse_port(key, address, port_text)
    if not host:
        raise ValueError(f"invalid {key} {address!r}: missing host")
    return host, port


def parse_config(opts: dict[str, str]) -> FluentdConfig:
    check_keys(NAME, opts, KEYS)
    validate_common(opts)
    host, port = parse_address(opts.get("fluentd-address", ""))
    buffer_limit = DEFAULT_BUFFER_LIMIT
    if opts.get("fluentd-buffer-limit"):
        buffer_limit = parse_size("fluentd-buffer-limit", opts["fluentd-buffer-limit"], binary=True)
    retry_wait = DEFAULT_RETRY_WAIT
    if opts.get("fluentd-retry-wait"):
        retry_wait = parse_duration("fluentd-retry-wait", opts["fluentd-retry-wait"])
        if retry_wait < 0:
            raise ValueError("log opt 'fluentd-retry-wait' must not be negative")
    max_retries = DEFAULT_MAX_RETRIES
    if opts.get("fluentd-max-retries"):
        max_retries = parse_int("fluentd-max-retries", opts["fluentd-max-retries"])
        if max_retries < 0:
            raise ValueError("log opt 'fluentd-max-retries' must not be negative")
    if opts.get("fluentd-async") and opts.get("fluentd-async-connect"):
        raise ValueError("conflicting log opts: cannot specify both 'fluentd-async' and 'fluentd-async-connect'")
    for key in ("fluentd-async", "fluentd-async-connect"):  # accepted; the ring buffer is always async
        if opts.get(key):
            parse_bool(key, opts[key])
    if opts.get("fluentd-async-reconnect-interval"):
        interval = parse_duration("fluentd-async-reconnect-interval", opts["fluentd-async-reconnect-interval"])
        if interval != 0 and not 0.1 <= interval <= 10.0:
            raise ValueError("log opt 'fluentd-async-reconnect-interval' must be between 100ms and 10s")
    if opts.get("fluentd-request-ack") and parse_bool("fluentd-request-ack", opts["fluentd-request-ack"]):
        raise ValueError("log opt 'fluentd-request-ack=true' is not supported by this fluentd driver")
    sub_second = False
    if opts.get("fluentd-sub-second-precision"):
        sub_second = parse_bool("fluentd-sub-second-precision", opts["fluentd-sub-second-precision"])
    return FluentdConfig(
        host, port, buffer_limit, retry_wait, max_retries, sub_second, parse_buffer(opts, DEFAULT_MODE)
    )


def make_record(info: LogInfo, extra: dict[str, str], msg: LogMessage) -> dict[str, str]:
    record = {
        "container_id": info.container_id,
        "container_name": "/" + info.container_name.lstrip("/"),
        "source": msg.stream,
        "log": msg.line.decode("utf-8", errors="replace"),
    }
    record.update(extra)
    if msg.has_partial_meta:
        record["partial_message"] = "true"
        record["partial_id"] = msg.partial_id
        record["partial_ordinal"] = str(msg.partial_ordinal)
        record["partial_last"] = "true" if msg.partial_last else "false"
    return record


class FluentdDriver:
    """Thread-safe; ``log`` never raises and never waits longer than one socket timeout."""

    def __init__(self, cfg: FluentdConfig, info: LogInfo) -> None:
        self.dropped = 0
        self.tag = render_tag(info)
        self._cfg = cfg
        self._info = info
        self._extra = extra_attributes(info)
        self._lock = threading.Lock()
        self._pending = 0  # messages inside FluentSender's unsent buffer
        self._failures = 0
        self._backoff = Backoff(base=max(cfg.retry_wait, 0.01), factor=1.5, cap=max(MAX_RETRY_WAIT, cfg.retry_wait))
        self._closed = False
        self._sender = self._new_sender()

    def _new_sender(self) -> FluentSender:
        return FluentSender(
            self.tag,
            host=self._cfg.host,
            port=self._cfg.port,
            bufmax=self._cfg.buffer_limit,
            timeout=SOCKET_TIMEOUT,
            buffer_overflow_handler=self._overflow,
        )

    def _overflow(self, pendings: bytes) -> None:
        """FluentSender threw its unsent buffer away (called with self._lock held)."""
        self.dropped += self._pending
        self._pending = 0

    def retry_at(self) -> float:
        return self._backoff.until

    def log(self, msg: LogMessage) -> None:
        record = make_record(self._info, self._extra, msg)
        timestamp: Any = (
            EventTime.from_unix_nano(msg.timestamp_ns)
            if self._cfg.sub_second_precision
            else msg.timestamp_ns // 1_000_000_000
        )
        with self._lock:
            if self._closed or self._backoff.waiting():
                self.dropped += 1
                return
            self._pending += 1
            try:
                sent = self._sender.emit_with_time(None, timestamp, record)
            except Exception:  # FluentSender only raises on bugs; never let them reach the copier
                sent = False
            if sent:
                self._pending = 0
                self._failures = 0
                self._backoff.ok()
                return
            self._failures += 1
            self._backoff.fail()
            if self._failures > self._cfg.max_retries:
                self._discard_pending()

    def _discard_pending(self) -> None:
        old, self._sender = self._sender, self._new_sender()
        with old.lock:
            old.pendings = None
        old.close()
        self.dropped += self._pending
        self._pending = 0
        self._failures = 0

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            try:
                self._sender.close()  # one last attempt; what fails goes through _overflow
            except Exception:
                self.dropped += self._pending
            self._pending = 0
