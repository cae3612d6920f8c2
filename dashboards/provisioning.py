"""Grafana provisioning: the Prometheus and Elasticsearch datasources the dashboards name by uid, and
a file provider that loads the generated dashboards."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from dashboards.panels import ELASTICSEARCH_UID, PROMETHEUS_UID

# The compose stack's addresses (compose/docker-compose.yml): what `build` provisions by default.
DEFAULT_PROMETHEUS_URL = "http://prometheus-a:9090"
DEFAULT_ELASTICSEARCH_URL = "http://elasticsearch:9200"
DEFAULT_ELASTICSEARCH_INDEX = "hostwatch-logs-*"  # the indexer's hostwatch-logs-%Y.%m.%d indices
DEFAULT_SCRAPE_INTERVAL = "15s"  # compose/prometheus/prometheus.yml's global scrape_interval
DEFAULT_DASHBOARDS_PATH = "/var/lib/grafana/dashboards/hostwatch"  # where compose mounts them
FOLDER = "hostwatch"

DATASOURCES_FILE = "provisioning/datasources/hostwatch.yml"
PROVIDERS_FILE = "provisioning/dashboards/hostwatch.yml"
DASHBOARDS_DIR = "dashboards"


@dataclass(frozen=True)
class Settings:
    prometheus_url: str = DEFAULT_PROMETHEUS_URL
    elasticsearch_url: str = DEFAULT_ELASTICSEARCH_URL
    elasticsearch_index: str = DEFAULT_ELASTICSEARCH_INDEX
    scrape_interval: str = DEFAULT_SCRAPE_INTERVAL
    dashboards_path: str = DEFAULT_DASHBOARDS_PATH


DEFAULT = Settings()


def datasources(s: Settings) -> dict[str, Any]:
    return {"apiVersion": 1, "datasources": [
        {"name": "Prometheus", "uid": PROMETHEUS_UID, "type": "prometheus", "access": "proxy",
         "url": s.prometheus_url, "isDefault": True, "editable": False,
         # timeInterval: Grafana's $__rate_interval is at least four scrape intervals
         "jsonData": {"httpMethod": "POST", "timeInterval": s.scrape_interval}},
        {"name": "Elasticsearch (logs)", "uid": ELASTICSEARCH_UID, "type": "elasticsearch", "access": "proxy",
         "url": s.elasticsearch_url, "isDefault": False, "editable": False,
         # the index goes in jsonData.index: the top-level `database` field is deprecated
         "jsonData": {"index": s.elasticsearch_index, "timeField": "@timestamp", "logMessageField": "message",
                      "logLevelField": "log.level", "maxConcurrentShardRequests": 5}},
    ]}


def providers(s: Settings) -> dict[str, Any]:
    return {"apiVersion": 1, "providers": [
        {"name": "hostwatch", "orgId": 1, "folder": FOLDER, "type": "file", "disableDeletion": True,
         "updateIntervalSeconds": 30, "allowUiUpdates": False,
         "options": {"path": s.dashboards_path, "foldersFromFilesStructure": False}},
    ]}


def datasource_uids(provisioned: dict[str, Any]) -> set[str]:
    return {d["uid"] for d in provisioned.get("datasources") or [] if d.get("uid")}


def dump(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
