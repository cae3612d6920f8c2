"""Nothing lost, nothing duplicated under another id: the shipper SIGKILLed at random moments while a
container writes 200,000 numbered lines with rotation (by rename, as Docker does, and by
copytruncate, as logrotate does), and a broker outage mid-stream."""

from __future__ import annotations

import os
import random
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from hostwatch_cli import HW
from peers import HostwatchProcess, NoidaDB, Tansu, read_topic

pytestmark = pytest.mark.integration

TOTAL = 200_000
WRITER = ("import sys, time\n"
          f"for i in range(1, {TOTAL} + 1):\n"
          "    sys.stdout.write(f'n={i}\\n')\n"
          "    if i % 2000 == 0:\n"
          "        sys.stdout.flush(); time.sleep(0.05)\n")


def ship_process(tmp: Path, bootstrap: str, topic: str, glob: str) -> HostwatchProcess:
    return HostwatchProcess("ship", ["ship", "--kafka.brokers", bootstrap, "--kafka.topic", topic,
                                     "--docker.logs-glob", glob, "--state.dir", str(tmp / "ship-state"),
                                     "--forward.enabled", "false", "--gelf.enabled", "false",
                                     "--web.listen-address", "127.0.0.1:0"], tmp)


@pytest.fixture(scope="module", params=["noida", "tansu"])
def kafka(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Both Kafka peers for the shipper crashes (the broker stays up). The broker outage runs on
    noida-db alone: tansu keeps topics in memory, so a restarted tansu has lost everything."""
    peer = NoidaDB(tmp_path_factory.mktemp("noida")) if request.param == "noida" else Tansu(
        tmp_path_factory.mktemp("tansu"))
    with peer:
        yield peer


def read_all(bootstrap: str, topic: str, total: int, timeout: float = 120) -> list[Any]:
    """Every record, re-read until each of 1..total was seen (re-sent lines make more than total)."""
    deadline = time.monotonic() + timeout
    while True:
        records = read_topic(bootstrap, topic, None, timeout=max(5.0, deadline - time.monotonic()))
        numbers = {int(orjson.loads(r.value)["message"].removeprefix("n=")) for r in records}
        if len(numbers) >= total or time.monotonic() > deadline:
            return records
        time.sleep(1)


def check_every_number_once_per_id(records: list[Any], total: int) -> None:
    ids: dict[int, set[str]] = {}
    for r in records:
        doc = orjson.loads(r.value)
        n = int(doc["message"].removeprefix("n="))
        ids.setdefault(n, set()).add(doc["event"]["id"])
    missing = [n for n in range(1, total + 1) if n not in ids]
    assert not missing, f"{len(missing)} numbers missing, first {missing[:10]}"
    assert set(ids) == set(range(1, total + 1))
    split = {n: v for n, v in ids.items() if len(v) > 1}
    assert not split, f"re-sent lines under another event.id: {list(split.items())[:5]}"


def kill_randomly(ship: HostwatchProcess, times: int, rng: random.Random, window: float) -> None:
    for _ in range(times):
        time.sleep(rng.uniform(0.3, window / times))
        ship.kill()
        ship.start()


def test_sigkill_during_rename_rotation(kafka: Any, hw: HW, tmp_path: Path) -> None:
    topic = f"crash-rename-{time.monotonic_ns()}"
    with ship_process(tmp_path, kafka.bootstrap, topic, f"{hw.state_root}/*/*-json.log*") as ship:
        hw("run", "-d", "--name", "writer", "--log-opt", "max-size=1500k", "--log-opt", "max-file=20",
           "--", sys.executable, "-c", WRITER, check=True)
        kill_randomly(ship, 5, random.Random(os.getpid()), window=8.0)
        deadline = time.monotonic() + 120
        while hw.inspect("writer")["State"]["Running"] and time.monotonic() < deadline:
            time.sleep(0.2)
        log_dir = Path(hw.inspect("writer")["LogPath"]).parent
        assert len(list(log_dir.glob("*-json.log.*"))) >= 8, "expected ~10 rotations"
        records = read_all(kafka.bootstrap, topic, TOTAL)
        assert ship.kills == 5
        check_every_number_once_per_id(records, TOTAL)


def docker_line(i: int) -> bytes:
    t = time.time_ns()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t // 10**9)) + f".{t % 10**9:09d}Z"
    return orjson.dumps({"log": f"n={i}\n", "stream": "stdout", "time": stamp}) + b"\n"


def copytruncate(path: Path, keep: int) -> None:
    """logrotate's copytruncate: shift .1.. up, copy the live file to .1, truncate it in place."""
    for k in range(keep - 1, 0, -1):
        older = path.with_name(f"{path.name}.{k}")
        if older.exists():
            older.rename(path.with_name(f"{path.name}.{k + 1}"))
    shutil.copyfile(path, path.with_name(f"{path.name}.1"))
    with open(path, "r+b") as f:
        f.truncate(0)


def test_sigkill_during_copytruncate_rotation(kafka: Any, tmp_path: Path) -> None:
    cid = "d" * 64
    log = tmp_path / "docker" / cid / f"{cid}-json.log"
    log.parent.mkdir(parents=True)
    topic = f"crash-copytruncate-{time.monotonic_ns()}"
    rng = random.Random(os.getpid() + 1)
    kill_at = sorted(rng.sample(range(5_000, TOTAL), 5))
    with ship_process(tmp_path, kafka.bootstrap, topic, f"{tmp_path}/docker/*/*-json.log*") as ship:
        with open(log, "ab", buffering=0) as f:
            chunk = []
            for i in range(1, TOTAL + 1):
                chunk.append(docker_line(i))
                if i % 2000 == 0:
                    f.write(b"".join(chunk))
                    chunk.clear()
                    time.sleep(0.05)
                if i % 20_000 == 0:
                    copytruncate(log, keep=20)  # O_APPEND: later writes land at the new end (0)
                if kill_at and i >= kill_at[0]:
                    kill_at.pop(0)
                    ship.kill()
                    ship.start()
        records = read_all(kafka.bootstrap, topic, TOTAL)
        assert ship.kills == 5
        check_every_number_once_per_id(records, TOTAL)


def test_broker_outage_loses_nothing(hw: HW, tmp_path: Path) -> None:
    """A broker of its own: noida-db persists on shutdown, and with the other tests' 600k records its
    stop outlasts the peer's 10 s grace, so the SIGKILL after it loses what the broker had acked."""
    topic = f"outage-{time.monotonic_ns()}"
    total = 30_000
    slow = WRITER.replace(str(TOTAL), str(total)).replace("i % 2000", "i % 100").replace("0.05", "0.1")
    with NoidaDB(tmp_path / "outage-noida") as kafka, \
            ship_process(tmp_path, kafka.bootstrap, topic, f"{hw.state_root}/*/*-json.log*") as ship:
        hw("run", "-d", "--name", "steady", "--", sys.executable, "-c", slow, check=True)
        time.sleep(1.5)
        kafka.restart(down_for=20)
        records = read_all(kafka.bootstrap, topic, total)
        check_every_number_once_per_id(records, total)
        assert ship.proc is not None and ship.proc.poll() is None
