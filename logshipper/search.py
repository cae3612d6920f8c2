"""`hostwatch search`: matching log lines across every container and host, in time order.

Like `docker logs`, but over Elasticsearch: filters on container (name or id prefix), host, stream
and time (durations like 10m, or RFC 3339), full text with --grep or a Lucene --query; --follow
keeps printing new lines. Sorted by @timestamp, then event.sequence (the shipper's order for equal
times); paged with search_after so any number of lines comes back.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from typing import Any

import orjson

from hostwatch.core.config import EXIT_USAGE
from hostwatch.core.timefmt import parse_duration, parse_rfc3339_ns
from logshipper.indexer.config import DEFAULT_ELASTICSEARCH, DEFAULT_INDEX
from logshipper.indexer.template import index_pattern

PAGE = 1000
FOLLOW_INTERVAL = 1.0
SORT = [{"@timestamp": {"order": "asc", "format": "strict_date_optional_time_nanos"}},
        {"event.sequence": {"order": "asc", "unmapped_type": "long"}}]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("search", help="find log lines across all containers and hosts (Elasticsearch)",
                       description="Print matching log lines in time order, like `docker logs` across every "
                                   "container and host the pipeline indexed.")
    p.add_argument("--elasticsearch.hosts", dest="hosts", default=DEFAULT_ELASTICSEARCH, metavar="URL[,URL]",
                   help="Elasticsearch (default %(default)s)")
    p.add_argument("--index", default=index_pattern(DEFAULT_INDEX), help="indices to search (default %(default)s)")
    p.add_argument("--container", help="container name, or id (or its prefix)")
    p.add_argument("--host", help="host.name")
    p.add_argument("--since", help="from this time: a duration ago (10m, 2h) or RFC 3339")
    p.add_argument("--until", help="up to this time: a duration ago or RFC 3339")
    text = p.add_mutually_exclusive_group()
    text.add_argument("--grep", help="lines whose message contains this phrase")
    text.add_argument("--query", help="a Lucene query string, e.g. 'message:error AND stream:stderr'")
    p.add_argument("--stream", choices=("stdout", "stderr"))
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new lines until Ctrl-C")
    p.add_argument("--output", choices=("text", "json"), default="text")
    p.add_argument("-n", "--limit", type=int, default=None, help="only the last N matching lines")
    p.set_defaults(func=run_search)


def parse_time(text: str, now_ns: int) -> int:
    """Nanoseconds since the epoch from `10m` (ago) or an RFC 3339 time."""
    try:
        return now_ns - int(parse_duration(text) * 1e9)
    except ValueError:
        pass
    try:
        ns = parse_rfc3339_ns(text)
    except ValueError:
        ns = None
    if ns is None:
        raise ValueError(f"invalid time {text!r}: expected a duration (10m, 2h) or RFC 3339")
    return ns


def _iso(ns: int) -> str:
    secs, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{frac:09d}Z"


def build_query(container: str | None = None, host: str | None = None, since_ns: int | None = None,
                until_ns: int | None = None, grep: str | None = None, query: str | None = None,
                stream: str | None = None) -> dict[str, Any]:
    filters: list[dict[str, Any]] = []
    if container:
        name = container.lstrip("/")
        filters.append({"bool": {"should": [{"term": {"container.name": name}},
                                            {"prefix": {"container.id": container}}], "minimum_should_match": 1}})
    if host:
        filters.append({"term": {"host.name": host}})
    if stream:
        filters.append({"term": {"stream": stream}})
    if since_ns is not None or until_ns is not None:
        rng: dict[str, Any] = {}  # the field's own format (date_nanos: RFC 3339 with nine digits) parses it
        if since_ns is not None:
            rng["gte"] = _iso(since_ns)
        if until_ns is not None:
            rng["lte"] = _iso(until_ns)
        filters.append({"range": {"@timestamp": rng}})
    must: list[dict[str, Any]] = []
    if grep:
        must.append({"match_phrase": {"message": grep}})
    if query:
        must.append({"query_string": {"query": query, "default_field": "message"}})
    return {"bool": {"filter": filters, "must": must}}


def format_hit(source: dict[str, Any], output: str) -> str:
    if output == "json":
        return orjson.dumps(source).decode()
    container = source.get("container") or {}
    who = container.get("name") or (container.get("id") or "")[:12] or "-"
    host = (source.get("host") or {}).get("name") or "-"
    stream = source.get("stream") or "-"
    return f"{source.get('@timestamp', '')} {host} {who} {stream} {source.get('message', '')}"


class Searcher:
    def __init__(self, hosts: list[str], index: str) -> None:
        from elasticsearch import Elasticsearch

        self.es = Elasticsearch(hosts, request_timeout=10, max_retries=0)
        self.index = index

    def pages(self, query: dict[str, Any], after: list[Any] | None = None) -> Iterator[list[dict[str, Any]]]:
        while True:
            resp = self.es.search(index=self.index, query=query, sort=SORT, size=PAGE, search_after=after,
                                  ignore_unavailable=True, allow_no_indices=True)
            hits = resp["hits"]["hits"]
            if not hits:
                return
            yield hits
            after = hits[-1]["sort"]

    def last(self, query: dict[str, Any], n: int) -> list[dict[str, Any]]:
        desc = [{"@timestamp": {"order": "desc", "format": "strict_date_optional_time_nanos"}},
                {"event.sequence": {"order": "desc", "unmapped_type": "long"}}]
        resp = self.es.search(index=self.index, query=query, sort=desc, size=n, ignore_unavailable=True,
                              allow_no_indices=True)
        hits = list(resp["hits"]["hits"])
        hits.reverse()
        return hits


def run_search(args: argparse.Namespace) -> int:
    from elastic_transport import ConnectionError as ESConnectionError
    from elasticsearch import ApiError, TransportError

    now = time.time_ns()
    try:
        since = parse_time(args.since, now) if args.since else None
        until = parse_time(args.until, now) if args.until else None
        if args.limit is not None and args.limit <= 0:
            raise ValueError("--limit must be positive")
    except ValueError as e:
        print(f"hostwatch search: {e}", file=sys.stderr)
        return EXIT_USAGE
    query = build_query(args.container, args.host, since, until, args.grep, args.query, args.stream)
    hosts = [h.strip() for h in args.hosts.split(",") if h.strip()]
    out = sys.stdout
    try:
        s = Searcher(hosts, args.index)
        after: list[Any] | None = None
        if args.limit:
            hits = s.last(query, args.limit)
            for h in hits:
                out.write(format_hit(h["_source"], args.output) + "\n")
            after = hits[-1]["sort"] if hits else None
        else:
            for page in s.pages(query):
                for h in page:
                    out.write(format_hit(h["_source"], args.output) + "\n")
                after = page[-1]["sort"]
        out.flush()
        while args.follow:
            time.sleep(FOLLOW_INTERVAL)
            for page in s.pages(query, after):
                for h in page:
                    out.write(format_hit(h["_source"], args.output) + "\n")
                after = page[-1]["sort"]
            out.flush()
    except KeyboardInterrupt:
        return 0
    except (ESConnectionError, TransportError) as e:
        print(f"hostwatch search: Elasticsearch at {args.hosts} is unreachable: {_reason(e)}", file=sys.stderr)
        return 1
    except ApiError as e:
        print(f"hostwatch search: Elasticsearch refused the search: {e.status_code} {_reason(e)}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        return 0
    return 0


def _reason(e: Exception) -> str:
    return " ".join(str(e).split())[:300]
