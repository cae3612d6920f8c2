"""The generated dashboards and provisioning: unique ids, a valid grid without overlaps, datasources
the provisioning defines, only catalogued metrics and cAdvisor's labels; committed copies current."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards import provisioning
from dashboards.boards import BOARDS, board
from dashboards.build import BuildError, build, dashboard_json, generate
from dashboards.catalogue import Catalogue
from dashboards.docs import markdown
from dashboards.panels import GRID_COLUMNS
from dashboards.validate import MIN_SCHEMA_VERSION, problems, prometheus_targets

REPO = Path(__file__).resolve().parents[3]
CAT = Catalogue()
FILES = generate()
DASHBOARDS = {b.name: json.loads(FILES[f"dashboards/{b.name}.json"]) for b in BOARDS}
UIDS = provisioning.datasource_uids(yaml.safe_load(FILES[provisioning.DATASOURCES_FILE]))
KUBERNETES_LABELS = ("container", "pod", "namespace")  # the kubelet's, absent on a plain host
ISSUE_PANELS = {  # what issue 10 asks each dashboard to show, by panel title
    "host-overview": ["CPU", "Memory", "Load: pressure stall (PSI)", "Disk I/O", "Network", "Containers",
                      "Top 5 containers by CPU", "Top 5 containers by memory"],
    "containers": ["CPU usage", "CPU throttling", "Memory working set / limit", "Network rx / tx", "Block I/O",
                   "OOM kills", "Restarts (1h window)", "Last seen"],
    "container-detail": ["CPU: usage vs limit", "Memory vs limit", "Pressure stall (PSI): container and host",
                         "Namespaces shared with other cgroups", "Log lines (Elasticsearch)"],
    "log-pipeline": ["Received per source", "Sent to Kafka per source", "Dropped and rejected", "Buffer",
                     "Oldest buffered event", "Kafka consumer lag (indexer)", "Indexed into Elasticsearch",
                     "Indexing failures and dead letters"],
    "alerting": ["Alerts firing", "Notifications delivered", "Notification failures",
                 "Escalations: on-call incidents", "Replica health"],
}


def test_every_dashboard_validates() -> None:
    assert problems(DASHBOARDS, UIDS, CAT) == []
    assert list(DASHBOARDS) == ["host-overview", "containers", "container-detail", "log-pipeline", "alerting"]


def test_panel_ids_are_unique_and_the_grid_has_no_overlaps() -> None:
    for name, d in DASHBOARDS.items():
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)), name
        cells: set[tuple[int, int]] = set()
        for p in d["panels"]:
            g = p["gridPos"]
            assert 0 <= g["x"] and g["x"] + g["w"] <= GRID_COLUMNS and g["h"] > 0, (name, p["title"])
            mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not mine & cells, (name, p["title"])
            cells |= mine


def test_the_issues_panels_are_there() -> None:
    for name, titles in ISSUE_PANELS.items():
        have = [p["title"] for p in DASHBOARDS[name]["panels"]]
        assert [t for t in titles if t not in have] == [], name


def test_schema_version_is_modern() -> None:
    assert {d["schemaVersion"] for d in DASHBOARDS.values()} == {39}
    assert MIN_SCHEMA_VERSION <= 39


def test_container_panels_use_cadvisor_labels_only() -> None:
    for name, d in DASHBOARDS.items():
        for p, t in prometheus_targets(d):
            for label in KUBERNETES_LABELS:
                assert f"{label}=" not in t["expr"] and f"{label}!" not in t["expr"], (name, p["title"])
            if "name=~\"$container\"" in t["expr"] and "by (" in t["expr"]:
                assert "by (instance" in t["expr"], (name, p["title"], t["expr"])


def test_variables_are_the_issues() -> None:
    names = {n: [v["name"] for v in d["templating"]["list"]] for n, d in DASHBOARDS.items()}
    assert names["containers"] == ["host", "container"]
    assert names["container-detail"] == ["host", "container"]
    containers = DASHBOARDS["containers"]["templating"]["list"][1]
    assert containers["includeAll"] and containers["multi"] and containers["allValue"] == ".+"
    detail = DASHBOARDS["container-detail"]["templating"]["list"][1]
    assert not detail["includeAll"] and not detail["multi"]  # one container


def test_provisioning_defines_both_datasources_and_the_provider() -> None:
    ds = yaml.safe_load(FILES[provisioning.DATASOURCES_FILE])
    by_type = {d["type"]: d for d in ds["datasources"]}
    assert set(by_type) == {"prometheus", "elasticsearch"}
    es = by_type["elasticsearch"]
    assert es["jsonData"]["index"] == "hostwatch-logs-*" and "database" not in es
    assert es["jsonData"]["timeField"] == "@timestamp"
    assert by_type["prometheus"]["jsonData"]["timeInterval"] == provisioning.DEFAULT_SCRAPE_INTERVAL
    used = {p["datasource"]["uid"] for d in DASHBOARDS.values() for p in d["panels"]}
    assert used == UIDS
    prov = yaml.safe_load(FILES[provisioning.PROVIDERS_FILE])["providers"][0]
    assert prov["type"] == "file" and prov["options"]["path"] == provisioning.DEFAULT_DASHBOARDS_PATH


def _broken(mutate: Any) -> list[str]:
    d = copy.deepcopy(DASHBOARDS)
    mutate(d)
    return problems(d, UIDS, CAT)


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda d: d["containers"]["panels"][1].update(id=d["containers"]["panels"][0]["id"]), "ids are not unique"),
    (lambda d: d["containers"]["panels"][1]["gridPos"].update(x=0), "overlaps"),
    (lambda d: d["containers"]["panels"][1]["gridPos"].update(x=22), "outside the 24-column grid"),
    (lambda d: d["containers"]["panels"][1].pop("gridPos"), "no valid gridPos"),
    (lambda d: d["containers"]["panels"][1].update(datasource={"type": "prometheus", "uid": "other"}),
     "which the provisioning does not define"),
    (lambda d: d["containers"]["panels"][6]["targets"][0].update(expr="rate(container_cpu_usage_seconds[5m])"),
     "container_cpu_usage_seconds is not a metric"),
    (lambda d: d["containers"]["panels"][6]["targets"][0].update(expr='up{instance=~"$nohost"}'),
     "uses $nohost, which is not defined"),
    (lambda d: d["host-overview"].update(schemaVersion=12), "schemaVersion 12"),
    (lambda d: d["alerting"].update(uid=d["containers"]["uid"]), "uid"),
    (lambda d: d["containers"]["templating"]["list"][1].update(query="label_values(container_last_seen, pod)"),
     "has no label 'pod'"),
    (lambda d: d["containers"]["panels"][2].update(type="graph"), "has type 'graph'"),
])
def test_validation_catches(mutate: Any, expected: str) -> None:
    found = _broken(mutate)
    assert any(expected in p for p in found), found


def test_build_refuses_to_write_a_broken_dashboard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dashboards.build as b

    monkeypatch.setattr(b, "problems", lambda *a: ["containers: panel 'x' overlaps 'y'"])
    with pytest.raises(BuildError, match="overlaps"):
        build(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_build_is_deterministic_and_writes_every_file(tmp_path: Path) -> None:
    written = build(tmp_path)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == sorted(FILES)
    assert {p.relative_to(tmp_path).as_posix(): p.read_text() for p in written} == generate()


def test_the_committed_grafana_provisioning_is_current() -> None:
    committed = REPO / "compose" / "grafana"
    stale = [rel for rel, text in FILES.items() if not (committed / rel).is_file()
             or (committed / rel).read_text() != text]
    assert stale == [], f"compose/grafana is stale: hostwatch dashboards build --out compose/grafana ({stale})"


def test_the_panel_table_is_current() -> None:
    path = REPO / "docs" / "dashboards" / "panels.md"
    assert path.read_text() == markdown(), "hostwatch dashboards list --markdown > docs/dashboards/panels.md"


def test_the_panel_table_says_what_needs_hostwatch() -> None:
    text = markdown()
    assert "| CPU throttling |" in text and "| Namespaces shared with other cgroups |" in text
    row = next(line for line in text.splitlines() if line.startswith("| CPU throttling |"))
    assert row.endswith("| yes |")
    row = next(line for line in text.splitlines() if line.startswith("| Namespaces shared"))
    assert "needs `container_namespace_info`" in row
    row = next(line for line in text.splitlines() if line.startswith("| Log lines"))
    assert "Elasticsearch" in row


def test_board_lookup() -> None:
    assert board("containers").uid == "hostwatch-containers"
    assert board("hostwatch-alerting").name == "alerting"
    with pytest.raises(KeyError, match="there are host-overview"):
        board("nope")
    assert dashboard_json(board("containers"), CAT)["title"] == "hostwatch / Containers"
