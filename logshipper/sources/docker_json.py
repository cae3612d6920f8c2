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
`checkpoint_interval` as (fingerprint, path, offset). Blocking work (scanning and reading, in
docker_json_files) runs in two worker threads; at most READ_AHEAD_BATCHES batches are read and not yet
taken by `emit`, which bounds memory and passes on backpressure. A chunk of ordinary lines is emitted as
a LineBatch (columns, codecs.dockerjson_lines), anything else as LogEvents.
"""

from __future__ import annotations

import asyncio
import glob
import logging
import os
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from hostwatch.core.events import DOCKER_JSON, Batch, LogEvent, OrderedCommitter
from hostwatch.core.paths import DOCKER_CONTAINERS, state_root
from logshipper.codecs import dockerjson as dj
from logshipper.codecs.dockerjson_lines import LineBatch
from logshipper.config import DockerConfig
from logshipper.sources.base import Emit
from logshipper.sources.docker_json_files import Group, LogFiles, Step, close_fd, is_utf8
from logshipper.telemetry import ShipperMetrics

log = logging.getLogger("hostwatch.logshipper.docker_json")

CHECKPOINT_FILE = "checkpoints.json"
READ_AHEAD_BATCHES = 2
IO_THREADS = 2
LOG_GLOB = "*-json.log*"
COMPRESSED_SUFFIX = ".gz"  # compressed rotations are not read: their lines were read before compression

T = TypeVar("T")


def default_globs() -> tuple[str, ...]:
    return (str(state_root() / "*" / LOG_GLOB), str(DOCKER_CONTAINERS / "*" / LOG_GLOB))


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
        self.files = LogFiles(config, metrics, self.line_limit, clock)
        self._restored = self.files.restored  # checkpoints not yet matched to a file
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
                close_fd(tail.fd)
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
                if not path.isascii() and not is_utf8(path):
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
            if await self._call(self.files.scan, g, self.clock(), group=g):
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
                    if not g.rescan and now >= g.next_scan and self.files.dir_unchanged(g):
                        g.next_scan = now + cfg.scan_interval
                    elif g.rescan or now >= g.next_scan:
                        if rescans > 1:
                            await asyncio.sleep(cfg.poll_interval)
                        g.rescan = False
                        g.next_scan = now + cfg.scan_interval
                        if not await self._call(self.files.scan, g, self.clock(), group=g):
                            return  # every file of this log is gone and released
                    if g.rescan or self.files.has_work(g):
                        async with self._slots:
                            step = await self._call(self.files.step, g, group=g)
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
                    close_fd(tail.fd)

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
                if self.files.has_work(g):
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

    async def _publish(self, g: Group, events: list[LogEvent] | LineBatch, rejects: Counter[str]) -> None:
        for reason, n in rejects.items():
            self.metrics.rejected.labels(DOCKER_JSON, reason).inc(n)
        committer = g.committer
        seq = committer.track(self._positions(g))
        if not events:
            self._ack(g, committer, seq)
            return
        assert self._emit is not None
        ack = lambda: self._ack(g, committer, seq)  # noqa: E731
        if isinstance(events, LineBatch):
            events.ack = ack
            await self._emit(events)
        else:
            await self._emit(Batch(events, ack, DOCKER_JSON, replayable=True))

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
