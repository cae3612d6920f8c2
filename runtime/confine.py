"""Dropping the container's privileges, in runc's order (standard_init_linux.go, finalizeNamespace).

    ulimits -> no_new_privs -> seccomp (here when no_new_privs is off: loading a filter then needs
    CAP_SYS_ADMIN) -> bounding set -> keep caps, groups, gid, uid -> capset -> ambient cleared
    -> seccomp (here when no_new_privs is on: as late as possible) -> exec

`Confinement` is read in the monitor before the fork (the seccomp program was compiled when the
container was created, see runtime.seccomp.cache), so the container's PID 1 only applies it.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
from dataclasses import dataclass, field
from pathlib import Path

from hostwatch.core.containers import ContainerState
from runtime import caps
from runtime.security import ULIMITS

PR_SET_NO_NEW_PRIVS = 38
RLIM_INFINITY = resource.RLIM_INFINITY
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


class ConfineError(OSError):
    pass


@dataclass
class User:
    uid: int
    gid: int
    groups: list[int] = field(default_factory=list)
    home: str = "/"


def _entries(path: str) -> list[list[str]]:
    try:
        with open(path, errors="replace") as f:
            return [line.rstrip("\n").split(":") for line in f if line.strip() and not line.startswith("#")]
    except OSError:
        return []


def resolve_user(spec: str, group_add: list[str], passwd: str = "/etc/passwd", group: str = "/etc/group") -> User:
    """Docker's user lookup in the container's own /etc/passwd and /etc/group (after the pivot):
    names must be there; a numeric uid need not be (then gid 0 and HOME=/)."""
    user_part, _, group_part = (spec or "0").partition(":")
    users = [e for e in _entries(passwd) if len(e) >= 7]
    groups = [e for e in _entries(group) if len(e) >= 3]
    entry = next((e for e in users if e[0] == user_part or (user_part.isdigit() and e[2] == user_part)), None)
    if entry is None and not user_part.isdigit():
        raise ConfineError(f"unable to find user {user_part}: no matching entries in passwd file")
    uid = int(user_part) if user_part.isdigit() else int(entry[2])  # type: ignore[index]
    gid = int(entry[3]) if entry is not None and entry[3].isdigit() else 0
    home = entry[5] if entry is not None else "/"
    if group_part:
        gid = _gid(group_part, groups)
    extra = [_gid(g, groups) for g in group_add]
    name = entry[0] if entry is not None else ""
    member = [int(g[2]) for g in groups if name and name in g[3].split(",") and g[2].isdigit()]
    return User(uid, gid, list(dict.fromkeys([*member, *extra])), home)


def _gid(ref: str, groups: list[list[str]]) -> int:
    if ref.isdigit():
        return int(ref)
    for g in groups:
        if g[0] == ref and g[2].isdigit():
            return int(g[2])
    raise ConfineError(f"unable to find group {ref}: no matching entries in group file")


@dataclass
class Confinement:
    capabilities: int  # the mask for bounding, effective and permitted
    no_new_privileges: bool
    ulimits: list[tuple[int, int, int]]  # (resource, soft, hard)
    seccomp: bytes  # the compiled BPF program (b"": unconfined)
    seccomp_flags: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, state: ContainerState) -> Confinement:
        """Everything but the user lookup, which needs the container's /etc (after the pivot)."""
        limits = [(ULIMITS[u["Name"]], _rlim(u["Soft"]), _rlim(u["Hard"])) for u in state.ulimits]
        program, flags = b"", []
        if state.seccomp_profile:
            with open(state.seccomp_profile) as f:
                profile = json.load(f)
            flags = list(profile.get("flags") or [])
            try:
                program = Path(state.seccomp_profile).with_suffix(".bpf").read_bytes()
            except FileNotFoundError:  # a state written before programs were kept: compile it here
                from runtime.seccomp.cache import program as compile_program

                program = compile_program(profile)
        return cls(caps.mask([c for c in state.capabilities if c in caps.NUMBER]), state.no_new_privileges,
                   limits, program, flags)

    def _load_seccomp(self) -> None:
        if self.seccomp:
            from runtime.seccomp.libseccomp import load_program

            load_program(self.seccomp, self.seccomp_flags)

    def apply(self, user: User) -> None:
        for res, soft, hard in self.ulimits:
            resource.setrlimit(res, (soft, hard))
        if self.no_new_privileges and _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise ConfineError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        if not self.no_new_privileges:
            self._load_seccomp()
        caps.drop_bounding(self.capabilities)
        caps.keep_caps(True)
        os.setgroups(user.groups)
        os.setresgid(user.gid, user.gid, user.gid)
        os.setresuid(user.uid, user.uid, user.uid)
        caps.keep_caps(False)
        caps.capset(self.capabilities, self.capabilities, 0)
        caps.clear_ambient()
        if self.no_new_privileges:
            self._load_seccomp()


def _rlim(value: int) -> int:
    return RLIM_INFINITY if value == -1 else value
