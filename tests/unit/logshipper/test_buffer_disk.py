"""The disk buffer: crash recovery (reopen, kill -9, torn tails), segment files and their deletion,
memory bounded whatever the backlog, and a random walk against a model of what must be replayed."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import textwrap
import tracemalloc
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from logshipper.buffer import DiskBuffer, disk, segments
from logshipper.buffer.base import Record, RecordBatch
from logshipper.config import BufferConfig
from logshipper.telemetry import ShipperMetrics

ROOT = Path(__file__).resolve().parents[3]


def filler(seed: str, size: int) -> bytes:
    """Incompressible bytes (frames are LZ4-compressed; these tests need frames of a known size)."""
    return random.Random(seed).randbytes(size)


def batch(tag: str, n: int = 10, size: int = 100, acks: list[str] | None = None,
          replayable: bool = False) -> RecordBatch:
    records = []
    for i in range(n):
        prefix = f"{tag}:{i}:".encode()
        records.append(Record(f"topic-{i % 2}", f"c{i % 3}".encode() if i % 4 else None,
                              prefix + filler(f"{tag}:{i}", size - len(prefix))))
    ack = (lambda: acks.append(tag)) if acks is not None else None
    b = RecordBatch(records, ack, "docker_json", 1_000 + n).sized()
    b.replayable = replayable
    return b


def tag_of(b: RecordBatch) -> str:
    return b.records[0].value.split(b":")[0].decode()


def open_disk(tmp_path: Path, **cfg: Any) -> DiskBuffer:
    return DiskBuffer(BufferConfig(**cfg), tmp_path, ShipperMetrics())


def run(body: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    return asyncio.run(body())


async def drain(buf: DiskBuffer, release: bool = True) -> list[RecordBatch]:
    out: list[RecordBatch] = []
    while buf.events and len(out) < 100_000:
        b = await asyncio.wait_for(buf.pop(), 5)
        out.append(b)
        if release:
            buf.release(b)
    return out


def seg_files(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "buffer").glob("*.seg"))


def test_reopen_replays_every_batch_not_released_in_order_then_new_ones(tmp_path: Path) -> None:
    acks: list[str] = []

    async def first() -> None:
        buf = open_disk(tmp_path)
        await buf.open()
        for i in range(10):
            await buf.push(batch(f"b{i}", acks=acks))
        got = [await buf.pop() for _ in range(4)]
        for i in (0, 1, 3):  # b2 not delivered; b3 delivered after the gap
            buf.release(got[i])
        await buf.close()

    async def second() -> tuple[list[RecordBatch], list[RecordBatch]]:
        buf = open_disk(tmp_path)
        await buf.open()
        assert buf.events == 80
        await buf.push(batch("new", acks=acks))
        out = await drain(buf)
        await buf.close()
        reopened = open_disk(tmp_path)
        await reopened.open()
        rest = await drain(reopened)
        await reopened.close()
        return out, rest

    run(first)
    assert acks == ["b0", "b1", "b3"]
    out, rest = run(second)
    # the durable position stops before b2; b3 comes again (at least once), then b4..b9, then the new one
    assert [tag_of(b) for b in out] == ["b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9", "new"]
    assert all(b.ack is None for b in out[:-1]) and out[-1].ack is not None
    assert acks[-1] == "new"
    original = batch("b5")
    assert [(r.topic, r.key, r.value) for r in out[3].records] == [(r.topic, r.key, r.value) for r in original.records]
    assert out[3].source == "docker_json" and out[3].oldest_ns == original.oldest_ns
    assert out[3].nbytes == original.nbytes
    assert rest == []  # everything released and closed: nothing replays twice


CHILD = textwrap.dedent("""
    import asyncio, random, sys, time
    from pathlib import Path
    from logshipper.buffer import DiskBuffer
    from logshipper.buffer.base import Record, RecordBatch
    from logshipper.config import BufferConfig
    from logshipper.telemetry import ShipperMetrics

    async def main():
        buf = DiskBuffer(BufferConfig(segment_bytes=20000, sync_interval=60), Path(sys.argv[1]), ShipperMetrics())
        await buf.open()
        for i in range(int(sys.argv[2])):
            recs = [Record("t", b"k%d" % (j % 3), b"%d:%d:" % (i, j) + random.Random(i * 100 + j).randbytes(200))
                    for j in range(20)]
            await buf.push(RecordBatch(recs, None, "docker_json", i).sized())
            if i == 5:
                buf.release(await buf.pop())  # delivered, but its position is saved only at the next sync
        print("pushed", flush=True)
        time.sleep(60)

    asyncio.run(main())
""")


def _kill_9_once_pushed(code: str, *args: str) -> None:
    """Run a buffer-filling child until it says "pushed", then SIGKILL it."""
    with subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as child:
        assert child.stdout is not None
        try:
            line = child.stdout.readline()
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
        assert line == b"pushed\n", line + child.stdout.read()


async def _reopen_batches(tmp_path: Path) -> list[RecordBatch]:
    buf = open_disk(tmp_path)
    await buf.open()
    out = await drain(buf)
    await buf.close()
    return out


def test_kill_9_while_batches_are_buffered_replays_all_of_them(tmp_path: Path) -> None:
    _kill_9_once_pushed(CHILD, str(tmp_path), "200")
    assert len(seg_files(tmp_path)) > 5  # 200 x ~4.5 KB frames over 20 KB segments
    out = run(lambda: _reopen_batches(tmp_path))
    assert [b.oldest_ns for b in out] == list(range(200))  # nothing synced: the released one comes again too
    assert out[7].records[19].value.startswith(b"7:19:") and out[7].records[19].key == b"k1"


CHILD_REPLAYABLE = textwrap.dedent("""
    import asyncio, random, sys, time
    from pathlib import Path
    from logshipper.buffer import DiskBuffer
    from logshipper.buffer.base import Record, RecordBatch
    from logshipper.config import BufferConfig
    from logshipper.telemetry import ShipperMetrics

    async def main():
        buf = DiskBuffer(BufferConfig(sync_interval=float(sys.argv[2])), Path(sys.argv[1]), ShipperMetrics())
        await buf.open()
        for i, kind in enumerate(sys.argv[3]):  # r: replayable (a file's lines), n: not (a GELF datagram's)
            recs = [Record("t", b"k", b"%d:%d:" % (i, j) + random.Random(i * 100 + j).randbytes(200))
                    for j in range(5)]
            await buf.push(RecordBatch(recs, None, "docker_json", i, replayable=kind == "r").sized())
        await asyncio.sleep(float(sys.argv[4]))
        print("pushed", flush=True)
        time.sleep(60)

    asyncio.run(main())
""")


def _kill_9_then_replay(tmp_path: Path, sync_interval: float, kinds: str, wait: float) -> list[int]:
    _kill_9_once_pushed(CHILD_REPLAYABLE, str(tmp_path), str(sync_interval), kinds, str(wait))
    return [b.oldest_ns for b in run(lambda: _reopen_batches(tmp_path))]


@pytest.mark.parametrize(("kinds", "replayed"), [("rrnrr", [0, 1, 2]), ("rrrr", [])])
def test_replayable_batches_in_the_window_are_written_only_before_a_later_frame(
        tmp_path: Path, kinds: str, replayed: list[int]) -> None:
    """Killed before the next sync: the trailing replayable batches were never written (their sources
    read them again); the ones before a non-replayable batch were written first, in push order."""
    assert _kill_9_then_replay(tmp_path, 60, kinds, 0) == replayed


def test_replayable_batches_still_waiting_at_a_sync_are_written(tmp_path: Path) -> None:
    assert _kill_9_then_replay(tmp_path, 0.05, "rrrr", 0.5) == [0, 1, 2, 3]


def test_replayable_batches_delivered_at_once_never_touch_the_disk(tmp_path: Path) -> None:
    acks: list[str] = []

    async def body() -> list[str]:
        buf = open_disk(tmp_path, sync_interval=60)
        await buf.open()
        for i in range(50):
            await buf.push(batch(f"r{i}", acks=acks, replayable=True))
            buf.release(await buf.pop())
        sizes = [p.stat().st_size for p in (tmp_path / "buffer").glob("*.seg")]
        await buf.push(batch("n", acks=acks))  # not replayable: written
        buf.release(await buf.pop())
        await buf.close()
        return [str(s) for s in sizes]

    assert run(body) == ["0"]
    assert acks == [f"r{i}" for i in range(50)] + ["n"]
    assert sum(p.stat().st_size for p in (tmp_path / "buffer").glob("*.seg")) > 0


def test_close_writes_what_is_still_waiting(tmp_path: Path) -> None:
    async def first() -> None:
        buf = open_disk(tmp_path, sync_interval=60)
        await buf.open()
        for i in range(3):
            await buf.push(batch(f"r{i}", replayable=True))
        await buf.close()

    run(first)
    assert run(lambda: _reopen_tags(tmp_path)) == ["r0", "r1", "r2"]


def _three_batches_then_close(tmp_path: Path) -> Path:
    async def body() -> None:
        buf = open_disk(tmp_path)
        await buf.open()
        for i in range(3):
            await buf.push(batch(f"b{i}", n=5))
        await buf.close()
    run(body)
    (seg,) = (tmp_path / "buffer").glob("*.seg")
    return seg


async def _reopen_tags(tmp_path: Path) -> list[str]:
    return [tag_of(b) for b in await _reopen_batches(tmp_path)]


DAMAGES: dict[str, tuple[Callable[[bytes], bytes], int]] = {  # the segment's bytes -> damaged, frames kept
    "cut": (lambda d: d[:-7], 2),  # the last write was cut short by a crash
    "crc": (lambda d: d[:-3] + bytes([d[-3] ^ 0xFF]) + d[-2:], 2),
    "garbage_tail": (lambda d: d + b"\x00\x01\x02", 3),
    "half_header": (lambda d: d + segments.HEADER.pack(1 << 20, 0)[:5], 3),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_torn_or_corrupt_tail_frame_is_dropped_and_earlier_frames_kept(tmp_path: Path, damage: str) -> None:
    seg = _three_batches_then_close(tmp_path)
    data = seg.read_bytes()
    spoil, kept = DAMAGES[damage]
    seg.write_bytes(spoil(data))
    frame = len(data) // 3  # three frames of the same size

    async def reopen() -> tuple[int, list[str]]:
        buf = open_disk(tmp_path)
        await buf.open()
        size = seg.stat().st_size  # the damage is cut off on open
        tags = [tag_of(b) for b in await drain(buf)]
        await buf.close()
        return size, tags

    size, tags = run(reopen)
    assert (size, tags) == (kept * frame, [f"b{i}" for i in range(kept)])


def test_after_a_torn_tail_new_batches_are_written_and_replayed_cleanly(tmp_path: Path) -> None:
    seg = _three_batches_then_close(tmp_path)
    seg.write_bytes(seg.read_bytes()[:-1])

    async def body() -> None:
        buf = open_disk(tmp_path)
        await buf.open()
        await buf.push(batch("after"))
        await buf.close()

    run(body)
    assert run(lambda: _reopen_tags(tmp_path)) == ["b0", "b1", "after"]


async def settled(files: Callable[[], list[str]], expected: int, timeout: float = 10.0) -> list[str]:
    """The segment files once `expected` are left (deletion runs at the next sync), or as they are at the
    deadline (for the assertion to show)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while len(found := files()) != expected and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    return found


def test_fully_released_segments_are_deleted_and_the_rest_kept(tmp_path: Path) -> None:
    async def body() -> tuple[list[str], list[str], list[str]]:
        buf = open_disk(tmp_path, segment_bytes=4096, sync_interval=0.05)
        await buf.open()
        for i in range(20):
            await buf.push(batch(f"b{i}", n=14))  # ~1.5 KB frames: two per segment
        at_start = seg_files(tmp_path)
        got = [await buf.pop() for _ in range(20)]
        for b in got[:10]:
            buf.release(b)
        half = await settled(lambda: seg_files(tmp_path), len(at_start) - 5)
        for b in got[10:]:
            buf.release(b)
        done = await settled(lambda: seg_files(tmp_path), 1)
        await buf.close()
        return at_start, half, done

    at_start, half, done = run(body)
    assert len(at_start) == 10
    assert half == at_start[5:]
    assert done == [at_start[-1]]  # the segment being written stays (emptied frames and all)
    assert run(lambda: _reopen_tags(tmp_path)) == []


def test_a_replayed_backlog_counts_against_the_bound(tmp_path: Path) -> None:
    async def fill() -> None:
        buf = open_disk(tmp_path, max_bytes=5000)
        await buf.open()
        for i in range(3):
            await buf.push(batch(f"b{i}", n=10))  # ~1.2 KB each
        await buf.close()

    async def reopen() -> tuple[bool, bool]:
        buf = open_disk(tmp_path, max_bytes=3000)
        await buf.open()
        push = asyncio.create_task(buf.push(batch("new")))
        await asyncio.sleep(0.05)
        blocked = not push.done()
        buf.release(await buf.pop())
        buf.release(await buf.pop())
        await asyncio.wait_for(push, 1)
        await drain(buf)
        await buf.close()
        return blocked, push.done()

    run(fill)
    assert run(reopen) == (True, True)


def test_memory_stays_bounded_with_a_large_backlog(tmp_path: Path) -> None:
    """32 MB pushed while nothing is delivered: only the window stays in memory; every batch is still
    handed out intact and in order, read back from its segment."""
    value = b"v" * 1000
    count = 320

    async def body() -> tuple[int, int, int]:
        buf = open_disk(tmp_path, max_bytes=64 << 20)
        await buf.open()
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        for i in range(count):
            recs = [Record("logs", b"c%d" % (j % 5), b"%d:%d:" % (i, j) + value) for j in range(100)]
            await buf.push(RecordBatch(recs, None, "docker_json", i).sized())
        grown = tracemalloc.get_traced_memory()[0] - base
        peak_window = 0
        for i in range(count):
            b = await buf.pop()
            assert b.oldest_ns == i and b.records[99].value == b"%d:99:" % i + value
            buf.release(b)
            peak_window = max(peak_window, buf.memory_bytes)
        after = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        await buf.close()
        return grown, peak_window, after

    grown, peak_window, after = run(body)
    backlog = count * 100 * 1010
    assert backlog > 32_000_000
    assert grown < 12 << 20, f"{grown} bytes held in memory for a {backlog}-byte backlog"
    assert peak_window <= disk.CACHE_BYTES + disk.READ_AHEAD_BYTES + 200_000
    assert after < 12 << 20


def _random_walk(tmp_path: Path, seed: int, window: int, monkeypatch: pytest.MonkeyPatch) -> tuple[int, int]:
    """Random pushes, pops, out-of-order releases and reopens, with a window and a read-ahead small
    enough that batches spill to disk and are read back: every pop is the next batch in write order,
    every ack is its own batch's, and a reopen replays exactly what follows the delivered prefix, but for
    replayable batches handed out before anything wrote them (their sources read those again)."""
    monkeypatch.setattr(disk, "CACHE_BYTES", window)
    monkeypatch.setattr(disk, "READ_AHEAD_BYTES", 5000)
    rng = random.Random(seed)
    acks: list[str] = []
    unwritten: set[str] = set()  # handed out while only in memory
    handed_unwritten = [0]
    hand_out = disk.DiskBuffer._hand_out

    def recording(self: disk.DiskBuffer, frame: Any) -> RecordBatch:
        if not frame.length:
            unwritten.add(tag_of(frame.batch))
            handed_unwritten[0] += 1
        return hand_out(self, frame)

    monkeypatch.setattr(disk.DiskBuffer, "_hand_out", recording)

    async def body() -> int:
        written: list[str] = []  # every batch in write order
        events: dict[str, int] = {}
        this_run: set[str] = set()  # pushed since the last (re)open: their acks must come with them
        released: set[str] = set()
        next_pop = 0  # index into `written` of the next batch pop() must hand out
        buf = open_disk(tmp_path, segment_bytes=rng.choice([3000, 8000, 50000]), max_bytes=1 << 30)
        await buf.open()
        handed: list[RecordBatch] = []
        serial = 0
        reopens = 0
        for _ in range(400):
            op = rng.random()
            if op < 0.45:
                tag = f"s{seed}n{serial}"
                serial += 1
                events[tag] = rng.randint(1, 12)
                await buf.push(batch(tag, n=events[tag], size=rng.randint(20, 400), acks=acks,
                                     replayable=rng.random() < 0.7))  # unwritten until a later write
                written.append(tag)
                this_run.add(tag)
            elif op < 0.75 and next_pop < len(written):
                b = await asyncio.wait_for(buf.pop(), 5)
                assert tag_of(b) == written[next_pop]
                assert (b.ack is not None) == (tag_of(b) in this_run)
                next_pop += 1
                handed.append(b)
            elif op < 0.95 and handed:
                b = handed.pop(rng.randrange(len(handed)))
                buf.release(b)
                released.add(tag_of(b))
                if tag_of(b) in this_run:
                    assert acks[-1] == tag_of(b)
            elif op >= 0.95:
                await buf.close()
                reopens += 1
                prefix = 0
                while prefix < len(written) and written[prefix] in released:
                    prefix += 1
                written = [t for t in written[prefix:] if t not in unwritten]  # what must come again, in order
                unwritten.clear()
                released.clear()
                handed.clear()
                this_run.clear()
                next_pop = 0
                buf = open_disk(tmp_path, segment_bytes=rng.choice([3000, 8000, 50000]), max_bytes=1 << 30)
                await buf.open()
                assert buf.events == sum(events[t] for t in written)
        for b in handed:
            buf.release(b)
        rest = await drain(buf)
        assert [tag_of(b) for b in rest] == written[next_pop:]
        await buf.close()
        return reopens

    return run(body), handed_unwritten[0]


@pytest.mark.parametrize("seed", range(6))
def test_random_walk_matches_a_model_of_delivery_and_replay(tmp_path: Path, seed: int,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    reopens, _ = _random_walk(tmp_path, seed, 6000, monkeypatch)  # a small window: most batches spill
    assert reopens > 0


@pytest.mark.parametrize("seed", range(6, 9))
def test_random_walk_with_replayable_batches_handed_out_unwritten(tmp_path: Path, seed: int,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    reopens, unwritten = _random_walk(tmp_path, seed, 60000, monkeypatch)  # room in the window
    assert reopens > 0 and unwritten > 0


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs of the test's own (unmounted by path afterwards), to fill the disk for real."""
    if os.geteuid() != 0:
        pytest.fail("filling a filesystem needs root to mount a small tmpfs")
    where = tmp_path / "small"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "--lazy", str(where)], check=True)  # lazy: a failed test may hold files open


def test_a_full_disk_drops_counted_with_drop_newest(small_fs: Path) -> None:
    acks: list[str] = []
    metrics = ShipperMetrics()

    async def body() -> int:
        buf = DiskBuffer(BufferConfig(segment_bytes=8192, when_full="drop_newest"), small_fs, metrics)
        await buf.open()
        for i in range(60):  # ~2 KB frames: 120 KB does not fit in 64 KiB
            await buf.push(batch(f"b{i}", n=20, acks=acks))
        kept = buf.events
        out = await drain(buf)
        await buf.close()
        assert [tag_of(b) for b in out] == [f"b{i}" for i in range(len(out))]  # the ones before the disk filled
        return kept

    kept = run(body)
    dropped = metrics.registry.get_sample_value("hostwatch_logshipper_dropped_events_total",
                                                {"source": "docker_json", "reason": "buffer_write_error"})
    assert 0 < kept < 60 * 20 and dropped == 60 * 20 - kept
    assert len(acks) == 60  # dropped ones acked at once, kept ones on release


def test_a_full_disk_blocks_until_delivered_segments_are_deleted(small_fs: Path) -> None:
    async def body() -> tuple[bool, list[str]]:
        buf = DiskBuffer(BufferConfig(segment_bytes=8192, sync_interval=0.05), small_fs, ShipperMetrics())
        await buf.open()
        pushed = 0

        async def intake() -> None:
            nonlocal pushed
            for i in range(60):
                await buf.push(batch(f"b{i}", n=20))
                pushed += 1

        task = asyncio.create_task(intake())
        await asyncio.sleep(0.5)
        stuck = not task.done() and pushed < 60
        tags = []
        while not task.done() or buf.events:  # deliver: released segments are deleted, the write goes through
            b = await asyncio.wait_for(buf.pop(), 10)
            tags.append(tag_of(b))
            buf.release(b)
        await task
        await buf.close()
        return stuck, tags

    stuck, tags = run(body)
    assert stuck  # the disk was full: the push waited (backpressure), nothing was dropped
    assert tags == [f"b{i}" for i in range(60)]


def _count_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    reads: list[int] = []
    real = segments.read_frames

    def counting(*args: Any) -> Any:
        reads.append(1)
        return real(*args)

    monkeypatch.setattr(segments, "read_frames", counting)
    return reads


@pytest.mark.parametrize("keeping_up", [True, False])
def test_a_sink_that_keeps_up_gets_batches_from_the_window_not_from_disk(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keeping_up: bool) -> None:
    """Pushes beyond the window wait for the consumer while it only needs the CPU; while it waits for
    the broker they spill (and are read back). Either way every batch comes out once, in order."""
    monkeypatch.setattr(disk, "CACHE_BYTES", 3000)
    reads = _count_reads(monkeypatch)

    async def body() -> tuple[list[str], int]:
        buf = open_disk(tmp_path)
        buf.keep_in_window = lambda: keeping_up
        await buf.open()
        got: list[str] = []

        async def consumer() -> None:
            while len(got) < 30:
                await asyncio.sleep(0.005)  # slower than the intake
                b = await buf.pop()
                got.append(tag_of(b))
                buf.release(b)

        task = asyncio.create_task(consumer())
        for i in range(30):
            await buf.push(batch(f"b{i}", n=5))  # 500 bytes: six fill the window
        peak = buf.memory_bytes
        await asyncio.wait_for(task, 10)
        await buf.close()
        return got, peak

    got, peak = run(body)
    assert got == [f"b{i}" for i in range(30)]
    assert peak <= 3000
    assert (len(reads) == 0) == keeping_up


def test_a_push_waits_for_the_window_only_so_long(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(disk, "CACHE_BYTES", 1000)
    monkeypatch.setattr(disk, "WINDOW_WAIT", 0.2)

    async def body() -> tuple[float, int]:
        buf = open_disk(tmp_path)
        buf.keep_in_window = lambda: True  # but nobody pops
        await buf.open()
        await buf.push(batch("b0", n=8))
        started = asyncio.get_running_loop().time()
        await buf.push(batch("b1", n=8))
        waited = asyncio.get_running_loop().time() - started
        events = buf.events
        await buf.close()
        return waited, events

    waited, events = run(body)
    assert 0.15 < waited < 5 and events == 16


def test_behind_a_replay_or_a_large_spilled_backlog_pushes_do_not_wait(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Waiting for the window is for a short catch-up only: after a restart (replay first) or an outage
    (much spilled) a push goes to disk at once, or intake would crawl until the backlog is gone."""
    monkeypatch.setattr(disk, "CACHE_BYTES", 2000)
    monkeypatch.setattr(disk, "WINDOW_WAIT", 30.0)

    async def fill() -> None:
        buf = open_disk(tmp_path)
        await buf.open()
        for i in range(10):
            await buf.push(batch(f"old{i}", n=5))
        await buf.close()

    async def body() -> tuple[float, list[str]]:
        buf = open_disk(tmp_path)
        buf.keep_in_window = lambda: True
        await buf.open()
        started = asyncio.get_running_loop().time()
        for i in range(10):
            await buf.push(batch(f"new{i}", n=5))  # behind the replay, then behind its own spilled ones
        waited = asyncio.get_running_loop().time() - started
        tags = [tag_of(b) for b in await drain(buf)]
        await buf.close()
        return waited, tags

    run(fill)
    waited, tags = run(body)
    assert waited < 5
    assert tags == [f"old{i}" for i in range(10)] + [f"new{i}" for i in range(10)]
