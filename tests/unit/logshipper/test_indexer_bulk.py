import orjson
import pytest

from logshipper.config import DEFAULT_TOPIC
from logshipper.indexer.bulk import Doc, dead_letter, expand, outcome, prepare
from logshipper.indexer.config import DEFAULT_TOPIC as INDEXER_TOPIC
from logshipper.indexer.template import IndexNamer, index_pattern, template_body, template_name


def test_indexer_reads_the_shippers_topic_by_default() -> None:
    assert INDEXER_TOPIC == DEFAULT_TOPIC


def test_prepare_uses_event_id_and_daily_index() -> None:
    namer = IndexNamer("hostwatch-logs-%Y.%m.%d")
    value = orjson.dumps({"@timestamp": "2026-12-01T23:59:59.999999999Z", "event": {"id": "fp:10"}, "message": "m"})
    d = prepare(Doc("t", 0, 5, value), namer)
    assert d.header == {"index": {"_index": "hostwatch-logs-2026.12.01", "_id": "fp:10"}}
    assert expand(d) == (d.header, value)  # the body goes as it came: no re-serialisation


def test_prepare_data_stream_creates_into_the_stream() -> None:
    d = prepare(Doc("t", 0, 5, b'{"@timestamp":"2026-12-01T00:00:00Z","event":{"id":"x"}}'),
                IndexNamer("logs-hostwatch-default", data_stream=True), "create")
    assert d.header == {"create": {"_index": "logs-hostwatch-default", "_id": "x"}}


@pytest.mark.parametrize("value, error", [(b"not json", "invalid JSON"), (b"[1,2]", "not a JSON object")])
def test_unusable_values_are_marked_for_dead_letters(value: bytes, error: str) -> None:
    d = prepare(Doc("t", 1, 2, value), IndexNamer("i-%Y"))
    assert d.header is None and d.error.startswith(error)
    dl = orjson.loads(dead_letter(d, 0, d.error, now=0))
    assert dl["kafka"] == {"topic": "t", "partition": 1, "offset": 2}
    assert dl["@timestamp"] == "1970-01-01T00:00:00Z" and dl["error"]["message"].startswith(error)


@pytest.mark.parametrize("ok, item, kind", [
    (True, {"index": {"status": 201}}, "ok"),
    (False, {"index": {"status": 429, "error": {"type": "es_rejected_execution_exception"}}}, "retry"),
    (False, {"index": {"status": 503, "error": "unavailable"}}, "retry"),
    (False, {"index": {"status": 400, "error": {"type": "mapper_parsing_exception"}}}, "dead"),
    (False, {"create": {"status": 409, "error": {"type": "version_conflict_engine_exception"}}}, "ok"),
    (False, {"index": {"status": 409, "error": {"type": "version_conflict_engine_exception"}}}, "dead"),
])
def test_item_outcomes(ok: bool, item: dict[str, object], kind: str) -> None:
    assert outcome(ok, item)[0] == kind


def test_dead_letter_keeps_the_original_event() -> None:
    d = Doc("t", 0, 9, b'{"log":{"offset":"abc"}}')
    dl = orjson.loads(dead_letter(d, 400, "mapper_parsing_exception"))
    assert dl["event"]["original"] == {"log": {"offset": "abc"}}
    assert dl["error"] == {"status": 400, "message": "mapper_parsing_exception"}


def test_template_maps_the_event_shape() -> None:
    body = template_body("hostwatch-logs-%Y.%m.%d", data_stream=False)
    assert body["index_patterns"] == ["hostwatch-logs-*"] and "data_stream" not in body
    props = body["template"]["mappings"]["properties"]
    assert props["@timestamp"] == {"type": "date_nanos"}
    assert props["message"] == {"type": "match_only_text"}
    assert props["container"]["properties"]["name"]["type"] == "keyword"
    assert template_body("logs-hw", data_stream=True)["data_stream"] == {}
    assert template_name("hostwatch-logs-%Y.%m.%d") == "hostwatch-logs"
    assert index_pattern("fixed") == "fixed"
