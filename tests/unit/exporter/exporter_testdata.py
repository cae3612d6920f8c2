"""Paths and config for the exporter's fixture trees (tests/fixtures/exporter, see make_fixtures.py).

A uniquely named module (not conftest) so `from exporter_testdata import ...` cannot pick up another
test directory's conftest."""

from __future__ import annotations

import os
from pathlib import Path

from exporter.config import ExporterConfig

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "exporter"
HW_ID = "a" * 64
HW2_ID = "b" * 64
DOCKER2_ID = "e" * 64
PODMAN_ID = "f" * 64
NOW = 1767312000.0
GiB = 1 << 30
# The writable layers of the fixture containers: the v1 trees' "web" from its state file, the v2
# tree's "db" and Docker container from their root process's overlay mount (proc/<pid>/mountinfo).
WEB_LAYER = "/var/lib/hostwatch/rootfs/busybox"
DB_LAYER = f"/var/lib/hostwatch/containers/{HW2_ID}/upper"
API_LAYER = f"/var/lib/docker/overlay2/{DOCKER2_ID[:12]}/diff"


def _statvfs(blocks: int, free: int, files: int, ffree: int) -> os.statvfs_result:
    # f_bsize, f_frsize, f_blocks, f_bfree, f_bavail, f_files, f_ffree, f_favail, f_flag, f_namemax
    return os.statvfs_result((4096, 4096, blocks, free, free, files, ffree, ffree, 0, 255))


# What statvfs answers for the mount points of the fixture host's mount table (proc/1/mountinfo).
FAKE_STATVFS = {
    "/": _statvfs(100 * GiB // 4096, 40 * GiB // 4096, 6_553_600, 5_000_000),
    "/var/lib/docker": _statvfs(200 * GiB // 4096, 150 * GiB // 4096, 13_107_200, 13_000_000),
    "/mnt/srv": _statvfs(100 * GiB // 4096, 40 * GiB // 4096, 6_553_600, 5_000_000),
}


def fake_statvfs(path: str) -> os.statvfs_result:
    try:
        return FAKE_STATVFS[path]
    except KeyError:
        raise FileNotFoundError(2, "no such mount in the fixture host", path) from None


def fixture_config(tree: str, **overrides: object) -> ExporterConfig:
    kwargs: dict[str, object] = dict(
        cgroup_root=str(FIXTURES / tree),
        proc_root=str(FIXTURES / "proc"),
        sys_root=str(FIXTURES / "sys"),
        etc_root=str(FIXTURES / "etc"),
        state_root=FIXTURES / "state",
        docker_root=FIXTURES / "docker",
        containerd_state=FIXTURES / "containerd",
        containers_storage=FIXTURES / "containers-storage",
        self_process_metrics=False,
        spec_refresh_seconds=0.0,
        disk_usage_refresh_seconds=0.0,  # layers are measured only where a test seeds or asks for it
    )
    kwargs.update(overrides)
    return ExporterConfig(**kwargs)  # type: ignore[arg-type]
