"""Containers of runtimes hostwatch has no API client for, named from what they keep on the host
(read-only; nothing here talks to a daemon):

- podman (containers/storage): `<storage>/db.sql`, the SQLite state podman 5 keeps by default
  (ContainerConfig.JSON: name, rootfsImageName, labels, createdTime); with podman's older BoltDB state
  only names and images are readable, from `<storage>/overlay-containers/containers.json`.
- CRI-O (containers/storage too): each container's OCI spec, `overlay-containers/<id>/userdata/config.json`,
  whose annotations carry the Kubernetes name, image, labels and creation time.
- containerd: each running task's bundle, `<state>/io.containerd.runtime.v2.task/<namespace>/<id>/config.json`:
  CRI's annotations (container, sandbox and image names) or nerdctl's (nerdctl/name). containerd keeps
  labels and images of other clients in its BoltDB metadata, which is not read: their containers are
  named by their id and namespace only.

Their cgroups are matched by the container id in the cgroup's name (crio-<id>.scope, libpod-<id>.scope,
cri-containerd-<id>.scope, .../<id>), as Discovery does for Docker's systemd driver.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from pathlib import Path
from typing import Any

from hostwatch.core.containers import ContainerRef
from hostwatch.core.timefmt import parse_rfc3339

log = logging.getLogger("hostwatch.exporter")

TASKS_V2 = "io.containerd.runtime.v2.task"
CONTAINERS_JSON = "overlay-containers/containers.json"
PODMAN_DB = "db.sql"
# CRI-O's annotations (github.com/cri-o/cri-o/pkg/annotations)
CRIO_NAME = "io.kubernetes.cri-o.Name"
CRIO_IMAGE = "io.kubernetes.cri-o.ImageName"
CRIO_LABELS = "io.kubernetes.cri-o.Labels"
CRIO_CREATED = "io.kubernetes.cri-o.Created"
# containerd CRI's and nerdctl's annotations
CRI_CONTAINER = "io.kubernetes.cri.container-name"
CRI_SANDBOX = "io.kubernetes.cri.sandbox-name"
CRI_SANDBOX_NS = "io.kubernetes.cri.sandbox-namespace"
CRI_IMAGE = "io.kubernetes.cri.image-name"
NERDCTL_NAME = "nerdctl/name"


def _json(path: Path) -> Any:
    try:
        with open(path, "rb") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _time(value: object) -> float | None:
    try:
        return parse_rfc3339(str(value)) if value else None
    except ValueError:
        return None


def _ref(cid: str, name: str, image: str, labels: dict[str, str], source: str,
         created: float | None = None) -> ContainerRef:
    return ContainerRef(id=cid, name=name, image=image, labels=labels, cgroup="", pid=None, started_at=None,
                        running=True, source=source, created_at=created)


def _podman_db(storage: Path) -> dict[str, ContainerRef]:
    db = storage / PODMAN_DB
    if not db.is_file():
        return {}
    out: dict[str, ContainerRef] = {}
    try:
        # immutable: read without taking podman's locks or writing a journal beside its database
        conn = sqlite3.connect(f"{db.as_uri()}?mode=ro&immutable=1", uri=True, timeout=0.5)
        try:
            rows = conn.execute("SELECT ID, JSON FROM ContainerConfig").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as e:
        log.debug("podman database %s: %s", db, e)
        return {}
    for cid, raw in rows:
        try:
            cfg = json.loads(raw)
        except ValueError:
            continue
        labels = {str(k): str(v) for k, v in (cfg.get("labels") or {}).items()}
        out[str(cid)] = _ref(str(cid), str(cfg.get("name", "")), str(cfg.get("rootfsImageName", "")), labels,
                             "podman", _time(cfg.get("createdTime")))
    return out


def _crio_spec(storage: Path, cid: str) -> ContainerRef | None:
    spec = _json(storage / "overlay-containers" / cid / "userdata" / "config.json")
    notes = spec.get("annotations") if isinstance(spec, dict) else None
    if not isinstance(notes, dict) or CRIO_NAME not in notes:
        return None
    try:
        labels = {str(k): str(v) for k, v in json.loads(notes.get(CRIO_LABELS) or "{}").items()}
    except (ValueError, AttributeError):
        labels = {}
    return _ref(cid, str(notes[CRIO_NAME]), str(notes.get(CRIO_IMAGE, "")), labels, "cri-o",
                _time(notes.get(CRIO_CREATED)))


def containers_storage(storage: Path) -> list[ContainerRef]:
    """podman's and CRI-O's containers under one containers/storage root."""
    entries = _json(storage / CONTAINERS_JSON)
    if not isinstance(entries, list):
        return []
    podman = _podman_db(storage)
    out = []
    for entry in entries:
        if not isinstance(entry, dict) or not entry.get("id"):
            continue
        cid = str(entry["id"])
        ref = podman.get(cid) or _crio_spec(storage, cid)
        if ref is None:  # podman with its BoltDB state: what containers/storage itself knows
            try:
                meta = json.loads(entry.get("metadata") or "{}")
            except ValueError:
                meta = {}
            names = entry.get("names") or [""]
            ref = _ref(cid, str(meta.get("name") or names[0]), str(meta.get("image-name", "")), {}, "podman",
                       _time(entry.get("created")))
        out.append(ref)
    return out


def containerd_tasks(state: Path) -> list[ContainerRef]:
    """containerd's running tasks, in every namespace."""
    base = state / TASKS_V2
    out = []
    try:
        namespaces = sorted(os.listdir(base))
    except OSError:
        return []
    for ns in namespaces:
        try:
            ids = sorted(os.listdir(base / ns))
        except OSError:
            continue
        for cid in ids:
            spec = _json(base / ns / cid / "config.json")
            notes = spec.get("annotations") if isinstance(spec, dict) else None
            notes = notes if isinstance(notes, dict) else {}
            if CRI_CONTAINER in notes:
                name = f"{notes.get(CRI_SANDBOX_NS, '')}/{notes.get(CRI_SANDBOX, '')}/{notes[CRI_CONTAINER]}"
            else:
                name = str(notes.get(NERDCTL_NAME) or f"{ns}/{cid}")
            out.append(_ref(cid, name, str(notes.get(CRI_IMAGE, "")), {}, "containerd"))
    return out


def list_foreign(containerd_state: Path, storage: Path) -> list[ContainerRef]:
    """Every container of the runtimes above that the host shows; [] where none is installed."""
    return containerd_tasks(containerd_state) + containers_storage(storage)
