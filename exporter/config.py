"""Exporter configuration: one frozen object, every default named, unknown keys rejected."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from exporter.groups import parse_groups
from hostwatch.core.paths import DOCKER_CONTAINERS, STATE_ROOT

DEFAULT_LISTEN_ADDRESS = ":9100"
DEFAULT_CGROUP_ROOT = "/sys/fs/cgroup"
DEFAULT_PROC_ROOT = "/proc"
DEFAULT_SYS_ROOT = "/sys"
DEFAULT_ETC_ROOT = "/etc"
DEFAULT_METADATA_REFRESH_SECONDS = 10.0
DEFAULT_SPEC_REFRESH_SECONDS = 5.0
DEFAULT_TELEMETRY_PATH = "/metrics"


# The flag spellings are accepted as config keys too (web.listen-address -> listen_address).
_FLAG_ALIASES = {
    "web_listen_address": "listen_address",
    "web_telemetry_path": "telemetry_path",
    "disable_metrics": "disabled_metrics",
    "container_labels": "label_allowlist",
}


@dataclass(frozen=True)
class ExporterConfig:
    listen_address: str = DEFAULT_LISTEN_ADDRESS
    web_config_file: Path | None = None
    disabled_metrics: frozenset[str] = frozenset()
    state_root: Path = STATE_ROOT
    docker_root: Path = DOCKER_CONTAINERS
    cgroup_root: str = DEFAULT_CGROUP_ROOT
    proc_root: str = DEFAULT_PROC_ROOT
    sys_root: str = DEFAULT_SYS_ROOT
    etc_root: str = DEFAULT_ETC_ROOT
    # Container labels exported as container_label_<k> (never env vars). Empty: none.
    label_allowlist: tuple[str, ...] = ()
    # Report every cgroup of the hierarchy (cAdvisor's raw handler), not just named containers.
    raw_cgroups: bool = True
    # Container list, and each container's namespace inodes, are re-read at most this often.
    metadata_refresh_seconds: float = DEFAULT_METADATA_REFRESH_SECONDS
    # Limits (container_spec_*) are re-read at most this often per cgroup, with jitter, like
    # cAdvisor's spec cache. 0 reads them on every scrape.
    spec_refresh_seconds: float = DEFAULT_SPEC_REFRESH_SECONDS
    telemetry_path: str = DEFAULT_TELEMETRY_PATH
    # process_* metrics of the exporter itself (prometheus_client's ProcessCollector).
    self_process_metrics: bool = True

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "<config>") -> ExporterConfig:
        """From a YAML mapping (the `exporter:` section of the agent config); unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            k = str(key).replace("-", "_").replace(".", "_")
            k = _FLAG_ALIASES.get(k, k)
            if k not in known:
                raise ValueError(f"{source}: unknown key {key!r} in exporter config")
            kwargs[k] = value
        if "disabled_metrics" in kwargs:
            kwargs["disabled_metrics"] = parse_groups(kwargs["disabled_metrics"])
        if "label_allowlist" in kwargs:
            value = kwargs["label_allowlist"]
            kwargs["label_allowlist"] = tuple(value.split(",") if isinstance(value, str) else value)
        for k in ("state_root", "docker_root", "web_config_file"):
            if kwargs.get(k) is not None:
                kwargs[k] = Path(kwargs[k])
        return cls(**kwargs)


def parse_listen_address(addr: str) -> tuple[str | None, int]:
    """`:9100` -> (None = all interfaces, 9100); `127.0.0.1:0`; `[::1]:9100`."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--web.listen-address {addr!r}: expected [host]:port")
    host = host.strip("[]")
    return (host or None), int(port)
