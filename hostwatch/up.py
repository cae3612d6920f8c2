"""`hostwatch up`: the main job on embedded defaults, on one asyncio loop.

It starts the services the composition root hands it (today: the exporter), then demo workloads in
the bundled runtime, and runs until SIGINT/SIGTERM; then it removes the demo containers and stops
the services. It never imports a sibling package: the runtime is driven through its CLI and the
services arrive already built (hostwatch/cli.py builds them).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from hostwatch.core.gctune import settle_after_start
from hostwatch.core.paths import ENV_STATE_ROOT


class Service(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


@dataclass
class NamedService:
    name: str
    service: Service
    describe: str  # where users find it, printed once it runs


BUSYBOX = "{busybox}"  # replaced by the rootfs `up` builds under its data dir

DEMO_WORKLOADS = {
    # name: (flags, command); the ticker runs in a busybox rootfs, the hog on the host's (it needs python)
    "demo-ticker": (
        ["--cpus", "0.3", "--memory", "64m", "--label", "app=ticker", "--rootfs", BUSYBOX],
        ["sh", "-c", "n=0; while true; do n=$((n+1)); echo \"tick $n\"; i=0; "
         "while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 1; done"],
    ),
    "demo-hog": (
        ["--cpus", "0.2", "--memory", "128m", "--label", "app=hog"],
        [sys.executable, "-c",
         "import time,sys\nblob=bytearray(48*1024*1024)\nfor n in range(10**9):\n"
         "    blob[::4096]=b'x'*len(blob[::4096]); print('hog holds', len(blob)>>20, 'MiB, round', n, flush=True)\n"
         "    sys.stderr.write('hog heartbeat\\n'); sys.stderr.flush(); time.sleep(2)"],
    ),
}


class Up:
    def __init__(self, data_dir: Path, services: list[NamedService], demo: bool = True) -> None:
        self.demo = demo
        self.state_root = data_dir / "containers"
        self.images = data_dir / "images"
        self.env = dict(os.environ, **{ENV_STATE_ROOT: str(self.state_root)})
        self.services = services
        self.started_services: list[NamedService] = []
        self.started_containers: list[str] = []

    async def _hostwatch(self, *args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hostwatch", *args, env=self.env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, stdin=asyncio.subprocess.DEVNULL)
        out, err = await proc.communicate()
        return proc.returncode or 0, out.decode(), err.decode()

    async def start(self) -> None:
        for svc in self.services:
            await svc.service.start()
            self.started_services.append(svc)
        if not self.demo:
            return
        code, busybox, err = await self._hostwatch("rootfs", str(self.images / "busybox"))
        if code != 0:
            raise RuntimeError(f"could not build the busybox rootfs: {err.strip()}")
        for name, (flags, cmd) in DEMO_WORKLOADS.items():
            await self._hostwatch("rm", "-f", name)  # left over from a run that was killed hard
            flags = [busybox.strip() if f == BUSYBOX else f for f in flags]
            code, _, err = await self._hostwatch("run", "-d", "--name", name, *flags, "--", *cmd)
            if code != 0:
                raise RuntimeError(f"could not start {name}: {err.strip()}")
            self.started_containers.append(name)

    async def stop(self) -> None:
        if self.started_containers:
            await self._hostwatch("rm", "-f", *self.started_containers)
            print(f"hostwatch up: removed {', '.join(self.started_containers)}", flush=True)
            self.started_containers.clear()
        for svc in reversed(self.started_services):
            await svc.service.stop()
        self.started_services.clear()

    async def run(self) -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await self.start()
            settle_after_start()
            _, ps, _ = await self._hostwatch("ps")
            print(ps, end="")
            for svc in self.started_services:
                print(f"{svc.name}: {svc.describe}")
            print(f"state: {self.state_root} ({ENV_STATE_ROOT}={self.state_root} hostwatch logs -f demo-ticker)")
            print("Ctrl-C stops everything hostwatch up started.", flush=True)
            await stop.wait()
            return 0
        except Exception as e:  # noqa: BLE001 - one clear line; the finally block cleans up
            print(f"hostwatch up: {e}", file=sys.stderr)
            return 1
        finally:
            await self.stop()
