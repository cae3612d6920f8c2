"""`hostwatch up`: the main job on embedded defaults.

Today it starts demo workloads in the bundled runtime and keeps them running until Ctrl-C, then
stops and removes everything it started. Later components (exporter, shipper, indexer, alerting)
join the same command.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

DEMO_WORKLOADS = {
    # name: (flags, command)
    "demo-ticker": (
        ["--cpus", "0.3", "--memory", "64m", "--label", "app=ticker"],
        ["sh", "-c", "n=0; while true; do n=$((n+1)); echo \"tick $n\"; i=0; "
         "while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 1; done"],
    ),
    "demo-hog": (
        ["--cpus", "0.2", "--memory", "128m", "--label", "app=hog"],
        [sys.executable, "-c",
         "import time,sys\nblob=bytearray(48*1024*1024)\nfor n in range(10**9):\n"
         "    blob[(n*4096)%len(blob)]=1; print('hog holds', len(blob)>>20, 'MiB, round', n, flush=True)\n"
         "    sys.stderr.write('hog heartbeat\\n'); sys.stderr.flush(); time.sleep(2)"],
    ),
}


def _hostwatch(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hostwatch", *args], env=env, capture_output=True, text=True)


def _up(a: argparse.Namespace) -> int:
    data_dir = Path(a.data_dir)
    env = dict(os.environ, HOSTWATCH_STATE_ROOT=str(data_dir / "containers"))
    started: list[str] = []
    stop = False

    def on_signal(_sig: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for name, (flags, cmd) in DEMO_WORKLOADS.items():
            _hostwatch("rm", "-f", name, env=env)  # a previous run killed hard
            proc = _hostwatch("run", "-d", "--name", name, *flags, "--", *cmd, env=env)
            if proc.returncode != 0:
                print(f"hostwatch up: could not start {name}: {proc.stderr.strip()}", file=sys.stderr)
                return 1
            started.append(name)
        print(f"hostwatch up: state in {data_dir / 'containers'}")
        print(_hostwatch("ps", env=env).stdout, end="")
        print("logs: hostwatch logs -f demo-ticker   (HOSTWATCH_STATE_ROOT=" + env["HOSTWATCH_STATE_ROOT"] + ")")
        print("Ctrl-C stops everything hostwatch up started.", flush=True)
        while not stop:
            time.sleep(0.2)
        return 0
    finally:
        for name in started:
            _hostwatch("rm", "-f", name, env=env)
        if started:
            print(f"hostwatch up: removed {', '.join(started)}")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("up", help="run the main job: demo workloads (and, as they land, exporter, shipper, alerting)")
    p.add_argument("--data-dir", default="/var/lib/hostwatch", help="where state and data live")
    p.set_defaults(func=_up)
