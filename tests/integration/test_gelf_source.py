"""The shipper's gelf source fed by real clients: the bundled runtime's gelf log driver (byte-compatible
with Docker's `--log-driver=gelf`) over UDP with each compression and over TCP, and a plain TCP client
sending NUL-framed messages. Every line arrives exactly as written, in order, with container metadata."""

from __future__ import annotations

import asyncio
import random
import socket
import time
from collections.abc import Awaitable, Callable

import orjson

from hostwatch.core.events import GELF, Batch, LogEvent
from logshipper import ecs
from logshipper.config import GelfConfig
from logshipper.sources.gelf import GelfSource
from logshipper.telemetry import ShipperMetrics

from hostwatch_cli import HW

CONFIG = GelfConfig(listen_address="127.0.0.1:0")
LIMIT = 1 << 20
WAIT = 20.0
LINES = 300
SPECIAL = ['tab\there <a> & "q" \\ end', "é ✓ 日本 \U0001f600", "  leading and trailing  ", "{\"json\": [1, 2]}"]


class Recorder:
    def __init__(self) -> None:
        self.batches: list[Batch] = []

    async def emit(self, batch: Batch) -> None:
        self.batches.append(batch)

    @property
    def events(self) -> list[LogEvent]:
        return [e for b in self.batches for e in b.events]


async def until(pred: Callable[[], bool], timeout: float = WAIT) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not pred():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


def with_source(body: Callable[[GelfSource, Recorder, ShipperMetrics], Awaitable[None]]) -> None:
    async def main() -> None:
        metrics = ShipperMetrics()
        rec = Recorder()
        src = GelfSource(CONFIG, metrics, max_message_bytes=LIMIT)
        await src.start(rec.emit)
        try:
            await body(src, rec, metrics)
        finally:
            await src.stop()

    asyncio.run(main())


def container_script() -> tuple[str, list[str], str]:
    """A script printing the SPECIAL lines, LINES numbered ones, one stderr line and a 6000-character line
    (random hex: it needs several 1420-byte chunks whatever the compression)."""
    long_line = random.Random(6000).randbytes(3000).hex()
    script = ('for l in "$@"; do printf "%s\\n" "$l"; done; '
              f'i=0; while [ $i -lt {LINES} ]; do i=$((i+1)); echo line-$i; done; '
              'echo to-stderr >&2; sleep 0.2; printf "%s\\n" "$LONG"')
    return script, [*SPECIAL, *(f"line-{i}" for i in range(1, LINES + 1)), long_line], long_line


def check_container_events(hw: HW, name: str, events: list[LogEvent], started_ns: int, udp: bool = True) -> None:
    cid = hw.inspect(name)["Id"]
    _, expected, long_line = container_script()
    out = [e for e in events if e.stream == "stdout"]
    err = [e for e in events if e.stream == "stderr"]
    assert [e.message for e in out] == expected  # exactly as written, in order
    assert [e.message for e in err] == ["to-stderr"] and err[0].level == "err"
    assert len(events) == len(expected) + 1
    ended_ns = time.time_ns()
    for e in events:
        assert (e.container_id, e.container_name, e.image, e.input_type) == (cid, name, "host", GELF)
        assert e.fields is not None and e.fields["gelf.tag"] == cid[:12]
        assert e.fields["log.syslog.hostname"] == socket.gethostname()
        assert started_ns // 1_000_000 * 1_000_000 <= e.time_ns <= ended_ns and e.time_ns % 1_000_000 == 0
        ecs.encode(e, "shipper")
    [long_event] = [e for e in out if e.message == long_line]
    # over UDP it came chunked (the id is the GELF message id's hex), over TCP whole (a payload hash)
    assert len(long_event.event_id) == (16 if udp else 32)


def run_container(hw: HW, name: str, address: str, *opts: str) -> None:
    script, _, long_line = container_script()
    args = ["run", "--name", name, "--env", f"LONG={long_line}", "--log-driver", "gelf",
            "--log-opt", f"gelf-address={address}"]
    for opt in opts:
        args += ["--log-opt", opt]
    hw(*args, "--", "sh", "-c", script, "sh", *SPECIAL, check=True)


def test_runtime_gelf_driver_over_udp_with_each_compression(hw: HW) -> None:
    async def body(src: GelfSource, rec: Recorder, metrics: ShipperMetrics) -> None:
        address = f"udp://127.0.0.1:{src.udp_port}"
        want = len(SPECIAL) + LINES + 2
        for kind in ("gzip", "zlib", "none"):
            name = f"gelf-{kind}"
            rec.batches.clear()
            started = time.time_ns()
            await asyncio.to_thread(run_container, hw, name, address, f"gelf-compression-type={kind}")
            assert await until(lambda: len(rec.events) >= want), f"{kind}: {len(rec.events)} of {want} events"
            check_container_events(hw, name, rec.events, started)
        received = metrics.registry.get_sample_value("hostwatch_logshipper_received_events_total",
                                                     {"source": "gelf"})
        assert received == 3 * want

    with_source(body)


def test_runtime_gelf_driver_over_tcp(hw: HW) -> None:
    async def body(src: GelfSource, rec: Recorder, metrics: ShipperMetrics) -> None:
        started = time.time_ns()
        await asyncio.to_thread(run_container, hw, "gelf-tcp", f"tcp://127.0.0.1:{src.tcp_port}")
        assert await until(lambda: len(rec.events) >= len(SPECIAL) + LINES + 2)
        check_container_events(hw, "gelf-tcp", rec.events, started, udp=False)

    with_source(body)


def test_a_tcp_client_sends_null_framed_messages(hw: HW) -> None:
    big = "b" * 100_000  # far beyond one UDP datagram
    good = [orjson.dumps({"version": "1.1", "host": "client", "short_message": text, "level": 4,
                          "timestamp": 1_700_000_000.123456, "_request_id": i})
            for i, text in enumerate(["first", big, "after big", "after bad", "after oversized", "last"])]
    stream = (good[0] + b"\0" + good[1] + b"\0" + good[2] + b"\0"
              + b'{"version":"1.1","host":"client"}\0'  # no short_message: rejected, connection kept
              + good[3] + b"\0"
              + b'{"version":"1.1","short_message":"' + b"x" * LIMIT + b'"}\0'  # over max_message_bytes
              + good[4] + b"\0" + good[5] + b"\0")

    def client(port: int) -> None:
        with socket.create_connection(("127.0.0.1", port)) as s:
            for i in range(0, len(stream), 7000):  # frames cut across writes
                s.sendall(stream[i:i + 7000])

    async def body(src: GelfSource, rec: Recorder, metrics: ShipperMetrics) -> None:
        await asyncio.to_thread(client, src.tcp_port)
        assert await until(lambda: len(rec.events) >= 6)
        assert [e.message for e in rec.events] == ["first", big, "after big", "after bad", "after oversized", "last"]
        for i, e in enumerate(rec.events):
            assert e.level == "warning" and e.stream is None and e.container_id is None
            assert e.time_ns == 1_700_000_000_123_456_000
            assert e.fields is not None and e.fields["gelf.request_id"] == i
        rejected = {r: metrics.registry.get_sample_value("hostwatch_logshipper_rejected_events_total",
                                                         {"source": "gelf", "reason": r})
                    for r in ("missing_short_message", "oversized")}
        assert rejected == {"missing_short_message": 1.0, "oversized": 1.0}

    with_source(body)
