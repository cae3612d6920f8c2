"""Docker's default confinement, for real as root: capabilities, seccomp, masked and read-only paths,
device rules, users and limits; --privileged, --cap-add/--cap-drop, --security-opt and bad values."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostwatch_cli import HW

DOCKER_CAPS = "00000000a80425fb"  # the 14 defaults of moby's caps.DefaultCapabilities()
PYTHON = os.path.realpath(sys.executable)  # host-filesystem containers see the host's files
SYSCALLS = {"x86_64": {"keyctl": 250, "add_key": 248, "unshare": 272},
            "aarch64": {"keyctl": 219, "add_key": 217, "unshare": 97}}[platform.machine()]
CLONE_NEWUSER = 0x10000000
EPERM = 1
PANIC_ON_OOPS = Path("/proc/sys/kernel/panic_on_oops")
V1_DEVICES = Path("/sys/fs/cgroup/devices")
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")  # Docker's


def status_of(out: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in out.splitlines()) if v}


def own_bounding_set() -> str:
    return status_of(Path("/proc/self/status").read_text())["CapBnd"]


def test_a_default_container_holds_dockers_capabilities_and_seccomp(hw: HW, busybox_rootfs: Path) -> None:
    proc = hw("run", "--rm", "--rootfs", str(busybox_rootfs), "--", "cat", "/proc/self/status", check=True)
    st = status_of(proc.stdout)
    assert (st["CapEff"], st["CapPrm"], st["CapBnd"]) == (DOCKER_CAPS,) * 3
    assert (st["CapInh"], st["CapAmb"]) == ("0000000000000000",) * 2
    assert (st["NoNewPrivs"], st["Seccomp"]) == ("0", "2")


def test_a_default_container_cannot_reach_the_host_kernel(hw: HW, busybox_rootfs: Path) -> None:
    before = PANIC_ON_OOPS.read_text()
    script = ("echo 1 > /proc/sys/kernel/panic_on_oops 2>/dev/null && echo sysctl=written || echo sysctl=refused; "
              "mkdir -p /mnt; mount -t tmpfs none /mnt 2>/dev/null && echo mount=done || echo mount=refused; "
              "touch /sys/kernel/x 2>/dev/null && echo sys=written || echo sys=refused; "
              "echo kcore=$(cat /proc/kcore 2>/dev/null | wc -c); echo keys=$(cat /proc/keys | wc -c); "
              "echo firmware=$(ls /sys/firmware | wc -l); "
              "grep -E ' /proc/(bus|fs|irq|sys|sysrq-trigger) ' /proc/mounts | cut -d' ' -f2,4 | cut -d, -f1")
    proc = hw("run", "--rm", "--rootfs", str(busybox_rootfs), "--", "sh", "-c", script, check=True)
    read_only = [f"{p} ro" for p in READONLY_PATHS if os.path.exists(p)]  # this kernel may lack sysrq-trigger
    assert len(read_only) >= 4
    assert proc.stdout.splitlines() == [
        "sysctl=refused", "mount=refused", "sys=refused", "kcore=0", "keys=0", "firmware=0", *read_only], proc.stderr
    assert PANIC_ON_OOPS.read_text() == before
    unshare = hw("run", "--rm", "--rootfs", str(busybox_rootfs), "--", "unshare", "-U", "true")
    assert unshare.returncode != 0
    assert "unshare(0x10000000): Operation not permitted" in unshare.stderr  # seccomp's EPERM


def test_syscalls_docker_blocks_fail_with_eperm(hw: HW) -> None:
    """keyctl, add_key and unshare(CLONE_NEWUSER) from a host-filesystem container (also confined)."""
    code = ("import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            f"for name, nr, args in (('keyctl', {SYSCALLS['keyctl']}, (0, 0)), "
            f"('add_key', {SYSCALLS['add_key']}, (0, 0, 0, 0, 0)), ('unshare', {SYSCALLS['unshare']}, "
            f"({CLONE_NEWUSER},))):\n"
            "    ret = libc.syscall(nr, *args)\n    print(name, ret, ctypes.get_errno())")
    proc = hw("run", "--rm", "--", PYTHON, "-c", code, check=True)
    assert proc.stdout.splitlines() == [f"keyctl -1 {EPERM}", f"add_key -1 {EPERM}", f"unshare -1 {EPERM}"]
    unconfined = hw("run", "--rm", "--security-opt", "seccomp=unconfined", "--", PYTHON, "-c", code, check=True)
    assert "keyctl -1 1" not in unconfined.stdout  # without the filter keyctl answers with its own errno


def test_a_host_filesystem_container_cannot_write_its_cgroup_limits(hw: HW) -> None:
    cid = hw("run", "-d", "--pids-limit", "20", "--", "sleep", "30", check=True).stdout.strip()
    pids_max = Path(f"/sys/fs/cgroup/pids/hostwatch/{cid}/pids.max")
    proc = hw("run", "--rm", "--", "sh", "-c", f"echo max > {pids_max}")
    assert proc.returncode != 0 and "Read-only file system" in proc.stderr, proc.stderr
    assert pids_max.read_text().strip() == "20"


@contextlib.contextmanager
def loop_device(tmp_path: Path) -> Iterator[str]:
    backing = tmp_path / "disk.img"
    backing.write_bytes(b"\xab" * 65536)
    dev = subprocess.run(["losetup", "--find", "--show", str(backing)], capture_output=True, text=True)
    if dev.returncode != 0:
        pytest.fail(f"no loop device: {dev.stderr.strip()}")
    try:
        yield dev.stdout.strip()
    finally:
        subprocess.run(["losetup", "--detach", dev.stdout.strip()], check=True)


def test_a_block_device_it_made_cannot_be_opened(hw: HW, busybox_rootfs: Path, tmp_path: Path) -> None:
    with loop_device(tmp_path) as dev:
        rdev = os.stat(dev).st_rdev
        assert Path(dev).read_bytes()[:1] == b"\xab"  # the host opens it
        mk = f"mknod /blk b {os.major(rdev)} {os.minor(rdev)} && head -c 1 /blk | od -An -tx1"
        denied = hw("run", "--rm", "--rootfs", str(busybox_rootfs), "--", "sh", "-c", mk)
        assert "head: /blk: Operation not permitted" in denied.stderr, (denied.stdout, denied.stderr)
        allowed = hw("run", "--rm", "--privileged", "--rootfs", str(busybox_rootfs), "--", "sh", "-c", mk)
        assert allowed.stdout.split() == ["ab"], allowed.stderr


def test_device_rules_are_dockers_on_cgroup_v1(hw: HW, busybox_rootfs: Path) -> None:
    if not V1_DEVICES.is_dir():
        pytest.fail("this test needs the cgroup v1 devices hierarchy (the issue's CI host has it)")
    cid = hw("run", "-d", "--rootfs", str(busybox_rootfs), "--", "sleep", "30", check=True).stdout.strip()
    rules = (V1_DEVICES / "hostwatch" / cid / "devices.list").read_text().split("\n")
    assert sorted(filter(None, rules)) == sorted([
        "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm", "c 1:5 rwm", "c 1:9 rwm",
        "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm", "c 5:1 rwm"])
    pid = hw.inspect(cid)["State"]["Pid"]
    assert f"devices:/hostwatch/{cid}" in Path(f"/proc/{pid}/cgroup").read_text()
    hw("rm", "-f", cid, check=True)
    assert not (V1_DEVICES / "hostwatch" / cid).exists()


@pytest.fixture
def panic_on_oops() -> Iterator[str]:
    """The host's kernel.panic_on_oops, put back whatever a test did to it."""
    before = PANIC_ON_OOPS.read_text()
    yield before.strip()
    if PANIC_ON_OOPS.read_text() != before:
        PANIC_ON_OOPS.write_text(before)


def test_privileged_has_everything(hw: HW, busybox_rootfs: Path, panic_on_oops: str) -> None:
    script = f"cat /proc/self/status; echo {panic_on_oops} > /proc/sys/kernel/panic_on_oops && echo sysctl-written"
    proc = hw("run", "--rm", "--privileged", "--rootfs", str(busybox_rootfs), "--", "sh", "-c", script)
    st = status_of(proc.stdout)
    assert st["CapEff"] == st["CapBnd"] == own_bounding_set()  # every capability this runtime holds
    assert st["Seccomp"] == "0"
    assert "sysctl-written" in proc.stdout, proc.stderr
    assert PANIC_ON_OOPS.read_text().strip() == panic_on_oops


def test_cap_add_and_cap_drop(hw: HW, busybox_rootfs: Path) -> None:
    bb = ("--rootfs", str(busybox_rootfs))
    mount = "mkdir -p /mnt && mount -t tmpfs none /mnt && echo mounted"
    assert hw("run", "--rm", "--cap-add", "SYS_ADMIN", *bb, "--", "sh", "-c", mount).stdout == "mounted\n"
    dropped = hw("run", "--rm", "--cap-drop", "ALL", *bb, "--", "grep", "CapEff", "/proc/self/status", check=True)
    assert dropped.stdout.split() == ["CapEff:", "0000000000000000"]
    one = hw("run", "--rm", "--cap-drop", "chown", "--cap-add", "cap_sys_nice", *bb, "--", "grep", "CapBnd",
             "/proc/self/status", check=True)
    assert int(one.stdout.split()[1], 16) == (int(DOCKER_CAPS, 16) & ~1) | 1 << 23  # CHOWN is 0, SYS_NICE 23
    only = hw("run", "--rm", "--cap-drop", "ALL", "--cap-add", "NET_RAW", *bb, "--", "grep", "CapEff",
              "/proc/self/status", check=True)
    assert int(only.stdout.split()[1], 16) == 1 << 13


def test_user_group_add_ulimit_and_no_new_privileges(hw: HW, busybox_rootfs: Path) -> None:
    proc = hw("run", "--rm", "--user", "1000:1000", "--group-add", "10", "--ulimit", "nofile=64:128",
              "--security-opt", "no-new-privileges", "--rootfs", str(busybox_rootfs), "--", "sh", "-c",
              "id; ulimit -n; ulimit -Hn; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; "
              "touch /etc/x 2>&1 | grep -c 'Permission denied'")
    assert proc.stdout.splitlines() == ["uid=1000 gid=1000 groups=10", "64", "128", "CapEff:\t0000000000000000",
                                        "NoNewPrivs:\t1", "Seccomp:\t2", "1"], proc.stderr
    named = hw("run", "--rm", "--user", "root:root", "--rootfs", str(busybox_rootfs), "--", "id", check=True)
    assert named.stdout.startswith("uid=0(root) gid=0(root)")


def test_a_custom_seccomp_profile_in_dockers_format(hw: HW, busybox_rootfs: Path, tmp_path: Path) -> None:
    profile = tmp_path / "no-mkdir.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        {"names": ["chmod", "fchmodat", "fchmodat2"], "action": "SCMP_ACT_ERRNO",
         "includes": {"caps": ["CAP_SYS_ADMIN"]}}]}))
    bb = ("--rootfs", str(busybox_rootfs))
    proc = hw("run", "--rm", "--security-opt", f"seccomp={profile}", *bb, "--", "sh", "-c",
              "mkdir /x 2>&1; chmod 600 /etc/hostname && echo chmod-ok; grep Seccomp: /proc/self/status")
    assert proc.stdout.splitlines() == ["mkdir: can't create directory '/x': Permission denied", "chmod-ok",
                                        "Seccomp:\t2"]
    gated = hw("run", "--rm", "--cap-add", "SYS_ADMIN", "--security-opt", f"seccomp={profile}", *bb, "--", "sh",
               "-c", "chmod 600 /etc/hostname || echo chmod-refused")
    assert gated.stdout == "chmod-refused\n"  # the rule its capability condition included
    none = hw("run", "--rm", "--security-opt", "seccomp=unconfined", *bb, "--", "grep", "Seccomp:", "/proc/self/status")
    assert none.stdout.split() == ["Seccomp:", "0"]


def test_inspect_reports_the_confinement(hw: HW, busybox_rootfs: Path) -> None:
    hw("run", "--name", "conf", "--cap-add", "sys_admin", "--cap-drop", "MKNOD", "--security-opt",
       "no-new-privileges", "--tmpfs", "/run:size=1m", "--ulimit", "nofile=100", "--rootfs", str(busybox_rootfs),
       "--", "true", check=True)
    hc = hw.inspect("conf")["HostConfig"]
    assert (hc["CapAdd"], hc["CapDrop"], hc["Privileged"]) == (["sys_admin"], ["MKNOD"], False)
    assert hc["SecurityOpt"] == ["no-new-privileges"] and hc["ReadonlyRootfs"] is False
    assert hc["Tmpfs"] == {"/run": "size=1m"}
    assert hc["Ulimits"] == [{"Name": "nofile", "Hard": 100, "Soft": 100}]
    hw("run", "--name", "priv", "--privileged", "--", "true", check=True)
    assert hw.inspect("priv")["HostConfig"]["Privileged"] is True


def test_bad_confinement_values_exit_125_and_leave_nothing(hw: HW, busybox_rootfs: Path, tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "bad-op.json").write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]}))
    bb = ("--rootfs", str(busybox_rootfs))
    hw("run", "-d", "--name", "keeper", "--", "sleep", "30", check=True)
    before = sorted(os.listdir(hw.state_root))
    cases = [
        (("--cap-add", "NOT_A_CAP"), 'unknown capability: "CAP_NOT_A_CAP"'),
        (("--cap-drop", "CAP_FOO"), "unknown capability"),
        (("--security-opt", f"seccomp={tmp_path / 'missing.json'}"), "opening seccomp profile"),
        (("--security-opt", f"seccomp={tmp_path / 'broken.json'}"), "Decoding seccomp profile failed"),
        (("--security-opt", f"seccomp={tmp_path / 'bad-op.json'}"), "unknown operator"),
        (("--security-opt", "apparmor=x"), "Invalid --security-opt"),
        (("--ulimit", "nofile"), "invalid ulimit argument"),
        (("--ulimit", "nofiles=1"), "invalid ulimit type"),
        (("--ulimit", "nofile=10:5"), "soft limit must be less than or equal to hard limit"),
        (("--image", "no-such-image"), "No such image: no-such-image"),
        (("--image", "busybox", *bb), "mutually exclusive"),
        (("--tmpfs", "relative"), "absolute"),
        (("--tmpfs", "/t:bogus"), "unknown option"),
        (("--user", "a b"), "invalid --user"),
        (("--read-only",), "--read-only needs a root filesystem"),
    ]
    for args, message in cases:
        proc = hw("run", *args, "--", "true")
        assert proc.returncode == 125, (args, proc.stderr)
        assert proc.stderr.count("\n") == 1 and message in proc.stderr, (args, proc.stderr)
    assert sorted(os.listdir(hw.state_root)) == before


UNIFIED = Path("/sys/fs/cgroup/unified")  # this hybrid host's cgroup2 mount (on a v2 host: /sys/fs/cgroup)

_OPEN = ("import os, sys\nfor p in sys.argv[1:]:\n    try:\n        os.close(os.open(p, os.O_RDONLY))\n"
         "        print(p, 'ok')\n    except OSError as e:\n        print(p, e.strerror)\n")


def _opens_in(cgroups: object, rel: str, paths: list[str]) -> list[str]:
    """Run a process inside `rel` that opens each path; its verdicts."""
    r, w = os.pipe()
    proc = subprocess.Popen([PYTHON, "-c", f"import os; os.read({r}, 1)\n" + _OPEN, *paths], pass_fds=(r,),
                            stdout=subprocess.PIPE, text=True)
    try:
        cgroups.add_process(rel, proc.pid)  # type: ignore[attr-defined]
    finally:
        os.close(w)
        os.close(r)
    out, _ = proc.communicate(timeout=30)
    return out.splitlines()


def test_cgroup_v2_device_program_enforces_dockers_rules(tmp_path: Path) -> None:
    """The v2 backend's eBPF device program, on this host's cgroup2 mount (no controllers needed)."""
    from hostwatch.core.containers import Limits
    from runtime import devices
    from runtime.cgroups import CgroupsV2

    if not (UNIFIED / "cgroup.controllers").is_file():
        pytest.fail(f"{UNIFIED} is not a cgroup2 mount")
    cg = CgroupsV2(UNIFIED)
    top = f"/hostwatch-devtest-{os.getpid()}"
    with loop_device(tmp_path) as dev:
        made = tmp_path / "made-blk"
        os.mknod(made, 0o600 | 0o060000, os.stat(dev).st_rdev)  # S_IFBLK: a node of the same device
        try:
            for name, rules, want in (("default", devices.DEFAULT_RULES, "Operation not permitted"),
                                      ("privileged", devices.PRIVILEGED_RULES, "ok")):
                rel = f"{top}/{name}"
                cg.create(rel, Limits())
                assert cg.restrict_devices(rel, devices.rules(name == "privileged")) is True
                assert rules == devices.rules(name == "privileged")
                assert _opens_in(cg, rel, ["/dev/null", dev, str(made)]) == [
                    "/dev/null ok", f"{dev} {want}", f"{made} {want}"], name
        finally:
            for name in ("default", "privileged"):
                cg.remove(f"{top}/{name}")
            with contextlib.suppress(FileNotFoundError):
                (UNIFIED / top.lstrip("/")).rmdir()
