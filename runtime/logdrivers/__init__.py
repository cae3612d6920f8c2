"""Docker-compatible log drivers of the bundled runtime: json-file, journald, fluentd, gelf, none.

Usage by the monitor::

    validate(driver, opts)            # by the CLI, before anything is created (ValueError: one line)
    drv = create(driver, info)        # LogDriver
    out = Copier("stdout", drv.log)   # one per stream; feed() raw bytes, flush() at EOF
    ...
    drv.close(); state.log_dropped = drv.dropped

journald, fluentd and gelf default to Docker's ``mode=non-blocking`` (a ring buffer of ``max-buffer-size``
bytes, 1m by default, drained by a thread); json-file defaults to ``mode=blocking`` (synchronous writes).
"""

from __future__ import annotations

import importlib
from dataclasses import replace
from typing import Any

from . import cache
from .base import DAEMON_NAME, LogDriver, LogInfo, LogMessage, NoneDriver
from .copier import DEFAULT_MAX_LINE, Copier
from .options import BufferConfig
from .ring import Endpoint, RingDriver

__all__ = [
    "DAEMON_NAME",
    "DEFAULT_MAX_LINE",
    "DRIVERS",
    "Copier",
    "LogDriver",
    "LogInfo",
    "LogMessage",
    "create",
    "validate",
]

DRIVERS = ("json-file", "journald", "fluentd", "gelf", "none")

# Each driver's module and class, imported when a container uses it: a `run` loads only its own driver
# (fluentd's client and msgpack alone are ~6 ms of every container start).
_MODULES = {
    "json-file": ("jsonfile", "JSONFileDriver"),
    "journald": ("journald", "JournaldDriver"),
    "fluentd": ("fluentd", "FluentdDriver"),
    "gelf": ("gelf", "GelfDriver"),
}


def _module(driver: str) -> Any:
    return importlib.import_module(f"{__name__}.{_MODULES[driver][0]}")


def _parse(driver: str, opts: dict[str, str]) -> Any:
    if driver not in DRIVERS:
        raise ValueError(f"unknown log driver {driver!r} (supported: {', '.join(DRIVERS)})")
    opts, cache_opts = cache.split_opts(opts)
    cache.parse_config(driver, cache_opts)
    if driver == "none":
        if opts:
            raise ValueError(f"log driver 'none' takes no log opts, got {', '.join(sorted(opts))}")
        return None
    return _module(driver).parse_config(opts)


def validate(driver: str, opts: dict[str, str]) -> None:
    """Raises ValueError with a one-line reason for an unknown driver, option key or bad value."""
    _parse(driver, opts)


def create(driver: str, info: LogInfo) -> LogDriver:
    """A ready driver. Raises ValueError for bad options and OSError when json-file cannot open its file;
    never for an unreachable journald/fluentd/gelf endpoint (those messages are dropped and counted)."""
    cfg = _parse(driver, info.opts)
    if cfg is None:
        return NoneDriver()
    own_opts, cache_opts = cache.split_opts(info.opts)
    info = replace(info, opts=own_opts)
    return cache.with_cache(_create(driver, cfg, info), cache.parse_config(driver, cache_opts), info,
                            info.cache_path)


def _create(driver: str, cfg: Any, info: LogInfo) -> LogDriver:
    inner: Endpoint = getattr(_module(driver), _MODULES[driver][1])(cfg, info)
    buffer: BufferConfig = cfg.buffer
    if buffer.non_blocking:
        return RingDriver(inner, buffer.max_buffer_size, name=driver)
    return inner
