"""gzip and zlib as Go's compress/gzip and compress/zlib frame them (json-file rotation, GELF over UDP)."""

from __future__ import annotations

import struct
import zlib

GO_BEST_SPEED = 1
GO_BEST_COMPRESSION = 9


def gzip_bytes(data: bytes, level: int = -1, extra: bytes = b"") -> bytes:
    """One gzip member with Go's header: mtime 0, XFL from the level, OS 255, optional FEXTRA field."""
    xfl = 2 if level == GO_BEST_COMPRESSION else 4 if level == GO_BEST_SPEED else 0
    flags = 0x04 if extra else 0
    header = b"\x1f\x8b\x08" + bytes([flags]) + b"\0\0\0\0" + bytes([xfl, 255])
    if extra:
        header += struct.pack("<H", len(extra)) + extra
    comp = zlib.compressobj(level, zlib.DEFLATED, -15)
    body = comp.compress(data) + comp.flush()
    return header + body + struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF)


def zlib_bytes(data: bytes, level: int = -1) -> bytes:
    return zlib.compress(data, level)
