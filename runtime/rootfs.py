"""A minimal root filesystem from a static busybox (Debian's busybox-static), for containers to run."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from pathlib import Path

MARKER = ".hostwatch-rootfs"  # written last: its presence means the rootfs is complete
DIRS = {"bin": 0o755, "proc": 0o555, "sys": 0o555, "dev": 0o755, "tmp": 0o1777, "etc": 0o755, "root": 0o700}
ETC_FILES = {
    "passwd": "root:x:0:0:root:/root:/bin/sh\n",
    "group": "root:x:0:\n",
    "hostname": "localhost\n",
}
PT_INTERP = 3


class RootfsError(Exception):
    """The rootfs cannot be built; the message says why."""


def elf_interpreter(path: Path) -> str | None:
    """The ELF program interpreter (PT_INTERP) of `path`, or None for a static executable.

    Raises RootfsError when `path` is not a readable ELF file.
    """
    try:
        with open(path, "rb") as f:
            ident = f.read(16)
            if len(ident) < 16 or ident[:4] != b"\x7fELF":
                raise RootfsError(f"{path} is not an ELF executable")
            bits, order = ident[4], {1: "<", 2: ">"}.get(ident[5])
            if bits not in (1, 2) or order is None:
                raise RootfsError(f"{path}: unknown ELF class/byte order")
            if bits == 2:  # Elf64_Ehdr: e_phoff at 32, e_phentsize/e_phnum at 54
                header = f.read(48)
                (phoff,) = struct.unpack_from(order + "Q", header, 32 - 16)
                phentsize, phnum = struct.unpack_from(order + "HH", header, 54 - 16)
                phdr_fmt = order + "IIQQQQQQ"  # type, flags, offset, vaddr, paddr, filesz, memsz, align
            else:  # Elf32_Ehdr: e_phoff at 28, e_phentsize/e_phnum at 42
                header = f.read(36)
                (phoff,) = struct.unpack_from(order + "I", header, 28 - 16)
                phentsize, phnum = struct.unpack_from(order + "HH", header, 42 - 16)
                phdr_fmt = order + "IIIIIIII"  # type, offset, vaddr, paddr, filesz, memsz, flags, align
            for i in range(phnum):
                f.seek(phoff + i * phentsize)
                raw = f.read(struct.calcsize(phdr_fmt))
                if len(raw) < struct.calcsize(phdr_fmt):
                    raise RootfsError(f"{path}: truncated ELF program headers")
                fields = struct.unpack(phdr_fmt, raw)
                if fields[0] != PT_INTERP:
                    continue
                offset, size = (fields[2], fields[5]) if bits == 2 else (fields[1], fields[4])
                f.seek(offset)
                return f.read(size).rstrip(b"\0").decode(errors="replace")
    except struct.error as e:
        raise RootfsError(f"{path}: truncated ELF header") from e
    except OSError as e:
        raise RootfsError(f"cannot read {path}: {e.strerror or e}") from e
    return None


def busybox_applets(busybox: Path) -> list[str]:
    try:
        out = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise RootfsError(f"cannot list the applets of {busybox}: {e}") from e
    applets = sorted({a.strip() for a in out.splitlines() if a.strip() and "/" not in a})
    if "sh" not in applets:
        raise RootfsError(f"{busybox} has no 'sh' applet")
    return applets


def build_busybox_rootfs(dest: Path, busybox: Path = Path("/bin/busybox")) -> Path:
    """Build (once) a minimal rootfs at `dest` and return it.

    bin/ holds busybox and a relative symlink per applet (`busybox --list`); there are empty
    proc, sys, dev, tmp, root and an etc with passwd, group and hostname. A finished rootfs
    (marked by .hostwatch-rootfs) is left as it is; an interrupted build is completed.
    """
    dest = Path(dest)
    if (dest / MARKER).is_file():
        return dest
    busybox = Path(busybox)
    if not busybox.is_file():
        raise RootfsError(f"{busybox} not found: install busybox-static")
    interp = elf_interpreter(busybox)
    if interp is not None:
        raise RootfsError(
            f"{busybox} is dynamically linked (interpreter {interp}); "
            "it would not run inside the rootfs: install busybox-static"
        )
    applets = busybox_applets(busybox)

    dest.mkdir(parents=True, exist_ok=True)
    for name, mode in DIRS.items():
        (dest / name).mkdir(exist_ok=True)
        os.chmod(dest / name, mode)
    bindir = dest / "bin"
    tmp = bindir / f".busybox.{os.getpid()}"
    shutil.copyfile(busybox, tmp)
    os.chmod(tmp, 0o755)
    os.replace(tmp, bindir / "busybox")
    for applet in applets:
        if applet == "busybox":
            continue
        link = bindir / applet
        if not link.is_symlink() and not link.exists():
            try:
                os.symlink("busybox", link)
            except FileExistsError:
                pass  # a concurrent builder made it
    for name, text in ETC_FILES.items():
        path = dest / "etc" / name
        if not path.exists():
            path.write_text(text)
    (dest / MARKER).write_text(f"busybox {busybox} applets {len(applets)}\n")
    return dest
