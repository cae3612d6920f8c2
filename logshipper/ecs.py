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
from datetime import UTC, datetime
from typing import Any

import orjson

from hostwatch.core.events import LogEvent

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
    if event.container_id or event.container_name:
        container: dict[str, Any] = {}
        if event.container_id:
            container["id"] = event.container_id
        if event.container_name:
            container["name"] = event.container_name
        if event.image:
            container["image"] = {"name": event.image}
        if event.labels:
            container["labels"] = {dedot(k): v for k, v in event.labels.items()}
        doc["container"] = container
    if event.fields:
        for k, v in event.fields.items():
            _put(doc, k, v)
    return doc


def encode(event: LogEvent, host_name: str, created_ns: int | None = None, sequence: int | None = None) -> bytes:
    return orjson.dumps(document(event, host_name, created_ns, sequence))
