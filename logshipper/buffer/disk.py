"""The disk buffer: batches in bounded segment files under STATE_DIR/buffer, surviving a crash and a
long broker outage (file format: logshipper.buffer.segments).

- push() encodes the batch as one frame and appends it with one write(2) (the page cache has it
  at once, so a killed process loses nothing; fsync every `sync_interval` covers a power cut).
- A replayable batch (its source reads it again after a restart until its ack has run: json-file
  offsets, journald cursors) that goes straight into the in-memory window is not written at first:
  delivered within the sync interval, as it is while Kafka keeps up, it never touches the disk (as
  rsyslog's disk-assisted queues). It is written before any later frame (so the disk keeps push order),
  by the sync after the next if it still waits, and at close. A crash loses nothing its source cannot
  read again; the one case given up is a file Docker's rotation removed within those two intervals.
- pop() hands batches out in write order. The batches pushed while the backlog is small stay in an
  in-memory window (CACHE_BYTES) and are handed out as they are; beyond it only a small entry per
  batch (its ack) stays in memory and the batch is read back from its segment (READ_AHEAD_BYTES at
  a time, in a worker thread). Memory stays bounded whatever the backlog.
- While `keep_in_window()` says the consumer is taking batches as fast as the CPU lets it (the sink is
  not waiting for the broker), a push that does not fit the window waits for room (up to WINDOW_WAIT)
  instead of spilling, as long as what is ahead of it in memory and spilled is no more than a window
  (a short wait): on a busy CPU, intake running ahead of a sink that only needs the CPU would just pay
  to read every batch back. While the sink waits for the broker (down or slow), behind a larger
  spilled backlog, or during a replay, pushes spill at once.
- The bound (buffer.max_bytes) counts record bytes, as the memory buffer's does; frames are compressed,
  so the segments on disk take less.
- release() frees the room and runs the ack at once; the durable position advances only over the
  frames released in order (OrderedCommitter) and is saved with the next sync, after which fully
  released segments are deleted.
- open() replays (ack None) every frame after the saved position before anything new; a frame cut
  short or failing its CRC (the torn tail of a crash) ends its segment and is cut off. Released
  frames after an unreleased one are replayed too: delivery is at least once, and a replayed event
  carries its event.id, so the indexer overwrites rather than duplicates it.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hostwatch.core.events import Ack, OrderedCommitter
from logshipper.buffer import segments
from logshipper.buffer.base import RecordBatch
from logshipper.buffer.room import UNKNOWN_SOURCE, BufferClosed, Room, age_seconds, run_ack
from logshipper.buffer.segments import CorruptFrame, Position
from logshipper.config import BufferConfig
from logshipper.telemetry import ShipperMetrics

log = logging.getLogger("hostwatch.logshipper.buffer")

CACHE_BYTES = 4 << 20  # record bytes (batch.nbytes) of pushed batches kept in memory for pop()
READ_AHEAD_BYTES = 1 << 20  # record bytes decoded from a segment per worker-thread call (frames are smaller)
READ_AHEAD_FRAME_BYTES = READ_AHEAD_BYTES // 4  # frame bytes read per call: compressed, they hold more
WINDOW_WAIT = 0.5  # the longest a push waits for window room before it spills anyway
WINDOW_POLL = 0.01  # how often a waiting push looks at keep_in_window() again
WRITE_RETRY_SECONDS = 1.0
REASON_CORRUPT = "buffer_corrupt"
REASON_WRITE_ERROR = "buffer_write_error"
_WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
_TRANSIENT_WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EIO)  # a full disk frees up as segments drain


@dataclass(slots=True)
class _Frame:
    seg: int
    end: int  # offset just after the frame
    length: int  # 0: not written (a replayable batch in the window; see push())
    batch: RecordBatch
    synced: int = 0  # the buffer's sync count when it was pushed (unwritten frames: written one sync later)


# a batch left on disk only: (ack, oldest_ns, segment, end offset, record bytes, events)
_Spilled = tuple[Ack | None, int, int, int, int, int]


class DiskBuffer:
    def __init__(self, config: BufferConfig, state_dir: Path, metrics: ShipperMetrics) -> None:
        self._config = config
        self._dir = Path(state_dir) / "buffer"
        self._metrics = metrics
        self._room = Room(config.bound, config.when_full, metrics)
        self._seg_end: dict[int, int] = {}  # closed segments still on disk -> size
        self._wseg = 0
        self._wfd = -1
        self._woff = 0
        self._unsynced = False
        self._to_close: list[int] = []  # rolled-over segments' fds, fsynced and closed by the next sync
        self._first_new = 0  # segments from here on were written by this process; before: replay
        self._replay_events: dict[int, int] = {}  # replay segment -> events not handed out yet
        self._replay_bytes: dict[int, int] = {}  # replay segment -> their record bytes
        self._replay_oldest = 0
        self._cursor: Position = (0, 0)  # just after the last frame handed out
        self._cache: deque[_Frame] = deque()
        self._cache_bytes = 0
        self._unwritten = 0  # frames at the window's tail not written yet (replayable batches)
        self._order = asyncio.Lock()  # pushes reach the window and the disk in the order they got here
        self._syncs = 0
        self._spilled: deque[_Spilled] = deque()
        self._spilled_bytes = 0
        self._readahead: deque[_Frame] = deque()
        self._ready = asyncio.Event()
        self._window_freed = asyncio.Event()
        self.keep_in_window: Callable[[], bool] | None = None
        self._read_lock = asyncio.Lock()
        self._rfd_lock = threading.Lock()  # a cancelled pop's read may still run in its thread
        self._rfd = -1
        self._rfd_seg = -1
        self._committer = OrderedCommitter()
        self._in_flight: dict[int, tuple[int, int, int, int]] = {}  # id(batch) -> (seq, frame len, events, oldest)
        self._acked: Position = (0, 0)
        self._acked_dirty = False
        self._sync_lock = asyncio.Lock()
        self._stop = asyncio.Event()
        self._sync_task: asyncio.Task[None] | None = None

    # --- open / close -------------------------------------------------------------------------

    async def open(self) -> None:
        await asyncio.to_thread(self._recover)
        self._room.register_gauges(self.oldest_age_seconds)
        self._sync_task = asyncio.create_task(self._sync_loop(), name="disk-buffer-sync")

    def _recover(self) -> None:
        found = segments.recover(self._dir)
        for seg, scan in found.live.items():
            self._seg_end[seg] = scan.end
            self._replay_events[seg] = scan.events
            self._replay_bytes[seg] = scan.bytes
            self._room.add(scan.events, scan.bytes)
            if scan.frames and not self._replay_oldest:
                self._replay_oldest = scan.first_oldest_ns
        self._first_new = self._wseg = found.next_segment
        self._cursor = found.position if found.live else (self._wseg, 0)
        self._acked = self._cursor
        self._wfd = os.open(segments.segment_path(self._dir, self._wseg), _WRITE_FLAGS | os.O_TRUNC, 0o600)
        if self._room.events:
            log.info("disk buffer %s: replaying %d events (%d bytes) not delivered before", self._dir,
                     self._room.events, self._room.bytes)

    async def close(self) -> None:
        if self._room.closed:
            return
        self._room.close()
        self._ready.set()
        self._stop.set()
        if self._sync_task is not None:
            await asyncio.gather(self._sync_task, return_exceptions=True)
        async with self._order:
            await self._write_unwritten()
        self._unsynced = True
        await self._sync()
        async with self._read_lock:
            with self._rfd_lock:
                if self._rfd >= 0:
                    os.close(self._rfd)
                    self._rfd = -1
        if self._wfd >= 0:
            os.close(self._wfd)
            self._wfd = -1

    # --- push ---------------------------------------------------------------------------------

    async def push(self, batch: RecordBatch) -> None:
        if self._room.closed or self._wfd < 0:
            raise BufferClosed("buffer closed (or not opened)")
        if not len(batch):
            run_ack(batch.ack)
            return
        if not batch.nbytes:
            batch.sized()
        frame = None if batch.replayable else segments.encode(batch)
        if not await self._room.admit(batch, batch.nbytes):
            return
        await self._window_room(batch.nbytes)
        async with self._order:  # a write that waits (a full disk) must not let a later push pass it
            to_window = not self._spilled and self._cache_bytes + batch.nbytes <= CACHE_BYTES
            if to_window and batch.replayable:
                self._room.add(len(batch), batch.nbytes)
                self._cache.append(_Frame(self._wseg, self._woff, 0, batch, self._syncs))
                self._unwritten += 1
                self._cache_bytes += batch.nbytes
                self._ready.set()
                return
            if not await self._write_unwritten():
                return
            if frame is None:
                frame = segments.encode(batch)
            length = sum(map(len, frame))
            if not await self._write(batch, frame, length):
                return
            self._room.add(len(batch), batch.nbytes)
            if to_window:
                self._cache.append(_Frame(self._wseg, self._woff, length, batch))
                self._cache_bytes += batch.nbytes
            else:
                self._spilled.append((batch.ack, batch.oldest_ns, self._wseg, self._woff, batch.nbytes,
                                      len(batch)))
                self._spilled_bytes += batch.nbytes
            self._ready.set()

    async def _write_unwritten(self, pushed_before: int | None = None) -> bool:
        """Write the window's unwritten frames (all at its tail, in push order) before anything after them;
        with `pushed_before`, only those pushed before that sync (a prefix of them). False: closed
        meanwhile, or a write failed and drop_newest dropped a batch (the rest are written)."""
        if not self._unwritten:
            return True
        for frame in list(self._cache)[-self._unwritten:]:
            if pushed_before is not None and frame.synced >= pushed_before:
                break
            if frame.length or frame not in self._cache:  # written, or handed out while a write waited
                continue
            parts = segments.encode(frame.batch)
            length = sum(map(len, parts))
            if not await self._write(frame.batch, parts, length):
                self._forget_unwritten(frame)
                continue
            frame.seg, frame.end, frame.length = self._wseg, self._woff, length
            self._unwritten -= 1
        return not self._room.closed

    def _forget_unwritten(self, frame: _Frame) -> None:
        """drop_newest dropped the batch (and ran its ack) when it could not be written: out of the window."""
        if frame in self._cache:
            self._cache.remove(frame)
            self._cache_bytes -= frame.batch.nbytes
            self._room.remove(len(frame.batch), frame.batch.nbytes)
        self._unwritten -= 1

    async def _window_room(self, nbytes: int) -> None:
        keep = self.keep_in_window
        if keep is None:
            return
        deadline = asyncio.get_running_loop().time() + WINDOW_WAIT
        while (self._cache_bytes + self._spilled_bytes + nbytes > CACHE_BYTES >= self._spilled_bytes
               and (self._cache or self._spilled) and self._cursor[0] >= self._first_new and keep()
               and asyncio.get_running_loop().time() < deadline and not self._room.closed):
            self._window_freed.clear()
            try:
                await asyncio.wait_for(self._window_freed.wait(), WINDOW_POLL)
            except TimeoutError:
                pass

    async def _write(self, batch: RecordBatch, frame: list[bytes], length: int) -> bool:
        """Append the frame (False: it could not be written and drop_newest dropped it)."""
        while True:
            if self._woff and self._woff + length > self._config.segment_bytes:
                self._roll()
            try:
                written = os.writev(self._wfd, frame)
                if written != length:
                    raise OSError(errno.ENOSPC, "short write")
                self._woff += written
                self._unsynced = True
                return True
            except OSError as e:
                if e.errno not in _TRANSIENT_WRITE_ERRORS:
                    raise
                try:
                    os.ftruncate(self._wfd, self._woff)  # no partial frame before the next one
                except OSError:
                    pass
                if self._room.drop_newest:
                    log.error("disk buffer write failed (%s): batch of %d events dropped", e, len(batch))
                    self._metrics.dropped.labels(batch.source or UNKNOWN_SOURCE,
                                                 REASON_WRITE_ERROR).inc(len(batch))
                    run_ack(batch.ack)
                    return False
                log.error("disk buffer write failed (%s): retrying in %.0f s", e, WRITE_RETRY_SECONDS)
                await asyncio.sleep(WRITE_RETRY_SECONDS)
                if self._room.closed:
                    raise BufferClosed("buffer closed while a write waited") from e

    def _roll(self) -> None:
        self._seg_end[self._wseg] = self._woff
        self._to_close.append(self._wfd)
        self._wseg += 1
        self._woff = 0
        self._wfd = os.open(segments.segment_path(self._dir, self._wseg), _WRITE_FLAGS | os.O_TRUNC, 0o600)

    # --- pop / release ------------------------------------------------------------------------

    async def pop(self) -> RecordBatch:
        while True:
            if self._room.closed:
                raise BufferClosed("buffer closed")
            if self._readahead:
                return self._hand_out(self._readahead.popleft())
            self._advance_cursor()
            seg, off = self._cursor
            if seg < self._first_new:
                await self._fill(seg, off, self._seg_end[seg], False)
            elif self._cache:
                frame = self._cache.popleft()
                self._cache_bytes -= frame.batch.nbytes
                return self._hand_out(frame)
            elif self._spilled:
                # the window is empty, so every frame from the cursor on is a spilled one
                await self._fill(seg, off, self._woff if seg == self._wseg else self._seg_end[seg], True)
            else:
                self._ready.clear()
                await self._ready.wait()

    def _advance_cursor(self) -> None:
        """Past the end of a finished segment, on to the next one."""
        seg, off = self._cursor
        while seg != self._wseg:
            size = self._seg_end.get(seg)
            if size is not None and off < size:
                break
            later = [s for s in self._seg_end if s > seg]
            seg, off = (min(later) if later else self._wseg), 0
        self._cursor = (seg, off)

    def _hand_out(self, frame: _Frame) -> RecordBatch:
        self._window_freed.set()
        batch = frame.batch
        if not frame.length:  # unwritten: it sits just after everything written
            self._unwritten -= 1
            frame.seg, frame.end = self._wseg, self._woff
        self._cursor = (frame.seg, frame.end)
        seq = self._committer.track(self._cursor)
        self._in_flight[id(batch)] = (seq, batch.nbytes, len(batch), batch.oldest_ns)
        if frame.seg in self._replay_events:
            self._replay_events[frame.seg] -= len(batch)
            self._replay_bytes[frame.seg] -= batch.nbytes
            self._replay_oldest = batch.oldest_ns
        return batch

    async def _fill(self, seg: int, off: int, end: int, spilled: bool) -> None:
        """Read frames of `seg` from `off` (up to `end`) into the read-ahead; `spilled`: they are this
        process's batches (their acks are attached), not the replay of an earlier run's."""
        async with self._read_lock:
            if self._room.closed:
                raise BufferClosed("buffer closed")
            try:
                frames = await asyncio.to_thread(self._read, seg, off, end)
            except (OSError, CorruptFrame) as e:
                self._skip(seg, off, end, spilled, e)
                return
            for frame in frames:
                if spilled:
                    ack, _, s_seg, s_end, s_bytes, _ = self._spilled.popleft()
                    self._spilled_bytes -= s_bytes
                    if (s_seg, s_end) != (frame.seg, frame.end):
                        raise AssertionError(f"disk buffer: spilled entry {s_seg}:{s_end} read back as "
                                             f"{frame.seg}:{frame.end}")
                    frame.batch.ack = ack
                self._readahead.append(frame)

    def _read(self, seg: int, off: int, end: int) -> list[_Frame]:
        with self._rfd_lock:
            if self._rfd_seg != seg:
                if self._rfd >= 0:
                    os.close(self._rfd)
                    self._rfd = -1
                self._rfd = os.open(segments.segment_path(self._dir, seg), os.O_RDONLY | os.O_CLOEXEC)
                self._rfd_seg = seg
            frames: list[_Frame] = []
            held = 0
            for frame_end, length, body in segments.read_frames(self._rfd, off, end, READ_AHEAD_FRAME_BYTES):
                if frames and held >= READ_AHEAD_BYTES:
                    break  # the rest is read again by the next call
                frames.append(_Frame(seg, frame_end, length, segments.decode(body)))
                held += frames[-1].batch.nbytes
            return frames

    def _skip(self, seg: int, off: int, end: int, spilled: bool, error: Exception) -> None:
        """A frame that went bad on disk after it was written: the rest of the segment (up to `end`) is
        lost to the buffer. It is counted; its batches are not acked, so their sources never commit
        past them and read them again after a restart."""
        events = nbytes = 0
        if spilled:
            while self._spilled and self._spilled[0][2] == seg and self._spilled[0][3] <= end:
                entry = self._spilled.popleft()
                self._spilled_bytes -= entry[4]
                nbytes += entry[4]
                events += entry[5]
        else:
            events = self._replay_events.get(seg, 0)
            nbytes = self._replay_bytes.get(seg, 0)
            self._replay_events[seg] = self._replay_bytes[seg] = 0
        log.error("disk buffer segment %d unreadable from offset %d (%s): %d events lost to the buffer",
                  seg, off, error, events)
        self._metrics.dropped.labels(UNKNOWN_SOURCE, REASON_CORRUPT).inc(events)
        self._room.remove(events, nbytes)
        self._cursor = (seg, end)

    def release(self, batch: RecordBatch) -> None:
        info = self._in_flight.pop(id(batch), None)
        if info is None:
            log.warning("release of a batch this buffer did not hand out (or released twice): ignored")
            return
        seq, nbytes, events, _ = info
        pos = self._committer.done(seq)
        if pos is not None:
            self._acked = pos
            self._acked_dirty = True
        self._room.remove(events, nbytes)
        run_ack(batch.ack)

    # --- sync ---------------------------------------------------------------------------------

    async def _sync_loop(self) -> None:
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), self._config.sync_interval)
            except TimeoutError:
                pass
            try:
                await self._sync()
            except Exception:  # noqa: BLE001 - a failed fsync is retried at the next tick, not fatal
                log.exception("disk buffer sync failed; retrying")

    async def _sync(self) -> None:
        self._syncs += 1
        if self._unwritten and not self._order.locked():  # a push holding it writes them first anyway (and
            async with self._order:                        # may be waiting for this sync to free the disk)
                # What was already waiting at the last sync goes to disk: while Kafka keeps up, a batch
                # is delivered long before that; a crash loses at most two sync intervals of them.
                await self._write_unwritten(self._syncs - 1)
        async with self._sync_lock:
            to_close, self._to_close = self._to_close, []
            wfd = self._wfd if self._unsynced else -1
            self._unsynced = False
            pos = self._acked if self._acked_dirty else None
            self._acked_dirty = False
            doomed: list[int] = []
            if pos is not None:
                doomed = [s for s, size in self._seg_end.items() if s < pos[0] or (s == pos[0] and pos[1] >= size)]
                for s in doomed:
                    del self._seg_end[s]
                    self._replay_events.pop(s, None)
                    self._replay_bytes.pop(s, None)
            if to_close or wfd >= 0 or pos is not None:
                try:
                    await asyncio.to_thread(segments.sync_files, self._dir, to_close, wfd, pos, doomed)
                except BaseException:
                    self._unsynced = self._unsynced or wfd >= 0  # the next tick tries again
                    self._acked_dirty = self._acked_dirty or pos is not None
                    raise

    # --- telemetry ----------------------------------------------------------------------------

    @property
    def events(self) -> int:
        return self._room.events

    @property
    def bytes(self) -> int:
        return self._room.bytes

    @property
    def memory_bytes(self) -> int:
        """Record bytes of the batches held in memory for pop() (the window and the read-ahead)."""
        return self._cache_bytes + sum(f.batch.nbytes for f in self._readahead)

    def oldest_age_seconds(self, now_ns: int) -> float:
        oldest = min((v[3] for v in self._in_flight.values()), default=None)
        head: int | None = None
        if self._readahead:
            head = self._readahead[0].batch.oldest_ns
        elif self._cursor[0] < self._first_new and self._replay_oldest:
            head = self._replay_oldest
        elif self._cache:
            head = self._cache[0].batch.oldest_ns
        elif self._spilled:
            head = self._spilled[0][1]
        if head is not None and (oldest is None or head < oldest):
            oldest = head
        return age_seconds(oldest, now_ns)
