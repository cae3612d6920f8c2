"""ctypes binding to Debian's libseccomp2 (libseccomp.so.2): compile a resolved profile, load it.

The rules are added as runc adds them (libcontainer/seccomp/seccomp_linux.go): syscall names this
libseccomp does not know are skipped, a rule whose action equals the default action is skipped,
conditions on distinct arguments form one rule (AND), and conditions repeating an argument become
one rule each (OR). The filter does not set no_new_privs itself (SCMP_FLTATR_CTL_NNP off): Docker's
default container shows `NoNewPrivs: 0`, so it is loaded while the process still holds CAP_SYS_ADMIN,
unless no-new-privileges was asked for.
"""

from __future__ import annotations

import ctypes
import errno
import os
from typing import Any

SONAME = "libseccomp.so.2"
NR_SCMP_ERROR = -1
SCMP_FLTATR_CTL_NNP = 3
SCMP_FLTATR_CTL_LOG = 6
SCMP_FLTATR_CTL_SSB = 7
ACT_KILL_PROCESS = 0x80000000
ACT_KILL_THREAD = 0x00000000
ACT_TRAP = 0x00030000
ACT_ERRNO = 0x00050000
ACT_TRACE = 0x7FF00000
ACT_LOG = 0x7FFC0000
ACT_ALLOW = 0x7FFF0000
OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
       "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
FLAG_ATTRS = {"SECCOMP_FILTER_FLAG_LOG": SCMP_FLTATR_CTL_LOG, "SECCOMP_FILTER_FLAG_SPEC_ALLOW": SCMP_FLTATR_CTL_SSB}


class SeccompError(OSError):
    pass


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


_lib: ctypes.CDLL | None = None


def lib() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        try:
            handle = ctypes.CDLL(SONAME, use_errno=True)
        except OSError as e:
            raise SeccompError(f"cannot load {SONAME} (install Debian's libseccomp2): {e}") from None
        handle.seccomp_init.restype = ctypes.c_void_p
        handle.seccomp_init.argtypes = [ctypes.c_uint32]
        handle.seccomp_release.argtypes = [ctypes.c_void_p]
        handle.seccomp_load.argtypes = [ctypes.c_void_p]
        handle.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
        handle.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
        handle.seccomp_arch_resolve_name.restype = ctypes.c_uint32
        handle.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
        handle.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        handle.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
        handle.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                                  ctypes.POINTER(_ArgCmp)]
        _lib = handle
    return _lib


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


def version() -> tuple[int, int, int]:
    """libseccomp's own version: its syscall tables decide what a profile compiles to."""
    fn = lib().seccomp_version
    fn.restype = ctypes.POINTER(_Version)
    v = fn().contents
    return int(v.major), int(v.minor), int(v.micro)


def action(name: str, errno_ret: int | None, default_errno: int = errno.EPERM) -> int:
    base = {"SCMP_ACT_KILL": ACT_KILL_THREAD, "SCMP_ACT_KILL_THREAD": ACT_KILL_THREAD,
            "SCMP_ACT_KILL_PROCESS": ACT_KILL_PROCESS, "SCMP_ACT_TRAP": ACT_TRAP, "SCMP_ACT_LOG": ACT_LOG,
            "SCMP_ACT_ALLOW": ACT_ALLOW}
    if name in base:
        return base[name]
    code = default_errno if errno_ret is None else errno_ret
    if name == "SCMP_ACT_ERRNO":
        return ACT_ERRNO | (code & 0xFFFF)
    if name == "SCMP_ACT_TRACE":
        return ACT_TRACE | (code & 0xFFFF)
    raise SeccompError(f"unsupported seccomp action {name!r}")


def arch_token(name: str) -> int:
    """SCMP_ARCH_X86_64 -> libseccomp's token ("x86_64"); 0 when this libseccomp does not know it."""
    return int(lib().seccomp_arch_resolve_name(name.removeprefix("SCMP_ARCH_").lower().encode()))


def syscall_number(name: str) -> int:
    return int(lib().seccomp_syscall_resolve_name(name.encode()))


def _rc(ret: int, what: str) -> None:
    if ret < 0:
        raise SeccompError(-ret, f"{what}: {os.strerror(-ret)}")


class Filter:
    """A compiled filter; build it before fork, `load()` it in the container's process."""

    def __init__(self, profile: dict[str, Any]) -> None:
        self.lib = lib()
        self.skipped: list[str] = []  # names this libseccomp does not know (newer kernels' syscalls)
        self.default = action(profile["defaultAction"], profile.get("defaultErrnoRet"))
        ctx = self.lib.seccomp_init(self.default)
        if not ctx:
            raise SeccompError("seccomp_init failed")
        self.ctx: int | None = ctx
        try:
            _rc(self.lib.seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0), "seccomp_attr_set(CTL_NNP)")
            for flag in profile.get("flags") or []:
                _rc(self.lib.seccomp_attr_set(ctx, FLAG_ATTRS[flag], 1), f"seccomp flag {flag}")
            for arch in profile.get("architectures") or []:
                token = arch_token(arch)
                if token == 0:
                    raise SeccompError(f"seccomp: architecture {arch} unknown to {SONAME}")
                ret = self.lib.seccomp_arch_add(ctx, token)
                if ret != -errno.EEXIST:  # the native architecture is in every new filter
                    _rc(ret, f"seccomp_arch_add({arch})")
            for rule in profile.get("syscalls") or []:
                self._add(rule)
        except BaseException:
            self.release()
            raise

    def _add(self, rule: dict[str, Any]) -> None:
        act = action(rule["action"], rule.get("errnoRet"))
        if act == self.default:
            return
        conds = [_ArgCmp(a["index"], OPS[a["op"]], a["value"], a.get("valueTwo", 0)) for a in rule.get("args") or []]
        indexes = [c.arg for c in conds]
        groups = [[c] for c in conds] if len(set(indexes)) < len(indexes) else [conds]
        for name in rule["names"]:
            nr = syscall_number(name)
            if nr == NR_SCMP_ERROR:
                self.skipped.append(name)
                continue
            for group in groups:
                array = (_ArgCmp * len(group))(*group) if group else None
                _rc(self.lib.seccomp_rule_add_array(self.ctx, act, nr, len(group), array),
                    f"seccomp_rule_add({name})")

    def export(self) -> bytes:
        """The filter as the kernel takes it: an array of struct sock_filter (8 bytes each)."""
        if self.ctx is None:
            raise SeccompError("seccomp filter already released")
        fd = os.memfd_create("seccomp-bpf")  # not a pipe: a large filter would fill its buffer
        with os.fdopen(fd, "rb") as f:
            _rc(self.lib.seccomp_export_bpf(self.ctx, fd), "seccomp_export_bpf")
            f.seek(0)
            return f.read()

    def load(self) -> None:
        if self.ctx is None:
            raise SeccompError("seccomp filter already released")
        _rc(self.lib.seccomp_load(self.ctx), "seccomp_load")

    def release(self) -> None:
        if self.ctx is not None:
            self.lib.seccomp_release(self.ctx)
            self.ctx = None


SECCOMP_SET_MODE_FILTER = 1
FLAG_BITS = {"SECCOMP_FILTER_FLAG_LOG": 2, "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4}
_SYS_SECCOMP = {"x86_64": 317, "aarch64": 277}


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def load_program(program: bytes, flags: list[str]) -> None:
    """Install an exported filter with seccomp(2), as libseccomp's seccomp_load would (without
    setting no_new_privs: the caller holds CAP_SYS_ADMIN or has set it)."""

    nr = _SYS_SECCOMP.get(os.uname().machine)
    if nr is None or not program or len(program) % 8:
        raise SeccompError(f"cannot load a seccomp program of {len(program)} bytes on {os.uname().machine}")
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    bits = 0
    for flag in flags:
        bits |= FLAG_BITS[flag]
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    if libc.syscall(nr, SECCOMP_SET_MODE_FILTER, bits, ctypes.byref(prog)) != 0:
        err = ctypes.get_errno()
        raise SeccompError(err, f"seccomp(SET_MODE_FILTER): {os.strerror(err)}")
