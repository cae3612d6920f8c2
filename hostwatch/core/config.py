"""One configuration mechanism for every component: frozen dataclasses are the schema.

A component's config is a frozen dataclass whose fields are values or nested section dataclasses.
The same schema gives:
- `from_mapping(cls, data, source)`: the YAML form, unknown keys an error naming the file and key;
- `add_flags(parser, cls)` / `apply_flags(config, args)`: a Prometheus-style flag for every key
  (`kafka.brokers` -> `--kafka.brokers`), flags overriding the file.

Field metadata: `help` (the flag's help), `parse` (str -> value, for flags and YAML strings, e.g.
durations and sizes), `repeat` (a tuple flag given several times, like `--docker.logs-glob`).
Every error is a `ConfigError` with one line that names where the bad value came from.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from hostwatch.core.exits import EXIT_USAGE as EXIT_USAGE  # re-exported: commands import it from here

T = TypeVar("T")


class ConfigError(ValueError):
    """A bad config file, key or flag value; the message is one line."""


def option(default: Any, help: str = "", parse: Callable[[str], Any] | None = None,  # noqa: A002
           repeat: bool = False) -> Any:
    """A config field with its flag's help text and optional string parser."""
    meta = {"help": help, "parse": parse, "repeat": repeat}
    if isinstance(default, (list, dict, set)):
        raise TypeError("mutable defaults are not allowed in a frozen config; use a tuple")
    return dataclasses.field(default=default, metadata=meta)


def section(cls: type[T]) -> Any:
    """A nested section field, defaulting to the section's own defaults."""
    return dataclasses.field(default_factory=cls)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _coerce(tp: Any, value: Any, parse: Callable[[str], Any] | None, where: str) -> Any:
    """`value` (from YAML or a flag string) as type `tp`."""
    inner, optional = _unwrap_optional(tp)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where}: a value is required")
    try:
        if parse is not None and isinstance(value, str):
            return parse(value)
        origin = typing.get_origin(inner)
        if origin is typing.Literal:
            choices = typing.get_args(inner)
            if value not in choices:
                raise ValueError(f"must be one of {', '.join(map(str, choices))}")
            return value
        if origin is tuple:
            (item_tp, *_rest) = typing.get_args(inner) or (str,)
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, (list, tuple)):
                raise ValueError("expected a list")
            return tuple(_coerce(item_tp, x.strip() if isinstance(x, str) else x, None, where)
                         for x in items if not (isinstance(x, str) and not x.strip()))
        if origin is dict or inner is dict:
            if not isinstance(value, Mapping):
                raise ValueError("expected a mapping")
            return dict(value)
        if inner is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if inner is int:
            if isinstance(value, bool):
                raise ValueError("expected an integer")
            return int(value)
        if inner is float:
            if isinstance(value, bool):
                raise ValueError("expected a number")
            return float(value)
        if inner is Path:
            return Path(value)
        if inner is str:
            if isinstance(value, (dict, list)):
                raise ValueError("expected a string")
            return str(value)
        return value
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: invalid value {value!r}: {e}") from None


def from_mapping(cls: type[T], data: Mapping[str, Any] | None, source: str = "<config>", prefix: str = "") -> T:
    """Build `cls` from a YAML mapping; keys may be spelled with '-' or '_'."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: {prefix.rstrip('.') or 'the file'} must be a mapping")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in fields:
            raise ConfigError(f"{source}: unknown key {prefix + str(key)!r}")
        tp = hints[name]
        if _is_section(tp):
            kwargs[name] = from_mapping(tp, value, source, f"{prefix}{key}.")
        else:
            kwargs[name] = _coerce(tp, value, fields[name].metadata.get("parse"), f"{source}: {prefix}{key}")
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{source}: {e}") from None


def load_file(cls: type[T], path: str | Path) -> T:
    return from_mapping(cls, read_yaml(path), str(path))


def read_yaml(path: str | Path) -> Any:
    """A YAML file's data; a missing file or bad YAML is one ConfigError line naming the file."""
    import yaml

    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: invalid YAML{where}: {getattr(e, 'problem', None) or e}") from None
    return data


def _leaves(cls: type, prefix: str = "") -> list[tuple[str, Any, dataclasses.Field[Any]]]:
    out: list[tuple[str, Any, dataclasses.Field[Any]]] = []
    hints = _hints(cls)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        tp = hints[f.name]
        key = prefix + f.name.replace("_", "-")
        if _is_section(tp):
            out.extend(_leaves(tp, key + "."))
        else:
            out.append((key, tp, f))
    return out


def _default_text(f: dataclasses.Field[Any]) -> str:
    d = f.default
    if d is dataclasses.MISSING or d is None or d == ():
        return ""
    if isinstance(d, tuple):
        d = ",".join(map(str, d))
    return f" (default {d})"


def add_flags(parser: argparse.ArgumentParser, cls: type, skip: frozenset[str] = frozenset()) -> None:
    """One `--section.key` flag per leaf field; unset flags leave the file's value alone."""
    for key, _tp, f in _leaves(cls):
        if key in skip:
            continue
        help_text = (f.metadata.get("help") or "").replace("%", "%%") + _default_text(f).replace("%", "%%")
        action = "append" if f.metadata.get("repeat") else "store"
        parser.add_argument(f"--{key}", dest=f"cfg:{key}", default=None, action=action, metavar="VALUE",
                            help=help_text)


def apply_flags(config: T, args: argparse.Namespace) -> T:
    """`config` with every flag that was given replacing its key."""
    given = {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg:") and v is not None}
    return with_values(config, given, "flag --")


def with_values(config: T, values: Mapping[str, Any], where: str = "") -> T:
    """`config` with dotted keys replaced ("kafka.brokers": "a:9092,b:9092"), coerced as from YAML."""
    for dotted, value in values.items():
        config = _replace(config, dotted.split("."), value, f"{where}{dotted}")
    return config


def _replace(obj: Any, path: list[str], value: Any, where: str) -> Any:
    name = path[0].replace("-", "_")
    hints = _hints(type(obj))
    if name not in hints:
        raise ConfigError(f"{where}: unknown key")
    if len(path) > 1:
        new = _replace(getattr(obj, name), path[1:], value, where)
    else:
        f = next(f for f in dataclasses.fields(obj) if f.name == name)
        if isinstance(value, list) and typing.get_origin(_unwrap_optional(hints[name])[0]) is tuple:
            value = [x for v in value for x in (v.split(",") if isinstance(v, str) else [v])]
        new = _coerce(hints[name], value, f.metadata.get("parse"), where)
    try:
        return dataclasses.replace(obj, **{name: new})
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from None




def load_config(cls: type[T], args: argparse.Namespace) -> T:
    """The config a command runs with: `--config.file` (if given), then every flag given on top."""
    path = getattr(args, "config_file", None)
    config = load_file(cls, path) if path else cls()
    return apply_flags(config, args)


def add_config_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    parser.add_argument("--config.file", dest="config_file", default=None, metavar="FILE",
                        help="YAML configuration; flags given as well override its keys")
    add_flags(parser, cls)
