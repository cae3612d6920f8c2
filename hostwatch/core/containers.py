"""Container metadata: the one reader of the runtime's state files and Docker's config.v2.json.

The runtime writes `ContainerState` (as config.json under its state root); the exporter and the
shipper read containers through `list_containers`, never by reaching into runtime internals.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hostwatch.core.paths import CGROUP_PARENT, DOCKER_CONTAINERS, STATE_ROOT
from hostwatch.core.timefmt import parse_rfc3339


@dataclass
class Limits:
    memory: int | None = None
    nano_cpus: int | None = None
    cpu_shares: int | None = None
    pids_limit: int | None = None
    cpuset_cpus: str | None = None


@dataclass
class ContainerState:
    """Everything the runtime records about one container (its config.json)."""

    id: str
    name: str
    image: str
    rootfs: str | None
    command: list[str]
    hostname: str
    labels: dict[str, str] = field(default_factory=dict)
    env: list[str] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    network: dict[str, Any] = field(default_factory=lambda: {"mode": "none"})
    log_driver: str = "json-file"
    log_opts: dict[str, str] = field(default_factory=dict)
    log_path: str = ""
    log_cache_path: str = ""  # dual logging: the readable local copy kept beside journald/fluentd/gelf
    auto_remove: bool = False
    cgroup: str = ""
    created: str = ""
    started: str | None = None
    finished: str | None = None
    pid: int | None = None
    monitor_pid: int | None = None
    boot_id: str = ""  # the kernel boot the container ran in: a "running" state from an earlier boot is stale
    status: str = "created"
    exit_code: int | None = None
    oom_killed: bool = False
    error: str = ""
    log_dropped: int = 0
    # copy-on-write layers (overlay2); empty for a container on the host's filesystem
    image_id: str = ""  # the image store's id of `image`; "" for --rootfs DIR or the host's filesystem
    lower_dirs: list[str] = field(default_factory=list)  # read-only layers, top first (overlay lowerdir order)
    upper_dir: str = ""  # the container's writable layer: what it wrote, changed or deleted (SizeRw)
    work_dir: str = ""  # overlayfs's scratch directory beside upper_dir
    merged_dir: str = ""  # where the union is mounted, inside the container's own mount namespace
    read_only: bool = False  # --read-only: the merged root is mounted read-only
    # confinement, as Docker's HostConfig records it
    privileged: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=list)  # the resulting set, "CAP_..." names
    security_opt: list[str] = field(default_factory=list)  # as given: seccomp=..., no-new-privileges
    seccomp_profile: str = ""  # the resolved profile file in the state dir; "" = unconfined
    no_new_privileges: bool = False
    tmpfs: dict[str, str] = field(default_factory=dict)  # container path -> mount options
    user: str = ""  # --user UID[:GID] or NAME[:GROUP], "" = root
    group_add: list[str] = field(default_factory=list)
    ulimits: list[dict[str, Any]] = field(default_factory=list)  # [{"Name", "Soft", "Hard"}]

    @property
    def short_id(self) -> str:
        return self.id[:12]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContainerState:
        known = {f for f in cls.__dataclass_fields__}
        kwargs = {k: v for k, v in data.items() if k in known}
        kwargs["limits"] = Limits(**data.get("limits", {}))
        return cls(**kwargs)


@dataclass(frozen=True)
class ContainerRef:
    """What observers need to know about a container, whatever created it."""

    id: str
    name: str
    image: str
    labels: dict[str, str]
    cgroup: str  # path relative to each hierarchy's root, e.g. "/hostwatch/<id>"
    pid: int | None
    started_at: float | None
    running: bool
    source: str  # "hostwatch" or "docker"
    log_path: str = ""
    created_at: float | None = None
    health: str = ""  # Docker's State.Health.Status (healthy, unhealthy, starting); "" = no healthcheck
    writable_layer: str = ""  # the directory holding what the container writes ("" = unknown or none)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None  # vanished mid-scan or half-written by a foreign writer
    return data if isinstance(data, dict) else None


def read_hostwatch_state(state_root: Path) -> list[ContainerState]:
    out = []
    try:
        entries = os.listdir(state_root)
    except FileNotFoundError:
        return []
    for entry in sorted(entries):
        data = _read_json(state_root / entry / "config.json")
        if data is not None:
            out.append(ContainerState.from_dict(data))
    return out


def _hostwatch_ref(s: ContainerState) -> ContainerRef:
    return ContainerRef(
        id=s.id,
        name=s.name,
        image=s.image,
        labels=dict(s.labels),
        cgroup=s.cgroup or f"/{CGROUP_PARENT}/{s.id}",
        pid=s.pid,
        started_at=parse_rfc3339(s.started),
        running=s.status == "running",
        source="hostwatch",
        log_path=s.log_path,
        created_at=parse_rfc3339(s.created or None),
        writable_layer=getattr(s, "upper_dir", "") or s.rootfs or "",  # the overlay upper dir, else the rootfs
    )


def _docker_ref(cid: str, data: dict[str, Any], docker_root: Path) -> ContainerRef:
    state = data.get("State") or {}
    config = data.get("Config") or {}
    host_config = data.get("HostConfig") or {}
    parent = host_config.get("CgroupParent") or ""
    cgroup = f"{parent.rstrip('/')}/{cid}" if parent else f"/docker/{cid}"
    pid = state.get("Pid") or None
    return ContainerRef(
        id=cid,
        name=str(data.get("Name", "")).lstrip("/"),
        image=str(config.get("Image", "")),
        labels={str(k): str(v) for k, v in (config.get("Labels") or {}).items()},
        cgroup=cgroup,
        pid=pid,
        started_at=parse_rfc3339(state.get("StartedAt")),
        running=bool(state.get("Running")),
        source="docker",
        log_path=str(data.get("LogPath") or docker_root / cid / f"{cid}-json.log"),
        created_at=parse_rfc3339(data.get("Created")),
        health=str((state.get("Health") or {}).get("Status") or ""),
    )


def list_containers(
    state_root: Path = STATE_ROOT, docker_root: Path = DOCKER_CONTAINERS
) -> list[ContainerRef]:
    """All known containers: the bundled runtime's, then Docker's (read-only) when present."""
    refs = [_hostwatch_ref(s) for s in read_hostwatch_state(state_root)]
    try:
        docker_ids = sorted(os.listdir(docker_root))
    except (FileNotFoundError, NotADirectoryError):
        docker_ids = []
    for cid in docker_ids:
        data = _read_json(docker_root / cid / "config.v2.json")
        if data is not None:
            refs.append(_docker_ref(cid, data, docker_root))
    return refs
