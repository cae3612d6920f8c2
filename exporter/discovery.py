"""Which cgroups to report: every cgroup of the hierarchy (cAdvisor's raw handler, root id="/"),
named from `hostwatch.core.containers.list_containers` (bundled runtime + Docker) and from what
containerd, CRI-O and podman keep on the host (exporter.runtimes), when one matches.

Per scrape only the directory walk runs; names, images, labels and pre-rendered label sets are
cached per cgroup, and the container list is re-read when the state directories change, when a
cgroup named after an unknown container id appears, or every `refresh_seconds`.

Container labels follow cAdvisor's --store_container_labels: every label key of any container in
the scrape becomes `container_label_<sanitized key>` on every series ("" where a container lacks
it), or only the keys of an allowlist. Environment variables never become labels.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from exporter.families import LabelSet, sanitize_label_name
from exporter.readers import CgroupReader
from hostwatch.core.containers import ContainerRef, list_containers

log = logging.getLogger("hostwatch.exporter")

LABEL_PREFIX = "container_label_"
# A cgroup named after a container id that no metadata knows triggers a re-read, at most this often.
UNKNOWN_ID_RELIST_SECONDS = 2.0


@dataclass(slots=True)
class Meta:
    """What rarely changes about a cgroup."""

    cgroup: str
    labels: LabelSet
    name: str
    image: str
    started_at: float | None
    ref: ContainerRef | None
    created_at: float | None = None
    label_values: dict[str, str] = field(default_factory=dict)  # sanitized container_label_* -> value
    # Filled by collectors that need them, once per cgroup: the writable layer (None: none).
    layer: str | None = None
    layer_checked: float = -1e18
    target: Target | None = None  # reused scrape after scrape (scrapes never overlap)


class Target:
    """One cgroup during a scrape; process membership is read at most once per scrape."""

    __slots__ = ("cg", "meta", "_reader", "_procs", "labels")

    def __init__(self, meta: Meta, reader: CgroupReader) -> None:
        self.cg = meta.cgroup
        self.meta = meta
        self.labels = meta.labels
        self._reader = reader
        self._procs: list[int] | None = None

    def reset(self) -> None:
        """For the next scrape: membership is read afresh."""
        self._procs = None

    def procs(self) -> list[int]:
        """PIDs in this cgroup (raises OSError when it vanished)."""
        if self._procs is None:
            self._procs = self._reader.procs(self.cg)
        return self._procs

    def first_pid(self) -> int | None:
        procs = self.procs()
        return procs[0] if procs else None


# The id in a container cgroup's last path element, whichever manager named it: "/docker/<id>",
# systemd's "docker-<id>.scope", containerd's "cri-containerd-<id>.scope", podman's "libpod-<id>.scope",
# CRI-O's "crio-<id>.scope" (not its "crio-conmon-<id>.scope", the monitor beside the container).
_CONTAINER_ID_RE = re.compile(r"(?:^|[-_:])([0-9a-f]{64})(?:\.scope)?$")


def container_id_of(cgroup: str) -> str | None:
    last = cgroup.rsplit("/", 1)[-1]
    if "conmon" in last:
        return None
    m = _CONTAINER_ID_RE.search(last)
    return m.group(1) if m else None


def label_values(labels: dict[str, str]) -> dict[str, str]:
    """container_label_<sanitized key> -> value; of two keys that sanitize alike, the first in sort
    order wins (cAdvisor keeps whichever its map iteration met first)."""
    out: dict[str, str] = {}
    for key in sorted(labels):
        out.setdefault(LABEL_PREFIX + sanitize_label_name(key), labels[key])
    return out


class Discovery:
    def __init__(
        self,
        reader: CgroupReader,
        state_root: Path,
        docker_root: Path,
        label_allowlist: Sequence[str] = (),
        raw_cgroups: bool = True,
        refresh_seconds: float = 10.0,
        store_labels: bool = False,
        foreign: Callable[[], list[ContainerRef]] | None = None,
        boot_time: float | None = None,
    ) -> None:
        """`store_labels`: every container label (cAdvisor's default); else only `label_allowlist`.
        `foreign`: lists other runtimes' containers; `boot_time` is the earliest a cgroup can date from."""
        self.reader = reader
        self.state_root = state_root
        self.docker_root = docker_root
        self.allowlist = tuple(label_allowlist)
        self.store_labels = store_labels
        self._allow_names = tuple(sorted({LABEL_PREFIX + sanitize_label_name(k) for k in self.allowlist}))
        self.raw_cgroups = raw_cgroups
        self.refresh_seconds = refresh_seconds
        self.foreign = foreign
        self.boot_time = boot_time
        self.errors = 0
        self._named: dict[str, ContainerRef] = {}
        self._by_id: dict[str, ContainerRef] = {}
        self._listing: tuple[list[str], list[str]] | None = None
        self._loaded_at = -1e18
        self._unknown_seen = False
        self._meta: dict[str, Meta] = {}
        self._label_names: tuple[str, ...] = self._allow_names

    @property
    def label_names(self) -> tuple[str, ...]:
        """The container_label_* names every series of the last scrape carried."""
        return self._label_names

    def _listings(self) -> tuple[list[str], list[str]]:
        out = []
        for root in (self.state_root, self.docker_root):
            try:
                out.append(sorted(os.listdir(root)))
            except OSError:
                out.append([])
        return out[0], out[1]

    def named(self) -> dict[str, ContainerRef]:
        """cgroup path -> container, refreshed when the state directories change, when a cgroup of
        an unknown container appeared, or on a timer."""
        listing = self._listings()
        now = time.monotonic()
        stale = now - self._loaded_at > self.refresh_seconds
        unknown = self._unknown_seen and now - self._loaded_at > UNKNOWN_ID_RELIST_SECONDS
        if listing != self._listing or stale or unknown:
            try:
                refs = list_containers(self.state_root, self.docker_root)
                if self.foreign is not None:
                    refs += self.foreign()
            except Exception:  # a foreign writer's junk must not take every container's name away
                log.exception("reading container metadata failed")
                self.errors += 1
                self._loaded_at = now
                return self._named
            named: dict[str, ContainerRef] = {}
            for ref in refs:
                if not ref.cgroup:
                    continue  # known by id only (other runtimes): matched by the cgroup's name
                cg = "/" + ref.cgroup.strip("/")
                if cg not in named or ref.running:
                    named[cg] = ref
            by_id = {ref.id: ref for ref in sorted(refs, key=lambda r: r.running)}
            if named != self._named or by_id != self._by_id:
                self._meta.clear()
            self._named, self._by_id, self._listing, self._loaded_at = named, by_id, listing, now
            self._unknown_seen = False
        return self._named

    def _ref_for(self, cg: str, named: dict[str, ContainerRef]) -> ContainerRef | None:
        """The container at its recorded cgroup, else by the id in the cgroup's name (a Docker
        daemon with the systemd cgroup driver puts <id> at /system.slice/docker-<id>.scope)."""
        ref = named.get(cg)
        if ref is None:
            cid = container_id_of(cg)
            ref = self._by_id.get(cid) if cid else None
            if cid and ref is None:
                self._unknown_seen = True
        return ref

    def _make_meta(self, cg: str, ref: ContainerRef | None) -> Meta:
        name = ref.name if ref is not None else ""
        image = ref.image if ref is not None else ""
        values = label_values(ref.labels) if ref is not None else {}
        created = ref.created_at if ref is not None else None
        if created is None:
            created = self.reader.created(cg)  # as cAdvisor dates a raw cgroup
            if created is not None and self.boot_time is not None:
                created = max(created, self.boot_time)
        started = ref.started_at if ref is not None else None
        if started is None:
            started = created  # cAdvisor: a container that has no start time started when created
        meta = Meta(cg, LabelSet([("id", cg), ("image", image), ("name", name)]), name, image, started, ref,
                    created, values)
        self._relabel(meta, self._label_names)
        return meta

    def _relabel(self, meta: Meta, names: tuple[str, ...]) -> None:
        values = meta.label_values
        items = [(n, values.get(n, "")) for n in names]
        items += [("id", meta.cgroup), ("image", meta.image), ("name", meta.name)]
        meta.labels = LabelSet(items)

    def targets(self) -> list[Target]:
        named = self.named()
        reader = self.reader
        metas = self._meta
        paths = list(reader.walk())
        picked: list[Meta] = []
        for cg in paths:
            meta = metas.get(cg)
            if meta is None:
                meta = metas[cg] = self._make_meta(cg, self._ref_for(cg, named))
            if self.raw_cgroups or meta.ref is not None or cg == "/":
                picked.append(meta)
        if len(metas) > len(paths):  # forget removed cgroups
            seen = set(paths)
            for cg in [c for c in metas if c not in seen]:
                del metas[cg]
        if self.store_labels:
            keys: set[str] = set()
            for meta in picked:
                if meta.label_values:
                    keys.update(meta.label_values)
            names = tuple(sorted(keys))
        else:
            names = self._allow_names
        if names != self._label_names:
            self._label_names = names
            for meta in metas.values():
                self._relabel(meta, names)
        out = []
        for meta in picked:
            t = meta.target
            if t is None or t.labels is not meta.labels:
                t = meta.target = Target(meta, reader)
            else:
                t.reset()
            out.append(t)
        return out
