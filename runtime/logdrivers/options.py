"""Option parsing shared by the drivers, with Docker's (Go's) value syntax.

Every parser raises ``ValueError`` with a one-line reason naming the option. Sizes follow
docker/go-units (``FromHumanSize`` is decimal, ``RAMInBytes`` binary), durations Go's
``time.ParseDuration``, booleans ``strconv.ParseBool``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .base import DAEMON_NAME, LogInfo

# Options every driver but "none" accepts (Docker: the logger factory and Info.ExtraAttributes).
COMMON_KEYS = frozenset({"tag", "labels", "labels-regex", "env", "env-regex", "mode", "max-buffer-size"})

MODE_BLOCKING = "blocking"
MODE_NON_BLOCKING = "non-blocking"
DEFAULT_MAX_BUFFER_SIZE = 1_000_000  # moby defaultRingMaxSize ("1MB")
DEFAULT_TAG_TEMPLATE = "{{.ID}}"

_SIZE_RE = re.compile(r"^(\d+(?:\.\d*)?|\.\d+) ?(?:([kmgtp])(?:b|ib)?|b)?$", re.IGNORECASE)
_DURATION_PART_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_INT_RE = re.compile(r"^[+-]?\d+$")
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def parse_size(key: str, value: str, binary: bool = False) -> int:
    """go-units size: "10m", "1.5k", "20MB", "1KiB", "512"; decimal unless ``binary``."""
    m = _SIZE_RE.match(value)
    if not m:
        raise ValueError(f"invalid size {value!r} for log opt {key!r} (expected e.g. 10m, 512k, 1g or bytes)")
    number, unit = float(m.group(1)), (m.group(2) or "").lower()
    base = 1024 if binary else 1000
    power = " kmgtp".index(unit) if unit else 0
    return int(number * base**power)


def parse_duration(key: str, value: str) -> float:
    """Go time.ParseDuration, in seconds: "1s", "500ms", "1m30s"."""
    text = value
    sign = 1.0
    if text[:1] in "+-":
        sign = -1.0 if text[0] == "-" else 1.0
        text = text[1:]
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(text):
        m = _DURATION_PART_RE.match(text, pos)
        if not m:
            raise ValueError(f"invalid duration {value!r} for log opt {key!r} (expected e.g. 1s, 500ms, 1m30s)")
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    if not text:
        raise ValueError(f"invalid duration {value!r} for log opt {key!r} (expected e.g. 1s, 500ms, 1m30s)")
    return sign * total


def parse_int(key: str, value: str) -> int:
    if not _INT_RE.match(value):
        raise ValueError(f"invalid integer {value!r} for log opt {key!r}")
    return int(value)


def parse_bool(key: str, value: str) -> bool:
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"invalid boolean {value!r} for log opt {key!r} (expected true or false)")


def parse_port(key: str, address: str, port: str) -> int:
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"invalid port {port!r} in log opt {key}={address!r}")
    return int(port)


def split_host_port(key: str, address: str) -> tuple[str, str]:
    """Go net.SplitHostPort: "host:port" or "[v6]:port"; raises when the port is missing."""
    if address.startswith("["):
        end = address.find("]")
        if end < 0 or address[end + 1 : end + 2] != ":":
            raise ValueError(f"invalid address in log opt {key}={address!r} (expected [host]:port)")
        return address[1:end], address[end + 2 :]
    host, sep, port = address.rpartition(":")
    if not sep or ":" in host:
        raise ValueError(f"missing port in log opt {key}={address!r} (expected host:port)")
    return host, port


def check_keys(driver: str, opts: dict[str, str], allowed: frozenset[str]) -> None:
    for key in sorted(opts):
        if key not in allowed:
            raise ValueError(f"unknown log opt {key!r} for {driver} log driver")


@dataclass(frozen=True)
class BufferConfig:
    """Docker's "mode" and "max-buffer-size" (the ring buffer in front of a driver)."""

    non_blocking: bool
    max_buffer_size: int = DEFAULT_MAX_BUFFER_SIZE


def parse_buffer(opts: dict[str, str], default_mode: str) -> BufferConfig:
    mode = opts.get("mode", "") or default_mode
    if mode not in (MODE_BLOCKING, MODE_NON_BLOCKING):
        raise ValueError(f"logging mode not supported: {mode!r} (expected blocking or non-blocking)")
    size = DEFAULT_MAX_BUFFER_SIZE
    if "max-buffer-size" in opts:
        if mode != MODE_NON_BLOCKING:
            raise ValueError("log opt 'max-buffer-size' is only supported with mode=non-blocking")
        size = parse_size("max-buffer-size", opts["max-buffer-size"], binary=True)
        if size <= 0:
            raise ValueError("log opt 'max-buffer-size' must be positive")
    return BufferConfig(non_blocking=mode == MODE_NON_BLOCKING, max_buffer_size=size)


# --- tag templates -------------------------------------------------------------------------------


def _truncate_id(value: str) -> str:
    """moby stringid.TruncateID: drop an "algo:" prefix, keep 12 characters."""
    if ":" in value:
        value = value.split(":", 1)[1]
    return value[:12]


TAG_FIELDS: dict[str, Callable[[LogInfo], str]] = {
    "ID": lambda i: _truncate_id(i.container_id),
    "FullID": lambda i: i.container_id,
    "Name": lambda i: i.container_name.lstrip("/"),
    "ImageName": lambda i: i.image_name,
    "ImageID": lambda i: _truncate_id(i.image_id),
    "ImageFullID": lambda i: i.image_id,
    "DaemonName": lambda i: DAEMON_NAME,
    "Command": lambda i: " ".join(i.command),
    # logger.Info struct fields, reachable from Docker's templates too
    "ContainerID": lambda i: i.container_id,
    "ContainerName": lambda i: "/" + i.container_name.lstrip("/"),
    "ContainerImageID": lambda i: i.image_id,
    "ContainerImageName": lambda i: i.image_name,
    "LogPath": lambda i: i.log_path,
}
_ACTION_RE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_FIELD_RE = re.compile(r"\.([A-Za-z]+)")


def compile_tag(template: str) -> list[str | Callable[[LogInfo], str]]:
    """Parse a Docker tag template (field references only, e.g. "{{.Name}}/{{.ID}}")."""
    parts: list[str | Callable[[LogInfo], str]] = []
    pos = 0
    for m in _ACTION_RE.finditer(template):
        parts.append(template[pos : m.start()])
        action = m.group(1).strip()
        fm = _FIELD_RE.fullmatch(action)
        if not fm or fm.group(1) not in TAG_FIELDS:
            supported = ", ".join("{{." + name + "}}" for name in TAG_FIELDS)
            raise ValueError(f"unsupported action {{{{{action}}}}} in log opt tag={template!r}; supported: {supported}")
        parts.append(TAG_FIELDS[fm.group(1)])
        pos = m.end()
    rest = template[pos:]
    if "{{" in rest:
        raise ValueError(f"unclosed action in log opt tag={template!r}")
    parts.append(rest)
    return [p for p in parts if p != ""]


def render_tag(info: LogInfo, default: str = DEFAULT_TAG_TEMPLATE) -> str:
    """Docker's loggerutils.ParseLogTag: opt "tag", or ``default`` when unset or empty."""
    template = info.opts.get("tag", "") or default
    return "".join(p if isinstance(p, str) else p(info) for p in compile_tag(template))


# --- extra attributes ----------------------------------------------------------------------------


def compile_regex(key: str, value: str) -> re.Pattern[str]:
    try:
        return re.compile(value)
    except re.error as e:
        raise ValueError(f"invalid regular expression in log opt {key}={value!r}: {e}") from None


def validate_common(opts: dict[str, str]) -> None:
    """Checks the values of the options every driver shares."""
    if "tag" in opts:
        compile_tag(opts["tag"])
    for key in ("labels-regex", "env-regex"):
        if opts.get(key):
            compile_regex(key, opts[key])


def extra_attributes(info: LogInfo, key_mod: Callable[[str], str] | None = None) -> dict[str, str]:
    """Docker's Info.ExtraAttributes: labels/env named in opts "labels"/"env", or matched by the regexes."""
    opts = info.opts
    extra: dict[str, str] = {}

    def put(key: str, value: str) -> None:
        extra[key_mod(key) if key_mod else key] = value

    if opts.get("labels"):
        for name in opts["labels"].split(","):
            if name in info.labels:
                put(name, info.labels[name])
    if opts.get("labels-regex"):
        rx = compile_regex("labels-regex", opts["labels-regex"])
        for name, value in info.labels.items():
            if rx.search(name):
                put(name, value)
    env: dict[str, str] = {}
    for entry in info.env:
        k, sep, v = entry.partition("=")
        if sep:
            env[k] = v
    if opts.get("env"):
        for name in opts["env"].split(","):
            if name in env:
                put(name, env[name])
    if opts.get("env-regex"):
        rx = compile_regex("env-regex", opts["env-regex"])
        for name, value in env.items():
            if rx.search(name):
                put(name, value)
    return extra
