"""The namespace-inode cache the network and namespace collectors share stays as small as the scrape."""

from __future__ import annotations

import pytest

from exporter.collectors import build_collectors
from exporter.collectors.base import Scrape
from exporter.collectors.namespace import NamespaceCache
from exporter.collectors.network import NetworkCollector
from exporter.discovery import Meta, Target
from exporter.families import LabelSet

from exporter_testdata import FIXTURES

CONTAINER_PID = 4242  # tests/fixtures/exporter/proc/4242: a process in its own network namespace


class _OneProcessEach:
    """The one reader call these collectors make: every cgroup holds the container's process."""

    def procs(self, cg: str) -> list[int]:
        return [CONTAINER_PID]


def _scrape(cgroups: list[str]) -> Scrape:
    reader = _OneProcessEach()
    targets = [Target(Meta(cg, LabelSet([("id", cg), ("image", ""), ("name", "")]), "", "", None, None),
                      reader)  # type: ignore[arg-type]
               for cg in cgroups]
    return Scrape(targets, reader)  # type: ignore[arg-type]


@pytest.mark.parametrize("disabled", [frozenset({"namespace"}), frozenset()], ids=["namespace-off", "both-on"])
def test_the_cache_forgets_cgroups_that_are_gone(disabled: frozenset[str]) -> None:
    collectors = build_collectors(disabled, str(FIXTURES / "proc"), str(FIXTURES / "sys"), str(FIXTURES / "etc"),
                                  has_pressure=False, metadata_refresh_seconds=3600.0)
    [network] = [c for c in collectors if isinstance(c, NetworkCollector)]
    users = [c for c in collectors if c.name in ("network", "namespace")]  # the others read cgroup files
    assert len(users) == 2 - len(disabled)
    cache = network.namespaces
    for generation in range(30):  # containers come and go: three live cgroups per scrape
        scrape = _scrape([f"/hostwatch/c{generation}-{i}" for i in range(3)])
        for c in users:
            assert list(c.collect(scrape))
        assert sum(scrape.errors.values()) == 0, scrape.errors
        assert len(cache) == 3, generation
    assert len(cache) == 3


def test_a_cached_entry_is_reused_within_and_across_scrapes() -> None:
    cache = NamespaceCache(str(FIXTURES / "proc"), refresh_seconds=3600.0)
    first = _scrape(["/a", "/b"])
    nss = cache.get(first, first.targets[0])
    assert nss["net"] == 4026532500
    second = _scrape(["/a"])
    assert cache.get(second, second.targets[0]) is nss  # no re-read while the PID is the same
    assert len(cache) == 1  # /b went with the second scrape


def test_without_refresh_nothing_is_kept() -> None:
    cache = NamespaceCache(str(FIXTURES / "proc"), refresh_seconds=0.0)
    scrape = _scrape(["/a"])
    assert cache.get(scrape, scrape.targets[0])["net"] == 4026532500
    assert len(cache) == 0
