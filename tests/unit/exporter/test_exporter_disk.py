"""The disk group (container_fs_usage_bytes & co.) and the diskIO families that join it: statvfs of
the host's block filesystems for id="/", a container's writable layer measured off the scrape path."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from exporter.diskusage import Usage, walk_usage
from exporter.readers import fsread
from exporter.scrape import Exporter

from exporter_testdata import API_LAYER, DB_LAYER, FIXTURES, HW_ID, NOW, WEB_LAYER, GiB, fake_statvfs, fixture_config


def value(fams: list, metric: str, **labels: str) -> float | None:  # type: ignore[type-arg]
    for f in fams:
        for s in f.samples:
            if s.name == metric and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return None


def devices(fams: list, metric: str, cg: str) -> list[str]:  # type: ignore[type-arg]
    return sorted(s.labels["device"] for f in fams for s in f.samples if s.name == metric and s.labels["id"] == cg)


def test_root_reports_every_block_filesystem_once() -> None:
    fams = Exporter(fixture_config("v1")).collect(now=NOW)
    assert devices(fams, "container_fs_usage_bytes", "/") == ["/dev/vda", "/dev/vdb"]  # not tmpfs, bind once
    usage = value(fams, "container_fs_usage_bytes", id="/", device="/dev/vda")
    limit = value(fams, "container_fs_limit_bytes", id="/", device="/dev/vda")
    assert (usage, limit) == (60 * GiB, 100 * GiB)
    assert usage is not None and limit is not None and 0 < usage / limit < 1  # the host dashboards' ratio
    assert value(fams, "container_fs_inodes_free", id="/", device="/dev/vdb") == 13_000_000
    # diskstats of the second disk join the diskIO families of id="/" (seconds, not cAdvisor's 1e-9 of ms)
    assert value(fams, "container_fs_io_time_seconds_total", id="/", device="/dev/vdb") == 21.0


def test_a_container_reports_its_writable_layer_once_measured() -> None:
    exp = Exporter(fixture_config("v2"))
    first = exp.collect(now=NOW)
    assert value(first, "container_fs_usage_bytes", name="db") is None  # not measured yet: no series
    exp.disk_usage.put(DB_LAYER, Usage(7 * 4096, 3))
    exp.disk_usage.put(API_LAYER, Usage(4096, 1))
    fams = exp.collect(now=NOW)
    assert value(fams, "container_fs_usage_bytes", name="db", device="/dev/vda") == 7 * 4096
    assert value(fams, "container_fs_limit_bytes", name="db", device="/dev/vda") == 100 * GiB
    assert value(fams, "container_fs_inodes_total", name="db") == 3
    assert value(fams, "container_fs_usage_bytes", name="shop-api-1", device="/dev/vdb") == 4096  # on overlay2
    assert value(fams, "container_fs_usage_bytes", id="/system.slice") is None  # raw cgroups have no layer


def test_a_layer_is_measured_for_real_in_the_background(tmp_path: Path) -> None:
    """The web container's rootfs, here a real directory: the first scrapes do not wait for the
    walk, and a later one reports what walk_usage counts."""
    layer = tmp_path / "rootfs"
    (layer / "bin").mkdir(parents=True)
    (layer / "bin" / "busybox").write_bytes(b"\x7fELF" + b"\0" * 50_000)
    state = tmp_path / "state"
    shutil.copytree(FIXTURES / "state", state)
    web = state / HW_ID / "config.json"
    web.write_text(web.read_text().replace(WEB_LAYER, str(layer)))
    exp = Exporter(fixture_config("v1", state_root=state, disk_usage_refresh_seconds=60.0, disk_usage_max_cpu=1.0))
    try:
        got = None
        deadline = time.monotonic() + 10
        while got is None and time.monotonic() < deadline:
            got = value(exp.collect(now=NOW), "container_fs_usage_bytes", name="web")
            time.sleep(0.02)
        assert got == walk_usage(str(layer)).bytes  # on the fixture host's "/" (the longest mount prefix)
        assert exp.disk_usage.walks == 1
    finally:
        exp.close()


def test_a_failed_statvfs_is_a_counted_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(path: str) -> object:
        if path == "/var/lib/docker":
            raise PermissionError(13, "Permission denied", path)
        return fake_statvfs(path)

    monkeypatch.setattr(fsread, "statvfs", broken)
    exp = Exporter(fixture_config("v1"))
    exp.disk_usage.put(WEB_LAYER, Usage(1, 1))
    fams = exp.collect(now=NOW)
    assert devices(fams, "container_fs_usage_bytes", "/") == ["/dev/vda"]
    assert exp.errors["disk"] == 1
    assert value(fams, "container_fs_usage_bytes", name="web") == 1
