"""Unpacking a filesystem tarball (as `docker export` or `tar -C rootfs -c .` writes it) into a layer.

Owners are kept by number (the names mean nothing on the host), modes keep their setuid bits, device
nodes and absolute symlinks are kept: they are the image's own and are read inside the container.
What could reach outside the layer while unpacking is refused, naming the member: absolute paths and
`..`, hard links leaving the layer, and members below a symlink the tarball made earlier.
"""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path


class TarError(Exception):
    pass


def _clean(name: str, what: str) -> str:
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise TarError(f"{what} {name!r} points outside the image")
    return "/".join(parts)


def _below_symlink(dest: str, rel: str) -> str | None:
    cur = dest
    for part in rel.split("/")[:-1]:
        cur = os.path.join(cur, part)
        try:
            if stat.S_ISLNK(os.lstat(cur).st_mode):
                return cur
        except FileNotFoundError:
            return None
    return None


def extract(archive: Path, dest: Path) -> int:
    """Unpack `archive` (plain, gzip, bzip2 or xz) into `dest` (created); returns the member count."""
    try:
        tar = tarfile.open(archive, "r:*")
    except tarfile.ReadError:
        raise TarError(f"cannot read {archive}: not a tar archive (plain, gzip, bzip2 or xz)") from None
    except (OSError, tarfile.TarError) as e:
        raise TarError(f"cannot read {archive}: {getattr(e, 'strerror', None) or e}") from None
    dest.mkdir(parents=True, exist_ok=True)
    count = 0
    with tar:
        try:
            for member in tar:
                rel = _clean(member.name, "member")
                if not rel:
                    continue  # "./" itself: the layer's root keeps the store's mode
                paths = [rel]
                if member.islnk():
                    member.linkname = _clean(member.linkname, f"hard link {rel} ->")
                    paths.append(member.linkname + "/")  # its target's own last part may be a symlink too
                for path in paths:
                    link = _below_symlink(str(dest), path)
                    if link is not None:
                        raise TarError(f"member {member.name!r} lies below the symlink "
                                       f"{os.path.relpath(link, dest)}")
                member.name = rel
                target = dest / rel
                if target.is_symlink() or (target.exists() and not target.is_dir()):
                    target.unlink()  # a later member replaces an earlier one, as tar does
                tar.extract(member, dest, numeric_owner=True, filter="fully_trusted")
                count += 1
        except (OSError, tarfile.TarError) as e:
            raise TarError(f"cannot unpack {archive}: {e}") from None
    return count
