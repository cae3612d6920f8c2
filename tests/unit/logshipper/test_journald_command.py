"""The journald source's pure parts: its journalctl command line, checkpoint file and config checks.
Reading a real journal is tests/integration/test_journald_source.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from hostwatch.core.config import ConfigError, from_mapping
from logshipper.config import JournaldConfig, ShipperConfig
from logshipper.sources.journald import CursorFile, JournaldSource, selection_name
from logshipper.telemetry import ShipperMetrics

CURSOR = "s=8b828d325b4949738f89fa74de32df62;i=3;b=82c26996716a408186d9d55fce7c84ff;m=1fdbadf1;t=6618e1cccc9d3;x=cef3"


def source(tmp_path: Path, **kw: object) -> JournaldSource:
    return JournaldSource(JournaldConfig(enabled=True, **kw), ShipperMetrics(),  # type: ignore[arg-type]
                          max_message_bytes=1 << 20, state_dir=tmp_path)


def test_command_selects_the_journal_and_resumes_after_the_cursor(tmp_path: Path) -> None:
    s = source(tmp_path, namespace="ns1", matches=("CONTAINER_NAME=web", "+", "_TRANSPORT=journal"))
    base = ["journalctl", "--output=json", "--all", "--follow", "--no-pager", "--quiet"]
    assert s.command(None) == [*base, "--namespace=ns1", "--no-tail", "CONTAINER_NAME=web", "+", "_TRANSPORT=journal"]
    assert s.command(CURSOR) == [*base, "--namespace=ns1", f"--after-cursor={CURSOR}", "CONTAINER_NAME=web", "+",
                                 "_TRANSPORT=journal"]
    assert source(tmp_path, directory=Path("/j"), since_now=True).command(None)[-2:] == ["--directory=/j", "--lines=0"]
    assert source(tmp_path, file=Path("/j/x.journal")).command(None)[-2:] == ["--file=/j/x.journal", "--no-tail"]
    assert source(tmp_path).command(None)[-1] == "--no-tail"


def test_each_selection_has_its_own_checkpoint() -> None:
    names = {selection_name(JournaldConfig()), selection_name(JournaldConfig(namespace="a")),
             selection_name(JournaldConfig(namespace="b")), selection_name(JournaldConfig(directory=Path("/a"))),
             selection_name(JournaldConfig(file=Path("/a")))}
    assert len(names) == 5 and "system" in names
    assert selection_name(JournaldConfig(namespace="a")) == selection_name(JournaldConfig(namespace="a"))


def test_cursor_file_round_trip_leaves_no_temporary(tmp_path: Path) -> None:
    f = CursorFile(tmp_path / "sub" / "x.cursor")
    assert f.load() is None
    f.save(CURSOR)
    f.save(CURSOR.replace("i=3", "i=4"))
    assert f.load() == CURSOR.replace("i=3", "i=4")
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["x.cursor"]


@pytest.mark.parametrize("content", [b"", b"garbage\n", b"s=1;--follow", b"\xff\xfe", b"s=zz;i=1"])
def test_a_damaged_checkpoint_is_ignored_not_passed_to_journalctl(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "x.cursor"
    path.write_bytes(content)
    assert CursorFile(path).load() is None


@pytest.mark.parametrize(("data", "message"), [
    ({"namespace": "a", "file": "/x"}, "give one of namespace, directory or file"),
    ({"directory": "/d", "file": "/x"}, "give one of namespace, directory or file"),
    ({"matches": ["--since=yesterday"]}, "is not FIELD=VALUE"),
    ({"matches": ["/usr/bin/sshd"]}, "is not FIELD=VALUE"),
    ({"batch_events": 0}, "at least 1"),
])
def test_bad_journald_config_is_a_one_line_error(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_mapping(ShipperConfig, {"journald": data}, "ship.yml")
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(("data", "message"), [
    ({"max_lines": 0}, "at least 1"),
    ({"flush_timeout": "0s"}, "must be positive"),
])
def test_bad_multiline_config_is_a_one_line_error(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_mapping(ShipperConfig, {"multiline": data}, "ship.yml")
    assert message in str(info.value)


def test_journald_and_multiline_config_from_yaml_keys() -> None:
    cfg = from_mapping(ShipperConfig, {"journald": {"enabled": True, "namespace": "web", "partial-timeout": "2s",
                                                    "matches": ["CONTAINER_NAME=a", "CONTAINER_NAME=b"]},
                                       "multiline": {"enabled": True, "flush_timeout": "250ms", "max_lines": 20}})
    assert (cfg.journald.namespace, cfg.journald.partial_timeout, cfg.journald.matches) == (
        "web", 2.0, ("CONTAINER_NAME=a", "CONTAINER_NAME=b"))
    assert (cfg.multiline.flush_timeout, cfg.multiline.max_lines) == (0.25, 20)
