"""What the indexer sends over HTTP, seen by a minimal Elasticsearch stand-in on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hostwatch.core.config import with_values
from logshipper.indexer.bulk import Doc, prepare
from logshipper.indexer.config import IndexerConfig
from logshipper.indexer.service import Indexer, es_client


class _Bulk(BaseHTTPRequestHandler):
    requests: list[int] = []  # actions per _bulk request

    def do_PUT(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        actions = [json.loads(line) for line in body.splitlines()[::2]]
        self.requests.append(len(actions))
        items = [{next(iter(a)): {"_id": a[next(iter(a))].get("_id"), "status": 201}} for a in actions]
        out = json.dumps({"took": 1, "errors": False, "items": items}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_POST = do_PUT

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Bulk.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Bulk)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _docs(n: int, indexer: Indexer) -> list[Doc]:
    out = []
    for i in range(n):
        value = json.dumps({"@timestamp": "2026-12-01T10:00:00Z", "event": {"id": f"f:{i}"}, "message": "m"})
        out.append(prepare(Doc("t", 0, i, value.encode()), indexer.namer))
    return out


def test_a_batch_within_the_byte_limit_is_one_bulk_request(server: str) -> None:
    """streaming_bulk's own default (500 actions a request) would split 1,200 documents into 3."""
    config = with_values(IndexerConfig(), {"kafka.brokers": ["127.0.0.1:9"], "elasticsearch.hosts": [server]})
    indexer = Indexer(config)
    indexer.es = es_client(config)
    try:
        docs = _docs(1200, indexer)
        results = indexer._bulk(docs)
    finally:
        indexer.es.close()
    assert _Bulk.requests == [1200]
    assert results is not None and all(ok for ok, _ in results)


def test_the_byte_limit_splits_a_batch_into_requests(server: str) -> None:
    config = with_values(IndexerConfig(), {"kafka.brokers": ["127.0.0.1:9"], "elasticsearch.hosts": [server],
                                           "bulk.max_bytes": 20_000})
    indexer = Indexer(config)
    indexer.es = es_client(config)
    try:
        assert indexer._index(_docs(1200, indexer))
    finally:
        indexer.es.close()
    assert sum(_Bulk.requests) == 1200 and len(_Bulk.requests) > 1
    assert max(_Bulk.requests) * 90 <= 20_000 * 1.2  # each request near the limit, never far over it
