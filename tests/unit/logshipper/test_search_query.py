import pytest

from logshipper.search import build_query, format_hit, parse_time

NOW = 1796112000_000000000


def test_times_are_durations_ago_or_rfc3339() -> None:
    assert parse_time("10m", NOW) == NOW - 600_000_000_000
    assert parse_time("2026-12-01T07:00:00Z", NOW) == NOW - 3600_000_000_000
    with pytest.raises(ValueError, match="invalid time"):
        parse_time("last tuesday", NOW)


def test_query_filters() -> None:
    q = build_query(container="web", host="h1", since_ns=NOW - 10**9, grep="boom", stream="stderr")
    filters = q["bool"]["filter"]
    assert {"term": {"host.name": "h1"}} in filters and {"term": {"stream": "stderr"}} in filters
    should = filters[0]["bool"]["should"]
    assert {"term": {"container.name": "web"}} in should and {"prefix": {"container.id": "web"}} in should
    assert filters[-1]["range"]["@timestamp"]["gte"] == "2026-12-01T07:59:59.000000000Z"
    assert q["bool"]["must"] == [{"match_phrase": {"message": "boom"}}]
    lucene = build_query(query="message:error")["bool"]["must"][0]["query_string"]
    assert lucene["query"] == "message:error"


def test_text_output_reads_like_docker_logs_with_origin() -> None:
    src = {"@timestamp": "2026-12-01T08:00:00.000000001Z", "message": "hi", "stream": "stdout",
           "host": {"name": "h"}, "container": {"name": "web", "id": "a" * 64}}
    assert format_hit(src, "text") == "2026-12-01T08:00:00.000000001Z h web stdout hi"
    assert format_hit({"message": "x", "container": {"id": "b" * 64}}, "text") == " - bbbbbbbbbbbb - x"
    assert format_hit({"message": "x"}, "json") == '{"message":"x"}'
