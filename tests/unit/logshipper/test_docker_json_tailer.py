"""The docker_json tailer on temp dirs: rotations, restarts from checkpoints, acks, deletion, backpressure."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from hostwatch.core.events import Batch, LogEvent
from hostwatch.core.timefmt import rfc3339_nano
from logshipper.codecs import dockerjson as dj
from logshipper.config import DockerConfig
from logshipper.sources.docker_json import CHECKPOINT_FILE, READ_AHEAD_BATCHES, DockerJsonSource
from logshipper.telemetry import ShipperMetrics

CID = "c0ffee" + "0" * 58
OTHER = "beef" + "1" * 60
BASE_NS = 1_764_576_000_000_000_000
READ_BYTES = 4096
TIMEOUT = 10.0


def run(test: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 30))


def entry(text: str, stream: str = "stdout", n: int = 0, newline: bool = True) -> bytes:
    log = text + ("\n" if newline else "")
    return json.dumps({"log": log, "stream": stream, "time": rfc3339_nano(ns=BASE_NS + n)}).encode() + b"\n"


def numbered(numbers: range) -> bytes:
    return b"".join(entry(f"line-{i}", n=i) for i in numbers)


def log_path(root: Path, cid: str = CID) -> Path:
    (root / cid).mkdir(parents=True, exist_ok=True)
    return root / cid / f"{cid}-json.log"


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def config(root: Path, **kw: Any) -> DockerConfig:
    values: dict[str, Any] = dict(logs_glob=(str(root / "*" / "*-json.log*"),), scan_interval=0.05,
                                  poll_interval=0.01, checkpoint_interval=0.01, remove_after=0.3,
                                  read_bytes=READ_BYTES, partial_timeout=0.2)
    return DockerConfig(**(values | kw))


class Collector:
    """The pipeline's side of `emit`: keeps batches; acks them at once unless told not to; can block."""

    def __init__(self, auto_ack: bool = True, block_after: int | None = None) -> None:
        self.batches: list[Batch] = []
        self.auto_ack = auto_ack
        self.block_after = block_after
        self.gate = asyncio.Event()

    async def __call__(self, batch: Batch) -> None:
        self.batches.append(batch)
        if self.block_after is not None and len(self.batches) > self.block_after:
            await self.gate.wait()
        if self.auto_ack and batch.ack is not None:
            batch.ack()

    @property
    def events(self) -> list[LogEvent]:
        return [e for b in self.batches for e in b.events]

    def messages(self) -> list[str]:
        return [e.message for e in self.events]


async def wait_for(cond: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


async def settle(seconds: float = 0.3) -> None:
    """Long enough for several polls and scans: what has not arrived by then is not coming."""
    await asyncio.sleep(seconds)


async def started(root: Path, collector: Collector, metrics: ShipperMetrics | None = None,
                  **kw: Any) -> DockerJsonSource:
    max_message_bytes = kw.pop("max_message_bytes", 1 << 20)
    source = DockerJsonSource(config(root, **kw), metrics or ShipperMetrics(), max_message_bytes=max_message_bytes,
                              state_dir=root.parent / "state")
    await source.start(collector)
    return source


def checkpoints(root: Path) -> dict[str, int]:
    path = root.parent / "state" / CHECKPOINT_FILE
    if not path.exists():
        return {}
    return {os.path.basename(c.path): c.offset for c in dj.load_checkpoints(path.read_bytes())}


def lines_of(n: int) -> list[str]:
    return [f"line-{i}" for i in range(n)]


def test_reads_every_line_with_its_position_and_follows_appends(tmp_path: Path) -> None:
    root = tmp_path / "containers"
    path = log_path(root)
    append(path, numbered(range(100)))

    async def main() -> None:
        got = Collector()
        source = await started(root, got)
        try:
            await wait_for(lambda: len(got.events) == 100, "the first lines")
            append(path, numbered(range(100, 150)) + entry("to stderr", "stderr", n=150))
            await wait_for(lambda: len(got.events) == 151, "appended lines")
        finally:
            await source.stop()
        assert got.messages() == [*lines_of(150), "to stderr"]
        data = path.read_bytes()
        fp = dj.fingerprint(data, 4096)
        starts = [0]
        for raw in data.splitlines(keepends=True)[:-1]:
            starts.append(starts[-1] + len(raw))
        assert [e.offset for e in got.events] == starts
        assert [e.event_id for e in got.events] == [f"{fp}:{o}" for o in starts]
        assert [e.time_ns for e in got.events] == [BASE_NS + i for i in range(151)]
        assert {(e.container_id, e.file_path, e.input_type) for e in got.events} == {(CID, str(path), "docker_json")}
        assert got.events[-1].stream == "stderr" and got.events[0].stream == "stdout"
        assert {b.source for b in got.batches} == {"docker_json"}
        assert checkpoints(root) == {path.name: len(data)}

    run(main)


def test_rename_rotation_mid_file_reads_the_rest_of_the_old_file_first(tmp_path: Path) -> None:
    root = tmp_path / "containers"
    path = log_path(root)
    append(path, numbered(range(300)))

    async def main() -> None:
        got = Collector(block_after=1)
        source = await started(root, got)
        try:
            await wait_for(lambda: len(got.batches) == 2, "the source to block in emit")
            assert len(got.events) < 300  # it is mid-file
            os.rename(path, f"{path}.1")  # as Docker's and the runtime's json-file driver rotate
            append(path, numbered(range(300, 400)))
            os.rename(f"{path}.1", f"{path}.2")
            os.rename(path, f"{path}.1")
            append(path, numbered(range(400, 500)))
            got.gate.set()
            await wait_for(lambda: len(got.events) >= 500, "every line")
            await settle()
        finally:
            await source.stop()
        assert got.messages() == lines_of(500)
        before = len(got.batches[0].events) + len(got.batches[1].events)  # read before the rotation
        assert {e.file_path for e in got.events[:before]} == {str(path)}
        assert {e.file_path for e in got.events[before:300]} == {f"{path}.2"}  # where it is by then
        assert checkpoints(root) == {name: (path.parent / name).stat().st_size
                                     for name in (path.name, path.name + ".1", path.name + ".2")}

    run(main)


def test_copytruncate_mid_file_reads_the_copy_then_the_truncated_file_from_zero(tmp_path: Path) -> None:
    root = tmp_path / "containers"
    path = log_path(root)
    append(path, numbered(range(300)))

    async def main() -> None:
        got = Collector(block_after=1)
        source = await started(root, got)
        try:
            await wait_for(lambda: len(got.batches) == 2, "the source to block in emit")
            read_to = max(e.offset for e in got.events)
            shutil.copyfile(path, f"{path}.1")  # logrotate copytruncate: copy, then truncate in place
            os.truncate(path, 0)
            append(path, numbered(range(300, 600)))  # refilled past the offset the tail had reached
            assert path.stat().st_size > read_to
            got.gate.set()
            await wait_for(lambda: len(got.events) >= 600, "every line")
            await settle()
        finally:
            await source.stop()
        assert got.messages() == lines_of(600)
        assert {e.file_path for e in got.events[300:]} == {str(path)}
        assert got.events[300].offset == 0
        old_fp = dj.fingerprint(Path(f"{path}.1").read_bytes(), 4096)
        assert {e.event_id.split(":")[0] for e in got.events[:300]} == {old_fp}
        assert checkpoints(root) == {path.name + ".1": Path(f"{path}.1").stat().st_size,
                                     path.name: path.stat().st_size}

    run(main)


def test_copytruncate_while_stopped_resumes_in_the_copy(tmp_path: Path) -> None:
    root = tmp_path / "containers"
    path = log_path(root)
    append(path, numbered(range(100)))

    async def main() -> None:
        first = Collector()
        source = await started(root, first)
        await wait_for(lambda: len(first.events) == 100, "the first run")
        await source.stop()
        append(path, numbered(range(100, 150)))  # written while the shipper is down, then rotated away
        shutil.copyfile(path, f"{path}.1")
        os.truncate(path, 0)
        append(path, numbered(range(150, 200)))
        second = Collector()
        source = await started(root, second)
        try:
            await wait_for(lambda: len(second.events) >= 100, "the rest")
            await settle()
        finally:
            await source.stop()
        assert first.messages() == lines_of(100)
        assert second.messages() == lines_of(200)[100:]

    run(main)


def test_restart_resumes_exactly_at_the_committed_offset(tmp_path: Path) -> None:
    root = tmp_path / "containers"
    path = log_path(root)
    append(path, numbered(range(200)))

    async def main() -> None:
        first = Collector()
        source = await started(root, first)
        await wait_for(lambda: len(first.events) == 200, "the first run")
        await source.stop()
        append(path, numbered(range(200, 300)))
        os.rename(path, f"{path}.1")
        append(path, numbered(range(300, 350)))
        second = Collector()
        source = await started(root, second)
        try:
            await wait_for(lambda: len(second.events) >= 150, "the new lines")
            await settle()
        finally:
            await source.stop()
        assert first.messages() == lines_of(200)
        assert second.messages() == lines_of(350)[200:]  # nothing twice, nothing lost

    run(main)


def test_unacked_lines_are_read_again_with_the_same_event_ids(tmp_path: Path) -> None:
    root = tmp_path / "containers"
    path = log_path(root)
    append(path, numbered(range(300)))

    async def main() -> None:
        first = Collector(auto_ack=False)
        source = await started(root, first)
        await wait_for(lambda: len(first.events) == 300, "the first run")
        assert len(first.batches) > 2
        first.batches[0].ack()  # only the first batch was delivered
        await source.stop()
        delivered = len(first.batches[0].events)
        second = Collector()
        source = await started(root, second)
        try:
            await wait_for(lambda: len(second.events) >= 300 - delivered, "the undelivered lines")
            await settle()
        finally:
            await source.stop()
        again = [(e.message, e.event_id, e.offset) for e in first.events[delivered:]]
        assert [(e.message, e.event_id, e.offset) for e in second.events] == again

    run(main)


def test_out_of_order_acks_commit_in_read_order(tmp_path: Path) -> None:
    root = tmp_path / "containers"
    path = log_path(root)
    append(path, numbered(range(300)))

    async def main() -> None:
        got = Collector(auto_ack=False)
        source = await started(root, got)
        try:
            await wait_for(lambda: len(got.events) == 300, "every line")
            b1, b2, b3 = got.batches[:3]
            end = [max(e.offset for e in b.events) for b in (b1, b2, b3)]
            b3.ack()
            b2.ack()
            await settle(0.1)
            assert checkpoints(root).get(path.name, 0) == 0  # the first batch is not delivered yet
            b1.ack()
            line_len = {len(raw) for raw in path.read_bytes().splitlines(keepends=True)}
            await wait_for(lambda: checkpoints(root).get(path.name, 0) - end[2] in line_len, "the commit")
        finally:
            await source.stop()
        assert end[0] < end[1] < end[2]

    run(main)


def _open_fds_on(path: Path) -> int:
    n = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith(str(path)):
                n += 1
        except OSError:
            pass
    return n


def test_a_deleted_file_is_read_to_its_end_then_released(tmp_path: Path) -> None:
    root = tmp_path / "containers"
    path = log_path(root)
    append(path, numbered(range(300)))

    async def main() -> None:
        got = Collector(block_after=1)
        source = await started(root, got)
        try:
            await wait_for(lambda: len(got.batches) == 2, "the source to block in emit")
            assert _open_fds_on(path) == 1
            shutil.rmtree(root / CID)  # the container is removed while its log is half read
            got.gate.set()
            await wait_for(lambda: len(got.events) >= 300, "the deleted file's lines")
            await wait_for(lambda: not source.groups, "the file to be released", timeout=5)
            assert _open_fds_on(path) == 0
        finally:
            await source.stop()
        assert got.messages() == lines_of(300)
        assert checkpoints(root) == {}  # nothing left to resume

    run(main)


def test_new_containers_are_discovered(tmp_path: Path) -> None:
    root = tmp_path / "containers"
    root.mkdir()

    async def main() -> None:
        got = Collector()
        source = await started(root, got)
        try:
            await settle(0.1)
            append(log_path(root, CID), numbered(range(10)))
            await wait_for(lambda: len(got.events) == 10, "the first container")
            append(log_path(root, OTHER), entry("other", n=99))
            await wait_for(lambda: len(got.events) == 11, "the second container")
        finally:
            await source.stop()
        assert got.events[-1].container_id == OTHER and got.events[-1].message == "other"
        assert {e.container_id for e in got.events[:10]} == {CID}

    run(main)


def _lag(metrics: ShipperMetrics, path: Path) -> float:
    for line in metrics.exposition().decode().splitlines():
        if line.startswith("hostwatch_logshipper_checkpoint_lag_bytes{") and f'path="{path}"' in line:
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no checkpoint lag for {path}")


def test_a_blocking_emit_stops_reading(tmp_path: Path) -> None:
    root = tmp_path / "containers"
    paths = [log_path(root, CID), log_path(root, OTHER)]
    for p in paths:
        append(p, numbered(range(1000)))
    metrics = ShipperMetrics()

    async def main() -> None:
        got = Collector(block_after=0)  # the buffer is full from the start
        source = await started(root, got, metrics)
        try:
            await settle(0.5)
            assert len(got.batches) == READ_AHEAD_BATCHES  # then every reader waits its turn
            read = sum(_lag(metrics, p) for p in paths)  # read and not committed: what is in hand
            assert 0 < read <= READ_AHEAD_BATCHES * READ_BYTES
            got.gate.set()
            await wait_for(lambda: len(got.events) == 2000, "every line once the buffer drains")
            await wait_for(lambda: sum(_lag(metrics, p) for p in paths) == 0, "the commits")
        finally:
            await source.stop()
        for cid in (CID, OTHER):
            assert [e.message for e in got.events if e.container_id == cid] == lines_of(1000)

    run(main)


def test_partial_line_across_a_rotation_and_a_restart(tmp_path: Path) -> None:
    root = tmp_path / "containers"
    path = log_path(root)
    piece = "x" * 16384
    append(path, entry("before", n=0) + entry(piece, n=1, newline=False))

    async def main() -> None:
        first = Collector()
        source = await started(root, first, partial_timeout=60)
        await wait_for(lambda: len(first.events) == 1, "the complete line")
        await settle(0.2)
        await source.stop()
        assert checkpoints(root) == {path.name: len(entry("before", n=0))}  # held at the first piece
        os.rename(path, f"{path}.1")
        append(path, entry("y" * 10, n=2) + entry("after", n=3))
        second = Collector()
        source = await started(root, second, partial_timeout=60)
        try:
            await wait_for(lambda: len(second.events) == 2, "the joined line")
            await settle()
        finally:
            await source.stop()
        joined, after = second.events
        assert (joined.message, joined.file_path, joined.time_ns) == (piece + "y" * 10, f"{path}.1", BASE_NS + 1)
        fp = dj.fingerprint(Path(f"{path}.1").read_bytes(), 4096)
        assert joined.event_id == f"{fp}:{len(entry('before', n=0))}"
        assert after.message == "after" and len(second.events) == 2

    run(main)


def test_an_unfinished_partial_line_is_shipped_after_the_timeout(tmp_path: Path) -> None:
    root = tmp_path / "containers"
    path = log_path(root)
    append(path, entry("complete", n=0) + entry("tail without newline", n=1, newline=False))

    async def main() -> None:
        got = Collector()
        source = await started(root, got, partial_timeout=0.2)
        try:
            await wait_for(lambda: len(got.events) == 2, "the flushed partial")
        finally:
            await source.stop()
        assert got.messages() == ["complete", "tail without newline"]
        assert checkpoints(root) == {path.name: path.stat().st_size}

    run(main)


def test_bad_and_oversized_lines_are_counted_and_skipped(tmp_path: Path) -> None:
    root = tmp_path / "containers"
    path = log_path(root)
    huge = b'{"log":"' + b"h" * 70_000 + b'\\n","stream":"stdout","time":"2026-01-01T00:00:00Z"}\n'
    append(path, entry("one", n=1) + b"garbage\n" + b'{"log":"\xff\\n","time":"2026-01-01T00:00:00Z"}\n'
           + entry("m" * 200, n=2) + huge + entry("two", n=3))
    metrics = ShipperMetrics()

    async def main() -> None:
        got = Collector()
        source = await started(root, got, metrics, max_message_bytes=100)
        try:
            await wait_for(lambda: len(got.events) == 2, "the good lines")
            await settle()
        finally:
            await source.stop()
        assert got.messages() == ["one", "two"]
        text = metrics.exposition().decode()
        for reason, n in ((dj.INVALID_JSON, 1), (dj.INVALID_UTF8, 1), (dj.OVERSIZED, 2)):
            assert (f'hostwatch_logshipper_rejected_events_total{{reason="{reason}",source="docker_json"}} {n}.0'
                    in text), reason
        assert checkpoints(root) == {path.name: path.stat().st_size}

    run(main)


def test_a_file_is_read_once_its_first_line_is_complete(tmp_path: Path) -> None:
    root = tmp_path / "containers"
    path = log_path(root)
    first = entry("first", n=0)
    append(path, first[:20])

    async def main() -> None:
        got = Collector()
        source = await started(root, got)
        try:
            await settle()
            assert not got.events  # not fingerprinted yet
            append(path, first[20:] + entry("second", n=1))
            await wait_for(lambda: len(got.events) == 2, "the lines")
        finally:
            await source.stop()
        assert got.messages() == ["first", "second"]

    run(main)


def test_an_unreadable_checkpoint_is_set_aside(tmp_path: Path) -> None:
    root = tmp_path / "containers"
    append(log_path(root), numbered(range(5)))
    state = tmp_path / "state"
    state.mkdir()
    (state / CHECKPOINT_FILE).write_bytes(b"{not json")

    async def main() -> None:
        got = Collector()
        source = await started(root, got)
        try:
            await wait_for(lambda: len(got.events) == 5, "the lines")
        finally:
            await source.stop()
        assert got.messages() == lines_of(5)
        assert (state / "checkpoints.corrupt").read_bytes() == b"{not json"

    run(main)


def test_a_file_truncated_in_place_is_read_again_from_zero(tmp_path: Path) -> None:
    """Docker's json-file with max-file=1 truncates instead of renaming: the new content is a new file."""
    root = tmp_path / "containers"
    path = log_path(root)
    append(path, numbered(range(50)))

    async def main() -> None:
        got = Collector()
        source = await started(root, got)
        try:
            await wait_for(lambda: len(got.events) == 50, "the first content")
            os.truncate(path, 0)
            append(path, numbered(range(50, 60)))
            await wait_for(lambda: len(got.events) >= 60, "the new content")
            await settle()
        finally:
            await source.stop()
        assert got.messages() == lines_of(60)
        assert got.events[50].offset == 0 and got.events[50].event_id != got.events[0].event_id
        assert checkpoints(root) == {path.name: path.stat().st_size}

    run(main)


def test_an_emit_that_fails_is_retried_from_the_last_delivered_line(tmp_path: Path) -> None:
    root = tmp_path / "containers"
    path = log_path(root)
    append(path, numbered(range(300)))
    calls: list[int] = []
    got = Collector()

    async def flaky(batch: Batch) -> None:
        calls.append(len(batch.events))
        if len(calls) == 3:
            raise RuntimeError("buffer closed")
        await got(batch)

    async def main() -> None:
        source = DockerJsonSource(config(root), ShipperMetrics(), max_message_bytes=1 << 20,
                                  state_dir=tmp_path / "state")
        await source.start(flaky)
        try:
            await wait_for(lambda: got.messages()[-1:] == ["line-299"], "every line after the failure")
            await settle()
        finally:
            await source.stop()
        messages = got.messages()
        assert sorted(set(messages), key=lambda m: int(m[5:])) == lines_of(300)  # nothing lost
        delivered = sum(calls[:2])
        assert messages[:delivered] == lines_of(delivered)  # then what the failed batch had, read again
        assert messages[delivered:] == lines_of(300)[delivered:]
        assert checkpoints(root) == {path.name: path.stat().st_size}

    run(main)


def test_acks_after_stop_still_advance_the_checkpoint(tmp_path: Path) -> None:
    """The pipeline stops its sources first, then drains the buffer: those acks must still be persisted."""
    root = tmp_path / "containers"
    path = log_path(root)
    append(path, numbered(range(300)))

    async def main() -> None:
        got = Collector(auto_ack=False)
        source = await started(root, got)
        await wait_for(lambda: len(got.events) == 300, "every line")
        await source.stop()
        assert checkpoints(root) == {}
        for batch in got.batches:
            assert batch.ack is not None
            batch.ack()
        await wait_for(lambda: checkpoints(root) == {path.name: path.stat().st_size}, "the late commit")

    run(main)
