"""The local image store: images as ordered lists of read-only layers (overlay2's "diff" dirs).

<root>/layers/<id>/diff      a layer's files (whiteouts and opaque markers included)
<root>/layers/<id>/size      its size in bytes (Docker's directory.Size), written once
<root>/repositories.json     {"name:tag": {"id", "layers": [bottom .. top], "created", "size"}}

A layer is built in <root>/tmp and renamed into place when complete, and the index is replaced
atomically under a lock, so a crash leaves an orphaned temp directory, never a half layer.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hostwatch.core.timefmt import rfc3339_nano
from runtime import layers

INDEX = "repositories.json"
DEFAULT_TAG = "latest"
_NAME_RE = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*(?::[\w][\w.-]{0,127})?$")


class ImageError(Exception):
    """An image operation failed; the message is one line."""


def normalize(name: str) -> str:
    """"busybox" -> "busybox:latest"; refuses what Docker's reference grammar refuses."""
    if not _NAME_RE.match(name or ""):
        raise ImageError(f"invalid reference format: {name!r} (lowercase [a-z0-9._-/], optional :TAG)")
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last else f"{name}:{DEFAULT_TAG}"


@dataclass
class Image:
    name: str
    id: str
    layers: list[str]  # layer ids, bottom first
    created: str
    size: int = 0
    comment: str = ""
    parent: str = ""  # the image id this one was committed on
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def repository(self) -> str:
        return self.name.rsplit(":", 1)[0]

    @property
    def tag(self) -> str:
        return self.name.rsplit(":", 1)[1]


class ImageStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.layers_dir = self.root / "layers"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            with open(self.root / INDEX) as f:
                data = json.load(f)
        except FileNotFoundError:
            return {}
        except ValueError as e:
            raise ImageError(f"{self.root / INDEX} is corrupt: {e}") from None
        return data if isinstance(data, dict) else {}

    def _write(self, data: dict[str, dict[str, Any]]) -> None:
        path = self.root / INDEX
        tmp = path.with_name(f".{INDEX}.{os.getpid()}.tmp")
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def all(self) -> list[Image]:
        return [self._image(name, rec) for name, rec in sorted(self._read().items())]

    @staticmethod
    def _image(name: str, rec: dict[str, Any]) -> Image:
        known = {"id", "layers", "created", "size", "comment", "parent"}
        return Image(name=name, extra={k: v for k, v in rec.items() if k not in known},
                     **{k: v for k, v in rec.items() if k in known})

    def get(self, ref: str) -> Image:
        """By name (tag defaults to latest), full id, or unique id prefix (12+ hex digits)."""
        data = self._read()
        try:
            name = normalize(ref)
        except ImageError:
            name = ""
        if name in data:
            return self._image(name, data[name])
        ids = {rec["id"]: n for n, rec in data.items()}
        hits = [n for i, n in ids.items() if len(ref) >= 4 and i.startswith(ref.removeprefix("sha256:"))]
        if len(hits) == 1:
            return self._image(hits[0], data[hits[0]])
        raise ImageError(f"No such image: {ref}")

    def layer_dir(self, layer_id: str) -> Path:
        return self.layers_dir / layer_id / "diff"

    def lower_dirs(self, image: Image) -> list[str]:
        """overlayfs lowerdir order: the top layer first."""
        return [str(self.layer_dir(lid)) for lid in reversed(image.layers)]

    def layer_size(self, layer_id: str) -> int:
        try:
            return int((self.layers_dir / layer_id / "size").read_text())
        except (OSError, ValueError):
            return layers.size(self.layer_dir(layer_id))

    @contextlib.contextmanager
    def new_layer(self) -> Iterator[tuple[str, Path]]:
        """Yield (layer id, directory to fill; it does not exist yet); the layer is kept only when
        the block ends without an exception."""
        tmp_root = self.root / "tmp"
        tmp_root.mkdir(parents=True, exist_ok=True)
        layer_id = os.urandom(32).hex()
        work = tmp_root / layer_id
        work.mkdir()
        try:
            yield layer_id, work / "diff"
            (work / "size").write_text(str(layers.size(work / "diff")))
            self.layers_dir.mkdir(parents=True, exist_ok=True)
            os.replace(work, self.layers_dir / layer_id)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise

    def add(self, name: str, layer_ids: list[str], comment: str = "", parent: str = "") -> Image:
        name = normalize(name)
        import hashlib  # only to commit: ~2.5 ms of every `run` otherwise

        digest = hashlib.sha256(json.dumps([name, layer_ids, rfc3339_nano()]).encode()).hexdigest()
        image = Image(name=name, id=digest, layers=list(layer_ids), created=rfc3339_nano(),
                      size=sum(self.layer_size(lid) for lid in layer_ids), comment=comment, parent=parent)
        with self.lock():
            data = self._read()
            data[name] = {"id": image.id, "layers": image.layers, "created": image.created, "size": image.size,
                          "comment": image.comment, "parent": image.parent}
            self._write(data)
        return image  # layers a replaced name leaves unreferenced go at the next `rmi`

    def remove(self, ref: str, in_use: dict[str, str], force: bool = False) -> Image:
        """Untag `ref`; its layers go unless another image or a container (`in_use`: layer dir ->
        container name) still needs them. A container's image is refused without `force`."""
        image = self.get(ref)
        users = sorted({c for d, c in in_use.items() if d in self.lower_dirs(image)})
        if users and not force:
            raise ImageError(f'conflict: unable to remove repository reference "{image.name}" (must force) - '
                             f"container {users[0]} is using its referenced image {image.id[:12]}")
        with self.lock():
            data = self._read()
            data.pop(image.name, None)
            self._write(data)
        self.collect_garbage(set(in_use))
        return image

    def collect_garbage(self, keep_dirs: set[str]) -> None:
        with self.lock():
            wanted = {lid for rec in self._read().values() for lid in rec.get("layers", [])}
            try:
                present = os.listdir(self.layers_dir)
            except FileNotFoundError:
                return
            for lid in present:
                if lid not in wanted and str(self.layer_dir(lid)) not in keep_dirs:
                    shutil.rmtree(self.layers_dir / lid, ignore_errors=True)
