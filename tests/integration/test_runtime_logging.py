"""Containers' output through each log driver, end to end: container -> monitor -> driver -> real peer."""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path

from hostwatch_cli import HW
from peers import ForwardReceiver, UdpReceiver, decompress, namespaced_journald

TIME_RE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z"


def test_json_file_lines_are_dockers_bytes(hw: HW, busybox_rootfs: Path) -> None:
    script = r"""printf 'plain\n'; printf 'tab\there <a> & "q" \\ end\n'; printf 'to stderr\n' >&2"""
    cid = hw("run", "--name", "jf", "--rootfs", str(busybox_rootfs), "--", "sh", "-c", script,
             check=True).stdout and hw.inspect("jf")["Id"]
    log_path = Path(hw.inspect("jf")["LogPath"])
    assert log_path == hw.state_root / cid / f"{cid}-json.log"
    lines = log_path.read_bytes().splitlines(keepends=True)
    expected_bodies = [
        b'{"log":"plain\\n","stream":"stdout","time":"',
        b'{"log":"tab\\u0009here \\u003ca\\u003e \\u0026 \\"q\\" \\\\ end\\n","stream":"stdout","time":"',
    ]
    stdout_lines = [ln for ln in lines if b'"stream":"stdout"' in ln]
    assert len(stdout_lines) == 2
    for line, body in zip(stdout_lines, expected_bodies, strict=True):
        assert line.startswith(body), line
        assert re.fullmatch(TIME_RE, line[len(body):].decode().removesuffix('"}\n')), line
    [err] = [ln for ln in lines if b'"stream":"stderr"' in ln]
    assert err.startswith(b'{"log":"to stderr\\n","stream":"stderr","time":"')


def test_long_line_is_split_at_16k_and_logs_reassembles(hw: HW) -> None:
    hw("run", "--name", "long", "--", "sh", "-c", "head -c 20000 /dev/zero | tr '\\0' x; echo", check=True)
    log_path = Path(hw.inspect("long")["LogPath"])
    entries = [json.loads(line) for line in log_path.read_bytes().splitlines()]
    assert [len(e["log"]) for e in entries] == [16384, 20000 - 16384 + 1]
    assert not entries[0]["log"].endswith("\n") and entries[1]["log"].endswith("\n")
    assert hw("logs", "long", check=True).stdout == "x" * 20000 + "\n"


def test_rotation_keeps_every_line(hw: HW) -> None:
    hw("run", "--name", "rot", "--log-opt", "max-size=2k", "--log-opt", "max-file=200", "--", "sh", "-c",
       "i=0; while [ $i -lt 600 ]; do i=$((i+1)); echo line-$i; done", check=True)
    log_path = Path(hw.inspect("rot")["LogPath"])
    assert Path(f"{log_path}.1").exists() and Path(f"{log_path}.5").exists()
    assert hw("logs", "rot", check=True).stdout.split() == [f"line-{i}" for i in range(1, 601)]


def test_fluentd_driver_sends_dockers_record_shape(hw: HW) -> None:
    receiver = ForwardReceiver()
    try:
        cid = hw("run", "-d", "--name", "fl", "--log-driver", "fluentd", "--log-opt",
                 f"fluentd-address={receiver.address}", "--", "sh", "-c", "echo one; echo two >&2",
                 check=True).stdout.strip()
        entries = receiver.wait_for(2)
    finally:
        receiver.close()
    assert len(entries) == 2
    by_source = {e[2]["source"]: e for e in entries}
    tag, ts, record = by_source["stdout"][:3]
    assert tag == cid[:12]
    assert isinstance(ts, int) and abs(ts - time.time()) < 60
    assert record == {"container_id": cid, "container_name": "/fl", "source": "stdout", "log": "one"}
    assert by_source["stderr"][2]["log"] == "two"
    logs = hw("logs", "fl", check=True)  # read back from the dual-logging cache, as `docker logs` does
    assert (logs.stdout, logs.stderr) == ("one\n", "two\n")
    assert hw.inspect("fl")["LogPath"] == ""


def test_gelf_driver_over_udp_chunks_and_compresses(hw: HW) -> None:
    udp = UdpReceiver()
    try:
        # 3000 random bytes as hex: incompressible enough to need several 1420-byte chunks
        cid = hw("run", "--name", "gl", "--log-driver", "gelf", "--log-opt", f"gelf-address={udp.address}",
                 "--", "sh", "-c", "echo short; head -c 3000 /dev/urandom | od -An -tx1 -v | tr -d ' \\n'; echo",
                 check=True) and hw.inspect("gl")["Id"]
        first = decompress(udp.message())
        second_raw = udp.message()
    finally:
        udp.sock.close()
    assert first["short_message"] == "short" and first["level"] == 6 and first["version"] == "1.1"
    assert first["_container_id"] == cid and first["_container_name"] == "gl" and first["_image_name"] == "host"
    assert first["host"] == socket.gethostname()
    assert sum(1 for d in udp.datagrams if d[:2] == b"\x1e\x0f") >= 2  # the long line came chunked
    assert second_raw[:2] == b"\x1f\x8b"  # gzip by default
    assert len(decompress(second_raw)["short_message"]) == 6000


def test_journald_driver_entries_carry_dockers_fields(hw: HW) -> None:
    with namespaced_journald() as journal:
        cid = hw("run", "--name", "jd", "--log-driver", "journald", "--log-opt",
                 f"journald-socket={journal.socket}", "--", "sh", "-c", "echo out-line; echo err-line >&2",
                 check=True) and hw.inspect("jd")["Id"]
        entries = journal.entries(2, cid)
    assert len(entries) == 2
    by_msg = {e["MESSAGE"]: e for e in entries}
    out, err = by_msg["out-line"], by_msg["err-line"]
    assert out["PRIORITY"] == "6" and err["PRIORITY"] == "3"
    assert out["CONTAINER_ID"] == cid[:12] and out["CONTAINER_ID_FULL"] == cid
    assert out["CONTAINER_NAME"] == "jd" and out["IMAGE_NAME"] == "host"
    assert out["CONTAINER_TAG"] == cid[:12] and out["SYSLOG_IDENTIFIER"] == cid[:12]


def test_unreachable_log_endpoint_never_blocks_the_container(hw: HW) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the with-block ends: nothing listens there
    proc = hw("run", "--name", "lost", "--log-driver", "fluentd", "--log-opt", f"fluentd-address=127.0.0.1:{port}",
              "--", "sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); echo line-$i; done; exit 7")
    assert proc.returncode == 7
    doc = hw.inspect("lost")
    assert doc["State"]["Status"] == "exited"
    assert doc["HostwatchLogDropped"] > 0
    # what fluentd never got is still on the host, in the local cache
    assert hw("logs", "lost", check=True).stdout.split() == [f"line-{i}" for i in range(1, 20001)]
    hw("run", "--name", "nocache", "--log-driver", "fluentd", "--log-opt", f"fluentd-address=127.0.0.1:{port}",
       "--log-opt", "cache-disabled=true", "--", "true", check=True)
    unreadable = hw("logs", "nocache")
    assert unreadable.returncode == 1 and "does not support reading" in unreadable.stderr
