"""Copy-on-write layers as Docker's overlay2 driver keeps them: read-only lower layers, one upper.

A container's upper directory holds what it wrote. overlayfs records a deletion as a whiteout (a
character device 0:0, or since Linux 6.7 a file marked trusted.overlay.whiteout) and a directory
that hides everything below it as opaque (trusted.overlay.opaque = "y"). `changes` reads them the
way `docker diff` reports them, `size` is Docker's SizeRw (the bytes of the files, hard links
once), and `copy_layer` copies an upper directory into a new read-only layer, whiteouts and
opaque markers included, so overlayfs reads it correctly as a lower layer of another container.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

OVERLAY_MAGIC = 0x794C7630
OPAQUE_XATTR = "trusted.overlay.opaque"
WHITEOUT_XATTR = "trusted.overlay.whiteout"
# what overlayfs writes for itself; never carried into a committed layer
PRIVATE_XATTRS = ("trusted.overlay.origin", "trusted.overlay.impure", "trusted.overlay.nlink",
                  "trusted.overlay.upper", "trusted.overlay.metacopy", "trusted.overlay.redirect")
MOUNT_DATA_MAX = 4095  # a mount's option string must fit one page, NUL included
_MOUNT_OPTS_TRIES = ("index=off,redirect_dir=off,metacopy=off,", "")  # the plain form for older kernels

_libc = ctypes.CDLL("libc.so.6", use_errno=True)


class LayerError(Exception):
    pass


def fs_type(path: str | Path) -> int:
    buf = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes on 64-bit Linux
    if _libc.statfs(str(path).encode(), buf) != 0:
        err = ctypes.get_errno()
        raise LayerError(f"statfs {path}: {os.strerror(err)}")
    return int(struct.unpack_from("l", buf.raw)[0]) & 0xFFFFFFFF


def check_upper_fs(path: str | Path) -> None:
    """overlayfs refuses an upper directory on overlayfs (a container's or chroot's /tmp, /var/lib)."""
    if fs_type(path) == OVERLAY_MAGIC:
        raise LayerError(f"{path} is on overlayfs, which cannot hold a container's writable layer: "
                         "set HOSTWATCH_STATE_ROOT to a directory on ext4, xfs, btrfs or tmpfs")


def mount_options(lower: list[str], upper: str, work: str, extra: str = "") -> str:
    for path in (*lower, upper, work):
        if any(c in path for c in ":,\\"):
            raise LayerError(f"overlayfs cannot take a layer path containing ':', ',' or '\\': {path}")
    data = f"{extra}lowerdir={':'.join(lower)},upperdir={upper},workdir={work}"
    if len(data) > MOUNT_DATA_MAX:
        raise LayerError(f"too many layers for one overlay mount ({len(lower)}): the options exceed a page")
    return data


def mount_overlay(mount: object, lower: list[str], upper: str, work: str, target: str) -> None:
    """Mount the union at `target` (in the caller's mount namespace). redirect_dir and metacopy off
    keep every change in the upper directory as a whole file, which is what `changes` reads."""
    last: OSError | None = None
    for extra in _MOUNT_OPTS_TRIES:
        try:
            mount("overlay", target, "overlay", 0, mount_options(lower, upper, work, extra))  # type: ignore[operator]
            return
        except OSError as e:
            last = e
    raise OSError(last.errno if last else 0, f"mount overlay on {target}: {last.strerror if last else ''} "
                  f"(upper {upper})")


def _xattr(path: str, name: str) -> bytes | None:
    try:
        return os.getxattr(path, name, follow_symlinks=False)
    except OSError:
        return None


def is_whiteout(path: str, st: os.stat_result) -> bool:
    if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
        return True
    return stat.S_ISREG(st.st_mode) and st.st_size == 0 and _xattr(path, WHITEOUT_XATTR) is not None


def is_opaque(path: str) -> bool:
    return _xattr(path, OPAQUE_XATTR) == b"y"


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except OSError:
        return None


def lookup(lowers: list[str], rel: str) -> os.stat_result | None:
    """What the image (the union of `lowers`, top first) has at `rel`, honouring their whiteouts
    and opaque directories; None when the image has nothing there."""
    parts = [p for p in rel.split("/") if p]
    for layer in lowers:
        cur = layer
        for i, part in enumerate(parts):
            cur = os.path.join(cur, part)
            st = _lstat(cur)
            if st is None:
                break
            if is_whiteout(cur, st):
                return None
            if i == len(parts) - 1:
                return st
            if not stat.S_ISDIR(st.st_mode):
                return None  # a file here hides the directories of the layers below
            if is_opaque(cur):
                # the layers below cannot supply anything deeper: found here or nowhere
                rest = os.path.join(cur, *parts[i + 1:])
                found = _lstat(rest)
                return None if found is None or is_whiteout(rest, found) else found
    return None


@dataclass(frozen=True)
class Change:
    kind: str  # "A", "C" or "D", as `docker diff` prints them
    path: str

    def __str__(self) -> str:
        return f"{self.kind} {self.path}"


def _entries(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []


def changes(upper: str, lowers: list[str]) -> list[Change]:
    """The container's changes against its image, sorted by path; a directory that holds a change
    is itself reported changed, as Docker's archive.ChangesDirs does."""
    out: list[Change] = []
    _walk(upper, "", lowers, out)
    return sorted(out, key=lambda c: c.path)


def _walk(upper: str, rel: str, lowers: list[str], out: list[Change]) -> bool:
    """Record the changes below the directory `rel`; True when there was any."""
    here = os.path.join(upper, rel) if rel else upper
    found = False
    names = set(_entries(here))
    if rel and is_opaque(here):  # the image's entries the opaque directory hides are deleted
        hidden = {n for layer in lowers for n in _entries(os.path.join(layer, rel))} - names
        for name in sorted(hidden):
            if lookup(lowers, f"{rel}/{name}") is not None:
                out.append(Change("D", f"/{rel}/{name}"))
                found = True
    for name in sorted(names):
        child_rel = f"{rel}/{name}" if rel else name
        path = os.path.join(here, name)
        st = _lstat(path)
        if st is None:
            continue
        image = lookup(lowers, child_rel)
        if is_whiteout(path, st):
            if image is not None:
                out.append(Change("D", "/" + child_rel))
                found = True
            continue
        if stat.S_ISDIR(st.st_mode):
            inner = _walk(upper, child_rel, lowers, out)
            if image is None:
                out.append(Change("A", "/" + child_rel))
            elif inner or not stat.S_ISDIR(image.st_mode) or _meta_differs(st, image):
                out.append(Change("C", "/" + child_rel))
            else:
                continue
            found = True
            continue
        out.append(Change("A" if image is None else "C", "/" + child_rel))
        found = True
    return found


def _meta_differs(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_mode, a.st_uid, a.st_gid) != (b.st_mode, b.st_uid, b.st_gid)


def _walk_files(top: str) -> Iterator[os.stat_result]:
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            st = _lstat(os.path.join(dirpath, name))
            if st is not None and not stat.S_ISDIR(st.st_mode):
                yield st


def size(top: str | Path) -> int:
    """Docker's directory.Size: the sizes of everything but directories, each inode once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for st in _walk_files(str(top)):
        if st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            if key in seen:
                continue
            seen.add(key)
        total += st.st_size
    return total


def _copy_xattrs(src: str, dst: str) -> None:
    try:
        names = os.listxattr(src, follow_symlinks=False)
    except OSError:
        return
    for name in names:
        if name in PRIVATE_XATTRS or (name.startswith("trusted.overlay.") and name != OPAQUE_XATTR
                                      and name != WHITEOUT_XATTR):
            continue
        value = _xattr(src, name)
        if value is not None:
            try:
                os.setxattr(dst, name, value, follow_symlinks=False)
            except OSError:
                pass  # a file system without that namespace: the data still counts


def copy_layer(src: str, dst: str) -> None:
    """Copy a directory tree into a new layer: owners, modes, times, device nodes (whiteouts),
    hard links and xattrs (opaque markers) kept. `dst` must not exist."""
    os.mkdir(dst)
    links: dict[tuple[int, int], str] = {}
    _copy_meta(src, dst, os.lstat(src))
    for dirpath, dirnames, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        target_dir = dst if rel == "." else os.path.join(dst, rel)
        for name in sorted(dirnames) + sorted(filenames):
            s, d = os.path.join(dirpath, name), os.path.join(target_dir, name)
            st = os.lstat(s)
            key = (st.st_dev, st.st_ino)
            if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1 and key in links:
                os.link(links[key], d)
                continue
            if stat.S_ISDIR(st.st_mode):
                os.mkdir(d)
            elif stat.S_ISREG(st.st_mode):
                shutil.copyfile(s, d, follow_symlinks=False)
            elif stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(s), d)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
                os.mknod(d, st.st_mode, st.st_rdev)
            else:
                continue  # a socket: nothing to keep
            if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode):
                links[key] = d
            if not stat.S_ISDIR(st.st_mode):
                _copy_meta(s, d, st)
    for dirpath, _dirnames, _filenames in os.walk(src, topdown=False):  # directories' times last
        rel = os.path.relpath(dirpath, src)
        d = dst if rel == "." else os.path.join(dst, rel)
        _copy_meta(dirpath, d, os.lstat(dirpath))


def _copy_meta(src: str, dst: str, st: os.stat_result) -> None:
    os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    _copy_xattrs(src, dst)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)

