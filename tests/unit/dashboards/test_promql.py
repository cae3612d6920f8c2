"""PromQL checks (names, labels, groupings, syntax) and Grafana-style variable substitution."""

from __future__ import annotations

import pytest

from dashboards import promql
from dashboards.catalogue import Catalogue
from dashboards.variables import builtins, regex_text

CAT = Catalogue()


@pytest.mark.parametrize(("expr", "problem"), [
    ("sum(rate(container_cpu_usage_second_total[5m]))", "container_cpu_usage_second_total is not a metric"),
    ('sum by (pod, container) (rate(container_cpu_usage_seconds_total{container!=""}[5m]))',
     "container_cpu_usage_seconds_total has no label 'container'"),
    ("sum by (pod) (rate(container_cpu_usage_seconds_total[5m]))", "groups by 'pod'"),
    ('node_filesystem_size_bytes{fstype="aufs"}', "node_filesystem_size_bytes is not a metric"),
    ("rate(container_cpu_usage_seconds_total)", "not valid PromQL"),
    ("sum(rate(container_cpu_usage_seconds_total[5m])", "not valid PromQL"),
    ('{__name__=~"container_.*"}', "container_.* is not a metric"),
    ("hostwatch_indexer_consumer_lag * on (pod) up", "groups by 'pod'"),
])
def test_problems_are_found(expr: str, problem: str) -> None:
    found = promql.problems(expr, CAT)
    assert any(problem in p for p in found), found


@pytest.mark.parametrize("expr", [
    'sum by (instance, name) (rate(container_cpu_usage_seconds_total{instance=~"$host",name=~"$container"}'
    "[$__rate_interval]))",
    "max by (instance) (machine_cpu_cores) * on (instance) group_left (name) container_last_seen",
    'label_replace(up, "scope", "host", "", "") or on (scope) vector(1)',
    'count by (alertname, severity) (ALERTS{alertstate="firing"})',
    "histogram_quantile(0.99, sum by (instance, le) (rate(hostwatch_indexer_bulk_duration_seconds_bucket[5m])))",
])
def test_good_queries_pass(expr: str) -> None:
    assert promql.problems(expr, CAT) == []


def test_uses_reports_selectors_groupings_and_made_labels() -> None:
    u = promql.uses('label_replace(sum by (instance, name) (container_memory_rss{name=~"$container"}), '
                    '"scope", "container", "", "") / on (instance) group_left machine_memory_bytes')
    assert u.selectors == [("container_memory_rss", ["name"]), ("machine_memory_bytes", [])]
    assert u.grouping == {"instance", "name"}
    assert u.made == {"scope"}


def test_interpolate_substitutes_every_form_and_refuses_unknown_variables() -> None:
    assert promql.interpolate("a{x=~\"$host\"}[$__rate_interval] ${host}", {"host": "h", "__rate_interval": "1m"}) \
        == 'a{x=~"h"}[1m] h'
    with pytest.raises(KeyError, match=r"\$nope"):
        promql.interpolate("$nope", {})
    assert promql.variables_in("a{x=~\"$host\", y=~\"${container:regex}\"}[$__range]") == {
        "host", "container", "__range"}


def test_regex_values_are_escaped_as_grafana_does() -> None:
    # inside a PromQL string the regex escape itself needs escaping: 127\\.0\\.0\\.1
    assert promql.escape_regex("127.0.0.1:9100") == r"127\\.0\\.0\\.1:9100"
    assert regex_text(["a.b", "c"]) == r"(a\\.b|c)"
    assert regex_text(["web"]) == "web"
    expr = promql.interpolate('up{instance=~"$host"}', {"host": regex_text(["127.0.0.1:9100"])})
    assert promql.problems(expr, CAT) == []


def test_rate_interval_follows_grafana() -> None:
    # max(4 x scrape interval, step + scrape interval)
    assert builtins(0, 3600, 30, 15)["__rate_interval"] == "60s"
    assert builtins(0, 86400, 600, 15)["__rate_interval"] == "615s"
    assert builtins(0, 3600, 30, 15)["__range"] == "3600s"
