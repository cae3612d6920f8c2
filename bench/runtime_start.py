"""Start-to-exit latency of `hostwatch run --rm -- true` next to Debian's crun on the same busybox rootfs.

Usage (as root): python bench/runtime_start.py [--runs 30]
Prints the median and p90 wall time of each and the ratio hostwatch / crun.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from runtime.namespaces import umount
from runtime.rootfs import build_busybox_rootfs

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("hostwatch", "runtime", "exporter", "logshipper", "alerting", "dashboards")


def _time(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    return elapsed


def _crun_bundle(work: Path, rootfs: Path) -> Path:
    bundle = work / "bundle"
    bundle.mkdir()
    subprocess.run(["crun", "spec"], cwd=bundle, check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["root"] = {"path": str(rootfs), "readonly": False}
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["true"]
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle


def _summary(name: str, samples: list[float]) -> float:
    med = statistics.median(samples)
    p90 = sorted(samples)[int(len(samples) * 0.9) - 1]
    print(f"{name:<34} median {med * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms   runs {len(samples)}")
    return med


def _private_mount_namespace() -> None:
    """crun 1.8 refuses a hybrid host whose cgroup2 mount lists any controller (here: hugetlb).
    Both runtimes run in one private mount namespace without that mount, on the same v1 hierarchies."""
    if os.environ.get("HW_BENCH_NS") != "1":
        os.environ["HW_BENCH_NS"] = "1"
        os.execvp("unshare", ["unshare", "--mount", "--propagation", "private", sys.executable, *sys.argv])
    unified = Path("/sys/fs/cgroup/unified")
    if (unified / "cgroup.controllers").exists() and (unified / "cgroup.controllers").read_text().strip():
        umount(str(unified))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    _private_mount_namespace()
    if shutil.which("crun") is None:
        raise SystemExit("crun is not installed (apt-get install crun)")
    with tempfile.TemporaryDirectory(prefix="hw-bench-") as tmp:
        work = Path(tmp)
        rootfs = build_busybox_rootfs(work / "busybox")
        bundle = _crun_bundle(work, rootfs)
        env = dict(os.environ, HOSTWATCH_STATE_ROOT=str(work / "state"))
        hw_cmd = [sys.executable, "-m", "hostwatch", "run", "--rm", "--rootfs", str(rootfs), "--", "true"]
        py_cmd = [sys.executable, "-c", "pass"]
        # as installed by scripts/setup.sh: byte-compiled, whatever PYTHONDONTWRITEBYTECODE says
        subprocess.run([sys.executable, "-m", "compileall", "-q", *PACKAGES], cwd=REPO, check=True)
        hw, crun, py = [], [], []
        _time(hw_cmd, env)  # warm the page cache and the bridge-free path once
        for i in range(args.runs):
            hw.append(_time(hw_cmd, env))
            crun_cmd = ["crun", "--cgroup-manager=cgroupfs", "run", "--bundle", str(bundle), f"hwb{os.getpid()}-{i}"]
            crun.append(_time(crun_cmd))
            py.append(_time(py_cmd))
        print(f"start-to-exit latency, {args.runs} runs each, busybox rootfs, `true`:")
        m_hw = _summary("hostwatch run --rm -- true", hw)
        m_crun = _summary("crun run (same rootfs, cgroupfs v1)", crun)
        m_py = _summary("python3 -c pass (interpreter floor)", py)
        print(f"ratio hostwatch/crun: {m_hw / m_crun:.1f}x   hostwatch minus interpreter floor: "
              f"{(m_hw - m_py) * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
