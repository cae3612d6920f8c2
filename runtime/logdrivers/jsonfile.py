"""Docker's json-file driver (moby daemon/logger/jsonfilelog, loggerutils/logfile.go).

Each message is one line ``{"log":"...","stream":"stdout","attrs":{...},"time":"<RFC3339Nano>"}\\n`` written
with one ``write(2)`` to ``info.log_path`` (readable by a follower at once). Rotation, as in logfile.go:
before a write, when the file has reached max-size, ``<path>.N-1`` is removed, ``.i`` -> ``.i+1``,
``<path>`` -> ``<path>.1`` and a fresh ``<path>`` is opened; with max-file=1 the file is truncated instead.
With compress=true ``<path>.1`` is then gzipped to ``<path>.1.gz`` in a background thread, with the last
entry's time in the gzip header's extra field (``{"lastTime":"..."}``), as Docker does.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass

from hostwatch.core.timefmt import rfc3339_nano

from .base import LogInfo, LogMessage
from .compression import gzip_bytes
from .jsonenc import go_json_object, jsonlog_string
from .options import (
    COMMON_KEYS,
    MODE_BLOCKING,
    BufferConfig,
    check_keys,
    extra_attributes,
    parse_bool,
    parse_buffer,
    parse_int,
    parse_size,
    render_tag,
    validate_common,
)

NAME = "json-file"
KEYS = COMMON_KEYS | {"max-size", "max-file", "compress"}
DEFAULT_MODE = MODE_BLOCKING
DEFAULT_MAX_FILE = 1
UNLIMITED = -1
FILE_MODE = 0o640


@dataclass(frozen=True)
class JSONFileConfig:
    max_size: int = UNLIMITED  # bytes; -1 = never rotate
    max_file: int = DEFAULT_MAX_FILE
    compress: bool = False
    buffer: BufferConfig = BufferConfig(non_blocking=False)


def parse_config(opts: dict[str, str]) -> JSONFileConfig:
    check_keys(NAME, opts, KEYS)
    validate_common(opts)
    max_size = UNLIMITED
    if "max-size" in opts and opts["max-size"] != "-1":
        max_size = parse_size("max-size", opts["max-size"])
        if max_size <= 0:
            raise ValueError("log opt 'max-size' must be a positive size or -1")
    max_file = DEFAULT_MAX_FILE
    if "max-file" in opts:
        max_file = parse_int("max-file", opts["max-file"])
        if max_file < 1:
            raise ValueError("log opt 'max-file' cannot be less than 1")
    compress = parse_bool("compress", opts["compress"]) if "compress" in opts else False
    if compress and (max_file == 1 or max_size == UNLIMITED):
        raise ValueError("log opt 'compress' cannot be true when max-file is less than 2 or max-size is not set")
    return JSONFileConfig(max_size, max_file, compress, parse_buffer(opts, DEFAULT_MODE))


def attrs_json(info: LogInfo) -> bytes:
    """The raw "attrs" object (labels/env asked for, plus "tag" only when the tag opt is set), or b""."""
    attrs = extra_attributes(info)
    if info.opts.get("tag"):
        attrs["tag"] = render_tag(info, default="")
    return go_json_object(attrs) if attrs else b""


def marshal(msg: LogMessage, attrs: bytes = b"") -> bytes:
    """One json-file line, byte for byte what moby's JSONLogs.MarshalJSONBuf + "\\n" writes."""
    log = msg.line if msg.partial else msg.line + b"\n"
    fields = []
    if log:
        fields.append(b'"log":' + jsonlog_string(log))
    if msg.stream:
        fields.append(b'"stream":' + jsonlog_string(msg.stream.encode()))
    if attrs:
        fields.append(b'"attrs":' + attrs)
    fields.append(b'"time":"' + rfc3339_nano(ns=msg.timestamp_ns).encode() + b'"')
    return b"{" + b",".join(fields) + b"}\n"


def _compress_file(path: str, last_ns: int) -> None:
    """<path> -> <path>.gz, then remove <path> (moby compressFile)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        extra = b'{"lastTime":"' + rfc3339_nano(ns=last_ns).encode() + b'"}' if last_ns else b""
        fd = os.open(path + ".gz", os.O_CREAT | os.O_TRUNC | os.O_WRONLY, FILE_MODE)
        try:
            _write_all(fd, gzip_bytes(data, extra=extra))
        finally:
            os.close(fd)
        os.remove(path)
    except OSError as e:
        print(f"hostwatch json-file: cannot compress {path}: {e}", file=sys.stderr)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class LogFile:
    """An append-only log file with Docker's rotation. Thread-safe."""

    def __init__(self, path: str, max_size: int, max_file: int, compress: bool) -> None:
        self.path = path
        self.max_size = max_size
        self.max_file = max_file
        self.compress = compress
        self._lock = threading.Lock()
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        self._closed = False
        self._fd: int | None = None
        self._size = 0
        self._last_ns = 0
        self._compressor: threading.Thread | None = None
        self._open(os.O_APPEND)

    def _open(self, flag: int) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | flag, FILE_MODE)
        self._size = os.fstat(self._fd).st_size

    def write(self, entry: bytes, timestamp_ns: int) -> None:
        """Raises OSError when the entry could not be written."""
        with self._lock:
            if self._closed:
                raise OSError("log file is closed")
            if self._fd is None:  # a previous rotation failed half-way: go on appending
                self._open(os.O_APPEND)
            if self.max_size != UNLIMITED and self._size >= self.max_size:
                self._rotate()
            assert self._fd is not None
            _write_all(self._fd, entry)
            self._size += len(entry)
            self._last_ns = timestamp_ns

    def _rotate(self) -> None:
        assert self._fd is not None
        if self._compressor is not None:  # moby: rotateMu is held until the previous compression ends
            self._compressor.join()
            self._compressor = None
        os.close(self._fd)
        self._fd = None
        name = self.path
        if self.max_file >= 2:
            ext = ".gz" if self.compress else ""
            _remove_quiet(f"{name}.{self.max_file - 1}{ext}")
            for i in range(self.max_file - 1, 1, -1):
                _rename_quiet(f"{name}.{i - 1}{ext}", f"{name}.{i}{ext}")
            _rename_quiet(name, f"{name}.1")
        self._open(os.O_TRUNC)
        if self.max_file >= 2 and self.compress:
            self._compressor = threading.Thread(
                target=_compress_file, args=(f"{name}.1", self._last_ns), name="json-file-gzip", daemon=True
            )
            self._compressor.start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if self._compressor is not None:
                self._compressor.join()
                self._compressor = None


def _remove_quiet(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


def _rename_quiet(src: str, dst: str) -> None:
    try:
        os.rename(src, dst)
    except FileNotFoundError:
        pass


class JSONFileDriver:
    """Synchronous json-file writer. A failed write is counted in ``dropped``, never raised."""

    def __init__(self, cfg: JSONFileConfig, info: LogInfo) -> None:
        if not info.log_path:
            raise ValueError("json-file log driver needs LogInfo.log_path")
        self.dropped = 0
        self._lock = threading.Lock()
        self._attrs = attrs_json(info)
        self._file = LogFile(info.log_path, cfg.max_size, cfg.max_file, cfg.compress)
        self._error_reported = False

    def log(self, msg: LogMessage) -> None:
        try:
            self._file.write(marshal(msg, self._attrs), msg.timestamp_ns)
        except OSError as e:
            with self._lock:
                self.dropped += 1
                report, self._error_reported = not self._error_reported, True
            if report:
                print(f"hostwatch json-file: cannot write {self._file.path}: {e}", file=sys.stderr)

    def retry_at(self) -> float:
        return 0.0

    def close(self) -> None:
        self._file.close()
