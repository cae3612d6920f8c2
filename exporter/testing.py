"""Hand-made cgroup v1 trees with real processes, for integration tests and the benchmark (root only).

    with CgroupSandbox() as sb:
        cg = sb.make("burner", cpu={"cpu.cfs_quota_us": "50000"})
        sb.spawn(cg, ["python3", "-c", "while True: pass"])

Everything lives under /sys/fs/cgroup/<controller>/hostwatch-test-<random>/; `close()` kills the
processes it started (by PID) and removes the directories, children first.
"""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence

from hostwatch.core.cgroupfs.files import PROCS, V1_CONTROLLERS
from hostwatch.core.paths import CGROUP_ROOT

# A new v1 cpuset cgroup refuses tasks until its cpus and mems are written: the sandbox leaves it out.
DEFAULT_CONTROLLERS = tuple(c for c in V1_CONTROLLERS if c != "cpuset")


class CgroupSandbox:
    def __init__(
        self,
        root: str = str(CGROUP_ROOT),
        prefix: str = "hostwatch-test",
        controllers: Sequence[str] = DEFAULT_CONTROLLERS,
    ) -> None:
        self.root = root
        self.controllers = [c for c in controllers if os.path.isdir(os.path.join(root, c))]
        self.base = f"/{prefix}-{secrets.token_hex(4)}"
        self.cgroups: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []
        self._mkdir(self.base)

    def path(self, controller: str, cg: str) -> str:
        return f"{self.root}/{controller}{cg}"

    def _mkdir(self, cg: str) -> None:
        for c in self.controllers:
            os.makedirs(self.path(c, cg), exist_ok=True)
        self.cgroups.append(cg)

    def make(self, name: str, **settings: Mapping[str, str]) -> str:
        """A child cgroup; settings per controller, e.g. cpu={"cpu.cfs_quota_us": "50000"}."""
        cg = f"{self.base}/{name}"
        self._mkdir(cg)
        for controller, files in settings.items():
            for fname, value in files.items():
                with open(f"{self.path(controller, cg)}/{fname}", "w") as f:
                    f.write(value)
        return cg

    def spawn(self, cg: str, argv: Sequence[str], **popen: object) -> subprocess.Popen[bytes]:
        """Start argv inside cg: a shell joins every controller's cgroup, then execs argv."""
        joins = "; ".join(f"echo $$ > {shlex.quote(f'{self.path(c, cg)}/{PROCS}')}" for c in self.controllers)
        script = f"{joins}; exec {' '.join(shlex.quote(a) for a in argv)}"
        proc = subprocess.Popen(["/bin/sh", "-c", script], **popen)  # type: ignore[call-overload]
        self.procs.append(proc)
        return proc

    def wait_member(self, cg: str, proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
        """Until proc's PID shows in cg's cgroup.procs (the shell has joined)."""
        deadline = time.monotonic() + timeout
        path = f"{self.path(self.controllers[0], cg)}/{PROCS}"
        while time.monotonic() < deadline:
            with open(path) as f:
                if str(proc.pid) in f.read().split():
                    return
            time.sleep(0.01)
        raise TimeoutError(f"pid {proc.pid} never joined {cg}")

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        self.procs.clear()
        for cg in sorted(self.cgroups, key=lambda p: p.count("/"), reverse=True):
            for c in self.controllers:
                path = self.path(c, cg)
                for _ in range(100):
                    try:
                        os.rmdir(path)
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        time.sleep(0.02)  # a killed task is still leaving the cgroup
        self.cgroups.clear()

    def __enter__(self) -> CgroupSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
