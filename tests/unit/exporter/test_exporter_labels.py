"""Container labels as cAdvisor's --store_container_labels makes them: every key of any container in
the scrape on every series ("" where a container lacks it), or only an allowlist; never env vars."""

from __future__ import annotations

import json
from pathlib import Path

from prometheus_client.metrics_core import Metric

from exporter.discovery import Discovery, label_values
from exporter.families import render
from exporter.readers import open_reader
from exporter.scrape import Exporter

from exporter_testdata import NOW, fixture_config


def label_keys(fams: list[Metric], metric: str) -> set[tuple[str, ...]]:
    return {tuple(sorted(k for k in s.labels if k.startswith("container_label_")))
            for f in fams for s in f.samples if s.name == metric}


def series(fams: list[Metric], metric: str, **want: str) -> list[dict[str, str]]:
    return [dict(s.labels) for f in fams for s in f.samples
            if s.name == metric and all(s.labels.get(k) == v for k, v in want.items())]


def test_every_label_of_every_container_by_default() -> None:
    fams = Exporter(fixture_config("v2")).collect(now=NOW)
    keys = {"container_label_com_docker_compose_service", "container_label_io_podman_compose_project",
            "container_label_tier"}
    assert label_keys(fams, "container_memory_usage_bytes") == {tuple(sorted(keys))}  # same keys on every series
    [api] = series(fams, "container_memory_usage_bytes", name="shop-api-1")
    assert api["container_label_com_docker_compose_service"] == "api" and api["container_label_tier"] == ""
    [raw] = series(fams, "container_memory_usage_bytes", id="/system.slice")
    assert all(raw[k] == "" for k in keys)
    text = render(fams, openmetrics=False).decode()
    assert "do-not-export" not in text and "container_env" not in text  # env vars never become labels


def test_allowlist_mode_carries_only_the_keys_named() -> None:
    cfg = fixture_config("v2", store_container_labels=False, label_allowlist=("tier", "com.example.team"))
    fams = Exporter(cfg).collect(now=NOW)
    assert label_keys(fams, "container_last_seen") == {("container_label_com_example_team", "container_label_tier")}
    [db] = series(fams, "container_last_seen", name="db")
    assert db["container_label_tier"] == "back" and db["container_label_com_example_team"] == ""


def test_no_container_label_keys_without_labelled_containers() -> None:
    fams = Exporter(fixture_config("v2", state_root=Path("/nonexistent"), docker_root=Path("/nonexistent"),
                                   containers_storage=Path("/nonexistent"))).collect(now=NOW)
    assert label_keys(fams, "container_last_seen") == {()}


def test_keys_that_sanitize_alike_keep_the_first_in_sort_order() -> None:
    assert label_values({"a.b": "dotted", "a_b": "underscored", "a-b": "dashed"}) == {"container_label_a_b": "dashed"}


def _tree(root: Path, *cgroups: str) -> None:
    (root / "cgroup.controllers").parent.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text("cpu memory io pids\n")
    for cg in ("", *cgroups):
        d = root / cg.lstrip("/")
        d.mkdir(parents=True, exist_ok=True)
        (d / "cgroup.procs").write_text("")


def _state(root: Path, cid: str, labels: dict[str, str]) -> None:
    (root / cid).mkdir(parents=True)
    (root / cid / "config.json").write_text(json.dumps({
        "id": cid, "name": f"c-{cid[:4]}", "image": "busybox", "rootfs": None, "command": ["sh"], "hostname": "h",
        "labels": labels, "env": ["TOKEN=secret"], "cgroup": f"/hostwatch/{cid}", "status": "running"}))


def test_a_new_label_key_reaches_every_series_of_the_next_scrape(tmp_path: Path) -> None:
    one, two = "1" * 64, "2" * 64
    cg = tmp_path / "cgroup"
    _tree(cg, "/hostwatch", f"/hostwatch/{one}", f"/hostwatch/{two}")
    state = tmp_path / "state"
    _state(state, one, {"com.docker.compose.service": "web"})
    d = Discovery(open_reader(str(cg)), state, tmp_path / "docker", store_labels=True, refresh_seconds=3600)
    first = {t.cg: t.labels.as_dict() for t in d.targets()}
    assert first[f"/hostwatch/{one}"]["container_label_com_docker_compose_service"] == "web"
    assert first["/"]["container_label_com_docker_compose_service"] == ""
    _state(state, two, {"tier": "db"})  # a new container, a new key: the state directory changed
    second = {t.cg: t.labels.as_dict() for t in d.targets()}
    assert {k for k in second["/"] if k.startswith("container_label_")} == {
        "container_label_com_docker_compose_service", "container_label_tier"}
    assert second[f"/hostwatch/{two}"]["container_label_tier"] == "db"
    assert second[f"/hostwatch/{one}"]["container_label_tier"] == ""
    assert not any(k.startswith("container_env") or "TOKEN" in k for k in second["/"])
