"""Writable-layer usage: measured like du, off the scrape path, paced to a CPU share, forgotten when
nobody asks, and no work at all while idle."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from exporter.diskusage import BLOCK, DiskUsage, Usage, walk_usage


def _tree(root: Path) -> int:
    """A small layer; returns the bytes du would count (allocated blocks, hard links once)."""
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hostname").write_text("web\n")
    (root / "data.bin").write_bytes(os.urandom(100_000))
    os.link(root / "data.bin", root / "etc" / "again.bin")
    os.symlink("data.bin", root / "link")
    return sum(os.lstat(p).st_blocks for p in (root, root / "etc", root / "etc" / "hostname", root / "data.bin",
                                                root / "link")) * BLOCK


def test_walk_counts_like_du(tmp_path: Path) -> None:
    want = _tree(tmp_path / "layer")
    got = walk_usage(str(tmp_path / "layer"))
    assert got == Usage(want, 5)  # the hard link's second name counts once


def wait_until(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


def test_measured_in_the_background_and_never_on_the_caller(tmp_path: Path) -> None:
    layer = tmp_path / "layer"
    _tree(layer)
    started = threading.Event()
    release = threading.Event()

    def slow_walk(path: str, pace: Callable[[], None]) -> Usage:
        started.set()
        release.wait(10)
        return walk_usage(path, pace)

    du = DiskUsage(refresh_seconds=60, max_cpu=1.0, walk=slow_walk)
    try:
        assert du.get(str(layer)) is None  # nothing yet, and the call did not wait for the walk
        assert started.wait(10)
        assert du.get(str(layer)) is None
        release.set()
        assert wait_until(lambda: du.get(str(layer)) is not None)
        assert du.walks == 1
        du.get(str(layer))
        time.sleep(0.05)
        assert du.walks == 1  # fresh for refresh_seconds: not walked again
    finally:
        du.close()


def test_the_walk_is_paced_to_its_cpu_share() -> None:
    cpu = {"t": 0.0}
    slices = 20
    per_slice = 0.002  # each slice of the walk "uses" 2 ms of CPU

    span: list[float] = []

    def busy_walk(path: str, pace: Callable[[], None]) -> Usage:
        t0 = time.monotonic()
        for _ in range(slices):
            cpu["t"] += per_slice
            pace()
        span.append(time.monotonic() - t0)
        return Usage(1, 1)

    du = DiskUsage(refresh_seconds=60, max_cpu=0.1, walk=busy_walk, cpu_clock=lambda: cpu["t"])
    try:
        du.get("/layer")
        assert wait_until(lambda: du.walks == 1)
        # At 10% of a CPU, 40 ms of work is spread over at least 400 ms (less the last slice's, which
        # nothing follows): the walker sleeps the rest. A lower bound the pacing enforces, not a speed.
        assert span[0] >= slices * per_slice / 0.1 - per_slice / 0.1
        assert du.slept > 0
    finally:
        du.close()


def test_forgotten_when_nobody_asks_and_idle_means_no_work(tmp_path: Path) -> None:
    clock = {"t": 1000.0}
    walked: list[str] = []

    def walk(path: str, pace: Callable[[], None]) -> Usage:
        walked.append(path)
        return Usage(10, 1)

    du = DiskUsage(refresh_seconds=60, max_cpu=1.0, walk=walk, clock=lambda: clock["t"])
    try:
        du.get("/a")
        assert wait_until(lambda: du.get("/a") == Usage(10, 1))
        time.sleep(0.1)
        assert walked == ["/a"]  # nothing due: the thread sleeps
        clock["t"] += 121  # two refresh periods without a single get of /a
        du.get("/b")  # the walker wakes for /b, and forgets /a on the way
        assert wait_until(lambda: walked == ["/a", "/b"])
        assert wait_until(lambda: "/a" not in du._wanted)  # noqa: SLF001 - the forgetting is the point
        assert du.get("/a") is None
    finally:
        du.close()


def test_zero_refresh_never_walks() -> None:
    du = DiskUsage(refresh_seconds=0, max_cpu=1.0, walk=lambda p, pace: Usage(1, 1))
    assert du.get("/a") is None
    du.put("/a", Usage(5, 2))
    assert du.get("/a") == Usage(5, 2) and du.walks == 0
    du.close()
