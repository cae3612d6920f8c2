"""The docker_json source tails the bundled runtime's json-file logs while they rotate (max-size/max-file)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hostwatch.core.events import Batch, LogEvent
from hostwatch.core.paths import ENV_STATE_ROOT
from logshipper.config import DockerConfig
from logshipper.sources.docker_json import DockerJsonSource
from logshipper.telemetry import ShipperMetrics

from hostwatch_cli import HW

LINES = 20_000
PAUSE_EVERY = 250
# The first sleep lets the source find the container's (empty) log first: Docker's rotation deletes a file
# max-file rotations after it was made, read or not. Unpaced, this writer fills a 64 kB file in ~16 ms, so
# the 30 files kept were only ~0.5 s of slack, and a loaded CI machine twice stalled the reader past a
# removal (with 20 files, then with 30). Paced at 20 ms per 250 lines (~0.6 file), the slack is ~1.5 s.
WRITER = (f"sleep 1; i=0; while [ $i -lt {LINES} ]; do i=$((i+1)); echo line-$i; echo err-$i >&2; "
          f"[ $((i % {PAUSE_EVERY})) -eq 0 ] && sleep 0.02; done; true")
# ~55 files are written and ~25 removed while the source reads.
MAX_FILE = 30


def test_every_line_arrives_once_in_order_while_the_log_rotates(hw: HW, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_STATE_ROOT, str(hw.state_root))  # no glob given: the runtime's state root is tailed
    events: list[LogEvent] = []

    async def emit(batch: Batch) -> None:
        events.extend(batch.events)
        assert batch.ack is not None
        batch.ack()

    async def main() -> str:
        cfg = DockerConfig(scan_interval=0.1, poll_interval=0.01, checkpoint_interval=0.05)
        source = DockerJsonSource(cfg, ShipperMetrics(), max_message_bytes=1 << 20, state_dir=tmp_path / "state")
        await source.start(emit)
        try:
            await asyncio.to_thread(hw, "run", "--name", "rotating", "--log-opt", "max-size=64k", "--log-opt",
                                    f"max-file={MAX_FILE}", "--", "sh", "-c", WRITER, check=True, timeout=120)
            cid = hw.inspect("rotating")["Id"]
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while sum(e.container_id == cid for e in events) < 2 * LINES and loop.time() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # anything read twice would arrive by now
        finally:
            await source.stop()
        return str(cid)

    cid = asyncio.run(main())
    mine = [e for e in events if e.container_id == cid]
    out = [e.message for e in mine if e.stream == "stdout"]
    err = [e.message for e in mine if e.stream == "stderr"]
    assert out == [f"line-{i}" for i in range(1, LINES + 1)]
    assert err == [f"err-{i}" for i in range(1, LINES + 1)]
    assert len({e.event_id for e in mine}) == len(mine) == 2 * LINES
    files = {e.event_id.split(":")[0] for e in mine}
    assert len(files) > MAX_FILE + 10  # ~3 MB of log in 64 kB files: it followed rotations and deletions
    assert {Path(e.file_path or "").name.split(".")[-1] for e in mine} >= {"log", "1"}
    assert all(a.time_ns <= b.time_ns for a, b in zip(mine, mine[1:], strict=False))
