"""Enrichment from a fixture state root (the bundled runtime) and a fixture Docker root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hostwatch.core.containers import ContainerRef, ContainerState, list_containers
from hostwatch.core.events import DOCKER_JSON, JOURNALD, LogEvent
from logshipper.transforms.enrich import Enricher, index

HID = "a1" * 32  # the bundled runtime's container
DID = "d4" * 32  # Docker's


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def write_runtime(state_root: Path, cid: str, name: str, image: str, labels: dict[str, str]) -> None:
    st = ContainerState(id=cid, name=name, image=image, rootfs=None, command=["sh"], hostname="h", labels=labels)
    (state_root / cid).mkdir(parents=True, exist_ok=True)
    (state_root / cid / "config.json").write_text(st.to_json())


def write_docker(docker_root: Path, cid: str, name: str, image: str, labels: dict[str, str]) -> None:
    (docker_root / cid).mkdir(parents=True, exist_ok=True)
    doc = {"ID": cid, "Name": "/" + name, "Config": {"Image": image, "Labels": labels},
           "State": {"Running": True, "Pid": 1}, "HostConfig": {}}
    (docker_root / cid / "config.v2.json").write_text(json.dumps(doc))


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path]:
    state_root, docker_root = tmp_path / "state", tmp_path / "docker"
    write_runtime(state_root, HID, "demo", "busybox", {"app": "demo", "com.example.tier": "web"})
    write_docker(docker_root, DID, "web", "nginx:1.25", {"team": "core"})
    return state_root, docker_root


def ev(cid: str | None, **kw: object) -> LogEvent:
    return LogEvent(time_ns=0, message="m", input_type=DOCKER_JSON, event_id="e", container_id=cid,
                    **kw)  # type: ignore[arg-type]


def test_full_and_short_ids_get_name_image_labels_and_the_full_id(roots: tuple[Path, Path]) -> None:
    e = Enricher(*roots, background=False)
    events = [ev(HID), ev(DID[:12]), ev(None), ev("f" * 64)]
    e.apply(events)
    a, d, none, unknown = events
    assert (a.container_id, a.container_name, a.image, a.labels) == (
        HID, "demo", "busybox", {"app": "demo", "com.example.tier": "web"})
    assert (d.container_id, d.container_name, d.image, d.labels) == (DID, "web", "nginx:1.25", {"team": "core"})
    assert (none.container_name, none.image, none.labels) == (None, None, None)
    assert (unknown.container_id, unknown.container_name, unknown.labels) == ("f" * 64, None, None)


def test_what_the_source_knows_is_kept(roots: tuple[Path, Path]) -> None:
    e = Enricher(*roots, background=False)
    journald = LogEvent(time_ns=0, message="m", input_type=JOURNALD, event_id="e", container_id=DID[:12],
                        container_name="renamed", image="nginx@sha256:abc")
    e.apply([journald])
    assert (journald.container_id, journald.container_name, journald.image, journald.labels) == (
        DID, "renamed", "nginx@sha256:abc", {"team": "core"})


def test_a_new_container_is_found_on_a_miss_and_bogus_ids_are_looked_for_once_per_interval(
        roots: tuple[Path, Path]) -> None:
    state_root, docker_root = roots
    clock = Clock()
    e = Enricher(state_root, docker_root, clock=clock, refresh_interval=3600, miss_refresh_interval=1.0,
                 background=False)
    e.apply([ev(HID)])
    assert e.refreshes == 1
    new = "b2" * 32
    write_runtime(state_root, new, "late", "alpine", {})
    first = ev(new)
    e.apply([first])  # a miss: re-read now
    assert (first.container_name, first.image, first.labels, e.refreshes) == ("late", "alpine", {}, 2)
    for _ in range(100):
        e.apply([ev("0" * 64)])  # nowhere to be found: one scan, then none within the interval
    assert e.refreshes == 3
    second = "c3" * 32
    write_runtime(state_root, second, "later", "alpine", {"a": "b"})
    found = ev(second)
    e.apply([found])  # another new container at the same moment is still found at once
    assert (found.container_name, found.labels, e.refreshes) == ("later", {"a": "b"}, 4)
    clock.now += 1.0
    for _ in range(100):
        e.apply([ev("0" * 64)])  # one scan for the next interval's misses
    assert e.refreshes == 5
    for i in range(100):
        e.apply([ev(f"{i:064x}")])  # a flood of distinct bogus ids: capped scans
    assert e.refreshes <= 5 + 5


def test_hot_path_does_not_scan(roots: tuple[Path, Path]) -> None:
    calls: list[int] = []

    def loader(state_root: Path, docker_root: Path) -> list[ContainerRef]:
        calls.append(1)
        return list_containers(state_root, docker_root)

    clock = Clock()
    e = Enricher(*roots, clock=clock, loader=loader, refresh_interval=30, background=False)
    for _ in range(1000):
        e.apply([ev(HID), ev(DID[:12])])
    assert len(calls) == 1
    clock.now += 30
    e.apply([ev(HID)])
    assert len(calls) == 2


def test_periodic_refresh_in_the_background_picks_up_a_rename(roots: tuple[Path, Path]) -> None:
    state_root, docker_root = roots
    clock = Clock()
    e = Enricher(state_root, docker_root, clock=clock, refresh_interval=10)
    before = ev(HID)
    e.apply([before])  # the first load is synchronous
    write_runtime(state_root, HID, "demo-renamed", "busybox", {})
    clock.now += 10
    e.apply([ev(HID)])  # starts the background refresh; this batch may see either
    e.join(10)
    after = ev(HID)
    e.apply([after])
    assert (before.container_name, after.container_name, after.labels) == ("demo", "demo-renamed", {})


def test_unreadable_metadata_keeps_the_cache(roots: tuple[Path, Path]) -> None:
    clock = Clock()
    fail = [False]

    def loader(state_root: Path, docker_root: Path) -> list[ContainerRef]:
        if fail[0]:
            raise PermissionError(13, "Permission denied")
        return list_containers(state_root, docker_root)

    e = Enricher(*roots, clock=clock, loader=loader, refresh_interval=1, background=False)
    e.apply([ev(HID)])
    fail[0] = True
    clock.now += 5
    x = ev(HID)
    e.apply([x])
    assert x.container_name == "demo"


def test_an_ambiguous_short_id_resolves_to_nothing() -> None:
    def ref(cid: str) -> ContainerRef:
        return ContainerRef(cid, cid[-4:], "img", {}, "/", None, None, True, "docker")

    a, b, c = "abcdefabcdef" + "0" * 52, "abcdefabcdef" + "1" * 52, "123456789012" + "2" * 52
    by_id = index([ref(a), ref(b), ref(c)])
    assert by_id[a].id == a and by_id[b].id == b
    assert "abcdefabcdef" not in by_id
    assert by_id["123456789012"].id == c
