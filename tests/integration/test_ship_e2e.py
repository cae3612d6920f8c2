"""`hostwatch ship` end to end: runtime containers with each log driver, and fluent-logger as an
outside client, into real Kafka (noida-db, and tansu), read back record by record."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fluent import sender

from hostwatch_cli import HW
from peers import (
    HostwatchProcess,
    Journal,
    NoidaDB,
    Tansu,
    free_port,
    journald_kept_alive,
    namespaced_journald,
    read_topic,
)

pytestmark = pytest.mark.integration

LINES = 200
# tab, quotes, HTML-ish and non-ASCII: Docker escapes these in json-file; each must arrive as written
WRITE = (f"i=1; while [ $i -le {LINES} ]; do printf 'n=%d\\t\"q\" <x> & \\303\\274\\n' $i; "
         "[ $((i % 2)) -eq 0 ] && printf 'e=%d\\n' $i >&2; i=$((i+1)); done")


def expected(i: int) -> str:
    return f'n={i}\t"q" <x> & ü'


class Shipper(HostwatchProcess):
    """`hostwatch ship` with every source on, started once it says it is shipping."""

    def __init__(self, tmp: Path, bootstrap: str, topic: str, state_root: Path, journal: Journal) -> None:
        self.forward_port, self.gelf_port = free_port(), free_port()
        super().__init__("ship", [
            "ship", "--kafka.brokers", bootstrap, "--kafka.topic", topic,
            "--docker.logs-glob", f"{state_root}/*/*-json.log*", "--state.dir", str(tmp / "ship-state"),
            "--journald.enabled", "true", "--journald.namespace", journal.name,
            "--forward.listen-address", f"127.0.0.1:{self.forward_port}",
            "--gelf.listen-address", f"127.0.0.1:{self.gelf_port}", "--web.listen-address", "127.0.0.1:0",
        ], tmp, env=dict(os.environ, HOSTWATCH_STATE_ROOT=str(state_root)))

    def start(self) -> Shipper:
        super().start()
        self.wait_for(b"shipping to Kafka")
        return self


@pytest.fixture(scope="module", params=["noida", "tansu"])
def kafka(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    peer = NoidaDB(tmp_path_factory.mktemp("noida")) if request.param == "noida" else Tansu(
        tmp_path_factory.mktemp("tansu"))
    with peer:
        yield peer


@pytest.fixture(scope="module")
def journal() -> Iterator[Journal]:
    with namespaced_journald() as j, journald_kept_alive(j):
        yield j


def ours_only(record: dict[str, Any], ids: set[str]) -> bool:
    """This run's containers (by id: the module's journal still holds the other peer's run) and client."""
    if "container" in record:
        return record["container"].get("id") in ids
    return (record.get("fluent") or {}).get("tag") == "app.outside.line"  # FluentSender joins tag + label


def by_container(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        out.setdefault((r.get("container") or {}).get("name", ""), []).append(r)
    return out


def test_every_driver_and_fluent_logger_arrive_exactly(kafka: Any, journal: Journal, hw: HW, tmp_path: Path,
                                                       busybox_rootfs: Path) -> None:
    topic = f"e2e-{os.getpid()}-{time.monotonic_ns()}"
    with Shipper(tmp_path, kafka.bootstrap, topic, hw.state_root, journal) as ship:
        drivers = {
            "jf": ["--log-driver", "json-file"],
            "jd": ["--log-driver", "journald", "--log-opt", f"journald-socket={journal.socket}"],
            "fd": ["--log-driver", "fluentd", "--log-opt", f"fluentd-address=127.0.0.1:{ship.forward_port}"],
            "gf": ["--log-driver", "gelf", "--log-opt", f"gelf-address=udp://127.0.0.1:{ship.gelf_port}"],
        }
        ids = {}
        for name, flags in drivers.items():
            hw("run", "--name", name, "--label", "app=e2e", *flags, "--rootfs", str(busybox_rootfs), "--",
               "sh", "-c", WRITE, check=True)
            ids[name] = hw.inspect(name)["Id"]
        client = sender.FluentSender("app.outside", host="127.0.0.1", port=ship.forward_port)
        for i in range(1, LINES + 1):
            assert client.emit("line", {"message": expected(i), "n": i}), client.last_error
        client.close()
        want = 4 * (LINES + LINES // 2) + LINES
        deadline = time.monotonic() + 60
        while True:  # the journal adds its own entries ("Journal started"): count ours
            raw = read_topic(kafka.bootstrap, topic, None, idle=3)
            records = [orjson.loads(r.value) | {"_partition": r.partition, "_key": r.key} for r in raw]
            ours = [r for r in records if ours_only(r, set(ids.values()))]
            if len(ours) >= want or time.monotonic() > deadline:
                break
        assert len(ours) == want, (len(ours), ship.log.read_text()[-3000:])
        groups = by_container(ours)
        for name, cid in ids.items():
            mine = groups[name]
            out = [r["message"] for r in mine if r["message"].startswith("n=")]
            err = [r["message"] for r in mine if r["message"].startswith("e=")]
            where = {(r["_partition"], r["_key"], r["input"]["type"]) for r in mine}
            assert out == [expected(i) for i in range(1, LINES + 1)], (name, where)
            assert err == [f"e={i}" for i in range(2, LINES + 1, 2)], name
            for r in mine:
                assert r["container"]["id"] == cid and r["container"]["image"]["name"] == "busybox", (name, r)
                assert r["container"]["labels"] == {"app": "e2e"}, (name, r)
                assert r["input"]["type"] in ("docker_json", "journald", "fluent_forward", "gelf")
            assert len({r["event"]["id"] for r in mine}) == len(mine), name
        outside = [r for r in ours if "container" not in r]
        assert [r["message"] for r in outside] == [expected(i) for i in range(1, LINES + 1)]
