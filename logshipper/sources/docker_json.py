"""docker_json: tails Docker json-file logs and their rotations, losing nothing and reading nothing twice.

A file is known by its fingerprint (the checksum of its first line, codecs.dockerjson), not its path or
inode. Each log (`<dir>/<id>-json.log` with its rotated siblings `.1`, `.2`, ...) is a `Group` with one
task that reads its files oldest first (deleted ones, then `.N` ... `.1`, then the live file), so
- rename rotation: the renamed file keeps its fingerprint and open descriptor and is read to its end
  before the new live file, which has a new first line;
- copytruncate: the copy has the original's fingerprint; once the original's content is replaced (its
  fingerprint changes or it shrinks under the read offset) the tail carries on in the copy at the same
  offset, and the truncated file is a new one read from 0. Every read is checked against the
  fingerprint after it is made, so a file truncated and refilled between two reads is never read at a
  stale offset;
- deletion: the descriptor stays open until the file is read to its end and idle for `remove_after`.
Positions are committed only in batch acks (in read order, OrderedCommitter), a Docker partial line
holding back the commit at its first piece until it is complete, and persisted atomically at most every
`checkpoint_interval` as (fingerprint, path, offset). Blocking work runs in two worker threads; at most
READ_AHEAD_BATCHES batches are read and not yet taken by `emit`, which bounds memory and passes on
backpressure.
"""

from __future__ import annotations

import asyncio
import glob
import logging
import os
import stat
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hostwatch.core.events import DOCKER_JSON, Batch, LogEvent, OrderedCommitter
from hostwatch.core.paths import DOCKER_CONTAINERS, state_root
from logshipper.codecs import dockerjson as dj
from logshipper.config import DockerConfig
from logshipper.sources.base import Emit
from logshipper.telemetry import ShipperMetrics

log = logging.getLogger("hostwatch.logshipper.docker_json")

CHECKPOINT_FILE = "checkpoints.json"
READ_AHEAD_BATCHES = 2
IO_THREADS = 2
LOG_GLOB = "*-json.log*"
SETTLED_MTIME_NS = 1_000_000_000
COMPRESSED_SUFFIX = ".gz"  # compressed rotations are not read: their lines were read before compression

Ident = tuple[int, int]  # (st_dev, st_ino)
T = TypeVar("T")


def default_globs() -> tuple[str, ...]:
    return (str(state_root() / "*" / LOG_GLOB), str(DOCKER_CONTAINERS / "*" / LOG_GLOB))


@dataclass(eq=False)
class Tail:
    """One file identity (fingerprint) of a log and where it is read."""

    ref: dj.FileRef
    index: int  # rotation index of its path (0: the live file)
    ident: Ident
    fd: int | None  # None once its content is gone from every path (truncated without a copy)
    offset: int  # the next byte to read
    committed: int  # everything before it delivered
    idle_since: float
    deleted: bool = False
    skip_line: bool = False  # inside an oversized line: dropping bytes up to its newline
    stuck_size: int = -1  # the size at which its last line was unterminated (not read again until it grows)
    size: int = 0  # the size last seen

    @property
    def fp(self) -> str:
        return self.ref.fingerprint

    def order(self) -> tuple[bool, int]:
        return (not self.deleted, -self.index)  # oldest first


@dataclass(eq=False)
class Group:
    """A live log file and its rotated siblings; one task reads it, in order."""

    key: str  # the live file's path
    container_id: str | None
    joiner: dj.Joiner
    tails: dict[str, Tail] = field(default_factory=dict)  # replaced, never mutated, off the loop thread
    seen: dict[Ident, tuple[int, int, str]] = field(default_factory=dict)  # ident -> size, mtime, fp
    committer: OrderedCommitter = field(default_factory=OrderedCommitter)
    rescan: bool = True
    next_scan: float = 0.0
    short_live: Ident | None = None  # the live file as the last scan saw it, too short to fingerprint
    short_size: int = -1
    dir_mtime: int | None = None  # of the directory at the last scan, when it had settled
    idle_since: float | None = None
    io: asyncio.Future[Any] | None = None  # the worker-thread call in progress
    task: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # set by the poller: something to read


@dataclass(slots=True, frozen=True)
class Seen:
    """A file of a log as a scan found it."""

    path: str
    index: int
    size: int
    mtime_ns: int
    fp: str


@dataclass(slots=True)
class Step:
    events: list[LogEvent] = field(default_factory=list)
    rejects: Counter[str] = field(default_factory=Counter)
    progress: bool = False  # offsets moved (positions to commit), with or without events
    rescan: bool = False  # a file changed identity or rotated: scan the group before reading on


def _utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:  # os.fsdecode's surrogate escapes of undecodable bytes
        return False
    return True


def _close(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


class DockerJsonSource:
    name = DOCKER_JSON

    def __init__(self, config: DockerConfig, metrics: ShipperMetrics, *, max_message_bytes: int,
                 state_dir: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.metrics = metrics
        self.max_message_bytes = max_message_bytes
        self.line_limit = dj.max_line_bytes(max_message_bytes)
        self.state_dir = Path(state_dir)
        self.checkpoint_path = self.state_dir / CHECKPOINT_FILE
        self.globs = config.logs_glob or default_globs()
        self.clock = clock
        self.groups: dict[str, Group] = {}
        self._restored: dict[tuple[str, str], dj.Checkpoint] = {}  # (live path, fp): not yet matched
        self._restored_until = 0.0
        self._emit: Emit | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._slots = asyncio.Semaphore(READ_AHEAD_BATCHES)
        self._dirty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._writing: asyncio.Future[None] | None = None
        self._stopped = False
        self._last_write = 0.0
        self._late_write: asyncio.TimerHandle | None = None
        self._lag_paths: set[str] = set()
        self._idle_groups: set[Group] = set()
        self._bad_names: set[str] = set()
        metrics.on_collect(self._refresh_lag)

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self, emit: Emit) -> None:
        self._emit = emit
        self._stopped = False
        self._executor = ThreadPoolExecutor(IO_THREADS, thread_name_prefix="docker_json")
        for c in await self._call(self._load_checkpoints):
            self._restored[(dj.split_rotated(c.path)[0], c.fingerprint)] = c
        self._restored_until = self.clock() + self.config.remove_after + self.config.scan_interval
        await self._discover()
        self._tasks = [asyncio.create_task(self._discover_loop(), name="docker_json-discover"),
                       asyncio.create_task(self._poll_loop(), name="docker_json-poll"),
                       asyncio.create_task(self._checkpoint_loop(), name="docker_json-checkpoint")]

    async def stop(self) -> None:
        """Stop reading, close every file and persist what is committed. Acks that arrive later
        still advance the checkpoint (written at most every checkpoint_interval)."""
        if self._executor is None:
            return
        self._stopped = True
        tasks = self._tasks + [g.task for g in self.groups.values() if g.task is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        pending = [f for f in [self._writing, *(g.io for g in self.groups.values())] if f is not None]
        await asyncio.gather(*pending, return_exceptions=True)  # a worker thread still using a file
        for g in self.groups.values():
            for tail in g.tails.values():
                _close(tail.fd)
                tail.fd = None
        try:
            await self._call(self._write_checkpoints, self._snapshot())
        except OSError as e:
            log.error("cannot write docker_json checkpoint %s: %s", self.checkpoint_path, e)
        self._executor.shutdown(wait=True)
        self._executor = None
        self._tasks = []

    async def _call(self, fn: Callable[..., T], *args: Any, group: Group | None = None) -> T:
        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self._executor, fn, *args)
        if group is not None:
            group.io = fut
        return await asyncio.shield(fut)  # cancelling the caller must not orphan a thread using a file

    # --- discovery ---------------------------------------------------------------------------------

    def _glob(self) -> set[str]:
        keys = set()
        for pattern in self.globs:
            for path in glob.glob(pattern):
                if path.endswith(COMPRESSED_SUFFIX):
                    continue
                if not path.isascii() and not _utf8(path):
                    if path not in self._bad_names:
                        self._bad_names.add(path)
                        log.warning("not tailing %r: its name is not UTF-8 (Docker's never are)", path)
                    continue
                keys.add(dj.split_rotated(path)[0])
        return keys

    async def _discover(self) -> None:
        """New logs get a group, their files opened (a rotation right after this loses nothing), and a task."""
        for key in sorted(await self._call(self._glob)):
            if key in self.groups:
                continue
            g = Group(key, dj.container_id_from_path(key), dj.Joiner(self.max_message_bytes))
            self.groups[key] = g
            g.rescan, g.next_scan = False, self.clock() + self.config.scan_interval
            if await self._call(self._scan, g, self.clock(), group=g):
                g.task = asyncio.create_task(self._run_group(g), name=f"docker_json {key}")
            else:
                del self.groups[key]

    async def _discover_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.scan_interval)
            try:
                await self._discover()
            except Exception:  # noqa: BLE001 - discovery goes on at the next interval
                log.exception("scanning %s", ", ".join(self.globs))

    # --- one log's task ------------------------------------------------------------------------------

    async def _run_group(self, g: Group) -> None:
        cfg = self.config
        rescans = 0  # in a row: a file that stays unreadable is looked at once per poll, not in a busy loop
        try:
            while True:
                now = self.clock()
                try:
                    if not g.rescan and now >= g.next_scan and self._dir_unchanged(g):
                        g.next_scan = now + cfg.scan_interval
                    elif g.rescan or now >= g.next_scan:
                        if rescans > 1:
                            await asyncio.sleep(cfg.poll_interval)
                        g.rescan = False
                        g.next_scan = now + cfg.scan_interval
                        if not await self._call(self._scan, g, self.clock(), group=g):
                            return  # every file of this log is gone and released
                    if g.rescan or self._has_work(g):
                        async with self._slots:
                            step = await self._call(self._step, g, group=g)
                            if step.progress:
                                await self._publish(g, step.events, step.rejects)
                    else:
                        step = Step()
                except OSError as e:
                    log.warning("reading %s: %s", g.key, e)
                    step = Step(rescan=True)
                except Exception:  # noqa: BLE001 - e.g. emit refused a batch: read again from what was delivered
                    log.exception("tailing %s failed; reading it again from its last delivered line", g.key)
                    self._rewind(g)
                    await asyncio.sleep(cfg.scan_interval)
                    continue
                if step.rescan:
                    g.rescan = True
                    g.seen = {}  # re-fingerprint: a file may have been refilled to the same size and mtime
                    rescans += 1
                    continue
                rescans = 0
                if step.progress:
                    g.idle_since = None
                    continue
                now = self.clock()
                g.idle_since = g.idle_since or now
                if g.joiner.pending and now - g.idle_since >= cfg.partial_timeout:
                    async with self._slots:
                        await self._publish(g, g.joiner.flush(), Counter())
                    continue
                wake_at = g.next_scan
                if g.joiner.pending:
                    wake_at = min(wake_at, g.idle_since + cfg.partial_timeout)
                await self._idle(g, wake_at - now)
        finally:
            if self.groups.get(g.key) is g and not self._stopped:
                del self.groups[g.key]
                for tail in g.tails.values():
                    _close(tail.fd)

    async def _idle(self, g: Group, timeout: float) -> None:
        """Until the poller sees something to read in g's files, or `timeout`."""
        g.wake.clear()
        timer = asyncio.get_running_loop().call_later(max(timeout, 0.0), g.wake.set)
        self._idle_groups.add(g)
        try:
            await g.wake.wait()
        finally:
            timer.cancel()
            self._idle_groups.discard(g)

    async def _poll_loop(self) -> None:
        """One task looks at every idle log each poll_interval (metadata only), rather than each its own."""
        while True:
            await asyncio.sleep(self.config.poll_interval)
            for g in list(self._idle_groups):
                if self._has_work(g):
                    g.wake.set()

    def _positions(self, g: Group) -> dict[str, int]:
        """Each file's offset that may be committed once this batch is delivered: where it has been read
        to, but not past the first piece of a partial line still being joined."""
        pos = {fp: t.offset for fp, t in g.tails.items()}
        for p in g.joiner.pending.values():
            for fp, off in p.hold.items():
                if fp in pos and off < pos[fp]:
                    pos[fp] = off
        return pos

    async def _publish(self, g: Group, events: list[LogEvent], rejects: Counter[str]) -> None:
        for reason, n in rejects.items():
            self.metrics.rejected.labels(DOCKER_JSON, reason).inc(n)
        committer = g.committer
        seq = committer.track(self._positions(g))
        if not events:
            self._ack(g, committer, seq)
            return
        assert self._emit is not None
        await self._emit(Batch(events, lambda: self._ack(g, committer, seq), DOCKER_JSON))

    def _rewind(self, g: Group) -> None:
        """Forget what was read and not delivered: read it again (the same event ids) from the commits."""
        g.committer = OrderedCommitter()  # acks of batches read before this no longer move anything
        g.joiner.pending.clear()
        g.joiner.started.clear()
        for tail in g.tails.values():
            tail.offset, tail.skip_line, tail.stuck_size = tail.committed, False, -1
        g.rescan, g.seen = True, {}

    def _ack(self, g: Group, committer: OrderedCommitter, seq: int) -> None:
        if committer is not g.committer:
            return
        committed = committer.done(seq)
        if committed is None:
            return
        for fp, off in committed.items():
            tail = g.tails.get(fp)
            if tail is not None and off > tail.committed:
                tail.committed = off
        self._dirty.set()
        if self._stopped:
            self._persist_late()

    # --- worker-thread side: scanning and reading (the group's task awaits each call) ----------------

    def _open(self, path: str) -> tuple[int, os.stat_result] | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            if not isinstance(e, FileNotFoundError):
                log.warning("cannot open %s: %s", path, e)
            return None
        try:
            return fd, os.fstat(fd)
        except OSError:
            _close(fd)
            return None

    def _look(self, g: Group) -> tuple[dict[Ident, Seen], set[Ident], dict[Ident, int]]:
        """The log's files now: fingerprinted ones, the idents of those too short to fingerprint, and the
        descriptors opened on the way (the caller keeps or closes them)."""
        directory, base = os.path.split(g.key)
        try:
            dir_mtime = os.stat(directory or ".").st_mtime_ns  # before listing: a later change shows as newer
            names = os.listdir(directory or ".")
        except OSError:
            dir_mtime, names = None, []
        # an mtime within the filesystem's clock granularity of now could hide a change made just after it
        settled = dir_mtime is not None and time.time_ns() - dir_mtime > SETTLED_MTIME_NS
        g.dir_mtime = dir_mtime if settled else None
        fp_bytes = self.config.fingerprint_bytes
        found: dict[Ident, Seen] = {}
        short: set[Ident] = set()
        g.short_live = None
        opened: dict[Ident, int] = {}
        for name in names:
            suffix = name[len(base) + 1:]
            if name != base and not (name.startswith(base + ".") and suffix.isdigit() and suffix.isascii()):
                continue
            path = os.path.join(directory, name)
            try:
                st = os.stat(path)
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            ident = (st.st_dev, st.st_ino)
            cached = g.seen.get(ident)
            fp: str | None
            if cached is not None and cached[:2] == (st.st_size, st.st_mtime_ns):
                fp = cached[2]
            else:
                got = self._open(path)
                if got is None:
                    continue
                fd, st = got
                ident = (st.st_dev, st.st_ino)
                try:
                    fp = dj.fingerprint(os.pread(fd, fp_bytes, 0), fp_bytes)
                except OSError:
                    fp = None
                if fp is None:
                    _close(fd)
                    short.add(ident)
                    if name == base:
                        g.short_live, g.short_size = ident, st.st_size
                    continue
                _close(opened.pop(ident, None))
                opened[ident] = fd
            found[ident] = Seen(path, 0 if name == base else int(suffix), st.st_size, st.st_mtime_ns, fp)
        return found, short, opened

    def _scan(self, g: Group, now: float) -> bool:
        """Match the files of g's log to its tails; False when nothing is left to read."""
        found, short, opened = self._look(g)
        g.seen = {ident: (s.size, s.mtime_ns, s.fp) for ident, s in found.items()}
        tails = dict(g.tails)
        by_fp: dict[str, list[Ident]] = {}
        for ident, s in found.items():
            by_fp.setdefault(s.fp, []).append(ident)
        for fp, idents in by_fp.items():
            # the same first line at several inodes: a copy. The largest holds the most; on a tie the live one.
            best = max(idents, key=lambda i: (found[i].size, -found[i].index))
            tail = tails.get(fp)
            if tail is None:
                tail = self._new_tail(g, fp, found[best], best, opened.pop(best, None), now)
                if tail is not None:
                    tails[fp] = tail
                continue
            own = found.get(tail.ident)
            if own is not None and own.fp == fp:
                tail.deleted = False
                if own.path != tail.ref.path or own.index != tail.index:
                    tail.ref, tail.index = dj.FileRef(fp, own.path, g.container_id), own.index
                if own.size < tail.offset:  # cut short in place, its first line kept: read on from its end
                    tail.offset = own.size
                    tail.committed = min(tail.committed, own.size)
                own_size = own.size
            else:
                own_size = -1 if tail.fd is None or own is not None or tail.ident in short else tail.size
            if best != tail.ident and found[best].size > own_size:
                self._switch(tail, best, found[best], opened.pop(best, None))
        for fp, tail in list(tails.items()):
            if fp in by_fp:
                continue
            if tail.fd is not None and (tail.ident in found or tail.ident in short):
                # its inode holds other content now and no copy of the old one is in sight
                if tail.size > tail.offset:
                    log.warning("%s was truncated with no copy of it: %d bytes not yet read are lost",
                                tail.ref.path, tail.size - tail.offset)
                _close(tail.fd)
                tail.fd = None
            tail.deleted = True
            if now - tail.idle_since >= self.config.remove_after:
                if tail.stuck_size > tail.offset:
                    self.metrics.rejected.labels(DOCKER_JSON, dj.TRUNCATED).inc()
                _close(tail.fd)
                del tails[fp]
        for fd in opened.values():
            _close(fd)
        g.tails = tails
        return bool(tails) or bool(found) or bool(short)

    def _new_tail(self, g: Group, fp: str, s: Seen, ident: Ident, fd: int | None, now: float) -> Tail | None:
        if fd is None:
            got = self._open(s.path)
            if got is None:
                return None
            fd, st = got
            if (st.st_dev, st.st_ino) != ident:
                _close(fd)
                return None  # replaced since it was looked at: the next scan sees what is there now
        restored = self._restored.pop((g.key, fp), None)
        offset = min(restored.offset, s.size) if restored is not None else 0
        tail = Tail(dj.FileRef(fp, s.path, g.container_id), s.index, ident, fd, offset, offset, now, size=s.size)
        for p in g.joiner.pending.values():
            p.hold.setdefault(fp, offset)  # a partial line pending in an older file may continue in this one
        return tail

    def _switch(self, tail: Tail, ident: Ident, s: Seen, fd: int | None) -> None:
        """Read on in another file with the same fingerprint (the copy copytruncate left), at the same offset."""
        if fd is None:
            got = self._open(s.path)
            if got is None:
                return
            if (got[1].st_dev, got[1].st_ino) != ident:
                _close(got[0])
                return
            fd = got[0]
        _close(tail.fd)
        tail.fd, tail.ident, tail.index, tail.deleted, tail.size = fd, ident, s.index, False, s.size
        tail.ref = dj.FileRef(tail.fp, s.path, tail.ref.container_id)
        tail.stuck_size = -1

    def _scan_needed(self, g: Group) -> bool:
        """The live path holds a file the last scan did not see there (rotated, replaced, grown enough to
        fingerprint) or is gone while a file was read there."""
        try:
            st = os.stat(g.key)
        except OSError:
            return any(t.index == 0 and not t.deleted for t in g.tails.values())
        live = (st.st_dev, st.st_ino)
        return live not in g.seen and (live != g.short_live or st.st_size != g.short_size)

    def _dir_unchanged(self, g: Group) -> bool:
        """No entry of g's directory was added, removed or renamed since its last scan, and no deleted
        file waits to be released: the periodic scan can be skipped."""
        if g.dir_mtime is None or any(t.deleted for t in g.tails.values()):
            return False
        try:
            return os.stat(os.path.dirname(g.key) or ".").st_mtime_ns == g.dir_mtime
        except OSError:
            return False

    def _has_work(self, g: Group) -> bool:
        """On the loop thread, metadata only (stat, fstat): is there anything to read or rescan?"""
        if self._scan_needed(g):
            return True
        for tail in g.tails.values():
            if tail.fd is not None:
                try:
                    size = os.fstat(tail.fd).st_size
                except OSError:
                    return True
                if size != tail.offset and size != tail.stuck_size:
                    return True
        return False

    def _step(self, g: Group) -> Step:
        """Read and decode the next chunk of the oldest file that has complete lines to read."""
        if self._scan_needed(g):
            return Step(rescan=True)  # renamed away or replaced: learn the paths before reading on
        for tail in sorted(g.tails.values(), key=Tail.order):
            if tail.fd is None:
                continue
            size = tail.size = os.fstat(tail.fd).st_size
            if size < tail.offset:
                return Step(rescan=True)  # truncated under the read offset
            if size == tail.offset or size == tail.stuck_size:
                continue
            step = self._read(g, tail, size)
            if step is not None:
                return step
        return Step()

    def _read(self, g: Group, tail: Tail, size: int) -> Step | None:
        assert tail.fd is not None
        fd, start, fp_bytes = tail.fd, tail.offset, self.config.fingerprint_bytes
        data = os.pread(fd, min(size - start, self.config.read_bytes), start)
        lines, used = dj.split_lines(data)
        if not used and not tail.skip_line and size - start > len(data):
            # a line longer than read_bytes: read it whole, up to the line bound
            data = os.pread(fd, min(size - start, self.line_limit + 1), start)
            nl = data.find(b"\n")
            if nl >= 0:
                lines, used = [data[:nl]], nl + 1
        if dj.fingerprint(os.pread(fd, fp_bytes, 0), fp_bytes) != tail.fp:
            return Step(rescan=True)  # its content was replaced before or during these reads: not ours
        step = Step(progress=True)
        tail.idle_since = self.clock()
        if tail.skip_line:
            nl = data.find(b"\n")
            tail.offset += len(data) if nl < 0 else nl + 1
            tail.skip_line = nl < 0
            return step
        if not used:
            if len(data) > self.line_limit:
                step.rejects[dj.OVERSIZED] += 1
                tail.offset += len(data)
                tail.skip_line = True
                return step
            tail.stuck_size = size  # the writer is mid-line: wait for it to grow
            return None
        step.events = dj.decode_lines(lines, start, tail.ref, g.joiner, step.rejects)
        tail.offset = start + used
        tail.stuck_size = -1
        if g.joiner.started:
            for p in g.joiner.started:
                p.hold = {fp: t.offset for fp, t in g.tails.items()}
                p.hold[p.ref.fingerprint] = p.offset
            g.joiner.started.clear()
        return step

    # --- checkpoints -----------------------------------------------------------------------------------

    def _load_checkpoints(self) -> list[dj.Checkpoint]:
        try:
            data = self.checkpoint_path.read_bytes()
        except FileNotFoundError:
            return []
        try:
            return dj.load_checkpoints(data)
        except ValueError as e:
            aside = self.checkpoint_path.with_suffix(".corrupt")
            log.error("docker_json checkpoint %s is unreadable (%s): moved to %s, files are read from their "
                      "start", self.checkpoint_path, e, aside)
            os.replace(self.checkpoint_path, aside)
            return []

    def _snapshot(self) -> list[dj.Checkpoint]:
        out = []
        for g in list(self.groups.values()):
            for tail in list(g.tails.values()):
                if tail.committed:
                    out.append(dj.Checkpoint(tail.fp, tail.ref.path, tail.committed))
        if self._restored and self.clock() > self._restored_until:
            self._restored.clear()  # their files never came back
        return out + list(self._restored.values())

    def _write_checkpoints(self, checkpoints: list[dj.Checkpoint]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint_path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            data = memoryview(dj.dump_checkpoints(checkpoints))
            while data:
                data = data[os.write(fd, data):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.checkpoint_path)
        dfd = os.open(self.state_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    async def _checkpoint_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                self._writing = asyncio.get_running_loop().run_in_executor(
                    self._executor, self._write_checkpoints, self._snapshot())
                await asyncio.shield(self._writing)
            except OSError as e:
                log.error("cannot write docker_json checkpoint %s: %s", self.checkpoint_path, e)
                self._dirty.set()
            await asyncio.sleep(self.config.checkpoint_interval)

    def _persist_late(self) -> None:
        """After stop: acks of batches still in flight, persisted on the loop (rate-limited)."""
        if self._late_write is not None:
            return
        delay = self._last_write + self.config.checkpoint_interval - self.clock()

        def write() -> None:
            self._late_write = None
            self._last_write = self.clock()
            try:
                self._write_checkpoints(self._snapshot())
            except OSError as e:
                log.error("cannot write docker_json checkpoint %s: %s", self.checkpoint_path, e)

        if delay <= 0:
            write()
        else:
            self._late_write = asyncio.get_running_loop().call_later(delay, write)

    def _refresh_lag(self) -> None:
        paths: dict[str, int] = {}
        for g in list(self.groups.values()):
            for tail in list(g.tails.values()):
                paths[tail.ref.path] = tail.offset - tail.committed
        for path in self._lag_paths - paths.keys():
            self.metrics.checkpoint_lag.remove(path)
        for path, lag in paths.items():
            self.metrics.checkpoint_lag.labels(path).set(lag)
        self._lag_paths = set(paths)
