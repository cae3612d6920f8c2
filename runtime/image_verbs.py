"""The image verbs: images, rootfs, import, commit, rmi, and diff (a container against its image)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from hostwatch.core.containers import ContainerState
from hostwatch.core.timefmt import parse_rfc3339
from hostwatch.core.units import human_size
from runtime import layers
from runtime.image_tar import TarError, extract
from runtime.images import Image, ImageError, ImageStore
from runtime.rootfs import RootfsError, build_busybox_rootfs
from runtime.state import StateError, StateStore

BUSYBOX_IMAGE = "busybox"


def _ago(seconds: float) -> str:
    from hostwatch.core.units import human_duration

    return human_duration(seconds)


def _fail(e: Exception) -> int:
    print("Error: " + " ".join(str(e).split()), file=sys.stderr)  # one line, whatever the exception said
    return 1


def in_use(store: StateStore) -> dict[str, str]:
    """Layer directory -> name of a container (any state) whose overlay reads it."""
    return {d: s.name for s in store.list() for d in s.lower_dirs}


def images(img: ImageStore, quiet: bool) -> int:
    try:
        found = img.all()
    except ImageError as e:
        return _fail(e)
    now = time.time()
    if quiet:
        for i in found:
            print(i.id[:12])
        return 0
    table = [("REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE")]
    for i in sorted(found, key=lambda i: i.created, reverse=True):
        created = f"{_ago(now - (parse_rfc3339(i.created) or now))} ago"
        table.append((i.repository, i.tag, i.id[:12], created, human_size(i.size)))
    widths = [max(len(r[c]) for r in table) for c in range(len(table[0]))]
    for r in table:
        print("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


def _import_dir(img: ImageStore, source: str) -> str:
    with img.new_layer() as (layer_id, diff):
        layers.copy_layer(source, str(diff))
    return layer_id


def rootfs(img: ImageStore, dest: str | None, name: str) -> int:
    """Build the busybox rootfs; register it as image `name` unless that exists. Prints the directory
    to use with --rootfs (DEST, or the image's layer when no DEST is given)."""
    try:
        if dest is not None:
            built = build_busybox_rootfs(Path(dest))
            try:
                img.get(name)
            except ImageError:
                img.add(name, [_import_dir(img, str(built))], comment="hostwatch rootfs")
            print(built)
            return 0
        try:
            image = img.get(name)
        except ImageError:
            with img.new_layer() as (layer_id, diff):
                build_busybox_rootfs(diff)
            image = img.add(name, [layer_id], comment="hostwatch rootfs")
        print(img.lower_dirs(image)[0])
        return 0
    except (RootfsError, ImageError, OSError) as e:
        return _fail(e)


def import_(img: ImageStore, archive: str, name: str) -> int:
    try:
        from runtime.images import normalize

        normalize(name)
        with img.new_layer() as (layer_id, diff):
            extract(Path(archive), diff)
        image = img.add(name, [layer_id], comment=f"imported from {Path(archive).name}")
    except (TarError, ImageError, OSError) as e:
        return _fail(e)
    print(f"sha256:{image.id}")
    return 0


def _writable(store: StateStore, ref: str) -> ContainerState:
    s = store.resolve(ref)
    if not s.upper_dir:
        raise ImageError(f"container {s.name} has no writable layer: it runs on the host's filesystem")
    return s


def base_layers(img: ImageStore, s: ContainerState) -> list[str]:
    """The container's lower layers as store layer ids, bottom first; a --rootfs directory is copied
    into the store first, so the new image does not depend on it."""
    out = []
    for d in reversed(s.lower_dirs):
        path = Path(d)
        if path.parent.parent == img.layers_dir and path.name == "diff" and path.is_dir():
            out.append(path.parent.name)
        else:
            out.append(_import_dir(img, d))
    return out


def commit(store: StateStore, img: ImageStore, ref: str, name: str) -> int:
    try:
        from runtime.images import normalize

        normalize(name)
        s = _writable(store, ref)
        base = base_layers(img, s)
        with img.new_layer() as (layer_id, diff):
            layers.copy_layer(s.upper_dir, str(diff))
        image = img.add(name, [*base, layer_id], comment=f"committed from {s.name}", parent=s.image_id)
    except (StateError, ImageError, OSError) as e:
        return _fail(e)
    print(f"sha256:{image.id}")
    return 0


def rmi(store: StateStore, img: ImageStore, refs: list[str], force: bool) -> int:
    code = 0
    for ref in refs:
        try:
            image: Image = img.remove(ref, in_use(store), force)
        except ImageError as e:
            code = _fail(e)
            continue
        print(f"Untagged: {image.name}")
        print(f"Deleted: sha256:{image.id}")
    return code


def diff(store: StateStore, ref: str) -> int:
    try:
        s = _writable(store, ref)
    except (StateError, ImageError) as e:
        return _fail(e)
    for change in layers.changes(s.upper_dir, s.lower_dirs):
        print(change)
    return 0


def sizes(s: ContainerState, img: ImageStore) -> tuple[int, int]:
    """(SizeRw, SizeRootFs): the writable layer, and it plus every layer below."""
    if not s.upper_dir:
        return 0, 0
    rw = layers.size(s.upper_dir)
    below = 0
    for d in s.lower_dirs:
        path = Path(d)
        if path.parent.parent == img.layers_dir:
            below += img.layer_size(path.parent.name)
        else:
            below += layers.size(d)
    return rw, rw + below
