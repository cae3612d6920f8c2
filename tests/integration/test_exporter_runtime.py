"""The exporter against the bundled runtime's containers, for real (root).

Side by side: a CPU burner at --cpus 0.5, a 50 MiB allocator, one OOM-killed container, and two
--net bridge containers of which one sends the other 1 MB with busybox nc. `hostwatch exporter`,
reading the same state root, must show each load within tolerance under the container's name, image
and id; promtool must find nothing to lint but cAdvisor's own names; Debian's Prometheus 2.42 scraping it must answer
cAdvisor's dashboard query with exactly these containers. The block-I/O test brings its own block
device (a loop-mounted ext4), state root and exporter, so it holds wherever /tmp lives.
Processes are stopped by PID, the containers removed with `rm -f`, the loop device detached.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hostwatch_cli import HW
from peers import Prometheus, free_port, http_get, prometheus, stop_process, wait_http

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
MiB = 1 << 20
PYTHON = os.path.realpath(sys.executable)  # host-rootfs containers see the host's files
ALLOC = f"b = b'x' * (50 * {MiB}); print('ready', flush=True); import time; time.sleep(600)"
OOM = f"b = b'x' * (100 * {MiB})"
WRITE_MIB = 20
SENT = 1_000_000
PORT = 7000
TCP_LISTEN = "0A"

Sample = tuple[str, dict[str, str], float]


@dataclass
class Stack:
    hw: HW
    url: str  # the exporter
    prom: Prometheus
    started: dict[str, str]  # container name -> full id, for those that started
    failed: dict[str, str]  # container name -> why it did not start
    oom: subprocess.CompletedProcess[str]  # the foreground run of the container the OOM killer ends
    t0: float  # wall clock just before the first container started

    def id(self, name: str) -> str:
        """The container's id; fails only the test that needs a container that did not start."""
        if name not in self.started:
            pytest.fail(f"{name} did not start: {self.failed.get(name, 'not one of the workloads')}")
        return self.started[name]

    def all_ids(self) -> dict[str, str]:
        if self.failed:
            pytest.fail(f"not every workload started: {self.failed}")
        return self.started


def scrape(url: str) -> list[Sample]:
    text = http_get(url + "/metrics")
    return [(s.name, dict(s.labels), float(s.value)) for f in text_string_to_metric_families(text) for s in f.samples]


def values(samples: list[Sample], metric: str, **labels: str) -> list[float]:
    return [v for n, ls, v in samples if n == metric and all(ls.get(k) == want for k, want in labels.items())]


def one(samples: list[Sample], metric: str, **labels: str) -> float:
    found = values(samples, metric, **labels)
    assert len(found) == 1, (metric, labels, found)
    return found[0]


def disk_of(path: Path) -> str:
    """/dev/<whole disk> holding `path`: blkio counts I/O per disk, not per partition."""
    st = os.stat(path)
    sysdev = Path(f"/sys/dev/block/{os.major(st.st_dev)}:{os.minor(st.st_dev)}")
    if not sysdev.exists():
        pytest.fail(f"{path} is not on a block device: its writes would reach no blkio counter")
    real = sysdev.resolve()
    if (real / "partition").exists():
        real = real.parent
    return "/dev/" + real.name


def _sh(*args: str) -> None:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(args)} -> {proc.returncode}: {proc.stderr.strip()}")


def _umount(target: Path) -> None:
    if subprocess.run(["umount", str(target)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "--lazy", str(target)], check=True)  # busy: detach it now, free it later


@contextlib.contextmanager
def loop_mounted_ext4(workdir: Path, size: str = "64M") -> Iterator[Path]:
    """A fresh ext4 filesystem on a loop device, mounted at workdir/mnt; all of it undone on exit.

    Its image lives on a tmpfs mounted here for it, so the block device does not depend on what the
    host's /tmp is (tmpfs on Debian 13, overlayfs in a container: neither is a block device).
    """
    backing, mnt = workdir / "backing", workdir / "mnt"
    backing.mkdir(parents=True)
    mnt.mkdir()
    with contextlib.ExitStack() as undo:
        _sh("mount", "-t", "tmpfs", "-o", "size=96m,mode=700", "hostwatch-test", str(backing))
        undo.callback(_umount, backing)
        image = backing / "disk.img"
        _sh("truncate", "-s", size, str(image))
        _sh("mkfs.ext4", "-q", "-F", str(image))
        losetup = subprocess.run(["losetup", "--find", "--show", str(image)], capture_output=True, text=True)
        if losetup.returncode != 0:
            pytest.fail(f"no loop device for {image}: {losetup.stderr.strip()}")
        device = losetup.stdout.strip()
        undo.callback(subprocess.run, ["losetup", "--detach", device], check=True)
        _sh("mount", device, str(mnt))
        undo.callback(_umount, mnt)
        yield mnt


@contextlib.contextmanager
def exporter(hw: HW, workdir: Path) -> Iterator[str]:
    """`python -m hostwatch exporter` on a free port, reading hw's state root (HOSTWATCH_STATE_ROOT)."""
    port = free_port()
    log = workdir / "exporter.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hostwatch", "exporter", "--web.listen-address", f"127.0.0.1:{port}",
             "--docker-root", str(workdir / "no-docker")],
            env=hw.env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/healthz", proc, "exporter", lambda: log.read_text()[-2000:])
        yield url
    finally:
        stop_process(proc)


def listening(pid: int, port: int, timeout: float = 10.0) -> bool:
    """Whether a TCP socket in `pid`'s network namespace listens on `port` (read from the host) in time."""
    local = f":{port:04X}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for table in ("tcp", "tcp6"):
            with contextlib.suppress(FileNotFoundError):
                for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                    fields = line.split()
                    if fields[1].endswith(local) and fields[3] == TCP_LISTEN:
                        return True
        time.sleep(0.05)
    return False


def wait_output(hw: HW, name: str, timeout: float = 20.0) -> list[str]:
    """The container's stdout lines (`hostwatch logs`) once there are any."""
    deadline = time.monotonic() + timeout
    while True:
        lines = hw("logs", name, check=True).stdout.splitlines()
        if lines:
            return lines
        if time.monotonic() > deadline:
            pytest.fail(f"{name} printed nothing in {timeout:g} s: {hw.inspect(name)['State']}")
        time.sleep(0.1)


def start_workloads(hw: HW, rootfs: Path) -> tuple[dict[str, str], dict[str, str], subprocess.CompletedProcess[str]]:
    """(started: name -> id, failed: name -> why, the OOM run). A workload that cannot start is
    recorded, not raised: only the tests that need it fail."""
    bb = str(rootfs)
    started: dict[str, str] = {}
    failed: dict[str, str] = {}

    def detached(name: str, *args: str) -> None:
        proc = hw("run", "-d", "--name", name, *args)
        if proc.returncode == 0:
            started[name] = proc.stdout.strip()
        else:
            failed[name] = f"exit {proc.returncode}: {proc.stderr.strip()}"

    detached("burner", "--cpus", "0.5", "--rootfs", bb, "--", "sh", "-c", "while :; do :; done")
    detached("alloc", "--memory", "256m", "--", PYTHON, "-c", ALLOC)
    # nc reads its stdin too and quits at its EOF: `sleep |` keeps it open; wc prints what arrived
    detached("rx", "--net", "bridge", "--rootfs", bb, "--", "sh", "-c", f"sleep 600 | nc -l -p {PORT} | wc -c")
    if "rx" not in started:
        failed["tx"] = "rx did not start"
    else:
        rx = hw.inspect("rx")
        if listening(rx["State"]["Pid"], PORT):
            ip = rx["NetworkSettings"]["IPAddress"]
            detached("tx", "--net", "bridge", "--rootfs", bb, "--", "sh", "-c",
                     f"head -c {SENT} /dev/zero | nc {ip} {PORT}; echo sent; sleep 600")
        else:
            failed["tx"] = f"nothing listens on port {PORT} in rx"
    oom = hw("run", "--name", "oom", "--memory", "32m", "--", PYTHON, "-c", OOM)
    if hw("inspect", "oom").returncode == 0:
        started["oom"] = hw.inspect("oom")["Id"]
    else:
        failed["oom"] = f"exit {oom.returncode}: {oom.stderr.strip()}"
    return started, failed, oom


@pytest.fixture(scope="module")
def stack(busybox_rootfs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The exporter, Prometheus and the workloads every test here but the disk test looks at.

    Only what all of them need can fail here (the exporter, Prometheus); a workload's own trouble
    fails the tests that look at that workload."""
    if os.geteuid() != 0:
        pytest.fail("runtime integration tests need root")
    base = tmp_path_factory.mktemp("exporter-runtime")
    hw = HW(base / "state")  # module-wide, unlike the `hw` fixture: one set of containers for every test
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(hw.cleanup)
        url = cleanup.enter_context(exporter(hw, base))
        prom = cleanup.enter_context(prometheus([url.removeprefix("http://")], base / "prometheus"))
        t0 = time.time()
        started, failed, oom = start_workloads(hw, busybox_rootfs)
        yield Stack(hw, url, prom, started, failed, oom, t0)


def burner_cgroup(samples: list[Sample]) -> str:
    return next(ls["id"] for n, ls, _ in samples if n == "container_last_seen" and ls.get("name") == "burner")


def ran_on(cgroup: str) -> set[str]:
    """The CPUs (as the exporter names them) a v1 cgroup's tasks have used."""
    (acct,) = [d for d in Path("/sys/fs/cgroup").glob("*cpuacct*") if (d / cgroup.lstrip("/")).is_dir()][:1]
    counts = (acct / cgroup.lstrip("/") / "cpuacct.usage_percpu").read_text().split()
    return {f"cpu{i:02d}" for i, ns in enumerate(counts) if int(ns)}


def test_cpu_burner_at_half_a_cpu(stack: Stack) -> None:
    stack.id("burner")
    cpu = "container_cpu_usage_seconds_total"
    throttled = "container_cpu_cfs_throttled_periods_total"
    a0 = time.monotonic()
    first = scrape(stack.url)
    a1 = time.monotonic()
    time.sleep(3)
    ran_before = ran_on(burner_cgroup(first))
    b0 = time.monotonic()
    second = scrape(stack.url)
    b1 = time.monotonic()
    elapsed = (b0 + b1) / 2 - (a0 + a1) / 2
    # Per-CPU on v1, a CPU the burner never ran on left out (as cAdvisor does): the labels are those of
    # the CPUs its cpuacct.usage_percpu counts, read just before and just after the scrape.
    labels = {ls["cpu"] for n, ls, _ in second if n == cpu and ls.get("name") == "burner"}
    ran_after = ran_on(burner_cgroup(second))
    assert ran_before <= labels <= ran_after and labels and "total" not in labels, (ran_before, labels, ran_after)
    used = sum(values(second, cpu, name="burner")) - sum(values(first, cpu, name="burner"))
    cores = used / elapsed  # the burner's CPU share under its 0.5-core quota, not a speed
    assert 0.4 <= cores <= 0.6, cores
    assert one(second, throttled, name="burner") > one(first, throttled, name="burner")
    assert one(second, "container_spec_cpu_quota", name="burner") == 50000
    assert one(second, "container_spec_cpu_period", name="burner") == 100000
    assert one(second, "container_last_seen", name="alloc") > 0  # there, and yet:
    assert values(second, "container_spec_cpu_quota", name="alloc") == []  # unlimited: no series, like cAdvisor


def test_memory_of_a_50_mib_allocator(stack: Stack) -> None:
    stack.id("alloc")
    assert wait_output(stack.hw, "alloc") == ["ready"]
    m = scrape(stack.url)
    rss = one(m, "container_memory_rss", name="alloc")
    working_set = one(m, "container_memory_working_set_bytes", name="alloc")
    assert 50 * MiB <= rss <= 80 * MiB, rss
    assert 50 * MiB <= working_set <= 100 * MiB, working_set
    assert working_set <= one(m, "container_memory_usage_bytes", name="alloc")
    assert one(m, "container_memory_max_usage_bytes", name="alloc") >= rss
    assert one(m, "container_spec_memory_limit_bytes", name="alloc") == 256 * MiB


def test_disk_writes_are_counted_on_the_volume_disk(busybox_rootfs: Path, tmp_path: Path) -> None:
    """20 MiB written with O_DIRECT to a volume on a block device this test makes (a loop-mounted
    ext4), so it runs wherever /tmp is; its own state root and exporter keep it apart from the stack."""
    hw = HW(tmp_path / "state")
    with contextlib.ExitStack() as undo:
        vol = undo.enter_context(loop_mounted_ext4(tmp_path / "disk"))
        undo.callback(hw.cleanup)  # before the unmount: no container may hold the volume then
        url = undo.enter_context(exporter(hw, tmp_path))
        bb = str(busybox_rootfs)
        hw("run", "-d", "--name", "writer", "--rootfs", bb, "-v", f"{vol}:/data", "--", "sh", "-c",
           f"dd if=/dev/zero of=/data/blob bs=1M count={WRITE_MIB} oflag=direct && echo written; sleep 600",
           check=True)
        hw("run", "-d", "--name", "idle", "--rootfs", bb, "-v", f"{vol}:/data", "--", "sleep", "600", check=True)
        assert wait_output(hw, "writer") == ["written"]
        disk = disk_of(vol)
        assert disk.startswith("/dev/loop"), disk
        m = scrape(url)
        written = one(m, "container_fs_writes_bytes_total", name="writer", device=disk)
        assert WRITE_MIB * MiB <= written <= (WRITE_MIB + 2) * MiB, written
        assert one(m, "container_fs_writes_total", name="writer", device=disk) >= WRITE_MIB
        assert one(m, "container_last_seen", name="idle") > 0
        assert sum(values(m, "container_fs_writes_bytes_total", name="idle", device=disk)) < MiB


def test_oom_killed_container_is_counted_until_rm(stack: Stack) -> None:
    stack.id("oom")
    assert stack.oom.returncode == 137, (stack.oom.returncode, stack.oom.stderr)
    assert stack.hw.inspect("oom")["State"]["OOMKilled"] is True
    stack.id("alloc")
    m = scrape(stack.url)  # exited, but its cgroup stays until `rm`
    assert one(m, "container_oom_events_total", name="oom") >= 1
    assert one(m, "container_oom_events_total", name="alloc") == 0
    assert one(m, "container_spec_memory_limit_bytes", name="oom") == 32 * MiB


def test_bridge_traffic_between_two_containers(stack: Stack) -> None:
    stack.id("rx")
    stack.id("tx")
    logs = {name: wait_output(stack.hw, name) for name in ("rx", "tx")}
    assert logs == {"rx": [str(SENT)], "tx": ["sent"]}, logs
    m = scrape(stack.url)
    received = one(m, "container_network_receive_bytes_total", name="rx", interface="eth0")
    sent = one(m, "container_network_transmit_bytes_total", name="tx", interface="eth0")
    assert SENT <= received <= 1.2 * SENT, received  # payload plus TCP/IP headers
    assert SENT <= sent <= 1.2 * SENT, sent
    assert one(m, "container_network_receive_packets_total", name="rx", interface="eth0") >= SENT / 65536
    interfaces = {ls["interface"] for n, ls, _ in m if n.startswith("container_network_") and ls["name"]}
    assert interfaces == {"eth0"}  # lo is skipped; --net none containers have nothing else


def test_series_carry_name_image_and_id(stack: Stack) -> None:
    ids = stack.all_ids()
    m = scrape(stack.url)
    assert {ls["name"] for n, ls, _ in m if n == "container_last_seen" and ls["name"]} == set(ids)
    images = {name: stack.hw.inspect(name)["Image"] for name in ids}
    assert images == {"burner": "busybox", "alloc": "host", "rx": "busybox", "tx": "busybox", "oom": "host"}
    for name, cid in ids.items():
        want = {"id": f"/hostwatch/{cid}", "image": images[name], "name": name}
        assert [ls for n, ls, _ in m if n == "container_last_seen" and ls["name"] == name] == [want]
        mine = [(metric, ls) for metric, ls, _ in m if ls.get("name") == name]
        assert len(mine) > 2, name  # last seen, start time and the container's own metrics
        assert [(metric, ls) for metric, ls in mine if (ls["id"], ls["image"]) != (want["id"], want["image"])] == []
        assert stack.t0 - 1 <= one(m, "container_start_time_seconds", name=name) <= time.time()


# What promtool's linter says of cAdvisor's own names, which dashboards query by and which no type
# can quiet (README: "promtool"): nothing else may come up.
CADVISOR_NAMES_LINT = {
    "cadvisor_version_info label names should be written in 'snake_case' not 'camelCase'",
    "container_cpu_load_d_average_10s metric names should not contain abbreviated units",
}


def promtool_findings(body: bytes) -> set[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not installed (apt-get install prometheus)")
    res = subprocess.run([promtool, "check", "metrics"], input=body, capture_output=True, timeout=60)
    if res.returncode == 1:
        pytest.fail(f"promtool could not parse the exposition: {res.stderr.decode()}")
    return set((res.stdout + res.stderr).decode().splitlines())


def test_promtool_finds_nothing_but_cadvisors_own_names(stack: Stack) -> None:
    stack.id("burner")
    stack.id("oom")
    body = http_get(stack.url + "/metrics").encode()
    assert b'name="burner"' in body and b'name="oom"' in body
    assert promtool_findings(body) == CADVISOR_NAMES_LINT


def test_prometheus_scrapes_it_and_the_cadvisor_dashboard_query_names_the_containers(stack: Stack) -> None:
    up = stack.prom.wait_for('up{job="hostwatch"}')
    assert [u["value"][1] for u in up] == ["1"], (up, stack.prom.log_tail())
    query = 'sum(rate(container_cpu_usage_seconds_total{name!=""}[1m])) by (name)'
    want = set(stack.all_ids())
    result = stack.prom.wait_for(query, lambda r: {s["metric"].get("name") for s in r} >= want)
    by_name = {s["metric"]["name"]: float(s["value"][1]) for s in result}
    assert set(by_name) == want, by_name
    assert by_name["oom"] == 0, by_name  # exited: its counter stands still
    # rate() divides by the whole 1m window, so these seconds-old series read low there; irate()
    # (the last two scrapes) shows what Prometheus stored is the burner's half CPU.
    burner = stack.prom.query('sum(irate(container_cpu_usage_seconds_total{name="burner"}[1m]))')
    assert burner and 0.35 <= float(burner[0]["value"][1]) <= 0.65, burner
