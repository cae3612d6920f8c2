"""The memory buffer's own promises (the shared ones are in test_buffer_contract.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from logshipper.buffer import MemoryBuffer, open_buffer
from logshipper.buffer.base import Record, RecordBatch
from logshipper.config import DEFAULT_MEMORY_BUFFER_MAX_BYTES, BufferConfig
from logshipper.telemetry import ShipperMetrics


def test_open_buffer_builds_a_memory_buffer_that_writes_no_files(tmp_path: Path) -> None:
    async def main() -> None:
        buf = open_buffer(BufferConfig(type="memory"), tmp_path, ShipperMetrics())
        assert isinstance(buf, MemoryBuffer)
        await buf.open()
        await buf.push(RecordBatch([Record("t", b"k", b"v" * 100)], None, "gelf", 1).sized())
        assert buf.events == 1 and buf.bytes == 1 + 1 + 100
        await buf.close()
    asyncio.run(main())
    assert list(tmp_path.iterdir()) == []


def test_memory_bound_defaults_to_its_own_default_not_the_disk_one() -> None:
    assert BufferConfig(type="memory").bound == DEFAULT_MEMORY_BUFFER_MAX_BYTES
    assert BufferConfig(type="memory", max_bytes=1234).bound == 1234
    assert BufferConfig(type="disk").bound > DEFAULT_MEMORY_BUFFER_MAX_BYTES


def test_unsized_batches_are_sized_for_the_bound(tmp_path: Path) -> None:
    async def main() -> list[bool]:
        buf = open_buffer(BufferConfig(type="memory", max_bytes=500, when_full="drop_newest"), tmp_path,
                          ShipperMetrics())
        await buf.open()
        taken = []
        for i in range(4):
            before = buf.events
            await buf.push(RecordBatch([Record("t", None, b"x" * 199)], None, "gelf", i))  # nbytes left 0
            taken.append(buf.events > before)
        await buf.close()
        return taken

    assert asyncio.run(main()) == [True, True, False, False]  # 2 x 200 bytes fit in 500, a third does not


def test_release_of_a_batch_never_handed_out_is_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    acks: list[int] = []

    async def main() -> int:
        buf = open_buffer(BufferConfig(type="memory"), tmp_path, ShipperMetrics())
        await buf.open()
        await buf.push(RecordBatch([Record("t", None, b"x")], lambda: acks.append(1), "gelf", 1).sized())
        buf.release(RecordBatch([Record("t", None, b"y")], lambda: acks.append(2), "gelf", 1).sized())
        events = buf.events
        await buf.close()
        return events

    assert asyncio.run(main()) == 1
    assert acks == [] and "did not hand out" in caplog.text
