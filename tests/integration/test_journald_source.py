"""The journald source against a real namespaced systemd-journald (tests/peers.py) and real journalctl:
the bundled runtime's journald log driver, systemd-cat, syslog and native-protocol writers; cursor
commits after delivery and exact resumption; journalctl restarts; backpressure; a --file journal.

Needs root, /lib/systemd/systemd-journald, journalctl, systemd-journal-remote, unshare and logger.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import signal
import struct
import subprocess
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from hostwatch.core.events import Batch, LogEvent
from logshipper.config import JournaldConfig
from logshipper.sources.journald import JournaldSource
from logshipper.telemetry import ShipperMetrics
from logshipper.transforms.enrich import Enricher

from hostwatch_cli import HW
from peers import Journal, journal_logger, journal_send, journald_kept_alive, namespaced_journald, systemd_cat

pytestmark = pytest.mark.integration

JOURNAL_REMOTE = "/lib/systemd/systemd-journal-remote"
WAIT = 20.0


@pytest.fixture(scope="module")
def journal() -> Iterator[Journal]:
    with namespaced_journald() as j, journald_kept_alive(j):
        yield j


class Collector:
    """The source's `emit`: keeps every batch; acks at once unless told not to; can block."""

    def __init__(self, auto_ack: bool = True) -> None:
        self.auto_ack = auto_ack
        self.batches: list[Batch] = []
        self.gate: asyncio.Event | None = None
        self.calls = 0

    async def __call__(self, batch: Batch) -> None:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        self.batches.append(batch)
        if self.auto_ack and batch.ack is not None:
            batch.ack()

    @property
    def events(self) -> list[LogEvent]:
        return [e for b in self.batches for e in b.events]

    def messages(self) -> list[str]:
        return [e.message for e in self.events]


async def until(done: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def make_source(journal: Journal, state_dir: Path, *matches: str, metrics: ShipperMetrics | None = None,
                max_message_bytes: int = 1 << 20, **kw: Any) -> JournaldSource:
    cfg = JournaldConfig(enabled=True, namespace=journal.name, matches=matches, **kw)
    return JournaldSource(cfg, metrics or ShipperMetrics(), max_message_bytes=max_message_bytes,
                          state_dir=state_dir)


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(main())


def cursors(journal: Journal, *matches: str, want: int = 0) -> dict[str, str]:
    """event_id -> cursor of the matching entries, as journalctl reports them (polling for `want`)."""
    deadline = time.monotonic() + WAIT
    while True:
        out = subprocess.run(["journalctl", f"--namespace={journal.name}", "-o", "json", "--all", "--no-pager",
                              *matches], capture_output=True, check=True, timeout=30).stdout
        found = [json.loads(line)["__CURSOR"] for line in out.splitlines() if line.strip()]
        if len(found) >= want or time.monotonic() > deadline:
            return {hashlib.blake2b(c.encode(), digest_size=16).hexdigest(): c for c in found}
        time.sleep(0.05)


def native(tag: str, *messages: bytes, **extra: bytes) -> list[list[tuple[str, bytes]]]:
    return [[("MESSAGE", m), ("SYSLOG_IDENTIFIER", tag.encode()), *extra.items()] for m in messages]


def test_runtime_containers_lines_arrive_whole_in_order_with_metadata(journal: Journal, hw: HW,
                                                                      tmp_path: Path) -> None:
    name = "jsrc" + secrets.token_hex(3)
    script = ('i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo "line $i"; done; echo "to stderr" >&2; '
              'head -c 20000 /dev/zero | tr "\\0" x; echo; printf "\\033[1mbold\\033[0m\\n"; '
              'printf "bad \\377 byte\\n"')
    # detached: the CLI would echo the invalid UTF-8 to a text-mode pipe
    cid = hw("run", "-d", "--name", name, "--label", "app=demo", "--label", "com.example.tier=web", "--log-driver",
             "journald", "--log-opt", f"journald-socket={journal.socket}", "--", "sh", "-c", script,
             check=True).stdout.strip()
    source = make_source(journal, tmp_path / "state", f"CONTAINER_ID_FULL={cid}")
    out = Collector()

    async def main() -> None:
        await source.start(out)
        try:
            await until(lambda: len(out.events) >= 304, "304 events")
        finally:
            await source.stop()

    run(main)
    events = out.events
    Enricher(hw.state_root, tmp_path / "no-docker", background=False).apply(events)
    stdout = [e for e in events if e.stream == "stdout"]
    stderr = [e for e in events if e.stream == "stderr"]
    assert [e.message for e in stdout] == [f"line {i}" for i in range(1, 301)] + [
        "x" * 20000, "\x1b[1mbold\x1b[0m", "bad \ufffd byte"]
    assert [e.message for e in stderr] == ["to stderr"]
    assert {(e.level, e.stream) for e in events} == {("info", "stdout"), ("err", "stderr")}
    for e in events:
        assert (e.container_id, e.container_name, e.image, e.input_type) == (cid, name, "host", "journald")
        assert e.labels == {"app": "demo", "com.example.tier": "web"}
        assert e.fields is not None and e.fields["log.syslog.appname"] == cid[:12]
    times = [e.time_ns for e in stdout]
    assert times == sorted(times) and abs(times[0] / 1e9 - time.time()) < 600
    assert len({e.event_id for e in events}) == len(events) == 304
    assert set(cursors(journal, f"CONTAINER_ID_FULL={cid}")) >= {e.event_id for e in events}


def test_systemd_cat_syslog_and_native_writers(journal: Journal, tmp_path: Path) -> None:
    tag = "hw" + secrets.token_hex(3)
    systemd_cat(journal, tag, "echo out1; echo err1 >&2; printf 'no newline'", tmp_path)
    journal_logger(journal, tag + "-syslog", "via syslog")
    journal_send(journal, *native(tag, b"native \xff", PRIORITY=b"5", CUSTOM_FIELD=b"v"),
                 *native(tag, b"multi\nline"))
    source = make_source(journal, tmp_path / "state", f"SYSLOG_IDENTIFIER={tag}", f"SYSLOG_IDENTIFIER={tag}-syslog")
    out = Collector()

    async def main() -> None:
        await source.start(out)
        try:
            await until(lambda: len(out.events) >= 6, "6 events")
        finally:
            await source.stop()

    run(main)
    by_message = {e.message: e for e in out.events}
    assert len(out.events) == 6
    assert set(by_message) == {"out1", "err1", "no newline", "via syslog", "native \ufffd", "multi\nline"}
    assert (by_message["out1"].level, by_message["err1"].level, by_message["native \ufffd"].level) == (
        "info", "err", "notice")
    transports = {m: (e.fields or {}).get("systemd.transport") for m, e in by_message.items()}
    assert transports == {"out1": "stdout", "err1": "stdout", "no newline": "stdout", "via syslog": "syslog",
                          "native \ufffd": "journal", "multi\nline": "journal"}
    fields = by_message["native \ufffd"].fields or {}
    assert fields["journald.custom.custom_field"] == "v" and fields["log.syslog.appname"] == tag
    assert fields["process.pid"] == os.getpid() and fields["journald.namespace"] == journal.name
    assert all(e.container_id is None and e.stream is None for e in out.events)


def test_a_restart_resumes_just_after_the_delivered_cursor(journal: Journal, tmp_path: Path) -> None:
    tag = "hw" + secrets.token_hex(3)
    state = tmp_path / "state"
    journal_send(journal, *native(tag, *(b"n %d" % i for i in range(300))))
    first = Collector(auto_ack=False)
    s1 = make_source(journal, state, f"SYSLOG_IDENTIFIER={tag}", batch_events=40)
    committed: list[str | None] = []

    async def one() -> None:
        await s1.start(first)
        try:
            await until(lambda: len(first.events) >= 300, "300 events")
            assert len(first.batches) >= 3
            ack2, ack0 = first.batches[2].ack, first.batches[0].ack
            assert ack0 is not None and ack2 is not None
            ack2()  # delivered out of order: nothing may be committed yet
            committed.append(s1.committed)
            ack0()
            committed.append(s1.committed)
        finally:
            await s1.stop()

    run(one)
    by_id = cursors(journal, f"SYSLOG_IDENTIFIER={tag}")
    end_of_first = by_id[first.batches[0].events[-1].event_id]
    assert committed == [None, end_of_first]
    assert s1.checkpoint.path.read_text().strip() == end_of_first
    rest = [e for b in first.batches[1:] for e in b.events]

    second = Collector()
    s2 = make_source(journal, state, f"SYSLOG_IDENTIFIER={tag}", batch_events=40)

    async def two() -> None:
        await s2.start(second)
        try:
            await until(lambda: len(second.events) >= len(rest), "the undelivered rest")
            journal_send(journal, *native(tag, b"sentinel"))
            await until(lambda: second.messages()[-1:] == ["sentinel"], "the sentinel")
        finally:
            await s2.stop()

    run(two)
    assert [(e.message, e.event_id) for e in second.events[:-1]] == [(e.message, e.event_id) for e in rest]

    third = Collector()
    s3 = make_source(journal, state, f"SYSLOG_IDENTIFIER={tag}")

    async def three() -> None:
        await s3.start(third)
        try:
            journal_send(journal, *native(tag, b"later 1", b"later 2"))
            await until(lambda: len(third.events) >= 2, "the later lines")
            journal_send(journal, *native(tag, b"sentinel 2"))
            await until(lambda: third.messages()[-1:] == ["sentinel 2"], "the second sentinel")
        finally:
            await s3.stop()

    run(three)
    assert third.messages() == ["later 1", "later 2", "sentinel 2"]


def test_journalctl_killed_is_restarted_from_the_last_entry_read(journal: Journal, tmp_path: Path) -> None:
    tag = "hw" + secrets.token_hex(3)
    journal_send(journal, *native(tag, *(b"k %d" % i for i in range(100))))
    out = Collector()
    source = make_source(journal, tmp_path / "state", f"SYSLOG_IDENTIFIER={tag}")

    async def main() -> None:
        await source.start(out)
        try:
            await until(lambda: len(out.events) >= 100, "the first 100")
            pid = source.journalctl_pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            await until(lambda: source.restarts == 1 and source.journalctl_pid not in (None, pid),
                        "journalctl's restart")
            journal_send(journal, *native(tag, *(b"k %d" % i for i in range(100, 200))))
            await until(lambda: len(out.events) >= 200, "the next 100")
            await asyncio.sleep(0.3)  # anything read twice would arrive by now
        finally:
            await source.stop()

    run(main)
    assert out.messages() == [f"k {i}" for i in range(200)]


def test_a_blocked_emit_stops_reading(journal: Journal, tmp_path: Path) -> None:
    tag = "hw" + secrets.token_hex(3)
    journal_send(journal, *native(tag, *(b"b %d" % i for i in range(1000))))
    out = Collector()
    source = make_source(journal, tmp_path / "state", f"SYSLOG_IDENTIFIER={tag}", batch_events=10)

    async def main() -> None:
        out.gate = asyncio.Event()
        await source.start(out)
        try:
            await until(lambda: out.calls == 1, "the first emit")
            await asyncio.sleep(0.5)
            assert out.calls == 1 and out.batches == []  # nothing more is read while emit waits
            out.gate.set()
            await until(lambda: len(out.events) >= 1000, "all 1000 once emit returns")
        finally:
            await source.stop()

    run(main)
    assert out.messages() == [f"b {i}" for i in range(1000)]
    assert max(len(b.events) for b in out.batches) <= 10


def test_rejected_entries_are_counted_and_passed_by_the_cursor(journal: Journal, tmp_path: Path) -> None:
    tag = "hw" + secrets.token_hex(3)
    metrics = ShipperMetrics()
    journal_send(journal, *native(tag, b"ok 1", b"x" * 100, b"ok 2", b"y" * 100))
    out = Collector()
    source = make_source(journal, tmp_path / "state", f"SYSLOG_IDENTIFIER={tag}", metrics=metrics,
                         max_message_bytes=50)
    last = list(cursors(journal, f"SYSLOG_IDENTIFIER={tag}", want=4).values())[-1]

    async def main() -> None:
        await source.start(out)
        try:
            await until(lambda: source.committed == last, "the cursor past the rejected last entry")
        finally:
            await source.stop()

    run(main)
    assert out.messages() == ["ok 1", "ok 2"]
    assert metrics.registry.get_sample_value("hostwatch_logshipper_rejected_events_total",
                                             {"source": "journald", "reason": "oversized"}) == 2
    assert source.checkpoint.path.read_text().strip() == last


def docker_entry(cid: str, message: bytes, partial: tuple[str, int, bool] | None = None) -> list[tuple[str, bytes]]:
    fields = [("MESSAGE", message), ("PRIORITY", b"6"), ("CONTAINER_ID", cid[:12].encode()),
              ("CONTAINER_ID_FULL", cid.encode()), ("CONTAINER_NAME", b"p"), ("IMAGE_NAME", b"img")]
    if partial is not None:
        pid, ordinal, last = partial
        fields += [("CONTAINER_PARTIAL_ID", pid.encode()), ("CONTAINER_PARTIAL_ORDINAL", str(ordinal).encode()),
                   ("CONTAINER_PARTIAL_LAST", b"true" if last else b"false")]
        if not last:
            fields.append(("CONTAINER_PARTIAL_MESSAGE", b"true"))
    return fields


def test_a_held_partial_line_is_not_committed_past_and_is_read_again_whole(journal: Journal,
                                                                           tmp_path: Path) -> None:
    a, b = secrets.token_hex(32), secrets.token_hex(32)
    journal_send(journal, docker_entry(a, b"m0"), docker_entry(a, b"a1-", ("pid", 1, False)), docker_entry(b, b"x"),
                 docker_entry(a, b"a2", ("pid", 2, True)))
    state = tmp_path / "state"
    match = (f"CONTAINER_ID_FULL={a}", f"CONTAINER_ID_FULL={b}")
    first = Collector(auto_ack=False)
    s1 = make_source(journal, state, *match, batch_events=1)

    async def one() -> None:
        await s1.start(first)
        try:
            await until(lambda: len(first.events) >= 3, "three events")
            for batch in first.batches[:2]:  # m0 and x delivered; the joined line not
                assert batch.ack is not None
                batch.ack()
        finally:
            await s1.stop()

    run(one)
    assert first.messages() == ["m0", "x", "a1-a2"]
    by_id = cursors(journal, *match)
    assert s1.committed == by_id[first.events[0].event_id]  # m0's: x is after a1, which is still on its way
    second = Collector()
    s2 = make_source(journal, state, *match)

    async def two() -> None:
        await s2.start(second)
        try:
            await until(lambda: len(second.events) >= 2, "x and the joined line again")
        finally:
            await s2.stop()

    run(two)
    assert [(e.message, e.event_id) for e in second.events] == [(e.message, e.event_id) for e in first.events[1:]]


def export_entry(i: int, message: bytes) -> bytes:
    head = (f"__REALTIME_TIMESTAMP={1_700_000_000_000_000 + i}\n__MONOTONIC_TIMESTAMP={1000 + i}\n"
            f"_BOOT_ID=82c26996716a408186d9d55fce7c84ff\nPRIORITY=6\n").encode()
    return head + b"MESSAGE\n" + struct.pack("<Q", len(message)) + message + b"\n\n"


def journal_remote(path: Path, entries: list[bytes]) -> None:
    subprocess.run([JOURNAL_REMOTE, "-o", str(path), "-"], input=b"".join(entries), check=True,
                   capture_output=True, timeout=30)


def test_a_journal_file_is_read_followed_and_resumed(tmp_path: Path) -> None:
    path = tmp_path / "remote.journal"
    journal_remote(path, [export_entry(0, b"f0"), export_entry(1, b"f1 \x01\xff"), export_entry(2, b"f2")])
    state = tmp_path / "state"
    cfg = JournaldConfig(enabled=True, file=path)
    first = Collector()
    s1 = JournaldSource(cfg, ShipperMetrics(), max_message_bytes=1 << 20, state_dir=state)

    async def one() -> None:
        await s1.start(first)
        try:
            await until(lambda: len(first.events) >= 3, "the file's entries")
        finally:
            await s1.stop()

    run(one)
    assert first.messages() == ["f0", "f1 \x01\ufffd", "f2"]
    assert first.events[0].time_ns == 1_700_000_000_000_000_000
    second = Collector()
    s2 = JournaldSource(cfg, ShipperMetrics(), max_message_bytes=1 << 20, state_dir=state)

    async def two() -> None:
        await s2.start(second)
        try:
            await asyncio.to_thread(journal_remote, path, [export_entry(3, b"f3"), export_entry(4, b"f4")])
            await until(lambda: len(second.events) >= 2, "the appended entries")
            await asyncio.sleep(0.3)
        finally:
            await s2.stop()

    run(two)
    assert second.messages() == ["f3", "f4"]
