"""Pure parts of indexing: Kafka records -> bulk actions, and bulk item results -> what to do.

An action's `_id` is the event's `event.id`, so a re-delivered event overwrites itself. The
record value goes to Elasticsearch as it is (no re-serialisation); only @timestamp and event.id
are read from it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from logshipper.indexer.template import IndexNamer

RETRIABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(slots=True)
class Doc:
    """One Kafka record on its way to Elasticsearch."""

    topic: str
    partition: int
    offset: int
    value: bytes
    header: dict[str, Any] | None = None  # the bulk action line; None when the value is unusable
    error: str = ""  # why it cannot be indexed at all (not JSON): straight to the dead letters


def prepare(doc: Doc, namer: IndexNamer, op_type: str = "index") -> Doc:
    try:
        source = orjson.loads(doc.value)
    except orjson.JSONDecodeError as e:
        doc.error = f"invalid JSON: {e}"
        return doc
    if not isinstance(source, dict):
        doc.error = "not a JSON object"
        return doc
    meta: dict[str, Any] = {"_index": namer(_str(source.get("@timestamp")))}
    event = source.get("event")
    eid = event.get("id") if isinstance(event, dict) else None
    if isinstance(eid, str) and eid:
        meta["_id"] = eid[:512]
    doc.header = {op_type: meta}
    return doc


def _str(v: Any) -> str | None:
    return v if isinstance(v, str) else None


def expand(doc: Doc) -> tuple[dict[str, Any], bytes]:
    """helpers.streaming_bulk's expand_action_callback: the prepared header and the raw body."""
    assert doc.header is not None
    return doc.header, doc.value


def outcome(ok: bool, item: dict[str, Any]) -> tuple[str, int, str]:
    """("ok" | "retry" | "dead", status, error) for one bulk item result."""
    result = next(iter(item.values())) if item else {}
    status = result.get("status", 0)
    status = status if isinstance(status, int) else 0
    if ok or 200 <= status < 300:
        return "ok", status, ""
    if status == 409 and next(iter(item), "") == "create":
        return "ok", status, ""  # a data stream already holds this event: a re-delivery, fine
    err = result.get("error")
    text = orjson.dumps(err).decode() if isinstance(err, (dict, list)) else str(err or f"status {status}")
    return ("retry" if status in RETRIABLE_STATUS or status == 0 else "dead"), status, text


def dead_letter(doc: Doc, status: int, error: str, now: float | None = None) -> bytes:
    """The dead-letter record: the original event (as text when it is not JSON), the error and the time."""
    try:
        original: Any = orjson.loads(doc.value)
    except orjson.JSONDecodeError:
        original = doc.value.decode("utf-8", "replace")
    return orjson.dumps({
        "@timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now if now is not None else time.time())),
        "error": {"status": status, "message": error},
        "kafka": {"topic": doc.topic, "partition": doc.partition, "offset": doc.offset},
        "event": {"original": original},
    })
