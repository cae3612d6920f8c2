"""cgroup v2 device rules: an eBPF program (BPF_PROG_TYPE_CGROUP_DEVICE) attached to the cgroup.

cgroup v2 has no devices controller; the kernel asks a program attached to the cgroup instead, for
every open and mknod of a device node. The program is runc's (libcontainer/cgroups/devices/
devicefilter.go) in spirit: the rules are tried last to first and the first that matches decides,
which is what v1's "deny all, then allow these" amounts to; nothing matching is denied.

The program receives struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }, the access
in the upper and the device type in the lower 16 bits of access_type; it returns 1 to allow.
"""

from __future__ import annotations

import ctypes
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2  # beside programs others (systemd) attach
DEV_TYPE = {"b": 1, "c": 2}  # BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR
ACCESS = {"m": 1, "r": 2, "w": 4}  # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE
WILDCARD = -1
_SYS_BPF = {"x86_64": 321, "aarch64": 280}
_LICENSE = b"Apache\0"

# opcodes (linux/bpf_common.h, linux/bpf.h)
_LDX_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W
_AND32_K = 0x54
_RSH32_K = 0x74
_MOV32_X = 0xBC
_MOV32_K = 0xB4
_JNE_K = 0x55
_JNE_X = 0x5D
_EXIT = 0x95


class DeviceRule(Protocol):
    @property
    def allow(self) -> bool: ...
    @property
    def type(self) -> str: ...
    @property
    def major(self) -> int: ...
    @property
    def minor(self) -> int: ...
    @property
    def access(self) -> str: ...


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _block(rule: DeviceRule) -> list[bytes]:
    """Instructions for one rule: jump past the block unless it matches, else return its verdict.
    Registers: r2 type, r3 access, r4 major, r5 minor (set by the prologue)."""
    checks: list[tuple[int, int, int, int]] = []  # (code, dst, src, imm) of a conditional jump
    pre: list[list[bytes]] = []
    if rule.type != "a":
        checks.append((_JNE_K, 2, 0, DEV_TYPE[rule.type]))
        pre.append([])
    bits = sum(ACCESS[c] for c in set(rule.access))
    if bits != 7:
        # the requested access must lie within the rule's: (r3 & bits) == r3
        pre.append([_insn(_MOV32_X, 1, 3), _insn(_AND32_K, 1, imm=bits)])
        checks.append((_JNE_X, 1, 3, 0))
    if rule.type != "a" and rule.major != WILDCARD:
        checks.append((_JNE_K, 4, 0, rule.major))
        pre.append([])
    if rule.type != "a" and rule.minor != WILDCARD:
        checks.append((_JNE_K, 5, 0, rule.minor))
        pre.append([])
    tail = [_insn(_MOV32_K, 0, imm=1 if rule.allow else 0), _insn(_EXIT)]
    out: list[bytes] = []
    # each jump's offset counts the instructions after it up to the end of the block
    sizes = [len(p) + 1 for p in pre]
    for i, ((code, dst, src, imm), before) in enumerate(zip(checks, pre, strict=True)):
        out.extend(before)
        remaining = sum(sizes[i + 1:]) + len(tail)
        out.append(_insn(code, dst, src, off=remaining, imm=imm))
    return out + tail


def program(rules: Sequence[DeviceRule]) -> bytes:
    prologue = [
        _insn(_LDX_W, 2, 1, 0), _insn(_AND32_K, 2, imm=0xFFFF),  # r2 = type
        _insn(_LDX_W, 3, 1, 0), _insn(_RSH32_K, 3, imm=16),  # r3 = access
        _insn(_LDX_W, 4, 1, 4),  # r4 = major
        _insn(_LDX_W, 5, 1, 8),  # r5 = minor
    ]
    body: list[bytes] = []
    for rule in reversed(rules):
        body.extend(_block(rule))
        if rule.type == "a" and set(rule.access) >= set("rwm"):
            return b"".join([*prologue, *body])  # it matches everything: the verifier refuses dead code after it
    return b"".join([*prologue, *body, _insn(_MOV32_K, 0, imm=0), _insn(_EXIT)])


def _bpf(cmd: int, attr: bytes) -> int:
    nr = _SYS_BPF.get(os.uname().machine)
    if nr is None:
        raise OSError(f"bpf: unsupported architecture {os.uname().machine}")
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    buf = ctypes.create_string_buffer(attr, len(attr))
    ret = int(libc.syscall(nr, cmd, buf, len(attr)))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bpf({cmd}): {os.strerror(err)}")
    return ret


def attach(cgroup_dir: Path, rules: Sequence[DeviceRule]) -> None:
    """Load the rules' program and attach it to `cgroup_dir` (it stays until the cgroup goes)."""
    code = program(rules)
    insns = ctypes.create_string_buffer(code, len(code))
    lic = ctypes.create_string_buffer(_LICENSE, len(_LICENSE))
    attr = struct.pack("<IIQQIIQII16s", BPF_PROG_TYPE_CGROUP_DEVICE, len(code) // 8, ctypes.addressof(insns),
                       ctypes.addressof(lic), 0, 0, 0, 0, 0, b"hostwatch_dev")
    prog_fd = _bpf(BPF_PROG_LOAD, attr.ljust(128, b"\0"))
    try:
        cg_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            _bpf(BPF_PROG_ATTACH, struct.pack("<IIII", cg_fd, prog_fd, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)
                 .ljust(32, b"\0"))
        finally:
            os.close(cg_fd)
    finally:
        os.close(prog_fd)
