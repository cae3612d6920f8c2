"""The journald source: `journalctl -o json --all --follow` as a child process, resumed by cursor.

Why journalctl and not a journal library: the Python bindings (python3-systemd / systemd-python) build
against libsystemd headers and are not on PyPI as wheels, while journalctl is wherever journald is, reads
every journal file format that journald writes, and speaks namespaces (`--namespace`), directories and
files. Its JSON gives each entry's `__CURSOR`, so no `--show-cursor` is needed. Why JSON and not
`-o export` (which costs journalctl a quarter of the CPU): journalctl runs on another core, while the
parsing runs on the shipper's loop, and orjson parses JSON faster than Python parses export format
(bench/journald_source.py prints both processes' CPU per entry).

Position: the cursor of the last entry whose batch (and every earlier one) is delivered, kept by an
OrderedCommitter and written atomically (tmp file, fsync, rename, fsync of the directory) to
`<state_dir>/<selection>.cursor` off the loop. After a restart `--after-cursor` resumes just past it. A
line Docker split into partial pieces holds the position before its first piece until the joined line
is delivered, so a crash re-reads it whole (entries read after that first piece are then sent again,
with the same event ids). A rejected entry moves the position on once everything before it is
delivered, without a batch of its own.

journalctl exiting (a journal vacuumed away, a killed child) is restarted with backoff from the last
entry read. Backpressure: while `emit` waits, stdout is not read, so journalctl blocks on its pipe.
Rejected entries are counted here (rejected{source="journald",reason}); received events are counted by
the pipeline's emit.

Entry parsing and field names: logshipper/codecs/journald.py.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from hostwatch.core.events import JOURNALD, Batch, LogEvent, OrderedCommitter
from logshipper.codecs.journald import OVERSIZED, Partials, Rejected, parse
from logshipper.config import JournaldConfig
from logshipper.sources.base import Emit
from logshipper.telemetry import ShipperMetrics

log = logging.getLogger("hostwatch.logshipper.journald")

READ_BYTES = 256 << 10
PIPE_BYTES = 1 << 20  # journalctl's stdout pipe: fewer wake-ups and reads than the default 64 KiB (a third less CPU)
BACKOFF_MIN = 0.1
STOP_TIMEOUT = 5.0
STDERR_LINES = 20  # of journalctl's last words, kept for the log when it exits
LINE_OVERHEAD = 1 << 20  # an entry's fields besides MESSAGE; a byte-array MESSAGE takes up to 4 chars a byte
CURSOR_RE = re.compile(r"[a-z]=[0-9a-fA-F]+(;[a-z]=[0-9a-fA-F]+)*")
SEEK_FAILED = "Failed to seek to cursor"


def selection_name(config: JournaldConfig) -> str:
    """A checkpoint name per journal read, so another namespace, directory or file starts afresh."""
    if config.namespace is not None:
        kind, value = "namespace", config.namespace
    elif config.directory is not None:
        kind, value = "directory", str(Path(config.directory).absolute())
    elif config.file is not None:
        kind, value = "file", str(Path(config.file).absolute())
    else:
        return "system"
    return f"{kind}-{hashlib.sha256(value.encode()).hexdigest()[:16]}"


class CursorFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> str | None:
        try:
            cursor = self.path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as e:
            log.warning("ignoring unreadable journald checkpoint %s: %s", self.path, e)
            return None
        if not CURSOR_RE.fullmatch(cursor):
            log.warning("ignoring journald checkpoint %s: not a journal cursor", self.path)
            return None
        return cursor

    def save(self, cursor: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, cursor.encode("ascii") + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dfd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


class JournaldSource:
    name = JOURNALD

    def __init__(self, config: JournaldConfig, metrics: ShipperMetrics, *, max_message_bytes: int,
                 state_dir: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.metrics = metrics
        self.max_message_bytes = max_message_bytes
        self.max_line_bytes = 4 * max_message_bytes + LINE_OVERHEAD
        self.checkpoint = CursorFile(Path(state_dir) / f"{selection_name(config)}.cursor")
        self._clock = clock
        self._committer = OrderedCommitter()
        self._partials = Partials(max_message_bytes)
        self._emit: Emit | None = None
        self._read_cursor: str | None = None  # the last entry read: where a restarted journalctl resumes
        self._tracked: str | None = None
        self.committed: str | None = None  # the last entry delivered with everything before it
        self._written: str | None = None
        self._writer: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._stdout: asyncio.ReadTransport | None = None
        self._reader: asyncio.StreamReader | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self._stderr_task: asyncio.Task[None] | None = None
        self._stopped = False
        self.restarts = 0

    @property
    def journalctl_pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def command(self, after_cursor: str | None) -> list[str]:
        c = self.config
        cmd = [c.journalctl, "--output=json", "--all", "--follow", "--no-pager", "--quiet"]
        if c.namespace is not None:
            cmd.append(f"--namespace={c.namespace}")
        elif c.directory is not None:
            cmd.append(f"--directory={c.directory}")
        elif c.file is not None:
            cmd.append(f"--file={c.file}")
        if after_cursor is not None:
            cmd.append(f"--after-cursor={after_cursor}")
        elif c.since_now:
            cmd.append("--lines=0")
        else:
            cmd.append("--no-tail")
        cmd.extend(c.matches)
        return cmd

    async def start(self, emit: Emit) -> None:
        self._emit = emit
        self._stopped = False
        self.committed = self._written = self._read_cursor = await asyncio.to_thread(self.checkpoint.load)
        await self._spawn()  # a missing journalctl fails here, where the caller can say so
        self._task = asyncio.get_running_loop().create_task(self._run(), name="journald source")

    async def stop(self) -> None:
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._reap()
        if self._writer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        if self.committed is not None and self.committed != self._written:
            await asyncio.to_thread(self._save, self.committed)

    async def _spawn(self) -> asyncio.subprocess.Process:
        """journalctl with its stdout on a pipe of our own (so it can be enlarged), read by a StreamReader
        that pauses the pipe while the pipeline makes us wait."""
        self._stderr.clear()
        loop = asyncio.get_running_loop()
        r, w = os.pipe2(os.O_CLOEXEC)
        with contextlib.suppress(OSError):  # above /proc/sys/fs/pipe-max-size without CAP_SYS_RESOURCE
            fcntl.fcntl(r, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        try:
            proc = await asyncio.create_subprocess_exec(
                *self.command(self._read_cursor), stdin=asyncio.subprocess.DEVNULL, stdout=w,
                stderr=asyncio.subprocess.PIPE)
        except BaseException:
            os.close(r)
            raise
        finally:
            os.close(w)
        reader = asyncio.StreamReader(limit=READ_BYTES)
        transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader),
                                                    os.fdopen(r, "rb", buffering=0))
        self._proc, self._stdout, self._reader = proc, transport, reader
        self._stderr_task = loop.create_task(self._drain_stderr(proc))
        return proc

    async def _drain_stderr(self, proc: asyncio.subprocess.Process) -> None:
        assert proc.stderr is not None
        async for line in proc.stderr:
            self._stderr.append(line.decode(errors="replace").rstrip())

    async def _reap(self) -> None:
        """Stop journalctl by its PID; what it wrote and was not read is read again after a restart."""
        proc, self._proc = self._proc, None
        if self._stdout is not None:
            self._stdout.close()
            self._stdout = self._reader = None
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._stderr_task is not None:
            await self._stderr_task
            self._stderr_task = None

    async def _run(self) -> None:
        backoff = BACKOFF_MIN
        while True:
            proc = self._proc
            if proc is None:
                try:
                    proc = await self._spawn()
                except OSError as e:
                    log.error("cannot start %s: %s; retrying in %.1fs", self.config.journalctl, e, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self.config.restart_backoff_max)
                    continue
            began, before = self._clock(), self._read_cursor
            assert self._reader is not None
            try:
                await self._pump(self._reader)  # stop() cancels it and reaps journalctl itself
            except Exception:
                # only emit can raise here (parsing rejects, never raises): a pipeline bug, not bad input
                log.exception("journald source stopped: the pipeline refused a batch")
                await self._reap()
                return
            await self._reap()
            why = "; ".join(self._stderr) or "no message"
            if SEEK_FAILED in why and self._read_cursor is not None:
                log.error("journalctl rejected cursor %s: reading the journal from its beginning", self._read_cursor)
                self._read_cursor = None
            self.restarts += 1
            progressed = self._read_cursor != before or self._clock() - began > self.config.restart_backoff_max
            backoff = BACKOFF_MIN if progressed else min(backoff * 2, self.config.restart_backoff_max)
            log.warning("journalctl exited with status %s (%s); restarting in %.1fs", proc.returncode, why, backoff)
            await asyncio.sleep(backoff)

    async def _pump(self, reader: asyncio.StreamReader) -> None:
        """Read entries until journalctl's stdout ends, shipping a batch per read."""
        tail = b""
        discarding = False  # inside a line longer than max_line_bytes
        timeout = self.config.partial_timeout
        while True:
            if len(self._partials):
                try:
                    chunk = await asyncio.wait_for(reader.read(READ_BYTES), timeout / 4)
                except TimeoutError:
                    await self._ship(self._partials.expired(self._clock(), timeout))
                    continue
            else:
                chunk = await reader.read(READ_BYTES)
            if not chunk:
                return  # a line cut short by journalctl's exit is read again after the restart
            if discarding:
                end = chunk.find(b"\n")
                if end < 0:
                    continue
                chunk, discarding = chunk[end + 1 :], False
            lines = (tail + chunk).split(b"\n") if tail else chunk.split(b"\n")
            tail = lines.pop()
            if len(tail) > self.max_line_bytes:
                self._reject(OVERSIZED)
                tail, discarding = b"", True
            await self._handle(lines)

    def _reject(self, reason: str) -> None:
        self.metrics.rejected.labels(self.name, reason).inc()

    async def _handle(self, lines: list[bytes]) -> None:
        events: list[LogEvent] = []
        partials = self._partials
        limit = self.max_message_bytes
        batch_events = self.config.batch_events
        now = self._clock()
        if len(partials):
            events.extend(partials.expired(now, self.config.partial_timeout))
        for line in lines:
            if not line:
                continue
            try:
                entry = parse(line, limit)
            except Rejected as r:
                self._reject(r.reason)
                if r.cursor is not None:
                    self._read_cursor = r.cursor
                continue
            prev, self._read_cursor = self._read_cursor, entry.cursor
            if entry.partial_key is None:
                events.append(entry.event)
            else:
                events.extend(partials.add(entry, prev, now))
            if len(events) >= batch_events:
                await self._ship(events)
                events = []
        await self._ship(events)

    async def _ship(self, events: list[LogEvent]) -> None:
        for reason in self._partials.rejected:
            self._reject(reason)
        self._partials.rejected.clear()
        held, since = self._partials.hold()
        pos = since if held else self._read_cursor
        if not events:
            if pos is not None and pos != self._tracked:
                self._tracked = pos
                self._advance(self._committer.done(self._committer.track(pos)))
            return
        self._tracked = pos
        seq = self._committer.track(pos)
        assert self._emit is not None
        await self._emit(Batch(events, partial(self._acked, seq), self.name, replayable=True))

    def _acked(self, seq: int) -> None:
        self._advance(self._committer.done(seq))

    def _advance(self, cursor: str | None) -> None:
        if cursor is None or cursor == self.committed:
            return
        self.committed = cursor
        if self._stopped:
            try:
                self._save(cursor)  # the loop may be going away: write now rather than in a task
            except OSError as e:
                log.error("cannot write journald checkpoint %s: %s", self.checkpoint.path, e)
        elif self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    async def _write_loop(self) -> None:
        while self.committed is not None and self.committed != self._written:
            cursor = self.committed
            try:
                await asyncio.to_thread(self._save, cursor)
            except OSError as e:
                log.error("cannot write journald checkpoint %s: %s", self.checkpoint.path, e)
                await asyncio.sleep(1.0)

    def _save(self, cursor: str) -> None:
        self.checkpoint.save(cursor)
        self._written = cursor
