"""The runtime's state store: one directory per container holding config.json, written atomically."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from hostwatch.core.containers import ContainerState, read_hostwatch_state
from hostwatch.core.paths import STATE_ROOT
from hostwatch.core.timefmt import rfc3339_nano


class StateError(Exception):
    pass


BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"
UNKNOWN_EXIT = 255


def boot_id() -> str:
    try:
        with open(BOOT_ID_PATH) as f:
            return f.read().strip()
    except OSError:
        return ""


def process_gone(pid: int | None) -> bool:
    if not pid:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, IndexError):
        return True


class StateStore:
    def __init__(self, root: Path = STATE_ROOT) -> None:
        self.root = root

    def dir(self, cid: str) -> Path:
        return self.root / cid

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialises name allocation and IP allocation across concurrent CLI calls and monitors."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def new_id(self) -> str:
        while True:
            cid = os.urandom(32).hex()
            if not cid[:12].isdigit() and not self.dir(cid).exists():
                return cid

    def create(self, state: ContainerState) -> None:
        """Claim the container's name and write its first config.json; the caller holds lock()."""
        for other in self.list():
            if other.name == state.name:
                raise StateError(
                    f'the container name "{state.name}" is already in use by container "{other.id}"'
                )
        self.dir(state.id).mkdir(parents=True, exist_ok=False)
        self.save(state)

    def save(self, state: ContainerState) -> None:
        path = self.dir(state.id) / "config.json"
        tmp = path.with_name(f".config.json.{os.getpid()}.tmp")
        with open(tmp, "w") as f:
            f.write(state.to_json())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def load(self, cid: str) -> ContainerState:
        import json

        try:
            with open(self.dir(cid) / "config.json") as f:
                return self.reconcile(ContainerState.from_dict(json.load(f)))
        except FileNotFoundError:
            raise StateError(f"No such container: {cid}") from None

    def list(self) -> list[ContainerState]:
        return [self.reconcile(s) for s in read_hostwatch_state(self.root)]

    def reconcile(self, state: ContainerState) -> ContainerState:
        """A "running" container whose monitor and PID 1 are gone (monitor killed, host rebooted)
        is recorded as exited with Docker's unknown exit code, instead of running forever in `ps`."""
        if state.status != "running":
            return state
        rebooted = bool(state.boot_id) and state.boot_id != boot_id()
        if not rebooted and not (process_gone(state.monitor_pid) and process_gone(state.pid)):
            return state
        state.status = "exited"
        state.exit_code = UNKNOWN_EXIT
        state.error = "the container's monitor is gone (host rebooted or monitor killed)"
        state.finished = rfc3339_nano()
        state.pid = None
        try:
            self.save(state)
        except FileNotFoundError:
            pass  # removed meanwhile
        return state

    def resolve(self, ref: str) -> ContainerState:
        """Find a container by exact name, full id or unique id prefix, like Docker."""
        states = self.list()
        for s in states:
            if s.name == ref or s.id == ref:
                return s
        matches = [s for s in states if s.id.startswith(ref)] if ref else []
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise StateError(f"multiple IDs found with provided prefix: {ref}")
        raise StateError(f"No such container: {ref}")

    def remove(self, cid: str) -> None:
        shutil.rmtree(self.dir(cid), ignore_errors=True)
