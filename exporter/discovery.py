"""Which cgroups to report: every cgroup of the hierarchy (cAdvisor's raw handler, root id="/"),
named from `hostwatch.containers.list_containers` (bundled runtime + Docker) when one matches.

Per scrape only the directory walk runs; names, images, labels and pre-rendered label sets are
cached per cgroup, and the container list is re-read when the state directories change or every
`refresh_seconds`.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from exporter.families import LabelSet, sanitize_label_name
from exporter.readers import CgroupReader
from hostwatch.core.containers import ContainerRef, list_containers


@dataclass(slots=True)
class Meta:
    """What rarely changes about a cgroup."""

    cgroup: str
    labels: LabelSet
    name: str
    image: str
    started_at: float | None
    ref: ContainerRef | None


class Target:
    """One cgroup during one scrape; process membership is read at most once per scrape."""

    __slots__ = ("cg", "meta", "_reader", "_procs", "labels")

    def __init__(self, meta: Meta, reader: CgroupReader) -> None:
        self.cg = meta.cgroup
        self.meta = meta
        self.labels = meta.labels
        self._reader = reader
        self._procs: list[int] | None = None

    def procs(self) -> list[int]:
        """PIDs in this cgroup (raises OSError when it vanished)."""
        if self._procs is None:
            self._procs = self._reader.procs(self.cg)
        return self._procs

    def first_pid(self) -> int | None:
        procs = self.procs()
        return procs[0] if procs else None


# The id in a container cgroup's last path element, whichever manager named it: "/docker/<id>",
# systemd's "docker-<id>.scope", containerd's "cri-containerd-<id>.scope", podman's "libpod-<id>.scope".
_CONTAINER_ID_RE = re.compile(r"(?:^|[-_:])([0-9a-f]{64})(?:\.scope)?$")


def container_id_of(cgroup: str) -> str | None:
    m = _CONTAINER_ID_RE.search(cgroup.rsplit("/", 1)[-1])
    return m.group(1) if m else None


class Discovery:
    def __init__(
        self,
        reader: CgroupReader,
        state_root: Path,
        docker_root: Path,
        label_allowlist: Sequence[str] = (),
        raw_cgroups: bool = True,
        refresh_seconds: float = 10.0,
    ) -> None:
        self.reader = reader
        self.state_root = state_root
        self.docker_root = docker_root
        self.allowlist = tuple(label_allowlist)
        self.label_names = tuple(f"container_label_{sanitize_label_name(k)}" for k in self.allowlist)
        self.raw_cgroups = raw_cgroups
        self.refresh_seconds = refresh_seconds
        self._named: dict[str, ContainerRef] = {}
        self._by_id: dict[str, ContainerRef] = {}
        self._listing: tuple[list[str], list[str]] | None = None
        self._loaded_at = -1e18
        self._meta: dict[str, Meta] = {}

    def _listings(self) -> tuple[list[str], list[str]]:
        out = []
        for root in (self.state_root, self.docker_root):
            try:
                out.append(sorted(os.listdir(root)))
            except OSError:
                out.append([])
        return out[0], out[1]

    def named(self) -> dict[str, ContainerRef]:
        """cgroup path -> container, refreshed when the state directories change or on a timer."""
        listing = self._listings()
        now = time.monotonic()
        if listing != self._listing or now - self._loaded_at > self.refresh_seconds:
            refs = list_containers(self.state_root, self.docker_root)
            named: dict[str, ContainerRef] = {}
            for ref in refs:
                cg = "/" + ref.cgroup.strip("/")
                if cg not in named or ref.running:
                    named[cg] = ref
            if named != self._named:
                self._meta.clear()
            self._named, self._listing, self._loaded_at = named, listing, now
            self._by_id = {ref.id: ref for ref in sorted(refs, key=lambda r: r.running)}
        return self._named

    def _ref_for(self, cg: str, named: dict[str, ContainerRef]) -> ContainerRef | None:
        """The container at its recorded cgroup, else by the id in the cgroup's name (a Docker
        daemon with the systemd cgroup driver puts <id> at /system.slice/docker-<id>.scope)."""
        ref = named.get(cg)
        if ref is None:
            cid = container_id_of(cg)
            ref = self._by_id.get(cid) if cid else None
        return ref

    def _make_meta(self, cg: str, ref: ContainerRef | None) -> Meta:
        labels = ref.labels if ref is not None else {}
        items = [(ln, labels.get(k, "")) for ln, k in zip(self.label_names, self.allowlist, strict=True)]
        name = ref.name if ref is not None else ""
        image = ref.image if ref is not None else ""
        items += [("id", cg), ("image", image), ("name", name)]
        started = ref.started_at if ref is not None else None
        if started is None:
            started = self.reader.created(cg)  # raw cgroups: when the directory appeared
        return Meta(cg, LabelSet(items), name, image, started, ref)

    def targets(self) -> list[Target]:
        named = self.named()
        reader = self.reader
        metas = self._meta
        paths = list(reader.walk())
        out = []
        for cg in paths:
            meta = metas.get(cg)
            if meta is None:
                meta = metas[cg] = self._make_meta(cg, self._ref_for(cg, named))
            if self.raw_cgroups or meta.ref is not None or cg == "/":
                out.append(Target(meta, reader))
        if len(metas) > len(paths):  # forget removed cgroups
            seen = set(paths)
            for cg in [c for c in metas if c not in seen]:
                del metas[cg]
        return out
