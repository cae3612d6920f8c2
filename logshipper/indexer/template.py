"""The index template installed at start: ECS mappings for the shipper's event shape.

`message` is match_only_text where the server has it (Elasticsearch >= 7.14), else text;
@timestamp is date_nanos (the shipper keeps nanoseconds); every other string is a keyword, so a
Kibana data view `hostwatch-logs-*` on @timestamp works and filters on container.name are exact.
"""

from __future__ import annotations

import time
from typing import Any

KEYWORD = {"type": "keyword", "ignore_above": 1024}


def _kw() -> dict[str, Any]:
    return dict(KEYWORD)


def mappings(message_type: str = "match_only_text") -> dict[str, Any]:
    return {
        "date_detection": False,
        "dynamic_templates": [{"strings_as_keyword": {"match_mapping_type": "string", "mapping": _kw()}}],
        "properties": {
            "@timestamp": {"type": "date_nanos"},
            "message": {"type": message_type},
            "stream": _kw(),
            "event": {"properties": {"id": _kw(), "created": {"type": "date_nanos"}, "sequence": {"type": "long"}}},
            "input": {"properties": {"type": _kw()}},
            "host": {"properties": {"name": _kw()}},
            "log": {"properties": {"level": _kw(), "offset": {"type": "long"},
                                   "file": {"properties": {"path": _kw()}}}},
            "container": {"properties": {"id": _kw(), "name": _kw(), "image": {"properties": {"name": _kw()}},
                                         "labels": {"type": "object", "dynamic": True}}},
        },
    }


def index_pattern(index: str) -> str:
    """The wildcard a pattern's indices match: hostwatch-logs-%Y.%m.%d -> hostwatch-logs-*."""
    head = index.split("%", 1)[0]
    return head + "*" if "%" in index else index


def template_body(index: str, data_stream: bool, message_type: str = "match_only_text") -> dict[str, Any]:
    body: dict[str, Any] = {
        "index_patterns": [index_pattern(index)],
        "priority": 200,
        "template": {"settings": {"index": {"mapping": {"total_fields": {"limit": 10000}}}},
                     "mappings": mappings(message_type)},
        "_meta": {"managed_by": "hostwatch"},
    }
    if data_stream:
        body["data_stream"] = {}
    return body


def template_name(index: str) -> str:
    return index_pattern(index).rstrip("*-.") or "hostwatch-logs"


class IndexNamer:
    """`@timestamp` (RFC 3339, UTC) -> the index it belongs in, with a per-day cache."""

    def __init__(self, pattern: str, data_stream: bool = False) -> None:
        self.pattern = pattern
        self.fixed = pattern if data_stream or "%" not in pattern else None
        self._cache: dict[str, str] = {}

    def __call__(self, timestamp: str | None) -> str:
        if self.fixed is not None:
            return self.fixed
        day = (timestamp or "")[:10]
        name = self._cache.get(day)
        if name is None:
            try:
                t = time.strptime(day, "%Y-%m-%d")
            except ValueError:
                t = time.gmtime()  # no usable @timestamp: today's index (the document then fails or lands)
            name = time.strftime(self.pattern, t)
            if len(self._cache) > 1000:
                self._cache.clear()
            self._cache[day] = name
        return name
