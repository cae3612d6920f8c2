"""The event shape in Kafka: one ECS JSON document per record (README "Log events").

{"@timestamp": "2026-12-01T08:00:00.123456789Z", "message": "...",
 "event": {"id": "...", "created": "...", "sequence": 1796112000123456789},
 "input": {"type": "docker_json"}, "stream": "stdout",
 "log": {"level": "err", "file": {"path": "..."}, "offset": 1234},
 "container": {"id": "...", "name": "web", "image": {"name": "busybox"}, "labels": {"app": "web"}},
 "host": {"name": "node-1"}}

Label keys are de-dotted (`com.docker.compose.service` -> `com_docker_compose_service`), as
Filebeat's add_docker_metadata does, so Elasticsearch maps each label as one keyword field.
Keys with no value are left out.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from hostwatch.core.events import DOCKER_JSON, LogEvent
from logshipper import _fastpath

if TYPE_CHECKING:
    from logshipper.codecs.dockerjson_lines import LineBatch

_SECOND_CACHE: dict[int, str] = {}


def timestamp(ns: int) -> str:
    """RFC 3339 in UTC with all nine fractional digits (Elasticsearch date_nanos keeps them)."""
    secs, frac = divmod(ns, 1_000_000_000)
    base = _SECOND_CACHE.get(secs)
    if base is None:
        if len(_SECOND_CACHE) > 4096:
            _SECOND_CACHE.clear()
        base = _SECOND_CACHE[secs] = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{frac:09d}Z"


def dedot(key: str) -> str:
    return key.replace(".", "_")


def _put(doc: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    cur = doc
    for p in parts[:-1]:
        nxt = cur.get(p)
        if not isinstance(nxt, dict):
            nxt = cur[p] = {}
        cur = nxt
    cur[parts[-1]] = value


def document(event: LogEvent, host_name: str, created_ns: int | None = None,
             sequence: int | None = None) -> dict[str, Any]:
    """`sequence` is ECS event.sequence: the shipper's increasing count, to order equal timestamps."""
    ev: dict[str, Any] = {"id": event.event_id, "created": timestamp(created_ns or time.time_ns())}
    if sequence is not None:
        ev["sequence"] = sequence
    doc: dict[str, Any] = {
        "@timestamp": timestamp(event.time_ns),
        "message": event.message,
        "event": ev,
        "input": {"type": event.input_type},
        "host": {"name": host_name},
    }
    if event.stream:
        doc["stream"] = event.stream
    log: dict[str, Any] = {}
    if event.level:
        log["level"] = event.level
    if event.file_path:
        log["file"] = {"path": event.file_path}
    if event.offset is not None:
        log["offset"] = event.offset
    if log:
        doc["log"] = log
    container = _container(event.container_id, event.container_name, event.image, event.labels)
    if container is not None:
        doc["container"] = container
    if event.fields:
        for k, v in event.fields.items():
            _put(doc, k, v)
    return doc


def _container(cid: str | None, name: str | None, image: str | None,
               labels: Mapping[str, str] | None) -> dict[str, Any] | None:
    if not (cid or name):
        return None
    container: dict[str, Any] = {}
    if cid:
        container["id"] = cid
    if name:
        container["name"] = name
    if image:
        container["image"] = {"name": image}
    if labels:
        container["labels"] = {dedot(k): v for k, v in labels.items()}
    return container


def encode(event: LogEvent, host_name: str, created_ns: int | None = None, sequence: int | None = None) -> bytes:
    return orjson.dumps(document(event, host_name, created_ns, sequence))


def line_template_parts(input_type: str, host_name: str, stream: str | None, path: str, fingerprint: str,
                        created: str, container: dict[str, Any] | None) -> tuple[bytes, ...]:
    """The document `document()` makes for one line of a LineBatch, as the six constant parts around
    (@timestamp, message JSON, offset, sequence, offset): joined with those, the same bytes orjson
    gives for that document."""
    dumps = orjson.dumps
    tail = [b'","created":', dumps(created), b',"sequence":']
    after_seq = [b'},"input":{"type":', dumps(input_type), b'},"host":{"name":', dumps(host_name), b"}"]
    if stream:
        after_seq += [b',"stream":', dumps(stream)]
    after_seq.append(b',"log":{')
    if path:
        after_seq += [b'"file":{"path":', dumps(path), b"},"]
    after_seq.append(b'"offset":')
    end = [b"}"]
    if container is not None:
        end += [b',"container":', dumps(container)]
    end.append(b"}")
    return (b'{"@timestamp":"', b'","message":', b',"event":{"id":' + dumps(fingerprint + ":")[:-1],
            b"".join(tail), b"".join(after_seq), b"".join(end))


def render_lines(batch: LineBatch, host_name: str, created_ns: int, sequence: int, container_id: str | None,
                 container_name: str | None = None, image: str | None = None,
                 labels: Mapping[str, str] | None = None) -> list[bytes]:
    """Each line's record value: what `encode` gives for the LogEvent `batch.events` would hold, with
    `sequence` counting up from the first line (and the container metadata the enricher found), written
    by logshipper._fastpath.render."""
    ref = batch.ref
    container = _container(container_id, container_name, image, labels)
    created = timestamp(created_ns)
    streams = batch.streams
    parts = {st: line_template_parts(DOCKER_JSON, host_name, st, ref.path, ref.fingerprint, created, container)
             for st in set(streams)}
    return _fastpath.render(parts, streams, batch.times, batch.messages, batch.offsets, sequence)
