"""Collector behaviour: errors are counted and never fail a scrape; groups switch off; labels."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from prometheus_client.metrics_core import Metric

from exporter.collectors.base import parse_groups
from exporter.families import Family, render
from exporter.groups import resolve_disabled
from exporter.readers import CpuStats, open_reader
from exporter.scrape import Exporter

from exporter_testdata import FIXTURES, HW2_ID, HW_ID, NOW, fixture_config


def samples(fams: list[Metric], metric: str, /) -> dict[tuple[tuple[str, str], ...], float]:
    out = {}
    for f in fams:
        for s in f.samples:
            if s.name == metric:
                out[tuple(sorted(s.labels.items()))] = s.value
    return out


def value(fams: list[Metric], metric: str, /, **labels: str) -> float | None:
    for key, v in samples(fams, metric).items():
        d = dict(key)
        if all(d.get(k) == want for k, want in labels.items()):
            return v
    return None


def test_v1_missing_blkio_is_a_counted_error_not_a_failed_scrape() -> None:
    exp = Exporter(fixture_config("v1"))
    fams = exp.collect(now=NOW)
    assert exp.errors["diskIO"] == 1  # /system.slice/cron.service has no blkio directory
    assert value(fams, "container_fs_reads_bytes_total", id="/system.slice/cron.service") is None
    assert value(fams, "container_fs_reads_bytes_total", id=f"/hostwatch/{HW_ID}", device="/dev/vda") == 4096
    assert value(fams, "hostwatch_exporter_collector_errors_total", collector="diskIO") == 1
    assert sum(v for k, v in exp.errors.items() if k != "diskIO") == 0
    exp.collect(now=NOW)
    assert exp.errors["diskIO"] == 2  # cumulative


def test_v2_missing_controllers_are_counted() -> None:
    exp = Exporter(fixture_config("v2"))
    fams = exp.collect(now=NOW)
    old = "/system.slice/old-kernel.service"
    assert exp.errors["spec"] == 1 and exp.errors["process"] == 1
    assert value(fams, "container_memory_max_usage_bytes", id=old) == 0  # no memory.peak: 0 as cAdvisor, no error
    assert exp.errors["memory"] == 0
    assert value(fams, "container_memory_usage_bytes", id=old) == 8388608
    cg = f"/hostwatch/{HW2_ID}"
    assert value(fams, "container_cpu_usage_seconds_total", id=cg, cpu="total") == 3.0
    assert value(fams, "container_spec_cpu_shares", id=cg) == 2597
    assert value(fams, "container_spec_memory_swap_limit_bytes", id=cg) == 0  # "max"
    assert value(fams, "container_memory_events_total", id=cg, event="oom_kill") == 1
    assert value(fams, "container_oom_events_total", id=cg) == 1
    assert value(fams, "container_pressure_cpu_stalled_seconds_total", id=cg) == pytest.approx(0.4)
    assert value(fams, "container_pressure_cpu_waiting_seconds_total", id=cg) == pytest.approx(1.0)
    assert value(fams, "container_threads_max", id=cg) == 0  # "max" -> 0 like cAdvisor
    assert value(fams, "container_last_seen", id=cg) == NOW


def test_hybrid_reads_pressure_from_the_unified_mount() -> None:
    fams = Exporter(fixture_config("hybrid")).collect(now=NOW)
    cg = f"/hostwatch/{HW_ID}"
    assert value(fams, "container_pressure_io_stalled_seconds_total", id=cg) == pytest.approx(0.0002)
    assert value(fams, "container_pressure_cpu_waiting_seconds_total", id="/") == pytest.approx(5.0)
    # cgroups not mirrored in the unified hierarchy: no series, no error
    assert value(fams, "container_pressure_cpu_waiting_seconds_total", id="/system.slice") is None
    fams_v1 = Exporter(fixture_config("v1")).collect(now=NOW)
    assert not samples(fams_v1, "container_pressure_cpu_waiting_seconds_total")


def test_named_and_raw_labels_and_allowlist() -> None:
    fams = Exporter(fixture_config("v1")).collect(now=NOW)
    named = value(fams, "container_memory_usage_bytes", name="web", image="busybox:1.36",
                  container_label_tier="front", container_label_com_example_team="core")
    assert named == 104857600
    raw = samples(fams, "container_memory_usage_bytes")
    keys = {tuple(k for k, _ in key) for key in raw}
    assert len(keys) == 1  # every series carries the same label names
    text = render(fams, openmetrics=False).decode()
    assert "SECRET" not in text and "container_env" not in text
    assert value(fams, "container_start_time_seconds", name="web") == pytest.approx(1767323045.5)
    # network only where the cgroup has its own net namespace (or is the root)
    ifaces = {dict(k)["id"] for k in samples(fams, "container_network_receive_bytes_total")}
    assert ifaces == {"/", f"/hostwatch/{HW_ID}"}


def test_per_cpu_and_total() -> None:
    fams = Exporter(fixture_config("v1")).collect(now=NOW)
    cg = f"/hostwatch/{HW_ID}"
    assert value(fams, "container_cpu_usage_seconds_total", id=cg, cpu="cpu01") == 2.5
    fams = Exporter(fixture_config("v1", disabled_metrics=frozenset({"percpu"}))).collect(now=NOW)
    assert value(fams, "container_cpu_usage_seconds_total", id=cg, cpu="total") == 4.0
    assert value(fams, "container_cpu_usage_seconds_total", id=cg, cpu="cpu00") is None


def test_disable_metrics_groups() -> None:
    disabled = resolve_disabled("network,pressure,process,namespace,diskio,disk,tcp,udp")
    fams = Exporter(fixture_config("hybrid", disabled_metrics=disabled)).collect(now=NOW)
    names = {f.name for f in fams}
    assert not any(n.startswith(("container_network", "container_pressure", "container_fs")) for n in names)
    assert "container_processes" not in names and "container_namespace_info" not in names
    assert "container_cpu_usage_seconds" in names
    with pytest.raises(ValueError, match="bogus"):
        parse_groups("cpu,bogus")


def test_disable_metrics_replaces_the_default_off_list_as_in_cadvisor() -> None:
    """--disable_metrics=percpu turns tcp and udp on (they are off only by default), as cAdvisor's
    flag does; naming them keeps them off."""
    on = Exporter(fixture_config("v1", disabled_metrics=resolve_disabled("percpu"))).collect(now=NOW)
    assert value(on, "container_network_tcp_usage_total", name="web", tcp_state="listen") == 1
    assert value(on, "container_network_udp_usage_total", name="web", udp_state="rxqueued") == 256
    off = Exporter(fixture_config("v1", disabled_metrics=resolve_disabled("percpu,tcp,udp"))).collect(now=NOW)
    assert not samples(off, "container_network_tcp_usage_total")
    default = Exporter(fixture_config("v1", disabled_metrics=resolve_disabled(None))).collect(now=NOW)
    assert not samples(default, "container_network_tcp_usage_total")
    assert value(default, "container_cpu_usage_seconds_total", name="web", cpu="cpu01") == 2.5


class _VanishingReader:
    """Delegates to a real reader but one cgroup disappears mid-scrape, another raises oddly."""

    def __init__(self, inner: object, vanished: str, broken: str) -> None:
        self._inner = inner
        self.vanished = vanished
        self.broken = broken

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    def cpu(self, cg: str, per_cpu: bool, cfs: bool = True) -> CpuStats:
        if cg == self.vanished:
            raise FileNotFoundError(cg)
        if cg == self.broken:
            raise ValueError("junk in cpu.stat")
        return self._inner.cpu(cg, per_cpu, cfs)  # type: ignore[attr-defined, no-any-return]


def test_cgroup_vanishing_mid_scrape() -> None:
    cfg = fixture_config("v1")
    reader = _VanishingReader(open_reader(cfg.cgroup_root), "/system.slice", "/hostwatch")
    exp = Exporter(cfg, reader=reader)  # type: ignore[arg-type]
    fams = exp.collect(now=NOW)
    assert exp.errors["cpu"] == 2
    assert value(fams, "container_cpu_usage_seconds_total", id="/system.slice") is None
    assert value(fams, "container_cpu_usage_seconds_total", id=f"/hostwatch/{HW_ID}", cpu="cpu00") == 1.5
    assert value(fams, "container_memory_usage_bytes", id="/system.slice") == 8388608


def test_a_crashing_collector_is_counted_and_the_rest_still_served() -> None:
    class Boom:
        name = "boom"

        def collect(self, scrape: object) -> list[Family]:
            raise RuntimeError("bug")

    exp = Exporter(fixture_config("v1"))
    exp.collectors.insert(0, Boom())  # type: ignore[arg-type]
    fams = exp.collect(now=NOW)
    assert exp.errors["boom"] == 1
    assert value(fams, "container_memory_usage_bytes", id="/") == 2147483648
    assert value(fams, "container_scrape_error") == 1  # cAdvisor's flag that a collection went wrong
    assert value(Exporter(fixture_config("v1")).collect(now=NOW), "container_scrape_error") == 0
    assert value(fams, "hostwatch_exporter_collector_errors_total", collector="boom") == 1


def test_registry_integration() -> None:
    from prometheus_client import generate_latest

    exp = Exporter(fixture_config("v2"))
    text = generate_latest(exp.registry()).decode()
    assert ('container_memory_working_set_bytes{container_label_com_docker_compose_service="",'
            'container_label_io_podman_compose_project="",container_label_tier="back"') in text
    assert "hostwatch_exporter_scrape_duration_seconds" in text


def test_spec_cache_and_rereads(tmp_path: Path) -> None:
    tree = tmp_path / "v1"
    shutil.copytree(FIXTURES / "v1", tree, symlinks=True)
    quota = tree / "cpu,cpuacct" / "hostwatch" / HW_ID / "cpu.cfs_quota_us"
    cached = Exporter(fixture_config("v1", cgroup_root=str(tree), spec_refresh_seconds=3600.0))
    fresh = Exporter(fixture_config("v1", cgroup_root=str(tree), spec_refresh_seconds=0.0))
    assert value(cached.collect(now=NOW), "container_spec_cpu_quota", name="web") == 50000
    quota.write_text("150000\n")  # `update --cpus 1.5`
    assert value(cached.collect(now=NOW), "container_spec_cpu_quota", name="web") == 50000
    assert value(fresh.collect(now=NOW), "container_spec_cpu_quota", name="web") == 150000
    quota.write_text("-1\n")
    assert value(fresh.collect(now=NOW), "container_spec_cpu_quota", name="web") is None  # unlimited: omitted
