"""Seccomp profiles in Docker's format, resolved the way moby/profiles/seccomp does it.

A Docker profile (default.json beside this file, or `--security-opt seccomp=PROFILE.json`) carries
conditional rules: `includes`/`excludes` on the container's capabilities (its bounding set), the
host's architecture and kernel version. `resolve` turns it into the OCI runtime-spec form
(`LinuxSeccomp`: defaultAction, defaultErrnoRet, architectures, flags, syscalls without conditions),
which `runtime.seccomp.libseccomp` compiles into a filter. Everything a runtime would refuse later
(an unknown action, operator, architecture or flag) is refused here, while the container is created.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

DEFAULT_PROFILE = Path(__file__).with_name("default.json")
UNCONFINED = "unconfined"
ACTIONS = ("SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO",
           "SCMP_ACT_TRACE", "SCMP_ACT_ALLOW", "SCMP_ACT_LOG")  # SCMP_ACT_NOTIFY needs a listener: unsupported
OPERATORS = ("SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_LE", "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT",
             "SCMP_CMP_MASKED_EQ")
FLAGS = ("SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW")
MAX_ARGS = 6
# uname -m -> the architecture names profiles use in includes/excludes "arches" (Go's GOARCH, mostly)
_GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "i686": "x86", "i386": "x86", "armv7l": "arm", "s390x": "s390x",
            "ppc64le": "ppc64le", "riscv64": "riscv64", "loongarch64": "loong64", "mips64": "mips64"}
_NATIVE_SCMP = {"amd64": "SCMP_ARCH_X86_64", "arm64": "SCMP_ARCH_AARCH64", "x86": "SCMP_ARCH_X86",
                "arm": "SCMP_ARCH_ARM", "s390x": "SCMP_ARCH_S390X", "ppc64le": "SCMP_ARCH_PPC64LE",
                "riscv64": "SCMP_ARCH_RISCV64", "loong64": "SCMP_ARCH_LOONGARCH64", "mips64": "SCMP_ARCH_MIPS64"}


class ProfileError(ValueError):
    """A profile that cannot be read or used; the message is one line."""


def host_arch() -> str:
    machine = os.uname().machine
    return _GO_ARCH.get(machine, machine)


def kernel_version(release: str | None = None) -> tuple[int, int]:
    match = re.match(r"(\d+)\.(\d+)", release or os.uname().release)
    if not match:
        raise ProfileError(f"failed to parse kernel version {release!r}")
    return int(match[1]), int(match[2])


def _min_kernel(text: object) -> tuple[int, int]:
    match = re.fullmatch(r"(\d+)\.(\d+)", str(text))
    if not match or (int(match[1]), int(match[2])) == (0, 0):
        raise ProfileError(f'invalid kernel version: "{text}", expected "<kernel>.<major>"')
    return int(match[1]), int(match[2])


def read_profile(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ProfileError(f"opening seccomp profile ({path}) failed: {e.strerror or e}") from None
    return parse_profile(text)


def parse_profile(text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise ProfileError(f"Decoding seccomp profile failed: {e}") from None
    if not isinstance(doc, dict):
        raise ProfileError("Decoding seccomp profile failed: the profile is not a JSON object")
    return doc


def _list(doc: dict[str, Any], key: str) -> list[Any]:
    value = doc.get(key) or []
    if not isinstance(value, list):
        raise ProfileError(f"seccomp profile: {key!r} must be a list")
    return value


def _check_action(action: object, where: str) -> str:
    if action not in ACTIONS:
        raise ProfileError(f"seccomp profile: {where}: unknown or unsupported action {action!r}")
    return str(action)


def _check_args(args: list[Any], where: str) -> list[dict[str, Any]]:
    out = []
    for arg in args:
        if not isinstance(arg, dict):
            raise ProfileError(f"seccomp profile: {where}: an argument rule must be an object")
        index, op = arg.get("index"), arg.get("op")
        if not isinstance(index, int) or not 0 <= index < MAX_ARGS:
            raise ProfileError(f"seccomp profile: {where}: argument index {index!r} is not 0..5")
        if op not in OPERATORS:
            raise ProfileError(f"seccomp profile: {where}: unknown operator {op!r}")
        value, value_two = arg.get("value", 0), arg.get("valueTwo", 0)
        for v in (value, value_two):
            if not isinstance(v, int) or not 0 <= v < 1 << 64:
                raise ProfileError(f"seccomp profile: {where}: argument value {v!r} is not a 64-bit unsigned number")
        out.append({"index": index, "value": value, "valueTwo": value_two, "op": op})
    return out


def _skip(call: dict[str, Any], caps: list[str], arch: str, kernel: tuple[int, int]) -> bool:
    """moby's setupSeccomp: excludes drop a rule on any match, includes need every condition."""
    excludes, includes = call.get("excludes") or {}, call.get("includes") or {}
    if arch in (excludes.get("arches") or []):
        return True
    if any(c in caps for c in excludes.get("caps") or []):
        return True
    if excludes.get("minKernel") and kernel >= _min_kernel(excludes["minKernel"]):
        return True
    if includes.get("arches") and arch not in includes["arches"]:
        return True
    if any(c not in caps for c in includes.get("caps") or []):
        return True
    return bool(includes.get("minKernel")) and kernel < _min_kernel(includes["minKernel"])


def resolve(doc: dict[str, Any], caps: list[str], arch: str | None = None,
            kernel: tuple[int, int] | None = None) -> dict[str, Any] | None:
    """The OCI LinuxSeccomp for a container whose bounding set is `caps`; None: no filter at all
    (a profile without a default action and without syscalls, as Docker reads it)."""
    arch = arch or host_arch()
    kernel = kernel or kernel_version()
    if not doc.get("defaultAction") and not doc.get("syscalls"):
        return None
    if doc.get("architectures") and doc.get("archMap"):
        raise ProfileError("both 'architectures' and 'archMap' are specified in the seccomp profile, "
                           "use either 'architectures' or 'archMap'")
    if doc.get("listenerPath"):
        raise ProfileError("seccomp profile: listenerPath (SCMP_ACT_NOTIFY) is not supported")
    default_action = _check_action(doc.get("defaultAction"), "defaultAction")
    arches = [str(a) for a in _list(doc, "architectures")]
    native = _NATIVE_SCMP.get(arch)
    for entry in _list(doc, "archMap"):
        if native and isinstance(entry, dict) and entry.get("architecture") == native:
            arches = [native, *(entry.get("subArchitectures") or [])]
            break
    flags = [str(f) for f in _list(doc, "flags")]
    for flag in flags:
        if flag not in FLAGS:
            raise ProfileError(f"seccomp profile: unsupported flag {flag!r}")
    out: dict[str, Any] = {"defaultAction": default_action, "architectures": arches, "flags": flags, "syscalls": []}
    if doc.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = _errno(doc["defaultErrnoRet"], "defaultErrnoRet")
    for n, call in enumerate(_list(doc, "syscalls")):
        where = f"syscalls[{n}]"
        if not isinstance(call, dict):
            raise ProfileError(f"seccomp profile: {where} must be an object")
        names = call.get("names") or []
        if call.get("name"):
            if names:
                raise ProfileError("both 'name' and 'names' are specified in the seccomp profile, "
                                   "use either 'name' or 'names'")
            names = [call["name"]]
        if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
            raise ProfileError(f"seccomp profile: {where}: names must be a list of strings")
        rule: dict[str, Any] = {"names": names, "action": _check_action(call.get("action"), where),
                                "args": _check_args(call.get("args") or [], where)}
        if call.get("errnoRet") is not None:
            rule["errnoRet"] = _errno(call["errnoRet"], where)
        if not _skip(call, caps, arch, kernel):
            out["syscalls"].append(rule)
    return out


def _errno(value: object, where: str) -> int:
    if not isinstance(value, int) or not 0 <= value <= 0xFFFF:
        raise ProfileError(f"seccomp profile: {where}: errnoRet {value!r} is not 0..65535")
    return value


def default_profile() -> dict[str, Any]:
    return parse_profile(DEFAULT_PROFILE.read_text())
