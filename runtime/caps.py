"""Linux capabilities: Docker's default set, --cap-add/--cap-drop/--privileged, and applying a set.

Docker (moby daemon/pkg/oci/caps) gives a container 14 capabilities in its bounding, permitted and
effective sets, nothing inheritable or ambient; `--privileged` gives every capability the runtime
itself holds. The names follow capabilities(7), with or without the CAP_ prefix, in any case.
"""

from __future__ import annotations

import ctypes
import os
import struct

NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
    "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)  # index = capability number (linux/capability.h)
NUMBER = {name: i for i, name in enumerate(NAMES)}

# moby daemon/pkg/oci/caps/defaults.go, in its order
DEFAULT = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
    "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL",
    "CAP_AUDIT_WRITE",
)
ALL = "ALL"

CAP_LAST_CAP = "/proc/sys/kernel/cap_last_cap"
PR_CAPBSET_DROP = 24
PR_SET_KEEPCAPS = 8
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
_SYS_CAPSET = {"x86_64": 126, "aarch64": 91}

_libc = ctypes.CDLL("libc.so.6", use_errno=True)


class CapError(ValueError):
    """An unknown or unavailable capability name (a usage error)."""


def mask(names: list[str] | tuple[str, ...]) -> int:
    out = 0
    for name in names:
        out |= 1 << NUMBER[name]
    return out


def available() -> list[str]:
    """The capabilities this process can hand on: its own bounding set (a runtime started in a
    restricted environment holds fewer than the kernel knows, as Docker-in-Docker does)."""
    bounding = 0
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapBnd:"):
                    bounding = int(line.split()[1], 16)
    except OSError:
        bounding = (1 << len(NAMES)) - 1
    return [name for i, name in enumerate(NAMES) if bounding >> i & 1]


def normalize(items: list[str], usable: list[str]) -> list[str]:
    """Docker's NormalizeLegacyCapabilities: upper-case, CAP_ prefix, ALL kept; unknown names refused."""
    out = []
    for item in items:
        name = item.strip().upper()
        if name == ALL:
            out.append(name)
            continue
        if not name.startswith("CAP_"):
            name = "CAP_" + name
        if name not in NUMBER:
            raise CapError(f'unknown capability: "{name}"')
        if name not in usable:
            raise CapError("capability not supported by your kernel or not available in the current environment: "
                           f'"{name}"')
        out.append(name)
    return out


def resolve(cap_add: list[str], cap_drop: list[str], privileged: bool, usable: list[str] | None = None) -> list[str]:
    """Docker's TweakCapabilities: the container's capability set, in Docker's order."""
    usable = available() if usable is None else usable
    drops = normalize(cap_drop, usable)
    adds = normalize(cap_add, usable)
    if privileged:
        return list(usable)
    if not adds and not drops:
        return list(DEFAULT)
    if ALL in adds:
        caps = [c for c in usable if c not in drops]
    elif ALL in drops:
        caps = [c for c in adds if c != ALL]
    else:
        caps = [c for c in DEFAULT if c not in drops] + [c for c in adds if c not in DEFAULT]
    return list(dict.fromkeys(caps))


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def drop_bounding(keep: int) -> None:
    """Drop every capability outside `keep` from the bounding set (needs CAP_SETPCAP, so first)."""
    with open(CAP_LAST_CAP) as f:
        last = int(f.read())
    for cap in range(last + 1):
        if not keep >> cap & 1:
            _check(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"prctl(PR_CAPBSET_DROP, {cap})")


def keep_caps(on: bool) -> None:
    """Keep the permitted set across a setuid away from root (runc: SetKeepCaps/ClearKeepCaps)."""
    _check(_libc.prctl(PR_SET_KEEPCAPS, int(on), 0, 0, 0), "prctl(PR_SET_KEEPCAPS)")


def capset(effective: int, permitted: int, inheritable: int) -> None:

    nr = _SYS_CAPSET.get(os.uname().machine)
    if nr is None:
        raise OSError(f"capset: unsupported architecture {os.uname().machine}")
    header = ctypes.create_string_buffer(struct.pack("Ii", _LINUX_CAPABILITY_VERSION_3, 0))
    data = ctypes.create_string_buffer(struct.pack(
        "IIIIII", effective & 0xFFFFFFFF, permitted & 0xFFFFFFFF, inheritable & 0xFFFFFFFF,
        effective >> 32, permitted >> 32, inheritable >> 32))
    _check(_libc.syscall(nr, header, data), "capset")


def clear_ambient() -> None:
    ret = _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    if ret != 0 and ctypes.get_errno() != 22:  # EINVAL: a kernel before 4.3 has no ambient set
        _check(ret, "prctl(PR_CAP_AMBIENT_CLEAR_ALL)")
