"""The shipper's docker_json column path: the records it buffers are the ones the event path makes for the
same lines (enriched from Docker's metadata), counted, keyed, topic-templated and acked alike."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from hostwatch.core.config import with_values
from hostwatch.core.events import Batch
from hostwatch.core.timefmt import rfc3339_nano
from logshipper.buffer import MemoryBuffer
from logshipper.buffer.base import RecordBatch
from logshipper.codecs import dockerjson as dj
from logshipper.codecs.dockerjson_lines import LineBatch, decode_chunk
from logshipper.config import ShipperConfig
from logshipper.pipeline import Shipper

DID = "d4" * 32
NS = 1_700_000_000_000_000_000


def write_docker(docker_root: Path, cid: str, name: str, image: str, labels: dict[str, str]) -> None:
    (docker_root / cid).mkdir(parents=True, exist_ok=True)
    doc = {"ID": cid, "Name": "/" + name, "Config": {"Image": image, "Labels": labels},
           "State": {"Running": True, "Pid": 1}, "HostConfig": {}}
    (docker_root / cid / "config.v2.json").write_text(json.dumps(doc))


def make_shipper(tmp_path: Path, **values: Any) -> Shipper:
    config = with_values(ShipperConfig(), {"kafka.brokers": "127.0.0.1:9", "state.dir": str(tmp_path / "state"),
                                           "host_name": "node-1", "buffer.type": "memory", **values})
    write_docker(tmp_path / "docker", DID, "web", "busybox:1", {"app": "web", "com.example.tier": "front"})
    (tmp_path / "runtime").mkdir(exist_ok=True)
    shipper = Shipper(config, sources=[], state_root_dir=tmp_path / "runtime", docker_root=tmp_path / "docker")
    shipper.buffer = MemoryBuffer(config.buffer, shipper.metrics)
    return shipper


def chunk(ref: dj.FileRef, n: int = 30) -> tuple[LineBatch, list[bytes]]:
    data = b"".join(json.dumps({"log": f"GET /{i} \"ok\" 50%\n", "stream": "stderr" if i % 4 else "stdout",
                                "time": rfc3339_nano(ns=NS + i * 10 ** (i % 10))}).encode() + b"\n" for i in range(n))
    lines, _ = dj.split_lines(data)
    batch = decode_chunk(lines, 500, ref, dj.Joiner(1 << 20), Counter())
    assert isinstance(batch, LineBatch)
    return batch, lines


def without_batch_times(values: list[bytes]) -> list[dict[str, Any]]:
    """The documents without event.created and event.sequence (they differ from one encoding to the next)."""
    docs = [orjson.loads(v) for v in values]
    for d in docs:
        del d["event"]["created"], d["event"]["sequence"]
    return docs


async def pop_values(shipper: Shipper) -> tuple[RecordBatch, list[bytes]]:
    assert shipper.buffer is not None
    got = await asyncio.wait_for(shipper.buffer.pop(), 5)
    return got, [v for run in got.runs for v in run.values]


def test_columns_become_the_records_the_event_path_makes(tmp_path: Path) -> None:
    ref = dj.FileRef("0123456789abcdef", str(tmp_path / "docker" / DID / f"{DID}-json.log"), DID)
    acks: list[str] = []

    async def body() -> tuple[RecordBatch, list[bytes], list[bytes], float]:
        shipper = make_shipper(tmp_path)
        batch, lines = chunk(ref)
        batch.ack = lambda: acks.append("columns")
        await shipper.emit(batch)
        got, fast = await pop_values(shipper)
        events = dj.decode_lines(lines, 500, ref, dj.Joiner(1 << 20), Counter())
        await shipper.emit(Batch(events, lambda: acks.append("events"), "docker_json"))
        _, slow = await pop_values(shipper)
        assert shipper.buffer is not None
        shipper.buffer.release(got)
        received = shipper.metrics.registry.get_sample_value("hostwatch_logshipper_received_events_total",
                                                             {"source": "docker_json"})
        return got, fast, slow, received or 0.0

    got, fast, slow, received = asyncio.run(body())
    assert without_batch_times(fast) == without_batch_times(slow)
    first = orjson.loads(fast[0])
    assert first["container"] == {"id": DID, "name": "web", "image": {"name": "busybox:1"},
                                  "labels": {"app": "web", "com_example_tier": "front"}}
    assert first["log"] == {"file": {"path": ref.path}, "offset": 500}
    assert first["event"]["id"] == "0123456789abcdef:500"
    sequences = [orjson.loads(v)["event"]["sequence"] for v in fast]
    assert sequences == list(range(sequences[0], sequences[0] + 30))
    assert [(r.topic, r.key) for r in got.runs] == [("hostwatch-logs", DID.encode())]
    assert got.oldest_ns == NS and len(got) == 30 and got.nbytes == sum(map(len, fast)) + 30 * (64 + 14)
    assert acks == ["columns"] and received == 60


def test_a_topic_template_and_a_file_outside_dockers_layout(tmp_path: Path) -> None:
    async def body() -> tuple[RecordBatch, list[bytes]]:
        shipper = make_shipper(tmp_path, **{"kafka.topic": "logs-{labels.app|none}"})
        await shipper.emit(chunk(dj.FileRef("ab", "/var/log/app-json.log", DID))[0])
        await shipper.emit(chunk(dj.FileRef("cd", "/var/log/other-json.log", None))[0])
        first = await pop_values(shipper)
        return (await pop_values(shipper))[0], first[1]

    no_container, enriched = asyncio.run(body())
    assert orjson.loads(enriched[0])["container"]["name"] == "web"
    assert [(r.topic, r.key) for r in no_container.runs] == [("logs-none", None)]
    assert "container" not in orjson.loads(no_container.runs[0].values[0])


def test_with_multiline_on_columns_go_through_the_events(tmp_path: Path) -> None:
    ref = dj.FileRef("0123456789abcdef", "/x/x-json.log", DID)

    async def body() -> tuple[LineBatch, list[bytes], list[bytes]]:
        shipper = make_shipper(tmp_path, **{"multiline.enabled": True})
        assert shipper.multiline is not None
        await shipper.multiline.start()
        batch, lines = chunk(ref)
        await shipper.emit(batch)
        _, fast = await pop_values(shipper)
        await shipper.emit(Batch(dj.decode_lines(lines, 500, ref, dj.Joiner(1 << 20), Counter()), None, "docker_json"))
        _, slow = await pop_values(shipper)
        await shipper.multiline.stop()
        return batch, fast, slow

    batch, fast, slow = asyncio.run(body())
    assert not batch.columnar  # the transform had the LogEvents
    assert without_batch_times(fast) == without_batch_times(slow) and len(fast) == 30
