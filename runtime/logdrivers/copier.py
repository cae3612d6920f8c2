"""Docker's logger copier (moby daemon/logger/copier.go): raw stream bytes -> LogMessages.

Rules reproduced from copier.go (its buffer is 16 KiB):

* a line ends at b"\\n", which is not part of the message;
* when ``max_line`` bytes have accumulated without a newline, they are emitted as a piece with partial
  metadata (new random 64-hex id and ordinal 1 for the first piece, ordinal+1 after); so a line of exactly
  ``max_line`` bytes becomes one full piece plus an empty last piece, as in Docker;
* the newline-terminated rest of a split line carries the same id, the next ordinal and ``last=True``;
* every piece of a split line carries the first piece's timestamp;
* at EOF (``flush``) the unterminated rest is emitted as a partial piece (not last), so json-file writes
  it without "\\n".
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from .base import LogMessage

DEFAULT_MAX_LINE = 16 * 1024  # moby defaultBufSize


def random_id() -> str:
    """moby stringid.GenerateRandomID: 64 hex chars whose 12-char prefix is not all digits."""
    while True:
        value = os.urandom(32).hex()
        if not value[:12].isdigit():
            return value


class Copier:
    """Splits one stream's raw bytes into LogMessages for ``sink``. Not thread-safe: one feeder per copier."""

    def __init__(
        self,
        stream: str,
        sink: Callable[[LogMessage], None],
        max_line: int = DEFAULT_MAX_LINE,
        *,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        if max_line < 1:
            raise ValueError("max_line must be at least 1")
        self.stream = stream
        self._sink = sink
        self._max_line = max_line
        self._clock = clock
        self._buf = bytearray()
        self._partial_id = ""
        self._partial_ts = 0
        self._ordinal = 0

    def feed(self, data: bytes) -> None:
        if not data:
            return
        buf = self._buf
        buf += data
        pos, limit = 0, self._max_line
        while True:
            nl = buf.find(b"\n", pos, pos + limit)
            if nl >= 0:
                self._emit_line(bytes(buf[pos:nl]))
                pos = nl + 1
            elif len(buf) - pos >= limit:
                self._emit_piece(bytes(buf[pos : pos + limit]))
                pos += limit
            else:
                break
        del buf[:pos]

    def flush(self) -> None:
        """End of stream: emit what is left as a partial piece and forget the partial state."""
        if self._buf:
            self._emit_piece(bytes(self._buf))
            self._buf.clear()
        self._partial_id = ""
        self._ordinal = 0

    def _emit_line(self, line: bytes) -> None:
        if self._partial_id:
            msg = LogMessage(
                line=line,
                stream=self.stream,
                timestamp_ns=self._partial_ts,
                partial=False,
                partial_id=self._partial_id,
                partial_ordinal=self._ordinal,
                partial_last=True,
            )
            self._partial_id = ""
            self._ordinal = 0
        else:
            msg = LogMessage(line=line, stream=self.stream, timestamp_ns=self._clock())
        self._sink(msg)

    def _emit_piece(self, piece: bytes) -> None:
        if not self._partial_id:
            self._partial_id = random_id()
            self._partial_ts = self._clock()
            self._ordinal = 1
        msg = LogMessage(
            line=piece,
            stream=self.stream,
            timestamp_ns=self._partial_ts,
            partial=True,
            partial_id=self._partial_id,
            partial_ordinal=self._ordinal,
            partial_last=False,
        )
        self._ordinal += 1
        self._sink(msg)
