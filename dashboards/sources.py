"""The two datasources a dashboard reads, through their HTTP APIs (as Grafana does): Prometheus's
/api/v1 (query, query_range, label values) and Elasticsearch's _search with a date_histogram."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

TIMEOUT = 30.0


class SourceError(Exception):
    """A datasource refused a query or could not be reached (the message says which and why)."""


def _request(url: str, body: bytes | None = None, content_type: str = "application/x-www-form-urlencoded") -> Any:
    req = urllib.request.Request(url, data=body, headers={"Content-Type": content_type} if body else {})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        detail = e.read().decode(errors="replace")[:500]
        raise SourceError(f"{url.split('?')[0]}: HTTP {e.code}: {detail}") from None
    except (OSError, ValueError) as e:
        raise SourceError(f"{url.split('?')[0]}: {e}") from None


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float]]  # (unix time, value); NaN values kept out


def _series(result: list[dict[str, Any]]) -> list[Series]:
    out = []
    for r in result:
        raw = r.get("values") or ([r["value"]] if "value" in r else [])
        points = [(float(t), float(v)) for t, v in raw if v not in ("NaN", "+Inf", "-Inf")]
        out.append(Series(dict(r.get("metric") or {}), points))
    return out


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _api(self, path: str, params: list[tuple[str, str]], post: bool = True) -> Any:
        query = urllib.parse.urlencode(params)
        body = (_request(f"{self.url}/api/v1/{path}", query.encode()) if post
                else _request(f"{self.url}/api/v1/{path}?{query}"))
        if body.get("status") != "success":
            raise SourceError(f"Prometheus {path}: {body.get('error', body)}")
        return body["data"]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        data = self._api("query_range", [("query", expr), ("start", f"{start:.3f}"), ("end", f"{end:.3f}"),
                                         ("step", f"{step:g}")])
        return _series(data["result"])

    def query(self, expr: str, at: float) -> list[Series]:
        data = self._api("query", [("query", expr), ("time", f"{at:.3f}")])
        if data.get("resultType") == "scalar":
            return [Series({}, [(float(data["result"][0]), float(data["result"][1]))])]
        return _series(data["result"])

    def label_values(self, label: str, match: str, start: float, end: float) -> list[str]:
        data = self._api(f"label/{urllib.parse.quote(label)}/values",
                         [("match[]", match), ("start", f"{start:.3f}"), ("end", f"{end:.3f}")], post=False)
        return sorted(str(v) for v in data)


class Elasticsearch:
    def __init__(self, url: str, index: str) -> None:
        self.url = url.rstrip("/")
        self.index = index

    def count_histogram(self, lucene: str, start: float, end: float, interval_s: int) -> Series:
        """Documents matching `lucene` per `interval_s` bucket of @timestamp (Grafana's count metric)."""
        body = {
            "size": 0,
            "query": {"bool": {"filter": [
                {"range": {"@timestamp": {"gte": int(start * 1000), "lte": int(end * 1000), "format": "epoch_millis"}}},
                {"query_string": {"query": lucene or "*", "analyze_wildcard": True}},
            ]}},
            "aggs": {"h": {"date_histogram": {"field": "@timestamp", "fixed_interval": f"{interval_s}s",
                                              "min_doc_count": 0}}},
        }
        url = f"{self.url}/{urllib.parse.quote(self.index)}/_search?ignore_unavailable=true&allow_no_indices=true"
        data = _request(url, json.dumps(body).encode(), "application/json")
        buckets = ((data.get("aggregations") or {}).get("h") or {}).get("buckets") or []
        points = [(b["key"] / 1000.0, float(b["doc_count"])) for b in buckets]
        return Series({"hits": str(int((data.get("hits") or {}).get("total", {}).get("value", 0)))}, points)
