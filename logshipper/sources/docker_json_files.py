"""docker_json's worker-thread side: finding a log's files, matching them to their fingerprints, reading
them (the rotation rules are in logshipper.sources.docker_json's docstring).

`LogFiles` runs in the source's executor threads, one call at a time per `Group` (the group's task
awaits each), except `has_work`, which the loop's poller calls (metadata only). A `Group`'s `tails` dict
is replaced, never mutated, by a scan, so the loop thread can look at it while a worker rescans.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hostwatch.core.events import DOCKER_JSON, LogEvent, OrderedCommitter
from logshipper.codecs import dockerjson as dj
from logshipper.codecs.dockerjson_lines import LineBatch, decode_chunk
from logshipper.config import DockerConfig
from logshipper.telemetry import ShipperMetrics

log = logging.getLogger("hostwatch.logshipper.docker_json")

SETTLED_MTIME_NS = 1_000_000_000

Ident = tuple[int, int]  # (st_dev, st_ino)


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
    events: list[LogEvent] | LineBatch = field(default_factory=list)
    rejects: Counter[str] = field(default_factory=Counter)
    progress: bool = False  # offsets moved (positions to commit), with or without events
    rescan: bool = False  # a file changed identity or rotated: scan the group before reading on


def is_utf8(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:  # os.fsdecode's surrogate escapes of undecodable bytes
        return False
    return True


def close_fd(fd: int | None) -> None:
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass


class LogFiles:
    """Scans and reads the files of groups; `restored` holds checkpoints not yet matched to a file."""

    def __init__(self, config: DockerConfig, metrics: ShipperMetrics, line_limit: int,
                 clock: Callable[[], float]) -> None:
        self.config = config
        self.metrics = metrics
        self.line_limit = line_limit
        self.clock = clock
        self.restored: dict[tuple[str, str], dj.Checkpoint] = {}  # (live path, fp) -> checkpoint


    def open(self, path: str) -> tuple[int, os.stat_result] | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            if not isinstance(e, FileNotFoundError):
                log.warning("cannot open %s: %s", path, e)
            return None
        try:
            return fd, os.fstat(fd)
        except OSError:
            close_fd(fd)
            return None

    def look(self, g: Group) -> tuple[dict[Ident, Seen], set[Ident], dict[Ident, int]]:
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
                got = self.open(path)
                if got is None:
                    continue
                fd, st = got
                ident = (st.st_dev, st.st_ino)
                try:
                    fp = dj.fingerprint(os.pread(fd, fp_bytes, 0), fp_bytes)
                except OSError:
                    fp = None
                if fp is None:
                    close_fd(fd)
                    short.add(ident)
                    if name == base:
                        g.short_live, g.short_size = ident, st.st_size
                    continue
                close_fd(opened.pop(ident, None))
                opened[ident] = fd
            found[ident] = Seen(path, 0 if name == base else int(suffix), st.st_size, st.st_mtime_ns, fp)
        return found, short, opened

    def scan(self, g: Group, now: float) -> bool:
        """Match the files of g's log to its tails; False when nothing is left to read."""
        found, short, opened = self.look(g)
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
                tail = self.new_tail(g, fp, found[best], best, opened.pop(best, None), now)
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
                self.switch(tail, best, found[best], opened.pop(best, None))
        for fp, tail in list(tails.items()):
            if fp in by_fp:
                continue
            if tail.fd is not None and (tail.ident in found or tail.ident in short):
                # its inode holds other content now and no copy of the old one is in sight
                if tail.size > tail.offset:
                    log.warning("%s was truncated with no copy of it: %d bytes not yet read are lost",
                                tail.ref.path, tail.size - tail.offset)
                close_fd(tail.fd)
                tail.fd = None
            tail.deleted = True
            if now - tail.idle_since >= self.config.remove_after:
                if tail.stuck_size > tail.offset:
                    self.metrics.rejected.labels(DOCKER_JSON, dj.TRUNCATED).inc()
                close_fd(tail.fd)
                del tails[fp]
        for fd in opened.values():
            close_fd(fd)
        g.tails = tails
        return bool(tails) or bool(found) or bool(short)

    def new_tail(self, g: Group, fp: str, s: Seen, ident: Ident, fd: int | None, now: float) -> Tail | None:
        if fd is None:
            got = self.open(s.path)
            if got is None:
                return None
            fd, st = got
            if (st.st_dev, st.st_ino) != ident:
                close_fd(fd)
                return None  # replaced since it was looked at: the next scan sees what is there now
        restored = self.restored.pop((g.key, fp), None)
        offset = min(restored.offset, s.size) if restored is not None else 0
        tail = Tail(dj.FileRef(fp, s.path, g.container_id), s.index, ident, fd, offset, offset, now, size=s.size)
        for p in g.joiner.pending.values():
            p.hold.setdefault(fp, offset)  # a partial line pending in an older file may continue in this one
        return tail

    def switch(self, tail: Tail, ident: Ident, s: Seen, fd: int | None) -> None:
        """Read on in another file with the same fingerprint (the copy copytruncate left), at the same offset."""
        if fd is None:
            got = self.open(s.path)
            if got is None:
                return
            if (got[1].st_dev, got[1].st_ino) != ident:
                close_fd(got[0])
                return
            fd = got[0]
        close_fd(tail.fd)
        tail.fd, tail.ident, tail.index, tail.deleted, tail.size = fd, ident, s.index, False, s.size
        tail.ref = dj.FileRef(tail.fp, s.path, tail.ref.container_id)
        tail.stuck_size = -1

    def scan_needed(self, g: Group) -> bool:
        """The live path holds a file the last scan did not see there (rotated, replaced, grown enough to
        fingerprint) or is gone while a file was read there."""
        try:
            st = os.stat(g.key)
        except OSError:
            return any(t.index == 0 and not t.deleted for t in g.tails.values())
        live = (st.st_dev, st.st_ino)
        return live not in g.seen and (live != g.short_live or st.st_size != g.short_size)

    def dir_unchanged(self, g: Group) -> bool:
        """No entry of g's directory was added, removed or renamed since its last scan, and no deleted
        file waits to be released: the periodic scan can be skipped."""
        if g.dir_mtime is None or any(t.deleted for t in g.tails.values()):
            return False
        try:
            return os.stat(os.path.dirname(g.key) or ".").st_mtime_ns == g.dir_mtime
        except OSError:
            return False

    def has_work(self, g: Group) -> bool:
        """On the loop thread, metadata only (stat, fstat): is there anything to read or rescan?"""
        if self.scan_needed(g):
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

    def step(self, g: Group) -> Step:
        """Read and decode the next chunk of the oldest file that has complete lines to read."""
        if self.scan_needed(g):
            return Step(rescan=True)  # renamed away or replaced: learn the paths before reading on
        for tail in sorted(g.tails.values(), key=Tail.order):
            if tail.fd is None:
                continue
            size = tail.size = os.fstat(tail.fd).st_size
            if size < tail.offset:
                return Step(rescan=True)  # truncated under the read offset
            if size == tail.offset or size == tail.stuck_size:
                continue
            step = self.read(g, tail, size)
            if step is not None:
                return step
        return Step()

    def read(self, g: Group, tail: Tail, size: int) -> Step | None:
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
        step.events = decode_chunk(lines, start, tail.ref, g.joiner, step.rejects)
        tail.offset = start + used
        tail.stuck_size = -1
        if g.joiner.started:
            for p in g.joiner.started:
                p.hold = {fp: t.offset for fp, t in g.tails.items()}
                p.hold[p.ref.fingerprint] = p.offset
            g.joiner.started.clear()
        return step
