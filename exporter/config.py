"""Exporter configuration: one frozen object, every default named, unknown keys rejected."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from exporter.groups import DEFAULT_DISABLED, resolve_disabled
from hostwatch.core.addresses import parse_listen_address as core_parse_listen_address
from hostwatch.core.paths import DOCKER_CONTAINERS, STATE_ROOT

DEFAULT_LISTEN_ADDRESS = ":9100"
DEFAULT_CGROUP_ROOT = "/sys/fs/cgroup"
DEFAULT_PROC_ROOT = "/proc"
DEFAULT_SYS_ROOT = "/sys"
DEFAULT_ETC_ROOT = "/etc"
DEFAULT_METADATA_REFRESH_SECONDS = 10.0
DEFAULT_SPEC_REFRESH_SECONDS = 5.0
DEFAULT_TELEMETRY_PATH = "/metrics"
DEFAULT_MAX_REQUESTS = 40  # node_exporter's --web.max-requests
# cAdvisor measures a container's writable layer once a minute (common.DefaultPeriod), in the background.
DEFAULT_DISK_USAGE_REFRESH_SECONDS = 60.0
# While a layer is being measured, the walk may use at most this share of one CPU.
DEFAULT_DISK_USAGE_MAX_CPU = 0.1
# Where other runtimes keep what hostwatch can read of their containers without their APIs.
DEFAULT_CONTAINERD_STATE = Path("/run/containerd")
DEFAULT_CONTAINERS_STORAGE = Path("/var/lib/containers/storage")  # podman and CRI-O (containers/storage)

# The flag spellings are accepted as config keys too (web.listen-address -> listen_address).
_FLAG_ALIASES = {
    "web_listen_address": "listen_address",
    "web_telemetry_path": "telemetry_path",
    "web_max_requests": "max_requests",
    "whitelisted_container_labels": "label_allowlist",
    "enable_load_reader": "load_reader",
}


@dataclass(frozen=True)
class ExporterConfig:
    listen_address: str = DEFAULT_LISTEN_ADDRESS
    web_config_file: Path | None = None
    # The metric kinds switched off (see exporter.groups: cAdvisor's names and default-off list).
    disabled_metrics: frozenset[str] = DEFAULT_DISABLED
    state_root: Path = STATE_ROOT
    docker_root: Path = DOCKER_CONTAINERS
    containerd_state: Path = DEFAULT_CONTAINERD_STATE
    containers_storage: Path = DEFAULT_CONTAINERS_STORAGE
    cgroup_root: str = DEFAULT_CGROUP_ROOT
    proc_root: str = DEFAULT_PROC_ROOT
    sys_root: str = DEFAULT_SYS_ROOT
    etc_root: str = DEFAULT_ETC_ROOT
    # cAdvisor's --store_container_labels: every container label becomes container_label_<k> (never
    # env vars). False: only the keys in label_allowlist (--whitelisted_container_labels).
    store_container_labels: bool = True
    label_allowlist: tuple[str, ...] = ()
    # Report every cgroup of the hierarchy (cAdvisor's raw handler), not just named containers.
    raw_cgroups: bool = True
    # Container list, and each container's namespace inodes, are re-read at most this often.
    metadata_refresh_seconds: float = DEFAULT_METADATA_REFRESH_SECONDS
    # Limits (container_spec_*) are re-read at most this often per cgroup, with jitter, like
    # cAdvisor's spec cache. 0 reads them on every scrape.
    spec_refresh_seconds: float = DEFAULT_SPEC_REFRESH_SECONDS
    # Writable-layer usage (container_fs_usage_bytes of a container): re-measured this often, off the
    # scrape path, by a walk paced to disk_usage_max_cpu of one CPU. 0: never measured.
    disk_usage_refresh_seconds: float = DEFAULT_DISK_USAGE_REFRESH_SECONDS
    disk_usage_max_cpu: float = DEFAULT_DISK_USAGE_MAX_CPU
    # cAdvisor's --enable_load_reader: container_cpu_load_average_10s from the tasks' states.
    load_reader: bool = False
    # The most cgroup and /proc files kept open between scrapes (each holds about 4 KiB of kernel
    # memory once read); 0: every file read on each scrape, RLIMIT_NOFILE raised as needed.
    max_open_files: int = 0
    telemetry_path: str = DEFAULT_TELEMETRY_PATH
    # Concurrent /metrics requests beyond this get 503 (node_exporter's --web.max-requests); 0: no limit.
    max_requests: int = DEFAULT_MAX_REQUESTS
    # process_* metrics of the exporter itself (prometheus_client's ProcessCollector).
    self_process_metrics: bool = True

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "<config>") -> ExporterConfig:
        """From a YAML mapping (the `exporter:` section of the agent config); unknown keys are an error.
        `disable_metrics`/`enable_metrics` take cAdvisor's kind lists; `container_labels` is the older
        spelling of an allowlist (it implies store_container_labels: false)."""
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        kinds: dict[str, Any] = {}
        for key, value in data.items():
            k = str(key).replace("-", "_").replace(".", "_")
            if k in ("disable_metrics", "enable_metrics"):
                kinds[k] = value
                continue
            if k == "container_labels":
                kwargs["label_allowlist"] = value
                kwargs.setdefault("store_container_labels", False)
                continue
            k = _FLAG_ALIASES.get(k, k)
            if k not in known:
                raise ValueError(f"{source}: unknown key {key!r} in exporter config")
            kwargs[k] = value
        if kinds:
            kwargs["disabled_metrics"] = resolve_disabled(kinds.get("disable_metrics"), kinds.get("enable_metrics"))
        elif "disabled_metrics" in kwargs:
            kwargs["disabled_metrics"] = resolve_disabled(kwargs["disabled_metrics"])
        if "label_allowlist" in kwargs:
            kwargs["label_allowlist"] = split_list(kwargs["label_allowlist"])
        for k in ("state_root", "docker_root", "web_config_file", "containerd_state", "containers_storage"):
            if kwargs.get(k) is not None:
                kwargs[k] = Path(kwargs[k])
        return cls(**kwargs)


def split_list(value: str | Any) -> tuple[str, ...]:
    """`a, b` or a YAML list -> ("a", "b")."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(s for s in (str(i).strip() for i in items) if s)


def parse_listen_address(addr: str) -> tuple[str | None, int]:
    """`:9100` -> (None = all interfaces, 9100); `127.0.0.1:0`; `[::1]:9100`."""
    return core_parse_listen_address(addr, "--web.listen-address")


_TRUE = {"1", "t", "true", "yes", "on"}
_FALSE = {"0", "f", "false", "no", "off"}


def parse_bool(text: str | bool) -> bool:
    """Go's flag booleans (true/false/1/0/t/f, any case), as cAdvisor's flags take them."""
    if isinstance(text, bool):
        return text
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"invalid boolean {text!r} (expected true or false)")
