"""The cgroup interface shared by the v1 and v2 backends, and the plumbing both use.

`Cgroups` is the whole interface callers see. `TreeCgroups` implements the verbs that are the same
on both versions (a cgroup is one directory per hierarchy; processes are listed in `cgroup.procs`);
the backends add creation, limits and OOM accounting.

Kernel interface files are written with one `write(2)` and without `O_CREAT`: a missing file means
the controller is not enabled there, which is an error, not a file to create. The only operations
where cgroupfs differs from an ordinary directory, `mkdir` (the kernel populates the interface
files) and `rmdir` (the kernel removes a directory that still lists files), go through `CgroupFS`,
so tests can point a backend at a temp tree with a simulated kernel (see `runtime.cgroups.testing`).
"""

from __future__ import annotations

import os
import signal
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from hostwatch.core.cgroupfs import CPU_PERIOD_US, CgroupError, parse_cpuset, parse_flat_keyed, parse_procs
from hostwatch.core.cgroupfs.files import CPUSET_CPUS, PIDS_MAX, PROCS
from hostwatch.core.cgroupfs.values import MIN_CPU_QUOTA_US
from hostwatch.core.containers import Limits

REMOVE_TIMEOUT = 2.0  # seconds remove() waits for killed processes to leave the cgroup
POLL_INTERVAL = 0.02


class DeviceRule(Protocol):
    """One device access rule (runtime.devices.Rule)."""

    @property
    def allow(self) -> bool: ...
    @property
    def type(self) -> str: ...  # "a", "b" or "c"
    @property
    def major(self) -> int: ...  # -1: any
    @property
    def minor(self) -> int: ...
    @property
    def access(self) -> str: ...  # of "rwm"

    def v1(self) -> str: ...


class Cgroups(ABC):
    """One container cgroup interface over cgroup v1 (one tree per controller) or v2 (one tree).

    `rel` is the cgroup path relative to each hierarchy's root, e.g. "/hostwatch/<64 hex>".
    """

    version: int

    @abstractmethod
    def create(self, rel: str, limits: Limits) -> None:
        """Create `rel` (and missing parents) in every hierarchy and apply `limits`.

        An already existing directory is reused. On failure everything this call created is
        removed again and CgroupError is raised.
        """

    @abstractmethod
    def add_process(self, rel: str, pid: int) -> None:
        """Move `pid` (the whole thread group) into `rel` in every hierarchy."""

    @abstractmethod
    def join(self, rel: str) -> None:
        """Move the calling process into `rel` in every hierarchy. The caller must be single-threaded
        (a freshly forked child): on v1 it moves itself as a thread, which skips the kernel's global
        threadgroup lock and so the RCU grace period (~15 ms) a pid written from outside waits for."""

    @abstractmethod
    def pids(self, rel: str) -> list[int]:
        """Sorted PIDs in `rel` and its descendants, in any hierarchy; [] when it does not exist."""

    @abstractmethod
    def restrict_devices(self, rel: str, rules: Sequence[DeviceRule]) -> bool:
        """Apply device access rules (in order) to `rel`; False when this host cannot enforce them."""

    @abstractmethod
    def oom_killed(self, rel: str) -> bool:
        """True when the kernel OOM killer has killed a process of `rel`."""

    @abstractmethod
    def kill_all(self, rel: str, sig: int) -> None:
        """Send `sig` to every process in `rel` and its descendants."""

    @abstractmethod
    def remove(self, rel: str) -> None:
        """SIGKILL what is left, wait for it to leave, rmdir `rel` (and its descendants) everywhere.

        Parents such as the shared "/hostwatch" are never removed. A cgroup already gone is fine.
        """

    @abstractmethod
    def exists(self, rel: str) -> bool:
        """True when `rel` exists in at least one hierarchy."""

    @abstractmethod
    def paths(self, rel: str) -> dict[str, Path]:
        """Directory of `rel` per hierarchy: v1 per controller name, v2 {"unified": dir}."""


class CgroupFS:
    """Directory creation/removal on cgroupfs; replaced by a simulated kernel in tests."""

    def mkdir(self, path: Path) -> None:
        os.mkdir(path)

    def rmdir(self, path: Path) -> None:
        os.rmdir(path)


@dataclass(frozen=True)
class Setting:
    """One interface file write that applies a limit."""

    controller: str
    file: str
    value: str
    optional: bool = False  # only written when the file exists (e.g. memsw / swap accounting)


def split_rel(rel: str) -> list[str]:
    """Components of a cgroup path like "/hostwatch/<id>"; rejects the root and any escape."""
    if not isinstance(rel, str) or not rel.startswith("/"):
        raise CgroupError(f"invalid cgroup path {rel!r}: must be absolute, like /hostwatch/<id>")
    parts = [p for p in rel.split("/") if p]
    if not parts:
        raise CgroupError("invalid cgroup path '/': refusing to operate on the root cgroup")
    for part in parts:
        if part in (".", "..") or "\0" in part or "\n" in part:
            raise CgroupError(f"invalid cgroup path {rel!r}")
    return parts


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


def read_raw(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise CgroupError(f"cannot read {path}: {_reason(e)}") from e


def read_file(path: Path) -> str:
    return read_raw(path).decode("ascii", errors="replace")


def write_file(path: Path, value: str) -> None:
    """One write(2) of `value` into an existing interface file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    except FileNotFoundError as e:
        raise CgroupError(f"cannot write {value!r} to {path}: no such file (controller not enabled?)") from e
    except OSError as e:
        raise CgroupError(f"cannot write {value!r} to {path}: {_reason(e)}") from e
    try:
        os.write(fd, value.encode())
    except OSError as e:
        raise CgroupError(f"cannot write {value!r} to {path}: {_reason(e)}") from e
    finally:
        os.close(fd)


def read_tokens(path: Path) -> list[str]:
    """Whitespace-separated words of a file such as cgroup.controllers; [] when missing."""
    try:
        return read_file(path).split()
    except CgroupError:
        return []


def read_keyed(path: Path) -> dict[str, int]:
    """A flat-keyed file ("key value" per line: memory.events, memory.oom_control); {} when missing."""
    try:
        return parse_flat_keyed(read_raw(path))
    except CgroupError:
        return {}


def read_procs(path: Path) -> set[int]:
    """PIDs listed in a cgroup.procs file; empty when the cgroup is gone."""
    try:
        return set(parse_procs(read_raw(path)))
    except CgroupError:
        return set()


def walk_dirs(top: Path) -> Iterator[Path]:
    """`top` and every cgroup directory below it, deepest first (rmdir order)."""
    for dirpath, _dirnames, _files in os.walk(top, topdown=False):
        yield Path(dirpath)


def cpu_quota_us(nano_cpus: int) -> int:
    quota = nano_cpus * CPU_PERIOD_US // 1_000_000_000
    if quota < MIN_CPU_QUOTA_US:
        raise CgroupError(f"nano_cpus={nano_cpus} is below the minimum of 0.01 CPU (10000000)")
    return quota


def check_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise CgroupError(f"invalid {name}={value!r}: must be an integer")
    return value


def check_cpuset(value: str) -> str:
    try:
        return parse_cpuset(value, "cpuset_cpus")
    except ValueError as e:
        raise CgroupError(str(e)) from None


def common_settings(limits: Limits, shares_setting: Callable[[int], Setting]) -> list[Setting]:
    """The limits written alike on v1 and v2 (pids.max, cpuset.cpus), and CPU shares through each
    version's own file (`shares_setting`)."""
    out: list[Setting] = []
    if limits.cpu_shares:
        shares = check_int("cpu_shares", limits.cpu_shares)
        if shares < 0:
            raise CgroupError(f"invalid cpu_shares={shares}: must be positive")
        out.append(shares_setting(shares))
    if limits.pids_limit is not None:
        pids = check_int("pids_limit", limits.pids_limit)
        out.append(Setting("pids", PIDS_MAX, str(pids) if pids > 0 else "max"))
    if limits.cpuset_cpus:
        out.append(Setting("cpuset", CPUSET_CPUS, check_cpuset(limits.cpuset_cpus)))
    return out


class TreeCgroups(Cgroups):
    """The verbs that do not depend on the cgroup version."""

    remove_timeout: float = REMOVE_TIMEOUT

    def __init__(self, fs: CgroupFS | None = None) -> None:
        self.fs = fs or CgroupFS()

    @abstractmethod
    def roots(self) -> list[Path]:
        """The distinct hierarchy roots (mount points) a container cgroup lives in."""

    def dirs(self, rel: str) -> list[Path]:
        parts = split_rel(rel)
        return [root.joinpath(*parts) for root in self.roots()]

    def exists(self, rel: str) -> bool:
        return any(d.is_dir() for d in self.dirs(rel))

    def add_process(self, rel: str, pid: int) -> None:
        pid = check_int("pid", pid)
        for d in self.dirs(rel):
            if not d.is_dir():
                raise CgroupError(f"cannot add pid {pid} to cgroup {rel}: {d} does not exist")
            try:
                write_file(d / PROCS, str(pid))
            except CgroupError as e:
                raise CgroupError(f"cannot add pid {pid} to cgroup {rel}: {e}") from e

    join_file: str = PROCS  # v2: "0" in cgroup.procs is the caller's whole process

    def join(self, rel: str) -> None:
        for d in self.dirs(rel):
            try:
                write_file(d / self.join_file, "0")
            except CgroupError as e:
                raise CgroupError(f"cannot join cgroup {rel}: {e}") from e

    def pids(self, rel: str) -> list[int]:
        found: set[int] = set()
        for d in self.dirs(rel):
            if d.is_dir():
                for sub in walk_dirs(d):
                    found |= read_procs(sub / PROCS)
        return sorted(found)

    def kill_all(self, rel: str, sig: int) -> None:
        self._signal_each(rel, sig)

    def _signal_each(self, rel: str, sig: int) -> None:
        failures = []
        for pid in self.pids(rel):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                continue  # exited meanwhile
            except OSError as e:
                failures.append(f"{pid}: {_reason(e)}")
        if failures:
            raise CgroupError(f"cannot signal processes of cgroup {rel}: {', '.join(failures)}")

    def remove(self, rel: str) -> None:
        present = [d for d in self.dirs(rel) if d.is_dir()]
        if not present:
            return
        deadline = time.monotonic() + self.remove_timeout
        left = self.pids(rel)
        while left:
            try:
                self.kill_all(rel, signal.SIGKILL)  # again each round: catches forks that raced the kill
            except CgroupError:
                pass  # reported below if the cgroup cannot be removed
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL_INTERVAL)
            left = self.pids(rel)
        errors = []
        for top in present:
            for d in walk_dirs(top):
                try:
                    self.fs.rmdir(d)
                except FileNotFoundError:
                    continue
                except OSError as e:
                    errors.append(f"{d}: {_reason(e)}")
        if errors:
            still = f"; processes {left} still running after {self.remove_timeout:g} s" if left else ""
            raise CgroupError(f"cannot remove cgroup {rel}: {', '.join(errors)}{still}")

    def make_levels(self, root: Path, parts: list[str], created: list[Path]) -> list[Path]:
        """mkdir root/parts[0]/.../parts[-1] as needed; returns every level, top first.

        Newly made directories are appended to `created` (for rollback). A parent removed by a
        concurrent remover between our checks is recreated (one retry).
        """
        for attempt in range(2):
            levels: list[Path] = []
            cur = root
            try:
                for part in parts:
                    cur = cur / part
                    if not cur.is_dir():
                        try:
                            self.fs.mkdir(cur)
                            created.append(cur)
                        except FileExistsError:
                            pass
                    levels.append(cur)
                return levels
            except FileNotFoundError as e:
                if attempt or not root.is_dir():
                    raise CgroupError(f"cannot create {cur}: {_reason(e)}") from e
            except OSError as e:
                raise CgroupError(f"cannot create {cur}: {_reason(e)}") from e
        raise AssertionError("unreachable")

    def rollback(self, created: list[Path]) -> None:
        for d in reversed(created):
            try:
                self.fs.rmdir(d)
            except OSError:
                pass  # best effort: a parent another container now uses stays (EBUSY)
