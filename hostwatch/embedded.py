"""The embedded Kafka and Elasticsearch of `hostwatch up`: noida-db (a pinned dependency), one
process speaking the Kafka wire protocol and the Elasticsearch REST API, data under the data dir.

Started and stopped by PID like every other process hostwatch runs; `--kafka.brokers` and
`--elasticsearch.hosts` point `up` at existing clusters instead.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_KAFKA_PORT = 9092
DEFAULT_ELASTICSEARCH_PORT = 9200
START_TIMEOUT = 30.0


def noida_binary() -> str:
    """noida-db's launcher in the environment hostwatch runs from (the venv's bin), else PATH."""
    beside = Path(sys.executable).with_name("noida-db")
    if beside.exists():
        return str(beside)
    found = shutil.which("noida-db")
    if not found:
        raise RuntimeError("noida-db is not installed (it comes with hostwatch: run scripts/hostwatch)")
    return found


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class EmbeddedNoida:
    """start()/stop() noida-db on 127.0.0.1 with its data in `data_dir`."""

    def __init__(self, data_dir: Path, kafka_port: int = DEFAULT_KAFKA_PORT,
                 elasticsearch_port: int = DEFAULT_ELASTICSEARCH_PORT, host: str = "127.0.0.1") -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.kafka_port = kafka_port
        self.elasticsearch_port = elasticsearch_port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def elasticsearch_url(self) -> str:
        return f"http://{self.host}:{self.elasticsearch_port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "noida-db.log"

    async def start(self) -> None:
        for port in (self.kafka_port, self.elasticsearch_port):
            if _port_open(self.host, port):
                raise RuntimeError(f"{self.host}:{port} is already in use: stop what listens there, or point "
                                   "hostwatch at it with --kafka.brokers / --elasticsearch.hosts")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [noida_binary(), "start", "--data-dir", str(self.data_dir), "--host", self.host,
               "--only", "kafka,elasticsearch", "--kafka-port", str(self.kafka_port),
               "--elasticsearch-port", str(self.elasticsearch_port)]
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"noida-db exited with {self.proc.returncode}: {self._tail()}")
            if _port_open(self.host, self.kafka_port) and _port_open(self.host, self.elasticsearch_port):
                return
            await asyncio.sleep(0.1)
        await self.stop()
        raise RuntimeError(f"noida-db did not listen within {START_TIMEOUT:g} s: {self._tail()}")

    def _tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        useful = [ln for ln in lines if "GLIBC_2.39" not in ln]  # a harmless loader warning
        return " | ".join(useful[-3:]) or "(empty log)"

    async def stop(self) -> None:
        """Stop its whole process group: the `noida-db` launcher execs nothing, it runs the server
        binary as a child, which a signal to the launcher alone would leave running."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        _signal_group(proc.pid, signal.SIGTERM)
        for _ in range(100):
            if proc.poll() is not None and not _group_alive(proc.pid):
                return
            await asyncio.sleep(0.05)
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait()


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
