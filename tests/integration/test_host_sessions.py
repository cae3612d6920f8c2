"""Concurrent test sessions share the runtime's host-wide resources: only the last one out removes them."""

from __future__ import annotations

from pathlib import Path

from host_sessions import HostSessions


def _sessions(tmp_path: Path, removed: list[Path]) -> tuple[Path, Path, HostSessions, HostSessions]:
    before, bridge = tmp_path / "before", tmp_path / "bridge"
    before.mkdir()

    def remove(p: Path) -> None:
        removed.append(p)
        p.rmdir()

    lock = tmp_path / "sessions.lock"  # separate open()s: separate flock holders, as two processes are
    return before, bridge, HostSessions([before, bridge], remove, lock), HostSessions([before, bridge], remove, lock)


def test_the_first_session_out_leaves_the_bridge_to_the_one_still_running(tmp_path: Path) -> None:
    removed: list[Path] = []
    before, bridge, a, b = _sessions(tmp_path, removed)
    a.join()
    bridge.mkdir()  # a's first bridge container brings it into being
    b.join()  # b starts meanwhile, and sees it there
    assert a.leave() is False
    assert bridge.is_dir() and removed == []  # b's containers still use it
    assert b.leave() is True
    assert removed == [bridge] and before.is_dir()  # what existed before any session stays


def test_a_session_alone_removes_what_it_made(tmp_path: Path) -> None:
    removed: list[Path] = []
    before, bridge, a, _ = _sessions(tmp_path, removed)
    a.join()
    bridge.mkdir()
    assert a.leave() is True
    assert removed == [bridge] and before.is_dir()


def test_a_new_generation_records_afresh(tmp_path: Path) -> None:
    removed: list[Path] = []
    _, bridge, a, b = _sessions(tmp_path, removed)
    a.join()
    bridge.mkdir()
    assert a.leave() is True and removed == [bridge]
    bridge.mkdir()  # someone else's, made between the generations
    b.join()
    assert b.leave() is True and removed == [bridge] and bridge.is_dir()
