"""Test sessions that share the runtime's host-wide resources: the bridge netns, the cgroup parents.

Several test sessions may run at once on one host (engineers side by side, CI jobs), and every
session's containers use the same bridge namespace (/run/netns/hostwatch) and cgroup parents. A
session that removed them at its end, because they were not there when it began, pulled the bridge
out from under another session's containers (seen as a `hostwatch run --net bridge` that failed to
start: "Cannot open network namespace"). So each session holds a shared flock on one lock file while
it runs; the first session in records which resources existed before it, and only the last one out
removes the rest.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

LOCK = Path("/run/lock/hostwatch-test-sessions.lock")


class HostSessions:
    def __init__(self, resources: Sequence[Path], remove: Callable[[Path], None], lock: Path = LOCK) -> None:
        self.resources = list(resources)
        self.remove = remove
        self.lock = lock
        self._fd = -1

    def join(self) -> None:
        """Become one of the running sessions; the first one records what already existed."""
        self.lock.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.lock, os.O_RDWR | os.O_CREAT, 0o600)
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    return  # others run: they recorded what existed before any of us
                except BlockingIOError:
                    time.sleep(0.05)  # the last one out is cleaning up, or the first one in recording
                    continue
            existed = sorted(str(p) for p in self.resources if p.exists())
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, json.dumps(existed).encode(), 0)
            fcntl.flock(self._fd, fcntl.LOCK_SH)
            return

    def leave(self) -> bool:
        """Stop being a running session; the last one removes what the sessions brought into being.
        True when this one was the last."""
        try:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            try:
                existed = set(json.loads(os.pread(self._fd, 1 << 20, 0) or b"[]"))
            except ValueError:
                return True  # a garbled record: removing nothing is the safe side
            for path in self.resources:
                if str(path) not in existed and path.exists():
                    self.remove(path)
            return True
        finally:
            os.close(self._fd)
            self._fd = -1
