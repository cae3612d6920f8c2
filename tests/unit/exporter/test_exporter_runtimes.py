"""containerd, CRI-O and podman containers are named from what those runtimes keep on the host, and
a container's writable layer is found from its root mount."""

from __future__ import annotations

import json
from pathlib import Path

from exporter.discovery import Discovery, container_id_of
from exporter.readers import open_reader
from exporter.readers.mounts import MountTable, writable_layer
from exporter.runtimes import containerd_tasks, containers_storage, list_foreign

from exporter_testdata import FIXTURES, PODMAN_ID

CRIO_ID = "c" * 64
NERD_ID = "9" * 64
CRI_ID = "8" * 64


def _write(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def test_podman_from_its_sqlite_state() -> None:
    [ref] = containers_storage(FIXTURES / "containers-storage")
    assert (ref.id, ref.name, ref.image, ref.source) == (PODMAN_ID, "worker", "docker.io/library/alpine:3.20", "podman")
    assert ref.labels == {"tier": "batch", "io.podman.compose.project": "shop"}
    assert ref.created_at == 1767315600.0


def test_podman_without_sqlite_and_crio(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    _write(storage / "overlay-containers" / "containers.json", [
        {"id": PODMAN_ID, "names": ["old-podman"], "metadata": json.dumps({"image-name": "busybox:latest",
                                                                             "name": "old-podman"})},
        {"id": CRIO_ID, "names": ["k8s_app"], "metadata": "{}"},
        {"names": ["no id: skipped"]},
    ])
    _write(storage / "overlay-containers" / CRIO_ID / "userdata" / "config.json", {"annotations": {
        "io.kubernetes.cri-o.Name": "k8s_app_web-0_default_0123_0", "io.kubernetes.cri-o.ImageName": "nginx:1.27",
        "io.kubernetes.cri-o.Labels": json.dumps({"io.kubernetes.pod.name": "web-0", "app": "web"}),
        "io.kubernetes.cri-o.Created": "2026-01-02T00:00:00Z"}})
    refs = {r.id: r for r in containers_storage(storage)}
    assert set(refs) == {PODMAN_ID, CRIO_ID}
    assert (refs[PODMAN_ID].name, refs[PODMAN_ID].image, refs[PODMAN_ID].labels) == ("old-podman", "busybox:latest", {})
    crio = refs[CRIO_ID]
    assert (crio.name, crio.image, crio.source) == ("k8s_app_web-0_default_0123_0", "nginx:1.27", "cri-o")
    assert crio.labels == {"io.kubernetes.pod.name": "web-0", "app": "web"}


def test_containerd_task_bundles(tmp_path: Path) -> None:
    state = tmp_path / "containerd"
    tasks = state / "io.containerd.runtime.v2.task"
    _write(tasks / "k8s.io" / CRI_ID / "config.json", {"annotations": {
        "io.kubernetes.cri.container-name": "app", "io.kubernetes.cri.sandbox-name": "web-0",
        "io.kubernetes.cri.sandbox-namespace": "default", "io.kubernetes.cri.image-name": "nginx:1.27"}})
    _write(tasks / "default" / NERD_ID / "config.json", {"annotations": {"nerdctl/name": "cache"}})
    (tasks / "default" / "not-a-bundle").mkdir()
    refs = {r.id: r for r in containerd_tasks(state)}
    assert (refs[CRI_ID].name, refs[CRI_ID].image) == ("default/web-0/app", "nginx:1.27")
    assert refs[NERD_ID].name == "cache"
    assert refs["not-a-bundle"].name == "default/not-a-bundle"  # no metadata readable: its namespace/id
    assert list_foreign(tmp_path / "none", tmp_path / "none") == []


def test_their_cgroups_get_their_names(tmp_path: Path) -> None:
    cg = tmp_path / "cgroup"
    (cg / "kubepods.slice" / f"crio-{CRIO_ID}.scope").mkdir(parents=True)
    (cg / "kubepods.slice" / f"crio-conmon-{CRIO_ID}.scope").mkdir(parents=True)
    (cg / "cgroup.controllers").write_text("cpu memory\n")
    storage = tmp_path / "storage"
    _write(storage / "overlay-containers" / "containers.json", [{"id": CRIO_ID, "metadata": "{}"}])
    _write(storage / "overlay-containers" / CRIO_ID / "userdata" / "config.json",
           {"annotations": {"io.kubernetes.cri-o.Name": "k8s_app", "io.kubernetes.cri-o.ImageName": "nginx"}})
    d = Discovery(open_reader(str(cg)), tmp_path / "state", tmp_path / "docker", store_labels=True,
                  foreign=lambda: list_foreign(tmp_path / "containerd", storage))
    names = {t.cg: t.meta.name for t in d.targets()}
    assert names[f"/kubepods.slice/crio-{CRIO_ID}.scope"] == "k8s_app"
    assert names[f"/kubepods.slice/crio-conmon-{CRIO_ID}.scope"] == ""  # CRI-O's monitor, not the container
    assert container_id_of(f"/kubepods.slice/crio-conmon-{CRIO_ID}.scope") is None


def _mountinfo(root: Path, pid: str, lines: list[str]) -> None:
    (root / pid).mkdir(parents=True, exist_ok=True)
    (root / pid / "mountinfo").write_text("".join(line + "\n" for line in lines))


def test_writable_layer_from_the_root_mount(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    _mountinfo(proc, "1", ["22 1 254:0 / / rw - ext4 /dev/vda rw", "30 22 254:16 / /data rw - xfs /dev/vdb rw"])
    host = MountTable(str(proc))
    _mountinfo(proc, "10", ["100 90 0:50 / / rw - overlay overlay rw,lowerdir=/l,upperdir=/data/c1/upper,workdir=/w"])
    _mountinfo(proc, "11", ["101 91 254:16 /images/busybox / rw - xfs /dev/vdb rw"])  # a pivoted bind mount
    _mountinfo(proc, "12", ["102 92 254:0 / / rw - ext4 /dev/vda rw"])  # the host's own root
    assert writable_layer(str(proc), 10, host) == "/data/c1/upper"
    assert writable_layer(str(proc), 11, host) == "/data/images/busybox"
    assert writable_layer(str(proc), 12, host) is None
    fs = host.filesystem_of("/data/c1/upper")
    assert fs is not None and (fs.device, fs.mount_point, fs.block) == ("/dev/vdb", "/data", True)


def test_block_filesystems_once_per_device() -> None:
    host = MountTable(str(FIXTURES / "proc"))
    assert [(f.device, f.mount_point) for f in host.block_filesystems()] == [("/dev/vda", "/"),
                                                                             ("/dev/vdb", "/var/lib/docker")]
    run = host.filesystem_of("/run/x")
    assert run is not None and (run.device, run.block) == ("/run", False)  # tmpfs: named by its mount point
