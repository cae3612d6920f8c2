"""Real protocol peers the tests talk to: a forward-protocol receiver, a GELF UDP receiver, a
namespaced systemd-journald, Debian's Prometheus. Shared by the log-driver unit tests and the runtime
and exporter integration tests. Every process started here is stopped by its PID."""

from __future__ import annotations

import contextlib
import glob
import gzip
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import pytest

JOURNALD_BIN = "/lib/systemd/systemd-journald"


class ForwardReceiver:
    """Accepts forward-protocol connections and decodes Message-mode entries."""

    def __init__(self, family: int = socket.AF_INET, path: str = "") -> None:
        self.server = socket.socket(family, socket.SOCK_STREAM)
        if family == socket.AF_UNIX:
            self.server.bind(path)
            self.address = "unix://" + path
        else:
            self.server.bind(("127.0.0.1", 0))
            self.address = f"127.0.0.1:{self.server.getsockname()[1]}"
        self.server.listen(8)
        self.server.settimeout(0.1)
        self.entries: list[list[Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, conn: socket.socket) -> None:
        unpacker = msgpack.Unpacker(raw=False)
        conn.settimeout(0.1)
        with conn:
            while not self._stop.is_set():
                try:
                    data = conn.recv(65536)
                except TimeoutError:
                    continue
                if not data:
                    return
                unpacker.feed(data)
                for obj in unpacker:
                    with self._lock:
                        self.entries.append(obj)

    def wait_for(self, n: int, timeout: float = 10.0) -> list[list[Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.entries) >= n:
                    return list(self.entries)
            time.sleep(0.01)
        with self._lock:
            return list(self.entries)

    def close(self) -> None:
        self._stop.set()
        self.server.close()
        for t in self._threads:
            t.join(2)



class UdpReceiver:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.sock.settimeout(5)
        self.address = f"udp://127.0.0.1:{self.sock.getsockname()[1]}"
        self.datagrams: list[bytes] = []
        self._mid = b""

    def message(self) -> bytes:
        """One GELF payload (still compressed), reassembled from its chunks when chunked."""
        parts: dict[int, bytes] = {}
        while True:
            data = self.sock.recv(65536)
            self.datagrams.append(data)
            if data[:2] != b"\x1e\x0f":
                assert not parts
                return data
            mid, seq, count = data[2:10], data[10], data[11]
            assert not parts or mid == self._mid
            self._mid = mid
            assert 0 < count <= 128 and seq < count and seq not in parts
            parts[seq] = data[12:]
            if len(parts) == count:
                return b"".join(parts[i] for i in range(count))


def decompress(data: bytes) -> dict[str, Any]:
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    elif data[:1] == b"\x78":
        data = zlib.decompress(data)
    result: dict[str, Any] = json.loads(data)
    return result



@dataclass
class Journal:
    name: str
    socket: str

    def entries(self, want: int, cid: str, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Our container's entries, polling journalctl until `want` are there (or the timeout)."""
        deadline = time.monotonic() + timeout
        found: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            out = subprocess.run(
                ["journalctl", f"--namespace={self.name}", "-o", "json", "--all", "--no-pager",
                 f"CONTAINER_ID_FULL={cid}"],
                capture_output=True, check=False, timeout=10,
            )  # fmt: skip
            found = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
            if len(found) >= want:
                break
            time.sleep(0.1)
        return found


@contextlib.contextmanager
def namespaced_journald() -> Iterator[Journal]:
    """A private systemd-journald (its own namespace), stopped by PID and removed afterwards."""
    if os.geteuid() != 0 or not os.path.exists(JOURNALD_BIN) or not shutil.which("journalctl"):
        pytest.fail("needs root, systemd-journald and journalctl")
    name = "hwtest" + secrets.token_hex(4)
    runtime_dir = Path(f"/run/systemd/journal.{name}")
    proc = subprocess.Popen([JOURNALD_BIN, name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def cleanup() -> None:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
        shutil.rmtree(runtime_dir, ignore_errors=True)
        for path in glob.glob(f"/var/log/journal/*.{name}") + glob.glob(f"/run/log/journal/*.{name}"):
            shutil.rmtree(path, ignore_errors=True)

    try:
        sock = runtime_dir / "socket"
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        if not sock.exists():
            pytest.fail(f"systemd-journald {name} did not create {sock} (exit status {proc.poll()})")
        yield Journal(name, str(sock))
    finally:
        cleanup()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str, timeout: float = 10) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return str(r.read().decode())


def wait_http(url: str, proc: subprocess.Popen[bytes], what: str, log_tail: Callable[[], str],
              timeout: float = 15) -> None:
    """Poll url until it answers; fail with the server's log tail if it exits or never answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            http_get(url, timeout=1)
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{what} did not become ready (exit status {proc.poll()}): {log_tail()}")
            time.sleep(0.1)


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM by PID, SIGKILL after 10 s."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


@dataclass
class Prometheus:
    url: str
    pid: int
    log: Path

    def query(self, promql: str) -> list[dict[str, Any]]:
        """An instant query's result vector ([] while there is nothing, or no answer yet)."""
        try:
            body = json.loads(http_get(f"{self.url}/api/v1/query?query={urllib.parse.quote(promql)}"))
        except OSError:
            return []
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for(self, promql: str, done: Callable[[list[dict[str, Any]]], bool] = bool,
                 timeout: float = 20.0) -> list[dict[str, Any]]:
        """Poll `promql` until `done(result)` (the first scrape comes ~5 s after start); the last
        result either way."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(promql)
            if done(result) or time.monotonic() > deadline:
                return result
            time.sleep(0.25)

    def log_tail(self, chars: int = 2000) -> str:
        return self.log.read_text(errors="replace")[-chars:]


@contextlib.contextmanager
def prometheus(targets: Sequence[str], workdir: Path, job: str = "hostwatch",
               scrape_interval: str = "1s") -> Iterator[Prometheus]:
    """Debian's Prometheus on a free 127.0.0.1 port scraping `targets` ("host:port") every
    `scrape_interval`, with its config, TSDB and log under `workdir`; stopped by PID on exit."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus not installed (apt-get install prometheus)")
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(
        f"global:\n  scrape_interval: {scrape_interval}\n  evaluation_interval: {scrape_interval}\n"
        f"scrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets: {json.dumps(list(targets))}\n"
    )
    port = free_port()
    log = workdir / "prometheus.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"], stdout=out, stderr=subprocess.STDOUT)
    prom = Prometheus(f"http://127.0.0.1:{port}", proc.pid, log)
    try:
        wait_http(prom.url + "/-/ready", proc, "prometheus", prom.log_tail)
        yield prom
    finally:
        stop_process(proc)
