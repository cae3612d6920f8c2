import gzip
import json
import threading
import time
from pathlib import Path

from runtime import logs


def _line(text: str, stream: str = "stdout") -> bytes:
    return json.dumps({"log": text + "\n", "stream": stream, "time": "2024-01-01T00:00:00Z"}).encode() + b"\n"


def test_read_spans_rotated_files_oldest_first_with_tail(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    Path(f"{path}.2").write_bytes(_line("one") + _line("two"))
    with gzip.open(f"{path}.1.gz", "wb") as f:
        f.write(_line("three", "stderr"))
    path.write_bytes(_line("four") + b"not json\n" + _line("five"))
    entries = logs.read(path)
    assert entries == [("stdout", b"one\n"), ("stdout", b"two\n"), ("stderr", b"three\n"),
                       ("stdout", b"four\n"), ("stdout", b"five\n")]
    assert logs.read(path, tail=2) == entries[-2:]
    assert logs.read(path, tail=0) == []


def test_follow_sees_appends_and_rotation(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    path.write_bytes(_line("old"))
    got: list[bytes] = []
    done = threading.Event()
    t = threading.Thread(target=logs.follow, args=(path, lambda s, d: got.append(d), lambda: not done.is_set(), 0.01))
    t.start()
    time.sleep(0.1)
    with open(path, "ab") as f:
        f.write(_line("new1"))
    time.sleep(0.1)
    path.rename(f"{path}.1")
    path.write_bytes(_line("new2"))
    deadline = time.monotonic() + 5
    while len(got) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    done.set()
    t.join(5)
    assert got == [b"new1\n", b"new2\n"]
