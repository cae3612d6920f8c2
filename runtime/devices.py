"""Device access: Docker's default cgroup device rules, and a privileged container's /dev.

The rules are moby's (daemon/pkg/oci/defaults.go) with runc's implicit ones (specconv.AllowedDevices):
deny everything, then allow mknod of any node, the standard character devices, the terminals and
/dev/net/tun, and deny /dev/fuse. A default container may still *create* a block device node (it
holds CAP_MKNOD), but not open it.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

WILDCARD = -1


@dataclass(frozen=True)
class Rule:
    allow: bool
    type: str  # "a" (all), "c" or "b"
    major: int = WILDCARD
    minor: int = WILDCARD
    access: str = "rwm"

    def v1(self) -> str:
        """The line devices.allow / devices.deny take: "c 1:3 rwm", "a"."""
        if self.type == "a":
            return "a"
        major = "*" if self.major == WILDCARD else str(self.major)
        minor = "*" if self.minor == WILDCARD else str(self.minor)
        return f"{self.type} {major}:{minor} {self.access}"


DENY_ALL = Rule(False, "a")
ALLOW_ALL = Rule(True, "a")
DEFAULT_RULES = (
    DENY_ALL,
    Rule(True, "c", access="m"),  # mknod of any node; opening it is what the rules below decide
    Rule(True, "b", access="m"),
    Rule(True, "c", 1, 3),  # null
    Rule(True, "c", 1, 8),  # random
    Rule(True, "c", 1, 7),  # full
    Rule(True, "c", 5, 0),  # tty
    Rule(True, "c", 1, 5),  # zero
    Rule(True, "c", 1, 9),  # urandom
    Rule(True, "c", 136),  # pts
    Rule(True, "c", 5, 2),  # ptmx
    Rule(True, "c", 10, 200),  # net/tun
    Rule(True, "c", 5, 1),  # console
    Rule(False, "c", 10, 229),  # fuse
)
PRIVILEGED_RULES = (ALLOW_ALL,)


def rules(privileged: bool) -> tuple[Rule, ...]:
    return PRIVILEGED_RULES if privileged else DEFAULT_RULES


# What Docker leaves out when it gives a privileged container the host's devices (oci.HostDevices)
_SKIP_DIRS = ("pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev")
_SKIP_NODES = ("ptmx", "console")  # the container's own: pts/ptmx of its devpts instance; no console


def copy_host_devices(dev: str, host: str = "/dev") -> None:
    """Recreate the host's device nodes in the container's /dev tmpfs (a privileged container)."""
    for dirpath, dirnames, filenames in os.walk(host):
        rel = os.path.relpath(dirpath, host)
        if rel == ".":
            dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS]
        for name in filenames:
            if rel == "." and name in _SKIP_NODES:
                continue
            src = os.path.join(dirpath, name)
            try:
                st = os.lstat(src)
            except OSError:
                continue
            if not (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)):
                continue
            dst = os.path.join(dev, rel, name) if rel != "." else os.path.join(dev, name)
            if os.path.lexists(dst):
                continue
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            try:
                os.mknod(dst, st.st_mode, st.st_rdev)
                os.chown(dst, st.st_uid, st.st_gid)
            except OSError:
                continue  # best effort, as Docker: a node that cannot be made is left out
