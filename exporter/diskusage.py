"""How much a directory holds (a container's writable layer: container_fs_usage_bytes), measured off
the scrape path at a bounded cost.

A scrape only looks values up (`get`); one background thread walks the directories asked for, each at
most once per `refresh_seconds` (cAdvisor re-measures once a minute too), pacing itself so the walk
uses at most `max_cpu` of one CPU. It counts what `du` counts: allocated blocks (st_blocks) and
inodes, hard links once, without crossing into other filesystems. A directory nobody asked for in two
refresh periods is forgotten, and with nothing left to measure the thread sleeps until asked: no
housekeeping while idle.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("hostwatch.exporter")

BLOCK = 512  # st_blocks counts 512-byte units
# Entries walked between two looks at the CPU budget.
_SLICE = 256


@dataclass(frozen=True, slots=True)
class Usage:
    bytes: int
    inodes: int


def walk_usage(path: str, pace: Callable[[], None] = lambda: None) -> Usage:
    """du-like usage of `path`; `pace` is called every few hundred entries (where the walker may
    sleep). OSError when `path` itself cannot be read."""
    top = os.lstat(path)
    dev = top.st_dev
    seen: set[int] = set()
    total = top.st_blocks * BLOCK
    inodes = 1
    stack = [path]
    n = 0
    while stack:
        d = stack.pop()
        try:
            it = os.scandir(d)
        except OSError:
            continue  # removed meanwhile, or unreadable: count what is there
        with it:
            for e in it:
                try:
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                if st.st_dev != dev:
                    continue  # a mount point inside the layer: another filesystem
                if st.st_nlink > 1 and not e.is_dir(follow_symlinks=False):
                    if st.st_ino in seen:
                        continue
                    seen.add(st.st_ino)
                total += st.st_blocks * BLOCK
                inodes += 1
                if e.is_dir(follow_symlinks=False):
                    stack.append(e.path)
                n += 1
                if n % _SLICE == 0:
                    pace()
    return Usage(total, inodes)


class DiskUsage:
    def __init__(self, refresh_seconds: float, max_cpu: float,
                 walk: Callable[[str, Callable[[], None]], Usage] = walk_usage,
                 cpu_clock: Callable[[], float] = time.thread_time,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`walk(path, pace)` measures; `cpu_clock` (the walking thread's CPU time) and `clock` pace it."""
        self.refresh_seconds = refresh_seconds
        self.max_cpu = max(0.001, min(1.0, max_cpu))
        self._walk = walk
        self._cpu_clock = cpu_clock
        self._clock = clock
        self.slept = 0.0  # seconds the walker paused to stay within max_cpu
        self._values: dict[str, Usage] = {}
        self._measured: dict[str, float] = {}  # path -> monotonic time of its last measurement
        self._wanted: dict[str, float] = {}  # path -> monotonic time it was last asked for
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.walks = 0  # measurements made (for tests and telemetry)
        self.walk_seconds = 0.0  # CPU seconds spent measuring

    def get(self, path: str) -> Usage | None:
        """The last measurement of `path` (None until the first one is done). Never blocks on a walk."""
        now = self._clock()
        value = self._values.get(path)
        with self._cond:
            first = path not in self._wanted
            self._wanted[path] = now
            if self.refresh_seconds > 0 and (first or now - self._measured.get(path, -1e18) > self.refresh_seconds):
                self._start()
                self._cond.notify()
        return value

    def put(self, path: str, usage: Usage) -> None:
        """Record a measurement made elsewhere (tests; a runtime that knows its layer's size)."""
        with self._cond:
            self._values[path] = usage
            self._measured[path] = self._clock()
            self._wanted.setdefault(path, self._clock())

    def _start(self) -> None:
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._run, name="hostwatch-disk-usage", daemon=True)
            self._thread.start()

    def _next(self) -> tuple[str | None, float]:
        """(the stalest due path, or None; seconds until the next one is due). Forgets the paths
        nobody asked for in two refresh periods."""
        now = self._clock()
        for path in [p for p, t in self._wanted.items() if now - t > 2 * self.refresh_seconds]:
            del self._wanted[path]
            self._values.pop(path, None)
            self._measured.pop(path, None)
        best = None
        wait = float("inf")
        for path in self._wanted:
            due = self._measured.get(path, -1e18) + self.refresh_seconds
            if due <= now and (best is None or due < self._measured.get(best, -1e18) + self.refresh_seconds):
                best = path
            wait = min(wait, due - now)
        return best, max(0.0, wait)

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return
                    path, wait = self._next()
                    if path is not None:
                        break
                    self._cond.wait(None if wait == float("inf") else wait)
            self._measure(path)

    def _measure(self, path: str) -> None:
        wall0, cpu0 = self._clock(), self._cpu_clock()

        def pace() -> None:
            # Sleep as long as it takes to bring this walk's CPU share down to max_cpu.
            used = self._cpu_clock() - cpu0
            owed = used / self.max_cpu - (self._clock() - wall0)
            if owed > 0:
                self.slept += owed
                with self._cond:
                    if not self._closed:
                        self._cond.wait(owed)

        try:
            usage: Usage | None = self._walk(path, pace)
        except OSError as e:
            log.debug("disk usage of %s: %s", path, e)
            usage = None
        with self._cond:
            self.walks += 1
            self.walk_seconds += self._cpu_clock() - cpu0
            self._measured[path] = self._clock()
            if usage is None:
                self._values.pop(path, None)
            elif path in self._wanted:
                self._values[path] = usage

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
