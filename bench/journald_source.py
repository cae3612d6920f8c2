"""The journald source reading a journal file of Docker-like entries: entries/s, CPU per entry of the
shipper process and of journalctl, against `journalctl -o json` alone into /dev/null.

    .venv/bin/python bench/journald_source.py [ENTRIES]

The journal is built with systemd-journal-remote from export format in a temporary directory (which
rotates it into several files: the source reads the directory).
"""

from __future__ import annotations

import asyncio
import os
import resource
import secrets
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hostwatch.core.events import Batch
from logshipper.config import JournaldConfig
from logshipper.sources.journald import JournaldSource
from logshipper.telemetry import ShipperMetrics

JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"


def export(n: int) -> bytes:
    cid = secrets.token_hex(32)
    static = (f"PRIORITY=6\nCONTAINER_ID={cid[:12]}\nCONTAINER_ID_FULL={cid}\nCONTAINER_NAME=bench\n"
              f"CONTAINER_TAG={cid[:12]}\nIMAGE_NAME=busybox\nSYSLOG_IDENTIFIER={cid[:12]}\n_TRANSPORT=journal\n"
              "_HOSTNAME=node-1\n_BOOT_ID=82c26996716a408186d9d55fce7c84ff\n").encode()
    out = []
    for i in range(n):
        msg = b"bench line %08d with some typical payload text of an application log line" % i
        out.append(b"__REALTIME_TIMESTAMP=%d\n__MONOTONIC_TIMESTAMP=%d\n" % (1_700_000_000_000_000 + i, 1000 + i)
                   + static + b"SYSLOG_TIMESTAMP=2023-11-14T22:13:20.%09dZ\n" % i
                   + b"MESSAGE\n" + struct.pack("<Q", len(msg)) + msg + b"\n\n")
    return b"".join(out)


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


async def read_all(directory: Path, n: int, state: Path) -> tuple[float, float, float]:
    done = asyncio.Event()
    count = 0

    async def emit(batch: Batch) -> None:
        nonlocal count
        count += len(batch.events)
        if batch.ack is not None:
            batch.ack()
        if count >= n:
            done.set()

    source = JournaldSource(JournaldConfig(enabled=True, directory=directory), ShipperMetrics(),
                            max_message_bytes=1 << 20, state_dir=state)
    cpu0, child0, t0 = time.process_time(), child_cpu(), time.perf_counter()
    await source.start(emit)
    await done.wait()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    await source.stop()  # journalctl's CPU is counted once it is reaped
    return wall, cpu, child_cpu() - child0


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "journal"
        directory.mkdir()
        path = directory / "bench.journal"
        subprocess.run([JOURNAL_REMOTE, "-o", str(path), "-"], input=export(n), check=True, capture_output=True)
        child0, t0 = child_cpu(), time.perf_counter()
        with open(os.devnull, "wb") as null:
            subprocess.run(["journalctl", f"--directory={directory}", "-o", "json", "--all", "--no-pager"], stdout=null,
                           check=True)
        alone_wall, alone_cpu = time.perf_counter() - t0, child_cpu() - child0
        wall, cpu, jcpu = asyncio.run(read_all(directory, n, Path(tmp) / "state"))
    print(f"entries: {n}")
    print(f"journalctl -o json alone: {n / alone_wall:,.0f} entries/s, {alone_cpu / n * 1e6:.2f} us CPU/entry")
    print(f"journald source:          {n / wall:,.0f} entries/s, shipper {cpu / n * 1e6:.2f} us CPU/entry, "
          f"journalctl {jcpu / n * 1e6:.2f} us CPU/entry")
    print(f"source / journalctl alone: {alone_wall / wall:.2f}x the entry rate")


if __name__ == "__main__":
    main()
