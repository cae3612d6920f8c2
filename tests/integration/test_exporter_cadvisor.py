"""What a cAdvisor user's scrape job, recording rules and dashboards need, for real (root): every
default-on cAdvisor family for a bundled-runtime container and for id="/", through Debian's
Prometheus 2.42 and promtool, with cAdvisor's flags.

The family list is cAdvisor v0.60's (lib/metrics/prometheus.go and prometheus_machine.go, with the
default-off kinds of cmd/cadvisor.go left out), each with the condition under which cAdvisor itself
reports it; a family whose condition holds must be there, one whose condition does not must not.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.groups import CADVISOR_VERSION

from hostwatch_cli import HW
from peers import Prometheus, free_port, http_get, prometheus, stop_process, wait_http
from test_exporter_runtime import CADVISOR_NAMES_LINT, loop_mounted_ext4, promtool_findings, wait_output

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
COMMON_DISABLE = "percpu,sched,tcp,udp,disk,diskIO,hugetlb,referenced_memory,cpu_topology,resctrl"
Sample = tuple[str, dict[str, str], float]


@dataclass(frozen=True)
class Host:
    """What decides whether cAdvisor reports a conditional family here."""

    container_psi: bool  # cgroup v2 (or a hybrid host mirroring the cgroup in its unified mount)
    root_psi: bool
    iocost: bool  # io.stat has cost.* columns (cgroup v2 with the iocost controller)
    root_interface: bool  # the host has an interface cAdvisor does not skip (not lo, veth*, docker*)
    edac: bool  # memory controllers under /sys/devices/system/edac


ALWAYS: Callable[[Host], bool] = lambda h: True  # noqa: E731
# (family, for the container, for id="/"), cAdvisor v0.60's default-on families in its order. The
# container runs with --cpus (a CFS quota), --net bridge, a rootfs and block I/O of its own.
CONTAINER_FAMILIES: list[tuple[str, Callable[[Host], bool], Callable[[Host], bool]]] = [
    ("container_last_seen", ALWAYS, ALWAYS),
    ("container_health_state", ALWAYS, ALWAYS),
    # cpu
    ("container_cpu_user_seconds_total", ALWAYS, ALWAYS),
    ("container_cpu_system_seconds_total", ALWAYS, ALWAYS),
    ("container_cpu_usage_seconds_total", ALWAYS, ALWAYS),
    *((f"container_cpu_cfs_{n}_total", ALWAYS, lambda h: False)  # only under a quota: none on "/"
      for n in ("periods", "throttled_periods", "throttled_seconds", "burst_periods", "burst_seconds")),
    # cpuLoad
    ("container_cpu_load_average_10s", ALWAYS, ALWAYS),
    ("container_cpu_load_d_average_10s", ALWAYS, ALWAYS),
    ("container_tasks_state", ALWAYS, ALWAYS),
    # memory
    *((f"container_memory_{n}", ALWAYS, ALWAYS) for n in (
        "cache", "rss", "kernel_usage", "mapped_file", "swap", "failcnt", "usage_bytes", "max_usage_bytes",
        "working_set_bytes", "total_active_file_bytes", "total_inactive_file_bytes", "failures_total",
        "events_high_total", "events_max_total", "file_dirty_bytes", "file_writeback_bytes", "pgscan_total",
        "pgsteal_total", "workingset_refault_file_total", "workingset_refault_anon_total")),
    # disk
    *((f"container_fs_{n}", ALWAYS, ALWAYS) for n in ("inodes_free", "inodes_total", "limit_bytes", "usage_bytes")),
    # diskIO
    *((f"container_fs_{n}", ALWAYS, ALWAYS) for n in (
        "reads_bytes_total", "reads_total", "sector_reads_total", "reads_merged_total", "read_seconds_total",
        "writes_bytes_total", "writes_total", "sector_writes_total", "writes_merged_total", "write_seconds_total",
        "io_current", "io_time_seconds_total", "io_time_weighted_seconds_total")),
    *((f"container_fs_io_cost_{n}_seconds_total", lambda h: h.iocost, lambda h: h.iocost)
      for n in ("usage", "wait", "indebt", "indelay")),
    ("container_blkio_device_usage_total", ALWAYS, ALWAYS),
    # network
    *((f"container_network_{way}_{what}_total", ALWAYS, lambda h: h.root_interface)
      for way in ("receive", "transmit") for what in ("bytes", "packets", "packets_dropped", "errors")),
    # oom_event
    ("container_oom_events_total", ALWAYS, ALWAYS),
    # pressure
    *((f"container_pressure_{r}_{w}_seconds_total", lambda h: h.container_psi, lambda h: h.root_psi)
      for r in ("cpu", "memory", "io") for w in ("stalled", "waiting")),
    # spec (collectContainersInfo)
    ("container_creation_time_seconds", ALWAYS, ALWAYS),
    ("container_start_time_seconds", ALWAYS, ALWAYS),
    ("container_spec_cpu_period", ALWAYS, lambda h: False),
    ("container_spec_cpu_quota", ALWAYS, lambda h: False),
    ("container_spec_cpu_shares", ALWAYS, lambda h: False),
    ("container_spec_memory_limit_bytes", ALWAYS, lambda h: False),
    ("container_spec_memory_swap_limit_bytes", ALWAYS, lambda h: False),
    ("container_spec_memory_reservation_limit_bytes", ALWAYS, lambda h: False),
]
# Families without a container: cAdvisor's collector-wide ones and prometheus_machine.go's.
HOST_FAMILIES: list[tuple[str, Callable[[Host], bool]]] = [
    ("cadvisor_version_info", ALWAYS),
    ("container_scrape_error", ALWAYS),
    *((f"machine_{n}", ALWAYS) for n in (
        "cpu_physical_cores", "cpu_cores", "cpu_sockets", "cpu_books", "cpu_drawers", "memory_bytes", "swap_bytes",
        "nvm_capacity", "nvm_avg_power_budget_watts", "scrape_error")),
    ("machine_dimm_count", lambda h: h.edac),
    ("machine_dimm_capacity_bytes", lambda h: h.edac),
]


def host_facts(container_id: str) -> Host:
    def interfaces() -> set[str]:
        lines = Path("/proc/1/net/dev").read_text().splitlines()[2:]
        return {line.split(":")[0].strip() for line in lines}

    unified = Path("/sys/fs/cgroup/unified")
    v2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()
    psi_root = (Path("/sys/fs/cgroup") if v2 else unified) / "cpu.pressure"
    psi_container = (Path("/sys/fs/cgroup") if v2 else unified) / "hostwatch" / container_id / "cpu.pressure"
    io_stat = Path("/sys/fs/cgroup/io.stat")
    return Host(
        container_psi=psi_container.exists(),
        root_psi=psi_root.exists(),
        iocost=v2 and io_stat.exists() and "cost." in io_stat.read_text(),
        root_interface=any(i != "lo" and not i.startswith(("veth", "docker")) for i in interfaces()),
        edac=Path("/sys/devices/system/edac/mc").is_dir() and any(Path("/sys/devices/system/edac/mc").glob("mc*")),
    )


def scrape(url: str) -> list[Sample]:
    text = http_get(url + "/metrics")
    return [(s.name, dict(s.labels), float(s.value)) for f in text_string_to_metric_families(text) for s in f.samples]


def family_of(sample: str, families: set[str]) -> str:
    """The family a sample belongs to (text format: counters' samples end in _total)."""
    return sample if sample in families else sample.removesuffix("_total")


@contextlib.contextmanager
def exporter(hw: HW, workdir: Path, *flags: str) -> Iterator[str]:
    """`python -m hostwatch exporter` on a free port with `flags`, reading hw's state root."""
    port = free_port()
    log = workdir / f"exporter-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hostwatch", "exporter", "--web.listen-address", f"127.0.0.1:{port}",
             "--docker-root", str(workdir / "no-docker"), *flags],
            env=hw.env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/healthz", proc, "exporter", lambda: log.read_text()[-2000:])
        yield url
    finally:
        stop_process(proc)


@dataclass
class Stack:
    hw: HW
    workdir: Path
    url: str
    prom: Prometheus
    cid: str


@pytest.fixture(scope="module")
def stack(busybox_rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One container as a compose service would run: labelled, under a CPU quota, on the bridge,
    in a busybox rootfs, writing with O_DIRECT to a volume on a block device (a loop-mounted ext4)."""
    if os.geteuid() != 0:
        pytest.fail("runtime integration tests need root")
    base = tmp_path_factory.mktemp("exporter-cadvisor")
    hw = HW(base / "state")
    with contextlib.ExitStack() as undo:
        vol = undo.enter_context(loop_mounted_ext4(base / "disk"))
        undo.callback(hw.cleanup)  # before the unmount: no container may hold the volume then
        script = ("dd if=/dev/zero of=/data/blob bs=64k count=32 oflag=direct 2>/dev/null && "
                  "dd if=/data/blob of=/dev/null bs=64k iflag=direct 2>/dev/null && echo ready; "
                  "while :; do sleep 1; done")
        run = hw("run", "-d", "--name", "web", "--label", "com.docker.compose.service=web", "--cpus", "0.5",
                 "--net", "bridge", "--rootfs", str(busybox_rootfs), "-v", f"{vol}:/data", "--", "sh", "-c", script)
        assert run.returncode == 0, run.stderr
        cid = run.stdout.strip()
        assert wait_output(hw, "web") == ["ready"]
        url = undo.enter_context(exporter(hw, base))
        prom = undo.enter_context(prometheus([url.removeprefix("http://")], base / "prometheus"))
        yield Stack(hw, base, url, prom, cid)


def wait_scrape(url: str, done: Callable[[list[Sample]], bool], timeout: float = 30.0) -> list[Sample]:
    """Scrapes until `done` (a container's layer is measured in the background, after its first scrape)."""
    deadline = time.monotonic() + timeout
    while True:
        got = scrape(url)
        if done(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def test_every_default_on_cadvisor_family_is_there(stack: Stack) -> None:
    assert CADVISOR_VERSION == "v0.60.0"  # the release the lists above are taken from
    m = wait_scrape(stack.url, lambda m: any(n == "container_fs_usage_bytes" and ls.get("name") == "web"
                                             for n, ls, _ in m))
    host = host_facts(stack.cid)
    names = {n for n, _, _ in CONTAINER_FAMILIES} | {n for n, _ in HOST_FAMILIES}
    seen: dict[str, set[str]] = {}
    for sample, labels, _ in m:
        fam = family_of(sample, names)
        who = "web" if labels.get("name") == "web" else ("/" if labels.get("id") == "/" else "")
        seen.setdefault(fam, set()).add(who)
    problems = []
    for fam, for_container, for_root in CONTAINER_FAMILIES:
        for who, wanted in (("web", for_container(host)), ("/", for_root(host))):
            if wanted != (who in seen.get(fam, set())):
                problems.append(f"{fam} for {who}: {'missing' if wanted else 'unexpected'}")
    for fam, wanted_on_host in HOST_FAMILIES:
        if wanted_on_host(host) != (fam in seen):
            problems.append(f"{fam}: {'missing' if wanted_on_host(host) else 'unexpected'}")
    assert not problems, f"against cAdvisor {CADVISOR_VERSION} on {host}: " + "; ".join(problems)


def test_dashboards_queries_through_prometheus(stack: Stack) -> None:
    prom = stack.prom
    up = prom.wait_for('up{job="hostwatch"}')
    assert [u["value"][1] for u in up] == ["1"], (up, prom.log_tail())
    ratio = prom.wait_for('container_fs_usage_bytes{id="/"} / container_fs_limit_bytes{id="/"}')
    assert ratio and all(0 < float(r["value"][1]) < 1 for r in ratio), ratio
    kernels = http_get(prom.url + "/api/v1/label/kernelVersion/values?"
                       + urllib.parse.urlencode({"match[]": "cadvisor_version_info"}))
    assert f'"data":["{os.uname().release}"]' in kernels.replace(" ", ""), kernels
    compose = prom.wait_for('container_memory_usage_bytes{container_label_com_docker_compose_service="web"}')
    assert [s["metric"]["name"] for s in compose] == ["web"], compose
    # the cAdvisor dashboards' CPU panel, by compose service
    cpu = prom.wait_for('sum by (container_label_com_docker_compose_service) '
                        '(rate(container_cpu_usage_seconds_total{container_label_com_docker_compose_service!=""}[1m]))')
    assert [s["metric"].get("container_label_com_docker_compose_service") for s in cpu] == ["web"], cpu


def test_the_common_disable_metrics_line_is_accepted(stack: Stack) -> None:
    with exporter(stack.hw, stack.workdir, f"--disable_metrics={COMMON_DISABLE}") as url:
        m = scrape(url)
    names = {n for n, _, _ in m}
    assert not any(n.startswith(("container_fs_", "container_blkio_", "container_network_tcp",
                                 "container_network_udp")) for n in names)
    cpus = {ls["cpu"] for n, ls, _ in m if n == "container_cpu_usage_seconds_total" and ls.get("name") == "web"}
    assert cpus == {"total"}  # percpu off
    assert "container_memory_usage_bytes" in names and "container_tasks_state" in names  # the rest stays on
    assert [ls.get("container_label_com_docker_compose_service") for n, ls, _ in m
            if n == "container_last_seen" and ls.get("name") == "web"] == ["web"]


def test_promtool_finds_nothing_but_cadvisors_own_names(stack: Stack) -> None:
    wait_scrape(stack.url, lambda m: any(n == "container_fs_usage_bytes" and ls.get("name") == "web" for n, ls, _ in m))
    body = http_get(stack.url + "/metrics").encode()
    assert b'container_label_com_docker_compose_service="web"' in body and b"container_fs_usage_bytes" in body
    assert promtool_findings(body) == CADVISOR_NAMES_LINT
    with exporter(stack.hw, stack.workdir, "--disable_metrics=cpuLoad") as url:  # without cpuLoad's family
        assert promtool_findings(http_get(url + "/metrics").encode()) == {
            "cadvisor_version_info label names should be written in 'snake_case' not 'camelCase'"}
    with exporter(stack.hw, stack.workdir, "--enable_metrics=cpu,memory,tcp,udp,disk") as url:  # the opt-in groups
        assert promtool_findings(http_get(url + "/metrics").encode()) <= CADVISOR_NAMES_LINT
