"""Open file descriptors kept across scrapes and read with pread: opening a kernfs file is most of
what reading it costs (measured here: 2.3 us open/read/close against 0.5 us pread for a small cgroup
file), so a cgroup's interface files are opened once and re-read in place.

Descriptors are grouped by owner (a cgroup path) and closed when the owner vanishes (`sweep`), when a
read says the file is gone (ENODEV after the cgroup's rmdir, ESRCH after a process exit), or when the
cache is full (then the file is read the plain way: the cache never makes a read fail). A file the
kernel does not have (memory.peak before 5.19, ...) is remembered as missing for `missing_ttl`
seconds instead of being looked for on every scrape.

Holding a descriptor never blocks anything: rmdir of a cgroup succeeds with its files open, and the
next pread answers ENODEV.
"""

from __future__ import annotations

import errno
import os
import resource
import threading
import time
from collections.abc import Container

from exporter import _speedups

_O_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
# Nearly every cgroup and /proc file fits in one page; a longer one (a busy root cgroup.procs) is read
# on in big steps (a seq_file regenerates from the start at each offset: few steps, not many).
_CHUNK = 4096
_REST_CHUNK = 1 << 20
# Errors after which a cached descriptor is stale: the file (or its process) is gone.
_STALE = {errno.ENODEV, errno.ESRCH, errno.ENOENT, errno.EBADF}
DEFAULT_MISSING_TTL = 30.0
# Descriptors left to the rest of the process (sockets, logs, the shipper's files in `hostwatch up`).
FD_RESERVE = 1024
NR_OPEN = "/proc/sys/fs/nr_open"


def _nr_open() -> int:
    try:
        with open(NR_OPEN) as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1 << 20  # the kernel's default fs.nr_open


def raise_nofile(wanted: int) -> int:
    """Raise RLIMIT_NOFILE towards `wanted` (capped by fs.nr_open): the soft limit up to the hard one,
    and the hard one too where the process may (root). Returns the soft limit in force afterwards."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(wanted, _nr_open())
    if hard != resource.RLIM_INFINITY and target > hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, target))
            return target
        except (ValueError, OSError):
            target = hard
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
        except (ValueError, OSError):
            pass
    return soft


class FdCache:
    def __init__(self, limit: int | None = None, missing_ttl: float = DEFAULT_MISSING_TTL) -> None:
        """`limit`: the most descriptors to keep; None grows with need, raising RLIMIT_NOFILE as it goes."""
        self._grows = limit is None
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if limit is not None and limit + FD_RESERVE > soft:
            soft = raise_nofile(limit + FD_RESERVE)
            limit = min(limit, max(0, soft - FD_RESERVE))  # what the process may have
        self.limit = max(0, soft - FD_RESERVE) if limit is None else limit
        self.missing_ttl = missing_ttl
        self._fd: dict[str, int] = {}  # path -> fd: the one lookup a read makes
        self._owned: dict[str, list[str]] = {}  # owner -> its paths, to close them together
        self._missing: dict[str, float] = {}  # path -> monotonic time until which it counts as missing
        # read(owner, path): the whole file; OSError (FileNotFoundError for a vanished file) as a plain
        # read would. In C: what prefetch() read is handed out (and forgotten) by the next read of its
        # path, anything else is _read's (a Python method call per read was ~4 ms of a 1000-container scrape).
        self.read = _speedups.Taker(self._read, _CHUNK)
        self._lock = threading.Lock()  # sweep and close may come from another thread than reads

    @property
    def open_count(self) -> int:
        return len(self._fd)

    def prefetch(self) -> None:
        """Read every kept file now, in one tight loop of preads (exporter._speedups.pread_all: in C,
        the GIL let go for each 256 of them), for the scrape about to parse them: the kernel's work and
        Python's then do not keep evicting each other's caches file by file. A file that fails here is
        read again (and fails properly) when asked for."""
        self.read.ahead = _speedups.pread_all(self._fd, _CHUNK)

    def end_prefetch(self) -> None:
        self.read.ahead = {}

    def _read(self, owner: str, path: str) -> bytes:
        """read() of a file prefetch did not read whole: from its kept descriptor, or opened now."""
        try:
            fd = self._fd[path]
        except KeyError:
            return self._first_read(owner, path)
        try:
            data = os.pread(fd, _CHUNK, 0)
        except OSError as e:
            if e.errno not in _STALE:
                raise
            self._drop(owner, path)
            return self._first_read(owner, path)  # recreated under the same name, or gone (raises)
        return data if len(data) < _CHUNK else data + _rest(fd)

    def read_optional(self, owner: str, path: str) -> bytes | None:
        """Like read, but None for a file that does not exist (remembered for missing_ttl seconds)."""
        if path in self._fd:
            try:
                return self.read(owner, path)
            except FileNotFoundError:
                pass
        else:
            until = self._missing.get(path)
            if until is not None:
                if until > time.monotonic():
                    return None
                del self._missing[path]
            try:
                return self.read(owner, path)
            except FileNotFoundError:
                pass
        self._missing[path] = time.monotonic() + self.missing_ttl
        return None

    def _first_read(self, owner: str, path: str) -> bytes:
        if len(self._fd) >= self.limit and not self._grow():
            return _plain_read(path)
        try:
            fd = os.open(path, _O_FLAGS)
        except OSError as e:
            if e.errno != errno.EMFILE or not self._fd:
                raise
            # Out of descriptors after all (the rest of the process took them): keep what is kept.
            self.limit, self._grows = len(self._fd), False
            self._evict_one()
            return _plain_read(path)
        try:
            data = os.pread(fd, _CHUNK, 0)
            if len(data) == _CHUNK:
                data += _rest(fd)
        except OSError:
            os.close(fd)
            raise
        with self._lock:
            old = self._fd.get(path)
            self._fd[path] = fd
            owned = self._owned.get(owner)
            if owned is None:
                owned = self._owned[owner] = []
            if old is None:
                owned.append(path)
        if old is not None:
            os.close(old)
        return data

    def _grow(self) -> bool:
        """Room for more descriptors: double RLIMIT_NOFILE if the process may (False: it may not)."""
        if not self._grows:
            return False
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        new = raise_nofile(max(2 * soft, 2 * FD_RESERVE))
        self.limit = max(self.limit, new - FD_RESERVE)
        if new <= soft:
            self._grows = False  # at the ceiling: read the rest the plain way
        return len(self._fd) < self.limit

    def _evict_one(self) -> None:
        """Close one kept file, so a plain read has a descriptor to use."""
        with self._lock:
            path, fd = next(iter(self._fd.items()))
            del self._fd[path]
            for owned in self._owned.values():
                if path in owned:
                    owned.remove(path)
        os.close(fd)
        self.limit = len(self._fd)

    def _drop(self, owner: str, path: str) -> None:
        with self._lock:
            fd = self._fd.pop(path, None)
            owned = self._owned.get(owner)
            if owned is not None and path in owned:
                owned.remove(path)
        if fd is not None:
            os.close(fd)

    def forget(self, owner: str, keep: Container[str] = ()) -> None:
        """Close the owner's descriptors, except those of the paths in `keep`."""
        with self._lock:
            owned = self._owned.get(owner)
            if not owned:
                return
            fds = [self._fd.pop(p) for p in owned if p not in keep and p in self._fd]
            owned[:] = [p for p in owned if p in keep]
            if not owned:
                del self._owned[owner]
        for fd in fds:
            os.close(fd)

    def sweep(self, live: Container[str]) -> None:
        """Close every descriptor of owners not in `live` (cgroups that vanished since last time)."""
        with self._lock:
            fds: list[int] = []
            for owner in [o for o in self._owned if o not in live]:
                fds.extend(self._fd.pop(p) for p in self._owned.pop(owner) if p in self._fd)
            if len(self._missing) > 4 * (len(self._owned) + 64):
                now = time.monotonic()
                self._missing = {p: t for p, t in self._missing.items() if t > now}
        for fd in fds:
            os.close(fd)

    def owners(self) -> int:
        return len(self._owned)

    def count(self, owner: str) -> int:
        owned = self._owned.get(owner)
        return len(owned) if owned else 0

    def close(self) -> None:
        self.sweep(())


def _plain_read(path: str) -> bytes:
    fd = os.open(path, _O_FLAGS)
    try:
        data = os.pread(fd, _CHUNK, 0)
        return data if len(data) < _CHUNK else data + _rest(fd)
    finally:
        os.close(fd)


def _rest(fd: int) -> bytes:
    """The remainder of a file longer than one chunk."""
    chunks: list[bytes] = []
    offset = _CHUNK
    while True:
        more = os.pread(fd, _REST_CHUNK, offset)
        if not more:
            return b"".join(chunks)
        chunks.append(more)
        offset += len(more)
