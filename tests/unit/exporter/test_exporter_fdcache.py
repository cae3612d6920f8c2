"""Kept file descriptors: opened once and pread on every read, reopened when stale, closed when their
cgroup is gone, a plain read once the cache is full, and RLIMIT_NOFILE raised as needed."""

from __future__ import annotations

import errno
import os
import resource
from pathlib import Path

import pytest

from exporter.readers import fdcache
from exporter.readers.fdcache import FdCache, raise_nofile


class Opens:
    """Counts os.open calls made by the fd cache."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = os.open

        def counting(path: str, flags: int, *args: int) -> int:
            self.count += 1
            return real(path, flags, *args)

        monkeypatch.setattr(fdcache.os, "open", counting)


def test_a_file_is_opened_once_and_read_again_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "memory.usage_in_bytes"
    f.write_text("100\n")
    opens = Opens(monkeypatch)
    cache = FdCache(limit=10)
    assert cache.read("/cg", str(f)) == b"100\n"
    f.write_text("2000\n")  # the same inode, new content, as the kernel regenerates it on every read
    assert cache.read("/cg", str(f)) == b"2000\n"
    assert opens.count == 1 and cache.open_count == 1


def test_a_stale_descriptor_is_reopened_or_reported_gone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "memory.stat"
    f.write_text("a 1\n")
    cache = FdCache(limit=10)
    cache.read("/cg", str(f))
    real_pread = os.pread
    calls = {"n": 0}

    def removed_once(fd: int, n: int, off: int) -> bytes:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError(errno.ENODEV, "No such device")  # what a kept cgroup file answers after rmdir
        return real_pread(fd, n, off)

    monkeypatch.setattr(fdcache.os, "pread", removed_once)
    f.unlink()
    f.write_text("a 2\n")  # recreated under the same name
    assert cache.read("/cg", str(f)) == b"a 2\n"
    calls["n"] = 0
    f.unlink()
    with pytest.raises(FileNotFoundError):
        cache.read("/cg", str(f))  # gone for good: the error a plain read gives
    assert cache.open_count == 0


def test_sweep_closes_the_files_of_vanished_owners(tmp_path: Path) -> None:
    cache = FdCache(limit=10)
    for owner in ("/a", "/b"):
        for name in ("x", "y"):
            p = tmp_path / f"{owner[1:]}-{name}"
            p.write_text("1\n")
            cache.read(owner, str(p))
    assert cache.open_count == 4 and cache.owners() == 2
    cache.sweep({"/a"})
    assert cache.open_count == 2 and cache.owners() == 1 and cache.count("/a") == 2
    cache.forget("/a", keep={str(tmp_path / "a-x")})
    assert cache.open_count == 1
    cache.close()
    assert cache.open_count == 0


def test_a_full_cache_reads_the_plain_way(tmp_path: Path) -> None:
    cache = FdCache(limit=1)
    paths = []
    for i in range(3):
        p = tmp_path / f"f{i}"
        p.write_text(f"{i}\n")
        paths.append(str(p))
    assert [cache.read("/cg", p) for p in paths] == [b"0\n", b"1\n", b"2\n"]
    assert cache.open_count == 1


def test_a_missing_optional_file_is_not_looked_for_on_every_read(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    opens = Opens(monkeypatch)
    cache = FdCache(limit=10, missing_ttl=3600)
    path = str(tmp_path / "memory.peak")  # a kernel before 5.19
    assert cache.read_optional("/cg", path) is None
    assert cache.read_optional("/cg", path) is None
    assert opens.count == 1
    expired = FdCache(limit=10, missing_ttl=0.0)
    assert expired.read_optional("/cg", path) is None
    (tmp_path / "memory.peak").write_text("5\n")
    assert expired.read_optional("/cg", path) == b"5\n"


def test_a_file_longer_than_one_read(tmp_path: Path) -> None:
    big = tmp_path / "cgroup.procs"
    big.write_text("".join(f"{i}\n" for i in range(40000)))  # a busy root cgroup
    cache = FdCache(limit=10)
    for _ in range(2):
        assert cache.read("/", str(big)) == big.read_bytes()


def test_rlimit_nofile_is_raised_as_needed() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        got = raise_nofile(soft + 100)
        assert got >= min(soft + 100, hard) and resource.getrlimit(resource.RLIMIT_NOFILE)[0] == got
        assert raise_nofile(1) == got  # never lowered
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


def test_running_out_of_descriptors_keeps_reads_working(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = os.open
    kept = {"n": 0}

    def scarce(path: str, flags: int, *args: int) -> int:
        if kept["n"] >= 2:  # the process has no descriptor left for another kept file
            kept["n"] = 1  # (the cache closes one of its own, which the plain read then uses)
            raise OSError(errno.EMFILE, "Too many open files")
        kept["n"] += 1
        return real(path, flags, *args)

    paths = []
    for i in range(4):
        p = tmp_path / f"f{i}"
        p.write_text(f"{i}\n")
        paths.append(str(p))
    cache = FdCache(limit=100)
    monkeypatch.setattr(fdcache.os, "open", scarce)
    assert [cache.read("/cg", p) for p in paths[:2]] == [b"0\n", b"1\n"]
    monkeypatch.setattr(fdcache.os, "open", real)
    assert cache.read("/cg", paths[2]) == b"2\n"  # EMFILE on keeping it: read the plain way
    monkeypatch.setattr(fdcache.os, "open", scarce)
    kept["n"] = 2
    assert cache.read("/cg", paths[3]) == b"3\n"
    assert cache.open_count <= 2 and cache.limit == cache.open_count


def test_the_exporter_keeps_files_of_live_cgroups_only(tmp_path: Path) -> None:
    """Scrape after scrape the same descriptors serve; a cgroup's go with the cgroup."""
    import shutil

    from exporter.scrape import Exporter

    from exporter_testdata import FIXTURES, HW2_ID, NOW, fixture_config

    tree = tmp_path / "v2"
    shutil.copytree(FIXTURES / "v2", tree, symlinks=True)
    exp = Exporter(fixture_config("v2", cgroup_root=str(tree)))
    first = exp.render()
    files = exp.reader.files  # type: ignore[attr-defined]
    kept = files.open_count
    assert kept > 20 and files.count(f"/hostwatch/{HW2_ID}") >= 8
    exp.collect(now=NOW)
    assert files.open_count == kept  # nothing reopened
    shutil.rmtree(tree / "hostwatch" / HW2_ID)
    exp.collect(now=NOW)
    assert files.count(f"/hostwatch/{HW2_ID}") == 0 and files.open_count < kept
    assert b"hostwatch_exporter_open_files" in first
    exp.close()
    assert files.open_count == 0
