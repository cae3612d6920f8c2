"""Capability sets, seccomp profile resolution and the confinement flags, as Docker reads them."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from runtime import caps, seccomp, security
from runtime.confine import ConfineError, resolve_user

ALL_USABLE = list(caps.NAMES)


def test_the_default_set_is_dockers_mask() -> None:
    assert caps.resolve([], [], False, ALL_USABLE) == list(caps.DEFAULT)
    assert f"{caps.mask(caps.DEFAULT):016x}" == "00000000a80425fb"


@pytest.mark.parametrize(("add", "drop", "want"), [
    (["sys_admin"], [], [*caps.DEFAULT, "CAP_SYS_ADMIN"]),
    (["CAP_SYS_ADMIN"], ["chown", "Cap_Kill"], [c for c in caps.DEFAULT if c not in ("CAP_CHOWN", "CAP_KILL")]
     + ["CAP_SYS_ADMIN"]),
    ([], ["ALL"], []),
    (["NET_ADMIN"], ["all"], ["CAP_NET_ADMIN"]),
    (["ALL"], ["MKNOD"], [c for c in caps.NAMES if c != "CAP_MKNOD"]),
    (["CHOWN"], [], list(caps.DEFAULT)),  # already there: no duplicate
])
def test_cap_add_and_drop(add: list[str], drop: list[str], want: list[str]) -> None:
    assert caps.resolve(add, drop, False, ALL_USABLE) == want


def test_privileged_is_every_usable_capability() -> None:
    usable = [c for c in caps.NAMES if c != "CAP_SYS_RESOURCE"]  # a runtime that lacks one cannot give it
    assert caps.resolve([], ["ALL"], True, usable) == usable
    with pytest.raises(caps.CapError, match="not available in the current environment"):
        caps.resolve(["SYS_RESOURCE"], [], False, usable)
    with pytest.raises(caps.CapError, match='unknown capability: "CAP_BOGUS"'):
        caps.resolve([], ["bogus"], False, usable)


def test_available_reads_this_process_bounding_set() -> None:
    text = Path("/proc/self/status").read_text()
    bounding = int(next(line for line in text.splitlines() if line.startswith("CapBnd:")).split()[1], 16)
    assert caps.mask(caps.available()) == bounding & caps.mask(caps.NAMES)


def _rule(doc: dict, name: str) -> list[dict]:
    return [r for r in doc["syscalls"] if name in r["names"]]


def test_default_profile_resolution_follows_capabilities_and_arch() -> None:
    default = seccomp.default_profile()
    plain = seccomp.resolve(default, list(caps.DEFAULT), "amd64", (6, 1))
    assert plain is not None
    assert plain["defaultAction"] == "SCMP_ACT_ERRNO" and plain["defaultErrnoRet"] == 1
    assert plain["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
    assert _rule(plain, "mount") == [] and _rule(plain, "keyctl") == []
    assert [r["args"][0]["op"] for r in _rule(plain, "clone")] == ["SCMP_CMP_MASKED_EQ"]  # no namespace flags
    assert _rule(plain, "clone3")[0]["errnoRet"] == 38  # ENOSYS: glibc falls back to clone
    assert _rule(plain, "chroot") and _rule(plain, "arch_prctl")  # CAP_SYS_CHROOT; amd64 only
    admin = seccomp.resolve(default, [*caps.DEFAULT, "CAP_SYS_ADMIN"], "amd64", (6, 1))
    assert admin is not None and _rule(admin, "mount") and _rule(admin, "unshare")
    assert all(r["action"] == "SCMP_ACT_ALLOW" for r in _rule(admin, "clone"))
    assert not any(r.get("errnoRet") == 38 for r in _rule(admin, "clone3"))  # excluded with CAP_SYS_ADMIN
    arm = seccomp.resolve(default, list(caps.DEFAULT), "arm64", (6, 1))
    assert arm is not None and arm["architectures"] == ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]
    assert _rule(arm, "arch_prctl") == [] and _rule(arm, "set_tls")
    old = seccomp.resolve(default, list(caps.DEFAULT), "amd64", (4, 4))
    assert old is not None and not any(r for r in _rule(old, "ptrace") if not r["args"])  # minKernel 4.8


@pytest.mark.parametrize(("doc", "message"), [
    ({"defaultAction": "SCMP_ACT_NOPE"}, "unknown or unsupported action"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["x"], "archMap": [{}]}, "both 'architectures'"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "read", "names": ["write"],
                                                      "action": "SCMP_ACT_ALLOW"}]}, "both 'name' and 'names'"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                                                      "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
     "index"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_TSYNC"]}, "unsupported flag"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                                                      "includes": {"minKernel": "4"}}]}, "invalid kernel version"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/x.sock"}, "listenerPath"),
])
def test_unusable_profiles_are_refused(doc: dict, message: str) -> None:
    with pytest.raises(seccomp.ProfileError, match=message):
        seccomp.resolve(doc, list(caps.DEFAULT), "amd64", (6, 1))


def test_an_empty_profile_means_no_filter_and_files_are_read(tmp_path: Path) -> None:
    assert seccomp.resolve({}, [], "amd64", (6, 1)) is None
    with pytest.raises(seccomp.ProfileError, match="opening seccomp profile"):
        seccomp.read_profile(str(tmp_path / "missing.json"))
    (tmp_path / "p.json").write_text("[1, 2]")
    with pytest.raises(seccomp.ProfileError, match="not a JSON object"):
        seccomp.read_profile(str(tmp_path / "p.json"))
    assert seccomp.kernel_version("6.18.44-fc-v1045") == (6, 18)


def test_the_profile_ships_with_its_notice() -> None:
    notice = (Path(seccomp.__file__).parent / "NOTICE").read_text()
    assert "Apache License, Version 2.0" in notice and "moby" in notice
    assert len(json.loads(seccomp.DEFAULT_PROFILE.read_text())["syscalls"]) > 30


def test_security_opts() -> None:
    assert security.parse_security_opts([]) == security.SecurityOpts(None, False)
    opts = security.parse_security_opts(["seccomp=unconfined", "no-new-privileges"])
    assert opts == security.SecurityOpts("unconfined", True)
    assert security.parse_security_opts(["seccomp:/p.json", "no-new-privileges=false"]).seccomp == "/p.json"
    for bad in ("label=disable", "seccomp=", "no-new-privileges=yes", "bogus"):
        with pytest.raises(ValueError):
            security.parse_security_opts([bad])
    assert security.seccomp_profile(security.SecurityOpts(None, False), True, ALL_USABLE) is None
    assert security.seccomp_profile(security.SecurityOpts("unconfined", False), False, ALL_USABLE) is None
    assert security.seccomp_profile(security.SecurityOpts(None, False), False, list(caps.DEFAULT)) is not None


@pytest.mark.parametrize(("text", "want"), [
    ("nofile=64", {"Name": "nofile", "Soft": 64, "Hard": 64}),
    ("nofile=64:128", {"Name": "nofile", "Soft": 64, "Hard": 128}),
    ("core=-1", {"Name": "core", "Soft": -1, "Hard": -1}),
    ("stack=10:-1", {"Name": "stack", "Soft": 10, "Hard": -1}),
])
def test_ulimits(text: str, want: dict) -> None:
    assert security.parse_ulimit(text) == want


@pytest.mark.parametrize(("text", "message"), [
    ("nofile", "invalid ulimit argument"), ("nofile=x", "invalid ulimit argument"),
    ("files=1", "invalid ulimit type"), ("nofile=10:5", "soft limit"), ("nofile=-1:5", "soft limit"),
    ("nofile=-2", "invalid ulimit argument"),
])
def test_bad_ulimits(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        security.parse_ulimit(text)


def test_tmpfs_specs_and_their_mount_options() -> None:
    from runtime import namespaces as ns

    assert security.parse_tmpfs("/run:size=1m,mode=1777") == ("/run", "size=1m,mode=1777")
    assert security.parse_tmpfs("/tmp/") == ("/tmp", "")
    for bad in ("run", "/a/../b", "/proc", "/x:bogus=1", "/x:evil"):
        with pytest.raises(ValueError):
            security.parse_tmpfs(bad)
    flags, data = security.tmpfs_mount_options("size=1m,exec")
    assert flags == ns.MS_NOSUID | ns.MS_NODEV and data == "size=1m"  # exec lifts Docker's default noexec
    assert security.tmpfs_mount_options("ro")[0] & ns.MS_RDONLY


def test_user_and_groups_are_checked_then_resolved_in_the_containers_files(tmp_path: Path) -> None:
    for ok in ("1000", "1000:1000", "app:staff", "root"):
        assert security.parse_user(ok) == ok
    for bad in ("a b", "1000:", ":1", "4294967295"):
        with pytest.raises(ValueError):
            security.parse_user(bad)
    passwd, group = tmp_path / "passwd", tmp_path / "group"
    passwd.write_text("root:x:0:0:root:/root:/bin/sh\napp:x:1001:1002:App:/home/app:/bin/sh\n")
    group.write_text("root:x:0:\nstaff:x:50:app,other\napp:x:1002:\n")
    app = resolve_user("app", ["10"], str(passwd), str(group))
    assert (app.uid, app.gid, app.groups, app.home) == (1001, 1002, [50, 10], "/home/app")
    numeric = resolve_user("1000:staff", [], str(passwd), str(group))
    assert (numeric.uid, numeric.gid, numeric.groups, numeric.home) == (1000, 50, [], "/")
    assert resolve_user("", [], str(passwd), str(group)).home == "/root"
    with pytest.raises(ConfineError, match="unable to find user nobody"):
        resolve_user("nobody", [], str(passwd), str(group))
    with pytest.raises(ConfineError, match="unable to find group wheel"):
        resolve_user("0:wheel", [], str(passwd), str(group))


def test_the_compiled_filter_blocks_what_the_profile_blocks() -> None:
    """The default profile compiled through libseccomp and loaded into a forked child."""
    from runtime.seccomp.libseccomp import Filter

    filt = Filter(seccomp.resolve(seccomp.default_profile(), list(caps.DEFAULT)) or {})
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            filt.load()
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            results = []
            for nr_name, args in (("keyctl", (0, 0)), ("unshare", (0x10000000,)), ("getpid", ())):
                nr = {"keyctl": 250, "unshare": 272, "getpid": 39}[nr_name]
                ret = libc.syscall(nr, *args)
                results.append((nr_name, ret, ctypes.get_errno() if ret < 0 else 0))
            os.write(w, json.dumps(results).encode())
        finally:
            os._exit(0)
    os.close(w)
    out = json.loads(os.read(r, 4096))
    os.waitpid(pid, 0)
    filt.release()
    assert out[:2] == [["keyctl", -1, 1], ["unshare", -1, 1]]
    assert out[2][0] == "getpid" and out[2][1] > 0


def _in_child(fn: Callable[[], object]) -> object:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(w, json.dumps(fn()).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        out = json.loads(f.read() or "null")
    os.waitpid(pid, 0)
    return out


def test_the_compiled_program_is_cached_and_loads_without_libseccomp(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import ctypes

    from runtime.seccomp import cache, libseccomp

    profile = seccomp.resolve(seccomp.default_profile(), list(caps.DEFAULT)) or {}
    program = cache.program(profile, tmp_path)
    assert len(program) % 8 == 0 and len(program) > 100 * 8
    assert [p.suffix for p in tmp_path.iterdir()] == [".bpf"]

    def no_compile(*_args: object) -> None:
        raise AssertionError("compiled again")

    monkeypatch.setattr(libseccomp, "Filter", no_compile)
    assert cache.program(profile, tmp_path) == program  # from the cache

    def blocked() -> list[int]:
        libseccomp.load_program(program, [])
        libc = ctypes.CDLL(None, use_errno=True)
        return [libc.syscall(250, 0, 0), ctypes.get_errno(), int(libc.syscall(39) > 0)]  # keyctl; getpid

    assert _in_child(blocked) == [-1, 1, 1]
    with pytest.raises(libseccomp.SeccompError):
        libseccomp.load_program(b"\0" * 7, [])


def test_the_v2_device_program_encodes_each_rule_as_a_block() -> None:
    import struct

    from runtime import devices
    from runtime.cgroups import devicefilter

    def decode(code: bytes) -> list[tuple[int, int, int, int, int]]:
        out = []
        for i in range(0, len(code), 8):
            op, regs, off, imm = struct.unpack("<BBhi", code[i:i + 8])
            out.append((op, regs & 0xF, regs >> 4, off, imm))
        return out

    prologue = 6
    null = decode(devicefilter.program([devices.Rule(True, "c", 1, 3)]))[prologue:]
    assert null == [(0x55, 2, 0, 4, 2), (0x55, 4, 0, 3, 1), (0x55, 5, 0, 2, 3), (0xB4, 0, 0, 0, 1), (0x95, 0, 0, 0, 0),
                    (0xB4, 0, 0, 0, 0), (0x95, 0, 0, 0, 0)]  # type, major, minor, allow; else deny
    mknod = decode(devicefilter.program([devices.Rule(True, "b", access="m")]))[prologue:prologue + 6]
    assert mknod == [(0x55, 2, 0, 5, 1), (0xBC, 1, 3, 0, 0), (0x54, 1, 0, 0, 1), (0x5D, 1, 3, 2, 0),
                     (0xB4, 0, 0, 0, 1), (0x95, 0, 0, 0, 0)]  # the access asked must lie within "m"
    default = decode(devicefilter.program(devices.DEFAULT_RULES))
    assert default[-2:] == [(0xB4, 0, 0, 0, 0), (0x95, 0, 0, 0, 0)]  # deny-all, evaluated last, ends it
    assert [i for i in default if i[0] == 0x95] and len(default) == prologue + sum(
        len(devicefilter._block(r)) for r in devices.DEFAULT_RULES)
    assert len(devicefilter.program(devices.PRIVILEGED_RULES)) // 8 == prologue + 2
