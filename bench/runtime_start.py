"""Start-to-exit latency of `hostwatch run --rm -- true` next to Debian's crun, in one run.

Usage (as root): python bench/runtime_start.py [--runs 30]

Both runtimes start the same busybox image with Docker's defaults: crun's spec gets Docker's 14
capabilities, the default seccomp profile (as moby resolves it, in OCI form), the masked and
read-only paths and the device rules, and an overlay of the image that the bench mounts and removes
around each run, as Docker's daemon does for runc. Besides the whole starts (hostwatch default,
hostwatch --privileged: overlay without confinement, crun with and without the defaults) it times
the parts confinement and overlay add, in-process: compiling the profile, loading it, and one
overlay mount + unmount. Prints medians, p90s and the ratio hostwatch / crun (goal: within 5x).
Each timed start follows the same idle pause (SETTLE_S), so both meet the kernel in the same state.
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
from collections.abc import Callable
from pathlib import Path

from runtime import caps, devices, layers, mounts, seccomp
from runtime import namespaces as ns
from runtime.rootfs import build_busybox_rootfs
from runtime.seccomp.libseccomp import Filter, load_program

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("hostwatch", "runtime", "exporter", "logshipper", "alerting", "dashboards")
GOAL = 5.0
# Every timed start begins after the same idle spell. The kernel's first cgroup v1 migration after
# one waits for an RCU grace period (~15 ms here: crun writes its child's pid into cgroup.procs), and
# a start that follows another within that window skips it: without the pause, crun's runs (each
# right behind another start) were measured warm and hostwatch's (behind `python -c pass`) cold.
SETTLE_S = 0.25


def _run(cmd: list[str], env: dict[str, str] | None = None) -> None:
    proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")


def _time(cmd: list[str], env: dict[str, str] | None = None) -> float:
    time.sleep(SETTLE_S)
    t0 = time.perf_counter()
    _run(cmd, env)
    return time.perf_counter() - t0


def _docker_defaults(spec: dict) -> None:
    """What Docker puts in the OCI spec it hands runc (moby oci.DefaultLinuxSpec and friends)."""
    default = list(caps.DEFAULT)
    spec["process"]["capabilities"] = {"bounding": default, "effective": default, "permitted": default}
    spec["process"]["noNewPrivileges"] = False
    linux = spec["linux"]
    linux["seccomp"] = seccomp.resolve(seccomp.default_profile(), default)
    linux["maskedPaths"] = mounts.masked_paths()
    linux["readonlyPaths"] = list(mounts.READONLY_PATHS)
    rules = []
    for r in devices.DEFAULT_RULES:
        rule: dict[str, object] = {"allow": r.allow, "access": r.access}
        if r.type != "a":
            rule["type"] = r.type
            if r.major != devices.WILDCARD:
                rule["major"] = r.major
            if r.minor != devices.WILDCARD:
                rule["minor"] = r.minor
        rules.append(rule)
    linux.setdefault("resources", {})["devices"] = rules


def _crun_bundle(work: Path, name: str, rootfs: Path, docker: bool) -> Path:
    bundle = work / name
    bundle.mkdir()
    subprocess.run(["crun", "spec"], cwd=bundle, check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["root"] = {"path": str(rootfs), "readonly": False}
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["true"]
    if docker:
        _docker_defaults(spec)
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle


def _summary(name: str, samples: list[float]) -> float:
    med = statistics.median(samples)
    p90 = sorted(samples)[max(0, int(len(samples) * 0.9) - 1)]
    print(f"{name:<52} median {med * 1000:7.1f} ms   p90 {p90 * 1000:7.1f} ms   runs {len(samples)}")
    return med


def _private_mount_namespace() -> None:
    """crun 1.8 refuses a hybrid host whose cgroup2 mount lists any controller (here: hugetlb).
    Both runtimes run in one private mount namespace without that mount, on the same v1 hierarchies."""
    if os.environ.get("HW_BENCH_NS") != "1":
        os.environ["HW_BENCH_NS"] = "1"
        os.execvp("unshare", ["unshare", "--mount", "--propagation", "private", sys.executable, *sys.argv])
    unified = Path("/sys/fs/cgroup/unified")
    if (unified / "cgroup.controllers").exists() and (unified / "cgroup.controllers").read_text().strip():
        ns.umount(str(unified))


class OverlayRun:
    """crun on a fresh overlay of the image each run, mounted and removed by the caller (Docker's way)."""

    def __init__(self, work: Path, lower: Path) -> None:
        self.work, self.lower = work, lower
        self.merged = work / "ovl-merged"
        self.merged.mkdir()

    def __call__(self, cmd: list[str], settle: bool = True) -> float:
        if settle:
            time.sleep(SETTLE_S)
        t0 = time.perf_counter()
        upper, wdir = self.work / "ovl-upper", self.work / "ovl-work"
        upper.mkdir()
        wdir.mkdir()
        layers.mount_overlay(ns.mount, [str(self.lower)], str(upper), str(wdir), str(self.merged))
        try:
            _run(cmd)
        finally:
            ns.umount(str(self.merged), 0)
            shutil.rmtree(upper)
            shutil.rmtree(wdir)
        return time.perf_counter() - t0


def _micro(name: str, fn: Callable[[], None], runs: int) -> None:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    print(f"  {name:<50} median {statistics.median(samples) * 1000:7.2f} ms")


def _compile(profile: dict) -> bytes:
    filt = Filter(profile)
    try:
        return filt.export()
    finally:
        filt.release()


def _parts(work: Path, lower: Path, runs: int) -> None:
    print("what the parts cost, in-process:")
    profile = seccomp.resolve(seccomp.default_profile(), list(caps.DEFAULT)) or {}
    _micro("resolve Docker's profile (CLI, at create)", lambda: seccomp.resolve(seccomp.default_profile(),
                                                                                 list(caps.DEFAULT)), runs)
    _micro("compile + export with libseccomp (once a boot: cached)", lambda: _compile(profile), runs)
    program = _compile(profile)

    def load() -> None:
        pid = os.fork()
        if pid == 0:
            load_program(program, [])
            os._exit(0)
        os.waitpid(pid, 0)

    _micro("fork + load the cached program + exit (each start)", load, runs)

    def fork_only() -> None:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)

    _micro("  (fork + exit alone, for comparison)", fork_only, runs)
    (work / "micro").mkdir()
    ovl = OverlayRun(work / "micro", lower)

    def overlay() -> None:
        upper, wdir = ovl.work / "ovl-upper", ovl.work / "ovl-work"
        upper.mkdir()
        wdir.mkdir()
        layers.mount_overlay(ns.mount, [str(lower)], str(upper), str(wdir), str(ovl.merged))
        ns.umount(str(ovl.merged), 0)
        shutil.rmtree(upper)
        shutil.rmtree(wdir)

    _micro("overlay: mkdir upper+work, mount, umount, remove", overlay, runs)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    _private_mount_namespace()
    if shutil.which("crun") is None:
        raise SystemExit("crun is not installed (apt-get install crun)")
    with tempfile.TemporaryDirectory(prefix="hw-bench-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        rootfs = build_busybox_rootfs(work / "busybox")
        env = dict(os.environ, HOSTWATCH_STATE_ROOT=str(work / "state"))
        # the console script a user runs (no runpy), as installed by scripts/setup.sh next to the interpreter
        script = Path(sys.executable).with_name("hostwatch")
        hostwatch = [str(script)] if script.exists() else [sys.executable, "-m", "hostwatch"]
        subprocess.run([*hostwatch, "rootfs", str(rootfs)], env=env, check=True, capture_output=True)
        plain = _crun_bundle(work, "plain", rootfs, docker=False)
        docker = _crun_bundle(work, "docker", work / "ovl-merged", docker=True)
        overlay_run = OverlayRun(work, rootfs)
        hw_default = [*hostwatch, "run", "--rm", "--image", "busybox", "--", "true"]
        hw_privileged = [*hostwatch, "run", "--rm", "--privileged", "--image", "busybox", "--", "true"]
        hw_host = [*hostwatch, "run", "--rm", "--privileged", "--", "true"]
        py_cmd = [sys.executable, "-c", "pass"]
        cli_cmd = [*hostwatch, "--help"]
        # as installed by scripts/setup.sh: byte-compiled, whatever PYTHONDONTWRITEBYTECODE says
        subprocess.run([sys.executable, "-m", "compileall", "-q", *PACKAGES], cwd=REPO, check=True)
        names = ("hostwatch run --rm --image busybox -- true",
                 "hostwatch --privileged (overlay, no confinement)",
                 "hostwatch --privileged, host filesystem (neither)",
                 "crun, Docker's defaults, on a fresh overlay",
                 "  the same right behind another start (no pause)",
                 "crun spec as generated (no seccomp), plain rootfs",
                 "hostwatch --help (CLI start-up, every parser)",
                 "python3 -c pass (interpreter floor)")
        samples: dict[str, list[float]] = {n: [] for n in names}
        _time(hw_default, env)  # warm the page cache once
        for i in range(args.runs):
            crun = ["crun", "--cgroup-manager=cgroupfs", "run", "--bundle"]
            samples[names[0]].append(_time(hw_default, env))
            samples[names[1]].append(_time(hw_privileged, env))
            samples[names[2]].append(_time(hw_host, env))
            samples[names[3]].append(overlay_run([*crun, str(docker), f"hwd{os.getpid()}-{i}"]))
            samples[names[4]].append(overlay_run([*crun, str(docker), f"hww{os.getpid()}-{i}"], settle=False))
            samples[names[5]].append(_time([*crun, str(plain), f"hwp{os.getpid()}-{i}"]))
            samples[names[6]].append(_time(cli_cmd))
            samples[names[7]].append(_time(py_cmd))
        print(f"start-to-exit latency, {args.runs} runs each, interleaved, busybox image, `true`:")
        med = {n: _summary(n, s) for n, s in samples.items()}
        ratio = med[names[0]] / med[names[3]]
        print(f"ratio hostwatch/crun (both with Docker's defaults and an overlay, both after the pause): {ratio:.1f}x "
              f"(goal: within {GOAL:g}x: {'met' if ratio <= GOAL else 'NOT met'})")
        print(f"  against crun right behind another start, which the kernel spares the grace period: "
              f"{med[names[0]] / med[names[4]]:.1f}x (hostwatch's PID 1 joins its cgroups itself: it never waits)")
        print(f"confinement adds {(med[names[0]] - med[names[1]]) * 1000:+.1f} ms, the overlay "
              f"{(med[names[1]] - med[names[2]]) * 1000:+.1f} ms (each the difference of two noisy medians)")
        print(f"the CLI's start-up (every component's parser) minus the interpreter: "
              f"{(med[names[6]] - med[names[7]]) * 1000:.1f} ms")
        _parts(work, rootfs, max(args.runs, 20))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
