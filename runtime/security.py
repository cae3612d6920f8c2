"""Parsing the confinement flags the way Docker reads them: --security-opt, --ulimit, --tmpfs,
--user, --group-add. Each parser raises ValueError with Docker's one-line message."""

from __future__ import annotations

import os
import re
import resource
from dataclasses import dataclass
from typing import Any

from runtime import seccomp

RLIMIT_LOCKS = 10  # linux/resource.h; Python's resource module does not name it
# go-units ulimit names -> resource module constants
ULIMITS = {
    "as": resource.RLIMIT_AS, "core": resource.RLIMIT_CORE, "cpu": resource.RLIMIT_CPU,
    "data": resource.RLIMIT_DATA, "fsize": resource.RLIMIT_FSIZE, "locks": RLIMIT_LOCKS,
    "memlock": resource.RLIMIT_MEMLOCK, "msgqueue": resource.RLIMIT_MSGQUEUE, "nice": resource.RLIMIT_NICE,
    "nofile": resource.RLIMIT_NOFILE, "nproc": resource.RLIMIT_NPROC, "rss": resource.RLIMIT_RSS,
    "rtprio": resource.RLIMIT_RTPRIO, "rttime": resource.RLIMIT_RTTIME,
    "sigpending": resource.RLIMIT_SIGPENDING, "stack": resource.RLIMIT_STACK,
}
TMPFS_DEFAULTS = "rw,noexec,nosuid,nodev"  # what Docker mounts a --tmpfs with, before the user's options
_TMPFS_FLAGS = {"ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "atime", "noatime", "relatime",
                "norelatime", "strictatime", "nostrictatime", "diratime", "nodiratime", "sync", "async"}
_TMPFS_KEYS = {"size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol", "huge"}
MAX_ID = 0xFFFFFFFF  # (uid_t)-1 means "no change" to setresuid
_NAME_RE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class SecurityOpts:
    seccomp: str | None  # None: the default profile; "unconfined"; or a profile file's path
    no_new_privileges: bool


def parse_security_opts(items: list[str]) -> SecurityOpts:
    profile: str | None = None
    nnp = False
    for item in items:
        key, sep, value = item.partition("=")
        if not sep and ":" in item:  # Docker's deprecated "seccomp:unconfined" form
            key, sep, value = item.partition(":")
        if key == "no-new-privileges":
            if not sep:
                nnp = True
            elif value in ("true", "false"):
                nnp = value == "true"
            else:
                raise ValueError(f'invalid --security-opt 2: "{item}"')
        elif key == "seccomp" and value:
            profile = value
        else:
            raise ValueError(f'Invalid --security-opt: "{item}" (supported: seccomp=unconfined|PROFILE.json, '
                             "no-new-privileges)")
    return SecurityOpts(profile, nnp)


def seccomp_profile(opts: SecurityOpts, privileged: bool, caps: list[str]) -> dict[str, Any] | None:
    """The resolved profile to load, or None (unconfined; --privileged without an explicit profile)."""
    if opts.seccomp == seccomp.UNCONFINED or (privileged and opts.seccomp is None):
        return None
    try:
        doc = seccomp.default_profile() if opts.seccomp is None else seccomp.read_profile(opts.seccomp)
        return seccomp.resolve(doc, caps)
    except seccomp.ProfileError as e:
        raise ValueError(str(e)) from None


def _limit(text: str, item: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"invalid ulimit argument: {item}") from None
    if value < -1:
        raise ValueError(f"invalid ulimit argument: {item}")
    return value  # -1: unlimited


def parse_ulimit(item: str) -> dict[str, Any]:
    """go-units ParseUlimit: name=soft[:hard] -> Docker's {"Name", "Hard", "Soft"}."""
    name, sep, values = item.partition("=")
    if not sep:
        raise ValueError(f"invalid ulimit argument: {item}")
    if name not in ULIMITS:
        raise ValueError(f"invalid ulimit type: {name}")
    soft_text, colon, hard_text = values.partition(":")
    soft = _limit(soft_text, item)
    hard = _limit(hard_text, item) if colon else soft
    if hard != -1 and (soft == -1 or soft > hard):
        raise ValueError(f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}")
    return {"Name": name, "Hard": hard, "Soft": soft}


def parse_tmpfs(item: str) -> tuple[str, str]:
    path, _, options = item.partition(":")
    if not os.path.isabs(path) or ".." in path.split("/"):
        raise ValueError(f"invalid tmpfs {item!r}: the mount point must be an absolute path")
    if path.rstrip("/") in ("", "/proc", "/sys", "/dev"):
        raise ValueError(f"invalid tmpfs {item!r}: {path} cannot be a tmpfs")
    for opt in filter(None, options.split(",")):
        key = opt.partition("=")[0]
        if opt not in _TMPFS_FLAGS and key not in _TMPFS_KEYS:
            raise ValueError(f"invalid tmpfs {item!r}: unknown option {opt!r}")
    return os.path.normpath(path), options


def tmpfs_mount_options(options: str) -> tuple[int, str]:
    """(mount flags, data) for a --tmpfs: Docker's defaults, then the user's options, later wins."""
    from runtime import namespaces as ns

    flag_bits = {"ro": ns.MS_RDONLY, "nosuid": ns.MS_NOSUID, "nodev": ns.MS_NODEV, "noexec": ns.MS_NOEXEC}
    opposite = {"rw": "ro", "suid": "nosuid", "dev": "nodev", "exec": "noexec"}
    flags = 0
    data = []
    for opt in filter(None, f"{TMPFS_DEFAULTS},{options}".split(",")):
        if opt in flag_bits:
            flags |= flag_bits[opt]
        elif opt in opposite:
            flags &= ~flag_bits[opposite[opt]]
        elif opt.partition("=")[0] in _TMPFS_KEYS:
            data.append(opt)
    return flags, ",".join(data)


def parse_user(item: str) -> str:
    """UID[:GID] or NAME[:GROUP]; names are looked up in the container's /etc/passwd at start."""
    user, colon, group = item.partition(":")
    for part in (user, *([group] if colon else [])):
        if not _NAME_RE.match(part):
            raise ValueError(f"invalid --user {item!r}: expected UID[:GID] or NAME[:GROUP]")
    for part in (user, group):
        if part.isdigit() and int(part) >= MAX_ID:
            raise ValueError(f"invalid --user {item!r}: ids must be below 4294967295")
    return item


def parse_group(item: str) -> str:
    if not _NAME_RE.match(item) or (item.isdigit() and int(item) >= MAX_ID):
        raise ValueError(f"invalid --group-add {item!r}: expected a GID or a group name")
    return item
