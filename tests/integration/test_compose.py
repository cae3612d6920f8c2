"""The compose stack and the Kubernetes DaemonSet: Debian's docker-compose 1.29 validates the compose
file (`config -q`, no engine needed), promtool validates the Prometheus config and its rules, amtool
and hostwatch's own loader validate the alerting config, kubernetes-validate checks the DaemonSet
against the Kubernetes schema offline; and the fields that matter are what the issue asks for."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from alerting import config as alerting_config
from dashboards import provisioning
from dashboards.catalogue import JOB_AGENT, JOB_ALERTING, JOB_INDEXER

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "compose"
COMPOSE_FILE = COMPOSE / "docker-compose.yml"
PROMETHEUS_CONFIG = COMPOSE / "prometheus" / "prometheus.yml"
DAEMONSET = COMPOSE / "kubernetes" / "daemonset.yaml"
KUBERNETES_VERSION = "1.30.0"
SERVICES = {"hostwatch", "kafka", "elasticsearch", "kibana", "indexer", "prometheus-a", "prometheus-b",
            "alerting-a", "alerting-b", "grafana"}


def _tool(name: str, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    binary = shutil.which(name)
    if binary is None:
        pytest.fail(f"{name} is not installed (see scripts/setup.sh)")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120, cwd=cwd)


def _compose() -> dict[str, Any]:
    """The file as docker-compose resolves it (anchors and merges applied)."""
    out = _tool("docker-compose", "-f", str(COMPOSE_FILE), "config")
    assert out.returncode == 0, out.stderr
    data: dict[str, Any] = yaml.safe_load(out.stdout)
    return data


def test_docker_compose_config_is_valid() -> None:
    out = _tool("docker-compose", "-f", str(COMPOSE_FILE), "config", "-q")
    assert out.returncode == 0, out.stderr


def test_docker_compose_config_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("restart: unless-stopped", "restart: [sometimes]"))
    out = _tool("docker-compose", "-f", str(broken), "config", "-q")
    assert out.returncode != 0 and "restart" in out.stderr


def test_the_stack_has_every_service_with_health_checks_restarts_and_named_volumes() -> None:
    c = _compose()
    services = c["services"]
    assert set(services) == SERVICES
    for name, s in services.items():
        assert s.get("restart") == "unless-stopped", name
        assert s.get("healthcheck", {}).get("test"), name
        for v in s.get("volumes") or []:
            source = v["source"] if isinstance(v, dict) else v.split(":")[0]
            if not source.startswith("/"):
                assert source in c["volumes"], (name, source)
    data_volumes = {v.split(":")[0] if isinstance(v, str) else v["source"]
                    for s in services.values() for v in s.get("volumes") or []}
    assert {"kafka-data", "es-data", "prometheus-a-data", "prometheus-b-data", "grafana-data",
            "hostwatch-data"} <= data_volumes


def test_the_agent_is_privileged_with_host_pid_read_only_mounts_and_its_ports() -> None:
    agent = _compose()["services"]["hostwatch"]
    assert agent["privileged"] is True and agent["pid"] == "host"
    mounts = {v["target"]: v for v in agent["volumes"]} if isinstance(agent["volumes"][0], dict) else {
        v.split(":")[1]: {"read_only": v.endswith(":ro"), "source": v.split(":")[0]} for v in agent["volumes"]}
    for target in ("/sys/fs/cgroup", "/host/proc", "/var/lib/docker/containers", "/var/log/journal"):
        assert mounts[target].get("read_only") is True, target
    ports = {(str(p["target"]), p.get("protocol", "tcp")) for p in agent["ports"]}
    assert {("9100", "tcp"), ("24224", "tcp"), ("12201", "udp")} <= ports
    assert "up" in agent["command"] and "kafka:9092" in agent["command"]


def test_prometheus_pair_shares_one_config_that_promtool_accepts() -> None:
    services = _compose()["services"]
    configs = {n: [v for v in services[n]["volumes"] if "/etc/prometheus" in str(v)] for n in
               ("prometheus-a", "prometheus-b")}
    assert configs["prometheus-a"] == configs["prometheus-b"]
    replicas = {services[n]["environment"]["PROMETHEUS_REPLICA"] for n in ("prometheus-a", "prometheus-b")}
    assert replicas == {"a", "b"}
    out = _tool("promtool", "check", "config", str(PROMETHEUS_CONFIG))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 1 rule files found" in out.stdout + out.stderr


def test_promtool_check_config_fails_on_a_broken_config(tmp_path: Path) -> None:
    shutil.copytree(COMPOSE / "prometheus", tmp_path / "prometheus")
    path = tmp_path / "prometheus" / "prometheus.yml"
    path.write_text(path.read_text().replace("scrape_interval: 15s", "scrape_interval: often"))
    assert _tool("promtool", "check", "config", str(path)).returncode != 0


def test_prometheus_scrapes_the_jobs_the_dashboards_and_rules_select_and_alerts_both_replicas() -> None:
    prom = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {j["job_name"]: [t for sc in j["static_configs"] for t in sc["targets"]] for j in prom["scrape_configs"]}
    assert jobs[JOB_AGENT] == ["hostwatch:9100"]
    assert jobs[JOB_INDEXER] == ["indexer:9102"]
    assert jobs[JOB_ALERTING] == ["alerting-a:9093", "alerting-b:9093"]
    (am,) = prom["alerting"]["alertmanagers"]
    assert am["api_version"] == "v2" and am["static_configs"][0]["targets"] == jobs[JOB_ALERTING]
    assert prom["global"]["scrape_interval"] == provisioning.DEFAULT_SCRAPE_INTERVAL
    services = _compose()["services"]
    for target in jobs[JOB_AGENT] + jobs[JOB_INDEXER] + jobs[JOB_ALERTING]:
        assert target.split(":")[0] in services, target


def test_grafana_gets_the_generated_provisioning() -> None:
    grafana = _compose()["services"]["grafana"]
    mounts = {v["target"]: Path(v["source"]) for v in grafana["volumes"] if isinstance(v, dict)} or {
        v.split(":")[1]: Path(v.split(":")[0]) for v in grafana["volumes"]}
    assert mounts["/etc/grafana/provisioning"] == COMPOSE / "grafana" / "provisioning"
    assert mounts[provisioning.DEFAULT_DASHBOARDS_PATH] == COMPOSE / "grafana" / provisioning.DASHBOARDS_DIR
    assert (COMPOSE / "grafana" / provisioning.DATASOURCES_FILE).is_file()
    assert len(list((COMPOSE / "grafana" / provisioning.DASHBOARDS_DIR).glob("*.json"))) == 5
    ds = yaml.safe_load((COMPOSE / "grafana" / provisioning.DATASOURCES_FILE).read_text())["datasources"]
    hosts = {d["url"].split("//")[1].split(":")[0] for d in ds}
    assert hosts <= set(_compose()["services"])


def test_the_alerting_config_loads_in_hostwatch_and_amtool() -> None:
    path = COMPOSE / "alerting" / "alerting.yml"
    cfg = alerting_config.load(path)
    assert cfg.route.receiver == "on-call"
    out = _tool("amtool", "check-config", str(path))
    assert out.returncode == 0, out.stdout + out.stderr


def _daemonset() -> dict[str, Any]:
    docs = list(yaml.safe_load_all(DAEMONSET.read_text()))
    return next(d for d in docs if d["kind"] == "DaemonSet")


def test_the_daemonset_validates_against_the_kubernetes_schema_offline() -> None:
    for doc in yaml.safe_load_all(DAEMONSET.read_text()):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    broken = _daemonset()
    broken["spec"]["template"]["spec"]["hostPID"] = "yes"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_daemonset_has_host_pid_read_only_mounts_ports_and_scrape_annotations() -> None:
    tmpl = _daemonset()["spec"]["template"]
    spec = tmpl["spec"]
    assert spec["hostPID"] is True
    assert tmpl["metadata"]["annotations"] == {"prometheus.io/scrape": "true", "prometheus.io/port": "9100",
                                               "prometheus.io/path": "/metrics"}
    (agent,) = spec["containers"]
    mounts = {m["mountPath"]: m for m in agent["volumeMounts"]}
    for path in ("/sys/fs/cgroup", "/host/proc", "/var/lib/docker/containers", "/var/log/journal"):
        assert mounts[path].get("readOnly") is True, path
    ports = {(p["containerPort"], p["protocol"]) for p in agent["ports"]}
    assert {(9100, "TCP"), (24224, "TCP"), (12201, "UDP")} <= ports
    assert agent["livenessProbe"]["httpGet"]["path"] == "/healthz"
