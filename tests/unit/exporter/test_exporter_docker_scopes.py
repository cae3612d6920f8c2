"""Docker containers are named whatever cgroup manager placed them (cgroupfs or systemd driver)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exporter.discovery import Discovery, container_id_of
from exporter.readers import open_reader

CID = "ab" * 32


@pytest.mark.parametrize(("cgroup", "expected"), [
    (f"/docker/{CID}", CID),
    (f"/system.slice/docker-{CID}.scope", CID),
    (f"/kubepods.slice/pod1/cri-containerd-{CID}.scope", CID),
    (f"/machine.slice/libpod-{CID}.scope", CID),
    ("/system.slice/cron.service", None),
    (f"/docker/{CID}x", None),
])
def test_container_id_of(cgroup: str, expected: str | None) -> None:
    assert container_id_of(cgroup) == expected


def _v2_tree(root: Path, *cgroups: str) -> None:
    (root / "cgroup.controllers").parent.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text("cpu memory io pids\n")
    (root / "cgroup.procs").write_text("")
    for cg in cgroups:
        d = root / cg.lstrip("/")
        d.mkdir(parents=True)
        (d / "cgroup.procs").write_text("")


@pytest.mark.parametrize("raw", [True, False])
def test_systemd_scope_docker_container_gets_its_name(tmp_path: Path, raw: bool) -> None:
    cgroot = tmp_path / "cgroup"
    _v2_tree(cgroot, "/system.slice", f"/system.slice/docker-{CID}.scope", "/system.slice/cron.service")
    docker = tmp_path / "docker"
    (docker / CID).mkdir(parents=True)
    (docker / CID / "config.v2.json").write_text(json.dumps({
        "ID": CID, "Name": "/web", "Config": {"Image": "nginx:1.25", "Labels": {}},
        "State": {"Running": True, "Pid": 10, "StartedAt": "2026-01-01T00:00:00Z"},
        "HostConfig": {"CgroupParent": ""},
    }))
    d = Discovery(open_reader(str(cgroot)), tmp_path / "state", docker, raw_cgroups=raw)
    names = {t.cg: t.meta.name for t in d.targets()}
    assert names[f"/system.slice/docker-{CID}.scope"] == "web"
    if raw:
        assert names["/system.slice/cron.service"] == "" and names["/"] == ""
    else:
        assert set(names) == {"/", f"/system.slice/docker-{CID}.scope"}
