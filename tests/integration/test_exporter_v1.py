"""The exporter on this host's real cgroup v1 hierarchy, without the runtime: cgroups made by hand,
a CPU burner under a 0.5-core CFS quota and a 50 MB allocator, scraped over HTTP; promtool lints the
output and Debian's Prometheus 2.42 scrapes it. Root only. Everything started is stopped by PID."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.testing import CgroupSandbox

from peers import free_port, prometheus, stop_process
from peers import http_get as get
from test_exporter_runtime import CADVISOR_NAMES_LINT, promtool_findings

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
ALLOC = "b = bytes(range(256)) * (50 * 1024 * 1024 // 256); print('ready', flush=True); import time; time.sleep(600)"


def parse(text: str) -> dict[str, float]:
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def pick(metrics: dict[str, float], name: str, *fragments: str) -> list[float]:
    return [v for k, v in metrics.items() if k.startswith(name + "{") and all(f in k for f in fragments)]


@pytest.fixture(scope="module")
def workload() -> Iterator[tuple[CgroupSandbox, str, str]]:
    if os.geteuid() != 0 or not os.path.isdir("/sys/fs/cgroup/cpu"):
        pytest.fail("needs root and the cgroup v1 hierarchies under /sys/fs/cgroup")
    sb = CgroupSandbox()
    try:
        burner = sb.make("burner", cpu={"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "50000"})
        alloc = sb.make("alloc", memory={"memory.limit_in_bytes": str(256 * 2**20)})
        b = sb.spawn(burner, [sys.executable, "-c", "while True: pass"])
        a = sb.spawn(alloc, [sys.executable, "-c", ALLOC], stdout=subprocess.PIPE)
        sb.wait_member(burner, b)
        assert a.stdout is not None and a.stdout.readline().strip() == b"ready"
        yield sb, burner, alloc
    finally:
        sb.close()


@pytest.fixture(scope="module")
def exporter_url(workload: tuple[CgroupSandbox, str, str]) -> Iterator[str]:
    port = free_port()
    fd, logname = tempfile.mkstemp(prefix="hostwatch-exporter-", suffix=".log")
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter", "exporter", "--web.listen-address", f"127.0.0.1:{port}",
         "--state-root", tempfile.mkdtemp(prefix="hw-state-"), "--docker-root", "/nonexistent"],
        cwd=REPO, stdout=fd, stderr=subprocess.STDOUT,
    )
    os.close(fd)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                get(url + "/healthz", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError(Path(logname).read_text()) from None
                time.sleep(0.1)
        yield url
    finally:
        stop_process(proc)
        os.unlink(logname)


def test_values_within_tolerance(workload: tuple[CgroupSandbox, str, str], exporter_url: str) -> None:
    _, burner, alloc = workload
    first = parse(get(exporter_url + "/metrics"))
    t0 = time.monotonic()
    time.sleep(4)
    second = parse(get(exporter_url + "/metrics"))
    elapsed = time.monotonic() - t0
    cpu = "container_cpu_usage_seconds_total"
    used = sum(pick(second, cpu, f'id="{burner}"')) - sum(pick(first, cpu, f'id="{burner}"'))
    # per-CPU on v1, and like cAdvisor only the CPUs the burner has run on (a lone process may stay on one)
    per_cpu = [k for k in second if k.startswith(cpu + "{") and f'id="{burner}"' in k]
    assert 1 <= len(per_cpu) <= (os.cpu_count() or 1), per_cpu
    assert all(re.search(r'cpu="cpu\d{2}"', k) for k in per_cpu), per_cpu
    cores = used / elapsed  # the burner's CPU share under its 0.5-core quota, not a speed
    assert 0.4 <= cores <= 0.6, cores
    assert pick(second, "container_spec_cpu_quota", f'id="{burner}"') == [50000]
    assert pick(second, "container_spec_cpu_period", f'id="{burner}"') == [100000]
    assert pick(second, "container_cpu_cfs_throttled_periods_total", f'id="{burner}"')[0] > 0
    periods = pick(second, "container_cpu_cfs_periods_total", f'id="{burner}"')[0]
    assert periods - pick(first, "container_cpu_cfs_periods_total", f'id="{burner}"')[0] >= 30  # 10/s
    rss = pick(second, "container_memory_rss", f'id="{alloc}"')[0]
    ws = pick(second, "container_memory_working_set_bytes", f'id="{alloc}"')[0]
    assert 50 * 2**20 <= rss <= 90 * 2**20, rss
    assert 50 * 2**20 <= ws <= 120 * 2**20, ws
    assert pick(second, "container_spec_memory_limit_bytes", f'id="{alloc}"') == [256 * 2**20]
    assert pick(second, "container_processes", f'id="{alloc}"') == [1]
    assert pick(second, "container_threads", f'id="{alloc}"') == [1]
    assert pick(second, "container_file_descriptors", f'id="{alloc}"')[0] >= 3
    assert pick(second, "container_oom_events_total", f'id="{alloc}"') == [0]
    assert pick(second, "container_last_seen", 'id="/"')
    assert pick(second, "hostwatch_exporter_collector_errors_total", 'collector="cpu"') == [0]
    # raw cgroups in the host network namespace get no network series
    assert not pick(second, "container_network_receive_bytes_total", f'id="{alloc}"')


def test_promtool_finds_nothing_but_cadvisors_own_names(exporter_url: str) -> None:
    assert promtool_findings(get(exporter_url + "/metrics").encode()) == CADVISOR_NAMES_LINT


def test_prometheus_scrapes_it(workload: tuple[CgroupSandbox, str, str], exporter_url: str,
                               tmp_path: Path) -> None:
    target = urllib.parse.urlparse(exporter_url).netloc
    rate = 'sum(rate(container_cpu_usage_seconds_total{id=~".*hostwatch-test.*"}[1m])) by (id)'
    with prometheus([target], tmp_path) as prom:
        up = prom.wait_for('up{job="hostwatch"}')
        series = prom.wait_for(rate)
        assert up and up[0]["value"][1] == "1", (up, prom.log_tail())
    _, burner, alloc = workload
    by_id = {s["metric"]["id"]: float(s["value"][1]) for s in series}
    assert burner in by_id and alloc in by_id, by_id
