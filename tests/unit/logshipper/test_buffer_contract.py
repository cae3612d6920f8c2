"""What every buffer (memory and disk) promises: order, the byte bound with block or drop_newest,
release in any order running each ack once, and the buffer gauges."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from logshipper.buffer import BufferClosed, open_buffer
from logshipper.buffer.base import Buffer, Record, RecordBatch
from logshipper.config import BufferConfig
from logshipper.telemetry import ShipperMetrics

KINDS = ["memory", "disk"]


def batch(n: int, tag: str, acks: list[str] | None = None, size: int = 100, source: str = "docker_json",
          oldest_ns: int = 1_000_000_000) -> RecordBatch:
    records = [Record("logs", f"c{i % 3}".encode(), f"{tag}:{i}:".encode().ljust(size, b"x")) for i in range(n)]
    ack = (lambda: acks.append(tag)) if acks is not None else None
    return RecordBatch(records, ack, source, oldest_ns).sized()


def run(kind: str, tmp_path: Path, body: Callable[[Buffer, ShipperMetrics], Awaitable[Any]], **cfg: Any) -> Any:
    async def main() -> Any:
        metrics = ShipperMetrics()
        buf = open_buffer(BufferConfig(type=kind, **cfg), tmp_path, metrics)  # type: ignore[arg-type]
        await buf.open()
        try:
            return await body(buf, metrics)
        finally:
            await buf.close()
    return asyncio.run(main())


def sample(metrics: ShipperMetrics, name: str, **labels: str) -> float:
    metrics.exposition()  # runs the gauges' refreshers
    value = metrics.registry.get_sample_value(name, labels)
    assert value is not None, name
    return value


@pytest.mark.parametrize("kind", KINDS)
def test_pop_hands_batches_out_in_push_order_and_release_runs_the_ack(kind: str, tmp_path: Path) -> None:
    acks: list[str] = []

    async def body(buf: Buffer, metrics: ShipperMetrics) -> None:
        for i in range(20):
            await buf.push(batch(5, f"b{i}", acks))
        assert buf.events == 100
        got = [await buf.pop() for _ in range(20)]
        assert [b.records[0].value.split(b":")[0].decode() for b in got] == [f"b{i}" for i in range(20)]
        assert got[3].records[4].key == b"c1" and got[3].records[4].value.startswith(b"b3:4:")
        assert acks == []  # handing out is not delivery
        for b in got:
            buf.release(b)
        assert acks == [f"b{i}" for i in range(20)]
        assert buf.events == 0 and buf.bytes == 0

    run(kind, tmp_path, body)


@pytest.mark.parametrize("kind", KINDS)
def test_out_of_order_release_acks_each_batch_once(kind: str, tmp_path: Path) -> None:
    acks: list[str] = []

    async def body(buf: Buffer, metrics: ShipperMetrics) -> None:
        for i in range(6):
            await buf.push(batch(3, f"b{i}", acks))
        got = [await buf.pop() for _ in range(6)]
        for i in (4, 1, 5, 0, 3, 2):
            buf.release(got[i])
        buf.release(got[2])  # a second release changes nothing
        assert acks == ["b4", "b1", "b5", "b0", "b3", "b2"]
        assert buf.events == 0

    run(kind, tmp_path, body)


@pytest.mark.parametrize("kind", KINDS)
def test_block_waits_for_release_to_free_room(kind: str, tmp_path: Path) -> None:
    async def body(buf: Buffer, metrics: ShipperMetrics) -> None:
        first = batch(10, "first", size=400)
        await buf.push(first)
        used = buf.bytes
        pending = asyncio.create_task(buf.push(batch(10, "second", size=400)))
        await asyncio.sleep(0.1)
        assert not pending.done()  # no room: the push waits (backpressure)
        assert buf.bytes == used
        out = await buf.pop()
        await asyncio.sleep(0.05)
        assert not pending.done()  # handing out frees nothing; delivery does
        buf.release(out)
        await asyncio.wait_for(pending, 2)
        assert (await buf.pop()).records[0].value.startswith(b"second:")

    run(kind, tmp_path, body, max_bytes=6000, when_full="block")


@pytest.mark.parametrize("kind", KINDS)
def test_drop_newest_drops_counts_and_acks(kind: str, tmp_path: Path) -> None:
    acks: list[str] = []

    async def body(buf: Buffer, metrics: ShipperMetrics) -> None:
        await buf.push(batch(10, "kept", acks, size=400))
        await asyncio.wait_for(buf.push(batch(7, "dropped", acks, size=400, source="gelf")), 1)
        assert acks == ["dropped"]  # acked, so its source moves on
        assert sample(metrics, "hostwatch_logshipper_dropped_events_total", source="gelf",
                      reason="buffer_full") == 7
        assert buf.events == 10
        assert (await buf.pop()).records[0].value.startswith(b"kept:")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(buf.pop(), 0.1)  # the dropped batch is not there

    run(kind, tmp_path, body, max_bytes=6000, when_full="drop_newest")


@pytest.mark.parametrize("kind", KINDS)
def test_a_batch_larger_than_the_bound_still_passes_an_empty_buffer(kind: str, tmp_path: Path) -> None:
    async def body(buf: Buffer, metrics: ShipperMetrics) -> int:
        await asyncio.wait_for(buf.push(batch(50, "huge", size=1000)), 1)
        out = await buf.pop()
        buf.release(out)
        return len(out.records)

    assert run(kind, tmp_path, body, max_bytes=1000) == 50


@pytest.mark.parametrize("kind", KINDS)
def test_gauges_report_events_bytes_bound_and_oldest_age(kind: str, tmp_path: Path) -> None:
    async def body(buf: Buffer, metrics: ShipperMetrics) -> None:
        now = 2_000_000_000_000_000_000
        await buf.push(batch(4, "a", oldest_ns=now - 30_000_000_000))
        await buf.push(batch(6, "b", oldest_ns=now - 10_000_000_000))
        assert sample(metrics, "hostwatch_logshipper_buffer_events") == 10
        assert sample(metrics, "hostwatch_logshipper_buffer_bytes") == buf.bytes > 1000
        assert sample(metrics, "hostwatch_logshipper_buffer_max_bytes") == 1 << 20
        assert buf.oldest_age_seconds(now) == pytest.approx(30.0)
        a = await buf.pop()
        assert buf.oldest_age_seconds(now) == pytest.approx(30.0)  # handed out, not delivered
        buf.release(a)
        assert buf.oldest_age_seconds(now) == pytest.approx(10.0)
        buf.release(await buf.pop())
        assert buf.oldest_age_seconds(now) == 0.0
        assert sample(metrics, "hostwatch_logshipper_buffer_events") == 0

    run(kind, tmp_path, body, max_bytes=1 << 20)


@pytest.mark.parametrize("kind", KINDS)
def test_an_empty_batch_is_acked_at_once(kind: str, tmp_path: Path) -> None:
    acks: list[str] = []

    async def body(buf: Buffer, metrics: ShipperMetrics) -> None:
        await buf.push(RecordBatch([], lambda: acks.append("empty"), "journald"))
        assert acks == ["empty"] and buf.events == 0

    run(kind, tmp_path, body)


@pytest.mark.parametrize("kind", KINDS)
def test_close_wakes_a_waiting_pop_and_push(kind: str, tmp_path: Path) -> None:
    async def main() -> None:
        buf = open_buffer(BufferConfig(type=kind, max_bytes=1000), tmp_path, ShipperMetrics())  # type: ignore[arg-type]
        await buf.open()
        await buf.push(batch(20, "full", size=100))
        await buf.pop()  # handed out, not released: its room stays taken
        pusher = asyncio.create_task(buf.push(batch(20, "waits", size=100)))  # no room
        waiting_pop = asyncio.create_task(buf.pop())  # nothing to hand out
        await asyncio.sleep(0.05)
        assert not pusher.done() and not waiting_pop.done()
        await buf.close()
        with pytest.raises(BufferClosed):
            await asyncio.wait_for(pusher, 1)
        with pytest.raises(BufferClosed):
            await asyncio.wait_for(waiting_pop, 1)
        with pytest.raises(BufferClosed):
            await buf.push(batch(1, "late"))
    asyncio.run(main())


@pytest.mark.parametrize("kind", KINDS)
def test_an_ack_that_raises_does_not_stop_release(kind: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    acks: list[str] = []

    def bad() -> None:
        raise RuntimeError("source bug")

    async def body(buf: Buffer, metrics: ShipperMetrics) -> None:
        await buf.push(RecordBatch(batch(2, "x").records, bad, "forward").sized())
        await buf.push(batch(2, "y", acks))
        buf.release(await buf.pop())
        buf.release(await buf.pop())
        assert acks == ["y"] and buf.events == 0

    run(kind, tmp_path, body)
    assert "ack raised" in caplog.text
