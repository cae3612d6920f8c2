"""The fluent_forward source against real forward-protocol clients: Python's fluent-logger, the bundled
runtime's fluentd log driver (Docker's record shape, split long lines) and fluent-logger-node (acks with
requireAckResponse, PackedForward, CompressedPackedForward, the shared-key handshake).

The source runs on its own event loop thread, bound to 127.0.0.1 port 0; its emit records every batch
and acks it (or holds the acks, to show that a client waits for them).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fluent.sender import EventTime, FluentSender

from hostwatch.core.events import Batch, LogEvent
from logshipper.codecs import forward as fw
from logshipper.config import ForwardConfig
from logshipper.sources.fluent_forward import FluentForwardSource
from logshipper.telemetry import ShipperMetrics

from hostwatch_cli import HW

REPO = Path(__file__).resolve().parents[2]
NODE_MODULES = Path(os.environ.get("HOSTWATCH_NODE_MODULES", REPO / ".venv" / "node" / "node_modules"))
WAIT = 20.0  # upper bound for a client's messages to arrive; nothing here depends on speed


class Served:
    """A FluentForwardSource on a loop thread; `hold_acks` keeps batches undelivered until `release()`."""

    def __init__(self, hold_acks: bool = False, max_message_bytes: int = 1 << 20, **cfg: Any) -> None:
        self.metrics = ShipperMetrics()
        self.source = FluentForwardSource(ForwardConfig(listen_address="127.0.0.1:0", **cfg), self.metrics,
                                          max_message_bytes=max_message_bytes)
        self.hold_acks = hold_acks
        self.batches: list[Batch] = []
        self._held: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.source.start(self._emit), self.loop).result(10)
        self.port = self.source.port

    async def _emit(self, batch: Batch) -> None:
        with self._lock:
            self.batches.append(batch)
            if batch.ack is not None and self.hold_acks:
                self._held.append(batch.ack)
                return
        if batch.ack is not None:
            batch.ack()

    def release(self, hold_further: bool) -> None:
        """Deliver what is held (acks run on the loop thread, as the pipeline's do)."""
        with self._lock:
            held, self._held = self._held, []
            self.hold_acks = hold_further
        for ack in held:
            self.loop.call_soon_threadsafe(ack)

    @property
    def events(self) -> list[LogEvent]:
        with self._lock:
            return [e for b in self.batches for e in b.events]

    def wait_for(self, n: int, timeout: float = WAIT) -> list[LogEvent]:
        deadline = time.monotonic() + timeout
        while len(self.events) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.events

    def rejected(self, reason: str) -> float:
        return self.metrics.registry.get_sample_value("hostwatch_logshipper_rejected_events_total",
                                                     {"source": "fluent_forward", "reason": reason}) or 0.0

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.source.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@pytest.fixture
def served() -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    def start(**kwargs: Any) -> Served:
        s = Served(**kwargs)
        started.append(s)
        return s

    yield start
    for s in started:
        s.close()


# --- fluent-logger (Python) ------------------------------------------------------------------------------


def test_fluent_logger_lines_arrive_exactly_in_order_with_their_times(served: Callable[..., Served]) -> None:
    srv = served()
    lines = [f"line {i} \t<tag> & \"quotes\" é 日本 {'x' * (i % 50)}" for i in range(2000)]
    base = 1_796_112_000_000_000_000
    sender = FluentSender("app", host="127.0.0.1", port=srv.port, nanosecond_precision=True)
    try:
        for i, line in enumerate(lines):
            assert sender.emit_with_time("web", EventTime.from_unix_nano(base + i * 1001), {"message": line, "n": i})
        assert sender.emit_with_time("web", 1_796_112_345, {"message": "integer time"})
    finally:
        sender.close()
    events = srv.wait_for(len(lines) + 1)
    assert [e.message for e in events] == [*lines, "integer time"]
    assert [e.time_ns for e in events] == [base + i * 1001 for i in range(len(lines))] + [1_796_112_345 * 10**9]
    assert {(e.fields or {})["fluent.tag"] for e in events} == {"app.web"}
    assert [(e.fields or {})["fluent.record.n"] for e in events[:-1]] == list(range(len(lines)))
    assert len({e.event_id for e in events}) == len(events)


def test_heartbeat_is_answered(served: Callable[..., Served]) -> None:
    srv = served()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(WAIT)
        s.sendto(b"\x00", ("127.0.0.1", srv.port))
        data, addr = s.recvfrom(100)
    assert (data, addr) == (fw.HEARTBEAT_REPLY, ("127.0.0.1", srv.port))


# --- the bundled runtime's fluentd log driver --------------------------------------------------------------


def test_runtime_fluentd_driver_lines_arrive_as_written_with_container_metadata(
        hw: HW, served: Callable[..., Served]) -> None:
    srv = served()
    script = ("printf 'plain\\n'; printf 'tab\\there <a> & \"q\" \\\\ end\\n'; printf 'to stderr\\n' >&2; "
              "i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo line-$i; done; "
              "head -c 20000 /dev/zero | tr '\\0' x; echo; echo after-long")
    hw("run", "--name", "fwd", "--log-driver", "fluentd", "--log-opt", f"fluentd-address=127.0.0.1:{srv.port}",
       "--log-opt", "fluentd-sub-second-precision=true", "--", "sh", "-c", script, check=True)
    cid = hw.inspect("fwd")["Id"]
    expected_out = ["plain", 'tab\there <a> & "q" \\ end', *[f"line-{i}" for i in range(1, 301)], "x" * 20000,
                    "after-long"]
    events = srv.wait_for(len(expected_out) + 1)
    out = [e for e in events if e.stream == "stdout"]
    err = [e for e in events if e.stream == "stderr"]
    assert [e.message for e in out] == expected_out  # the 16 KiB pieces of the long line joined again
    assert [e.message for e in err] == ["to stderr"]
    assert {(e.container_id, e.container_name) for e in events} == {(cid, "fwd")}
    assert {(e.fields or {})["fluent.tag"] for e in events} == {cid[:12]}
    assert not any(k.startswith("fluent.record.partial") for e in events for k in e.fields or {})
    assert any(e.time_ns % 1_000_000_000 for e in events)  # EventTime: sub-second precision kept
    assert len({e.event_id for e in events}) == len(events)
    assert abs(events[0].time_ns / 1e9 - time.time()) < 300


# --- fluent-logger-node ----------------------------------------------------------------------------------

NODE_CLIENT = r"""
const FluentSender = require('fluent-logger/lib/sender');
const EventTime = require('fluent-logger/lib/event-time');
const spec = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));
const say = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const quiet = {info() {}, error() {}};
const sender = new FluentSender(spec.tag, {host: '127.0.0.1', port: spec.port, eventMode: spec.mode,
  requireAckResponse: spec.ack, security: spec.security, internalLogger: quiet, enableReconnect: false});
sender.on('error', (e) => { say({error: String(e && e.message || e)}); process.exit(0); });
let done = 0;
spec.records.forEach((rec, n) => {
  const cb = (err) => {
    say({sent: n, error: err ? String(err.message || err) : null});
    if (++done === spec.records.length) sender.end(null, null, () => { say({done: true}); process.exit(0); });
  };
  if (spec.eventTime) sender.emit(rec, new EventTime(spec.eventTime[0], spec.eventTime[1] + n), cb);
  else sender.emit(rec, cb);
});
"""


class NodeClient:
    """fluent-logger-node emitting `records`; what it reports (acks, errors) is collected from stdout."""

    def __init__(self, tmp: Path, port: int, records: list[dict[str, Any]], mode: str = "Message",
                 ack: bool = True, security: dict[str, str] | None = None,
                 event_time: tuple[int, int] | None = None) -> None:
        node = shutil.which("node")
        if node is None or not (NODE_MODULES / "fluent-logger").is_dir():
            pytest.fail(f"needs node and fluent-logger 3.4.1 in {NODE_MODULES} "
                        "(npm install --prefix .venv/node fluent-logger@3.4.1)")
        script = tmp / "client.js"
        script.write_text(NODE_CLIENT)
        spec = {"tag": "node.app", "port": port, "mode": mode, "ack": ack, "records": records,
                "security": security, "eventTime": event_time}
        spec_file = tmp / f"spec-{id(self)}.json"
        spec_file.write_text(json.dumps(spec))
        self.proc = subprocess.Popen([node, str(script), str(spec_file)], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True,
                                     env=dict(os.environ, NODE_PATH=str(NODE_MODULES)))
        self.reports: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.reports.append(json.loads(line) if line.startswith("{") else {"output": line})

    def wait(self) -> list[dict[str, Any]]:
        try:
            self.proc.wait(WAIT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return self.reports

    def acked(self) -> list[int]:
        return [r["sent"] for r in list(self.reports) if "sent" in r and r["error"] is None]


def test_node_client_waits_for_each_ack_which_comes_only_after_delivery(
        served: Callable[..., Served], tmp_path: Path) -> None:
    srv = served(hold_acks=True)
    client = NodeClient(tmp_path, srv.port, [{"message": f"m{i}"} for i in range(3)])
    try:
        srv.wait_for(1)
        time.sleep(0.5)  # the client had time to send more, and to see an ack
        assert [e.message for e in srv.events] == ["m0"]  # requireAckResponse: it waits for m0's ack...
        assert client.acked() == []  # ...which is not sent while the batch is undelivered
        srv.release(hold_further=False)
        reports = client.wait()
    finally:
        srv.release(hold_further=False)
    assert [r for r in reports if "sent" in r] == [{"sent": i, "error": None} for i in range(3)]
    assert reports[-1] == {"done": True}
    assert [e.message for e in srv.events] == ["m0", "m1", "m2"]
    ids = [e.event_id.rsplit(":", 1) for e in srv.events]
    assert [index for _, index in ids] == ["0", "0", "0"] and len({chunk for chunk, _ in ids}) == 3


@pytest.mark.parametrize("mode", ["PackedForward", "CompressedPackedForward"])
def test_node_packed_modes_with_acks(served: Callable[..., Served], tmp_path: Path, mode: str) -> None:
    srv = served()
    records = [{"log": f"packed {i} " + "z" * (i * 7), "source": "stderr"} for i in range(200)]
    reports = NodeClient(tmp_path, srv.port, records, mode=mode, event_time=(1_796_112_000, 500)).wait()
    assert sorted(r["sent"] for r in reports if "sent" in r and r["error"] is None) == list(range(200))
    events = srv.events
    assert [e.message for e in events] == [r["log"] for r in records]
    assert [e.time_ns for e in events] == [1_796_112_000 * 10**9 + 500 + i for i in range(200)]
    assert {e.stream for e in events} == {"stderr"}
    chunk_ids = {e.event_id.rsplit(":", 1)[0] for e in events}
    assert len(chunk_ids) < len(events)  # several events per chunk: <chunk>:<index>


def test_node_shared_key_handshake_succeeds_with_the_key(served: Callable[..., Served], tmp_path: Path) -> None:
    srv = served(shared_key="the key", self_hostname="hostwatch-test")
    security = {"clientHostname": "node-client", "sharedKey": "the key", "username": "", "password": ""}
    reports = NodeClient(tmp_path, srv.port, [{"message": "secret hello"}], security=security).wait()
    assert reports[-2:] == [{"sent": 0, "error": None}, {"done": True}]
    assert [e.message for e in srv.events] == ["secret hello"]
    assert srv.rejected(fw.AUTH) == 0


def test_node_shared_key_handshake_fails_with_a_wrong_key(served: Callable[..., Served], tmp_path: Path) -> None:
    srv = served(shared_key="the key", self_hostname="hostwatch-test")
    security = {"clientHostname": "node-client", "sharedKey": "not the key", "username": "", "password": ""}
    reports = NodeClient(tmp_path, srv.port, [{"message": "intruder"}], security=security).wait()
    assert {"error": "Authentication failed: shared_key mismatch"} in reports
    assert srv.events == [] and srv.rejected(fw.AUTH) == 1


def test_node_user_login_over_the_handshake(served: Callable[..., Served], tmp_path: Path) -> None:
    srv = served(shared_key="k", self_hostname="hostwatch-test", users=("alice:wonder land",))
    good = {"clientHostname": "node-client", "sharedKey": "k", "username": "alice", "password": "wonder land"}
    assert NodeClient(tmp_path, srv.port, [{"message": "alice"}], security=good).wait()[-1] == {"done": True}
    bad = dict(good, password="guess")
    reports = NodeClient(tmp_path, srv.port, [{"message": "mallory"}], security=bad).wait()
    assert {"error": "Authentication failed: username/password mismatch"} in reports
    assert [e.message for e in srv.events] == ["alice"] and srv.rejected(fw.AUTH) == 1
