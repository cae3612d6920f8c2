"""build_busybox_rootfs with the host's busybox-static, and the ELF static-ness check."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.rootfs import MARKER, RootfsError, build_busybox_rootfs, elf_interpreter

BUSYBOX = Path("/bin/busybox")


@pytest.fixture(autouse=True)
def _busybox_static_installed() -> None:
    """scripts/test installs busybox-static; its absence is a broken set-up, not a reason to skip."""
    assert BUSYBOX.is_file() and elf_interpreter(BUSYBOX) is None, "busybox-static is not installed"


def test_build_layout(tmp_path: Path) -> None:
    dest = build_busybox_rootfs(tmp_path / "rootfs")
    assert dest == tmp_path / "rootfs"
    assert (dest / "bin/busybox").is_file()
    assert os.access(dest / "bin/busybox", os.X_OK)
    for applet in ("sh", "ps", "ls", "cat"):
        assert (dest / "bin" / applet).is_symlink()
        assert os.readlink(dest / "bin" / applet) == "busybox"  # relative: valid inside and outside
    listed = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout
    assert {p.name for p in (dest / "bin").iterdir()} >= set(listed.split())
    for d in ("proc", "sys", "dev", "tmp", "etc", "root"):
        assert (dest / d).is_dir()
    assert (dest / "tmp").stat().st_mode & 0o7777 == 0o1777
    assert (dest / "etc/passwd").read_text().startswith("root:x:0:0:")
    assert (dest / "etc/group").read_text().startswith("root:x:0:")
    assert (dest / "etc/hostname").read_text().strip()


def test_build_is_idempotent(tmp_path: Path) -> None:
    dest = build_busybox_rootfs(tmp_path / "rootfs")
    (dest / "etc/hostname").write_text("custom\n")
    stamp = (dest / MARKER).stat().st_mtime_ns
    assert build_busybox_rootfs(dest) == dest
    assert (dest / MARKER).stat().st_mtime_ns == stamp
    assert (dest / "etc/hostname").read_text() == "custom\n"


def test_interrupted_build_is_completed(tmp_path: Path) -> None:
    dest = build_busybox_rootfs(tmp_path / "rootfs")
    (dest / MARKER).unlink()
    (dest / "bin/sh").unlink()
    shutil.rmtree(dest / "proc")
    build_busybox_rootfs(dest)
    assert (dest / "bin/sh").is_symlink() and (dest / "proc").is_dir() and (dest / MARKER).is_file()


def test_shell_runs_in_chroot(tmp_path: Path) -> None:
    assert os.geteuid() == 0, "chroot needs root"
    dest = build_busybox_rootfs(tmp_path / "rootfs")
    out = subprocess.run(
        [str(shutil.which("chroot")), str(dest), "/bin/sh", "-c", "echo ok; id -u; cat /etc/hostname"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/bin"},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[:2] == ["ok", "0"]


def test_dynamic_busybox_is_refused(tmp_path: Path) -> None:
    dynamic = Path(sys.executable).resolve()
    assert elf_interpreter(dynamic)  # the test's premise: this Python is dynamically linked
    with pytest.raises(RootfsError, match="dynamically linked .*busybox-static"):
        build_busybox_rootfs(tmp_path / "rootfs", busybox=dynamic)
    assert not (tmp_path / "rootfs").exists()


def test_missing_or_non_elf_busybox_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RootfsError, match="not found"):
        build_busybox_rootfs(tmp_path / "rootfs", busybox=tmp_path / "nope")
    script = tmp_path / "busybox"
    script.write_text("#!/bin/sh\necho sh\n")
    with pytest.raises(RootfsError, match="not an ELF"):
        build_busybox_rootfs(tmp_path / "rootfs", busybox=script)


def _elf(bits: int, order: str, interp: bytes | None) -> bytes:
    """A minimal ELF header plus one program header (PT_INTERP or PT_LOAD) and its payload."""
    machine = {"<": 1, ">": 2}[order]
    if bits == 64:
        ehsize, phentsize = 64, 56
        ident = b"\x7fELF" + bytes([2, machine, 1]) + bytes(9)
        header = ident + struct.pack(order + "HHIQQQIHHHHHH", 2, 62, 1, 0, ehsize, 0, 0, ehsize, phentsize, 1, 0, 0, 0)
        payload_at = ehsize + phentsize
        ptype = 3 if interp is not None else 1
        size = len(interp or b"")
        phdr = struct.pack(order + "IIQQQQQQ", ptype, 4, payload_at, 0, 0, size, size, 1)
    else:
        ehsize, phentsize = 52, 32
        ident = b"\x7fELF" + bytes([1, machine, 1]) + bytes(9)
        header = ident + struct.pack(order + "HHIIIIIHHHHHH", 2, 3, 1, 0, ehsize, 0, 0, ehsize, phentsize, 1, 0, 0, 0)
        payload_at = ehsize + phentsize
        ptype = 3 if interp is not None else 1
        size = len(interp or b"")
        phdr = struct.pack(order + "IIIIIIII", ptype, payload_at, 0, 0, size, size, 4, 1)
    return header + phdr + (interp or b"")


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize("order", ["<", ">"])
def test_elf_interpreter_reads_pt_interp(tmp_path: Path, bits: int, order: str) -> None:
    path = tmp_path / "elf"
    path.write_bytes(_elf(bits, order, b"/lib/ld-musl.so.1\0"))
    assert elf_interpreter(path) == "/lib/ld-musl.so.1"
    path.write_bytes(_elf(bits, order, None))
    assert elf_interpreter(path) is None
    path.write_bytes(_elf(bits, order, b"/lib/ld.so\0")[:40])
    with pytest.raises(RootfsError, match="truncated"):
        elf_interpreter(path)


def test_elf_interpreter_of_real_binaries() -> None:
    assert elf_interpreter(BUSYBOX) is None  # busybox-static: the autouse fixture made sure it is there
    interpreter = elf_interpreter(Path("/bin/ls").resolve())  # coreutils: on every Debian, dynamically linked
    assert interpreter is not None and interpreter.startswith("/lib"), interpreter
