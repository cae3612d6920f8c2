import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from hostwatch.core.config import (
    ConfigError,
    add_config_flags,
    from_mapping,
    load_config,
    load_file,
    option,
    section,
    with_values,
)
from hostwatch.core.timefmt import parse_duration
from hostwatch.core.units import parse_size


@dataclass(frozen=True)
class Inner:
    brokers: tuple[str, ...] = option((), "servers")
    mode: Literal["a", "b"] = option("a", "mode")
    wait: float = option(5.0, "seconds", parse=parse_duration)
    size: int = option(1024, "bytes", parse=parse_size)
    globs: tuple[str, ...] = option((), "globs", repeat=True)
    path: Path | None = option(None, "a path")


@dataclass(frozen=True)
class Outer:
    inner: Inner = section(Inner)
    enabled: bool = option(True, "switch")
    name: str = option("x", "name")


def test_yaml_mapping_coerces_and_nests() -> None:
    c = from_mapping(Outer, {"inner": {"brokers": "a:1, b:2", "wait": "1m30s", "size": "2k", "path": "/p"},
                             "enabled": "false"}, "f.yml")
    assert c.inner.brokers == ("a:1", "b:2")
    assert c.inner.wait == 90.0 and c.inner.size == 2048 and c.inner.path == Path("/p")
    assert c.enabled is False and c.name == "x"
    assert from_mapping(Outer, {"inner": {"brokers": ["a:1"]}}).inner.brokers == ("a:1",)


@pytest.mark.parametrize("data, message", [
    ({"innr": {}}, "f.yml: unknown key 'innr'"),
    ({"inner": {"brokerz": 1}}, "f.yml: unknown key 'inner.brokerz'"),
    ({"inner": {"mode": "c"}}, "f.yml: inner.mode: invalid value 'c': must be one of a, b"),
    ({"inner": {"wait": "soon"}}, "f.yml: inner.wait: invalid value 'soon'"),
    ({"enabled": "maybe"}, "f.yml: enabled: invalid value 'maybe': expected true or false"),
    ({"inner": "x"}, "f.yml: inner must be a mapping"),
    ({"name": {"a": 1}}, "f.yml: name: invalid value"),
])
def test_bad_config_is_one_line_naming_file_and_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        from_mapping(Outer, data, "f.yml")
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_flags_override_the_file(tmp_path: Path) -> None:
    f = tmp_path / "c.yml"
    f.write_text("inner:\n  brokers: [a:1]\n  mode: b\nname: fromfile\n")
    p = argparse.ArgumentParser()
    add_config_flags(p, Outer)
    args = p.parse_args(["--config.file", str(f), "--inner.brokers", "z:9", "--inner.globs", "/a/*",
                         "--inner.globs", "/b/*", "--inner.wait", "250ms"])
    c = load_config(Outer, args)
    assert c.inner.brokers == ("z:9",) and c.inner.mode == "b" and c.name == "fromfile"
    assert c.inner.globs == ("/a/*", "/b/*") and c.inner.wait == 0.25
    with pytest.raises(ConfigError, match="flag --inner.size: invalid value"):
        load_config(Outer, p.parse_args(["--inner.size", "12q"]))


def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    f = tmp_path / "bad.yml"
    f.write_text("a: [1,\n")
    with pytest.raises(ConfigError, match=r"bad.yml: invalid YAML at line \d"):
        load_file(Outer, f)
    with pytest.raises(ConfigError, match="cannot read"):
        load_file(Outer, tmp_path / "missing.yml")


def test_with_values_uses_dotted_keys() -> None:
    c = with_values(Outer(), {"inner.brokers": "h:1", "inner.globs": ["x", "y"]})
    assert c.inner.brokers == ("h:1",) and c.inner.globs == ("x", "y")
    with pytest.raises(ConfigError, match="unknown key"):
        with_values(Outer(), {"inner.nope": 1})
