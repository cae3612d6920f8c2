"""The README's main command: `hostwatch up` starts the demo workloads and Ctrl-C removes them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hostwatch.core.paths import CGROUP_PARENT
from runtime.cgroups import detect

from hostwatch_cli import HW
from peers import free_port, read_topic


def processes_using(path: Path) -> dict[int, str]:
    """pid -> command line of every live process whose command line names `path` (or below it)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if str(path) in cmdline and state != "Z":
            out[int(entry)] = cmdline.strip()
    return out


def test_up_runs_demo_workloads_until_interrupted(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port, kafka_port, es_port, alerting_port = free_port(), free_port(), free_port(), free_port()
    # every listener on a free port: the defaults (9092, 9200, 24224, 12201, 9093) may be taken on this host
    proc = subprocess.Popen([sys.executable, "-m", "hostwatch", "up", "--data-dir", str(data),
                             "--web.listen-address", f"127.0.0.1:{port}",
                             "--embedded.kafka-port", str(kafka_port),
                             "--embedded.elasticsearch-port", str(es_port),
                             "--alerting.listen-address", f"127.0.0.1:{alerting_port}",
                             "--forward.listen-address", f"127.0.0.1:{free_port()}",
                             "--gelf.listen-address", f"127.0.0.1:{free_port()}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    hw = HW(data / "containers")
    try:
        assert proc.stdout is not None
        banner = ""
        deadline = time.monotonic() + 60
        while "Ctrl-C" not in banner and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            banner += line
        if "demo-ticker" not in banner or "demo-hog" not in banner:
            proc.kill()  # so its stderr ends and can be shown
            pytest.fail(f"no demo workloads in the banner: {banner}{proc.communicate(timeout=30)[1]}")
        time.sleep(2.5)
        assert "tick 1" in hw("logs", "demo-ticker", check=True).stdout
        hog = hw("logs", "demo-hog", check=True)
        assert "hog holds 48 MiB" in hog.stdout and "hog heartbeat" in hog.stderr
        ids = [hw.inspect(n)["Id"] for n in ("demo-ticker", "demo-hog")]
        assert [hw.inspect(n)["Config"]["Image"] for n in ("demo-ticker", "demo-hog")] == ["busybox", "host"]
        assert f"http://127.0.0.1:{port}/metrics" in banner
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        samples = {(s.name, s.labels.get("name"), s.labels.get("id")): s.value
                   for fam in text_string_to_metric_families(text) for s in fam.samples}
        for name, cid in zip(("demo-ticker", "demo-hog"), ids, strict=True):
            assert samples[("container_memory_usage_bytes", name, f"/hostwatch/{cid}")] > 0
        assert samples[("container_memory_rss", "demo-hog", f"/hostwatch/{ids[1]}")] >= 40 * 2**20
        # the log pipeline: demo lines in the embedded Kafka, then searchable, as the banner says to try
        es_url = f"http://127.0.0.1:{es_port}"
        assert f"Kafka 127.0.0.1:{kafka_port}" in banner
        assert f"hostwatch search --elasticsearch.hosts {es_url}" in banner
        ticks = [orjson.loads(r.value) for r in read_topic(f"127.0.0.1:{kafka_port}", "hostwatch-logs", None, idle=1)]
        ticker = [r for r in ticks if (r.get("container") or {}).get("name") == "demo-ticker"]
        assert ticker and ticker[0]["message"] == "tick 1" and ticker[0]["container"]["labels"] == {"app": "ticker"}
        deadline = time.monotonic() + 30
        found: list[str] = []
        while time.monotonic() < deadline and "tick 2" not in found:
            out = hw("search", "--elasticsearch.hosts", es_url, "--container", "demo-ticker", "--since", "5m")
            found = [line.split(" ", 4)[-1] for line in out.stdout.splitlines()]
            time.sleep(0.5)
        assert found[:2] == ["tick 1", "tick 2"], found
        with urllib.request.urlopen(f"http://127.0.0.1:{alerting_port}/-/healthy", timeout=10) as health:
            assert health.status == 200  # the alerting replica
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        names = {fam.name for fam in text_string_to_metric_families(text)}
        assert {"hostwatch_logshipper_sent_events", "hostwatch_indexer_indexed_events"} <= names, sorted(names)
        assert any(n.startswith("hostwatch_alerting_") for n in names)
        cgroups = detect()  # whichever version this host runs: the same check holds on v1 and v2
        assert [cgroups.exists(f"/{CGROUP_PARENT}/{cid}") for cid in ids] == [True, True]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        assert hw("ps", "-a", "-q").stdout.strip() == ""
        assert [cgroups.exists(f"/{CGROUP_PARENT}/{cid}") for cid in ids] == [False, False]
        assert processes_using(data) == {}  # the embedded peers (noida-db) stopped with it
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in processes_using(data):  # what `up` started and left behind: by PID, not by name
            os.kill(pid, signal.SIGKILL)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        hw.cleanup()
