"""The metric catalogue: generated from the components' own definitions and kept current, so a metric
renamed in the exporter, shipper, indexer or alerting breaks the dashboards build."""

from __future__ import annotations

import os

import pytest

from dashboards.boards import BOARDS
from dashboards.build import generate as build
from dashboards.catalogue import Catalogue, Metric, UnknownMetric
from dashboards.exported import FAMILIES

from catalogue_source import GENERATED, generate, merge


def test_catalogue_is_current() -> None:
    text = generate()
    if os.environ.get("HOSTWATCH_UPDATE_CATALOGUE"):
        GENERATED.write_text(text)
    assert GENERATED.read_text() == text, (
        f"{GENERATED} is stale: a component's metrics changed; HOSTWATCH_UPDATE_CATALOGUE=1 regenerates it")


def test_catalogue_holds_every_component() -> None:
    components = {c for _, _, c, _ in FAMILIES}
    assert components == {"exporter", "logshipper", "indexer", "alerting"}
    names = {n for n, *_ in FAMILIES}
    # one family from each collector group and each component
    assert {"container_cpu_usage_seconds_total", "container_memory_working_set_bytes", "container_spec_cpu_quota",
            "container_fs_reads_bytes_total", "container_network_receive_bytes_total", "container_processes",
            "container_pressure_cpu_waiting_seconds_total", "container_oom_events_total", "container_namespace_info",
            "machine_cpu_cores", "hostwatch_exporter_scrape_duration_seconds",
            "hostwatch_logshipper_received_events_total", "hostwatch_indexer_consumer_lag",
            "hostwatch_alerting_notifications_total"} <= names


def test_merge_unions_labels_and_refuses_conflicting_definitions() -> None:
    rows = merge([("m", "gauge", "exporter", ("a",)), ("m", "gauge", "exporter", ("b",))])
    assert rows == [("m", "gauge", "exporter", ("a", "b"))]
    with pytest.raises(ValueError, match="defined twice"):
        merge([("m", "gauge", "exporter", ()), ("m", "counter", "exporter", ())])


def test_histograms_are_queried_by_their_series() -> None:
    cat = Catalogue()
    assert cat["hostwatch_indexer_bulk_duration_seconds_bucket"].labels == frozenset({"le"})
    assert "hostwatch_indexer_bulk_duration_seconds_count" in cat
    assert "hostwatch_indexer_bulk_duration_seconds" not in cat


def test_unknown_metric_names_close_matches() -> None:
    with pytest.raises(UnknownMetric, match="did you mean container_memory_working_set_bytes"):
        Catalogue()["container_memory_workingset_bytes"]


def test_cadvisor_names_and_hostwatch_extras() -> None:
    cat = Catalogue()
    assert cat["container_cpu_usage_seconds_total"].cadvisor
    assert cat["machine_memory_bytes"].cadvisor
    assert cat["up"].cadvisor  # Prometheus's own
    for extra in ("container_namespace_info", "machine_boot_time_seconds", "hostwatch_logshipper_sent_events_total"):
        assert not cat[extra].cadvisor, extra


def test_labels_are_checked_against_the_definition() -> None:
    m = Catalogue()["container_cpu_usage_seconds_total"]
    assert m.has_label("cpu") and m.has_label("instance") and m.has_label("name")
    assert not m.has_label("container") and not m.has_label("pod")
    assert Metric("ALERTS", "gauge", "prometheus", None).has_label("anything")


def test_a_renamed_metric_breaks_the_build() -> None:
    renamed = [(("container_memory_working_set_bytez",) + row[1:]) if row[0] == "container_memory_working_set_bytes"
               else row for row in FAMILIES]
    with pytest.raises(UnknownMetric, match="container_memory_working_set_bytes is not a metric"):
        build(catalogue=Catalogue(renamed), boards=BOARDS)


def test_a_dropped_label_breaks_the_build() -> None:
    from dashboards.build import BuildError

    relabelled = [(row[0], row[1], row[2], tuple(x for x in row[3] if x != "name")) if row[0].startswith("container_")
                  else row for row in FAMILIES]
    with pytest.raises(BuildError, match="has no label 'name'"):
        build(catalogue=Catalogue(relabelled), boards=BOARDS)
