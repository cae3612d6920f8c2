"""The fast renderer against prometheus_client's encoders, on awkward inputs."""

from __future__ import annotations

import math

import pytest
from prometheus_client import exposition
from prometheus_client.openmetrics import exposition as om
from prometheus_client.utils import floatToGoString

from exporter.families import Family, LabelSet, go_float, render, sanitize_label_name


class _Fams:
    def __init__(self, fams: list[Family]) -> None:
        self.fams = fams

    def collect(self) -> list[Family]:
        return self.fams


@pytest.mark.parametrize(
    "v", [0, 1, 7.5, 123456, 1234567, 1e6, 12345678901234, 2**63, 1e-7, 0.1, -3.5, -1e9,
          math.inf, -math.inf, math.nan, 1.7673230455e9]
)
def test_go_float_matches_prometheus_client(v: float) -> None:
    assert go_float(v) == floatToGoString(v)


def test_escaping_and_label_order_match_prometheus_client() -> None:
    ls = LabelSet([("container_label_a_b", 'q"uo\\te'), ("id", "/x\ny"), ("image", "img"), ("name", "n")])
    fams = [
        Family("container_cpu_usage_seconds_total", 'help with \\ and\nnewline and "quotes"', "counter", ["cpu"]),
        Family("container_memory_failures_total", "h", "counter", ["failure_type", "scope"]),
        Family("container_network_receive_bytes_total", "h", "counter", ["interface"]),
        Family("container_namespace_info", "h", "gauge", ["inode", "namespace"]),
        Family("machine_cpu_cores", "h", "gauge", ["boot_id", "machine_id", "system_uuid"]),
        Family("hostwatch_exporter_scrapes_total", "h", "counter"),
        Family("container_memory_rss", "h", "gauge"),
    ]
    fams[0].add(ls, 1.5, 'c"0')
    fams[1].add(ls, 3, "pgfault", "container")
    fams[2].add(ls, 10, "eth\\0")
    fams[3].add(ls, 1, "4026531840", "net")
    fams[4].add(None, 2, "b", "m", "s")
    fams[5].add(None, 7)
    fams[6].add(ls, 2**40)
    assert render(fams, openmetrics=False) == exposition.generate_latest(_Fams(fams))  # type: ignore[arg-type]
    assert render(fams, openmetrics=True) == om.generate_latest(_Fams(fams))


def test_counter_names() -> None:
    f = Family("container_oom_events_total", "h", "counter")
    assert f.name == "container_oom_events" and f.sample_name == "container_oom_events_total"
    f.add(None, 1)
    assert f.samples[0].name == "container_oom_events_total"
    with pytest.raises(AttributeError):
        f.samples = [f.samples[0]]


def test_sanitize_label_name() -> None:
    assert sanitize_label_name("com.docker.compose-service/x") == "com_docker_compose_service_x"
