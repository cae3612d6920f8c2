import orjson

from hostwatch.core.events import DOCKER_JSON, LogEvent
from logshipper import ecs


def test_document_shape_is_ecs() -> None:
    e = LogEvent(time_ns=1796112000_000000042, message="hello <world>", input_type=DOCKER_JSON,
                 event_id="abc:10", stream="stderr", container_id="c" * 64, container_name="web",
                 image="busybox", labels={"com.docker.compose.service": "web", "app": "x"}, level="err",
                 file_path="/var/lib/docker/containers/c/c-json.log", offset=10,
                 fields={"log.syslog.facility.code": 3, "gelf.tag": "t"})
    doc = orjson.loads(ecs.encode(e, "node-1", created_ns=1796112001_000000000))
    assert doc == {
        "@timestamp": "2026-12-01T08:00:00.000000042Z",
        "message": "hello <world>",
        "event": {"id": "abc:10", "created": "2026-12-01T08:00:01.000000000Z"},
        "input": {"type": "docker_json"},
        "host": {"name": "node-1"},
        "stream": "stderr",
        "log": {"level": "err", "file": {"path": "/var/lib/docker/containers/c/c-json.log"}, "offset": 10,
                "syslog": {"facility": {"code": 3}}},
        "container": {"id": "c" * 64, "name": "web", "image": {"name": "busybox"},
                      "labels": {"com_docker_compose_service": "web", "app": "x"}},
        "gelf": {"tag": "t"},
    }


def test_minimal_event_leaves_out_unknown_keys() -> None:
    e = LogEvent(time_ns=0, message="", input_type="gelf", event_id="x")
    doc = ecs.document(e, "h", created_ns=1)
    assert set(doc) == {"@timestamp", "message", "event", "input", "host"}
    assert doc["@timestamp"] == "1970-01-01T00:00:00.000000000Z"


def test_timestamp_cache_is_per_second() -> None:
    assert ecs.timestamp(1_999_999_999) == "1970-01-01T00:00:01.999999999Z"
    assert ecs.timestamp(2_000_000_000) == "1970-01-01T00:00:02.000000000Z"
