"""Docker's "dual logging": a local json-file copy beside a driver that cannot be read back.

Since Docker 20.10, `docker logs` works whatever the driver, because the daemon also keeps a
rotated local cache (opts cache-disabled, cache-max-size 20m, cache-max-file 5, cache-compress
true). journald, fluentd and gelf get that cache here, so `hostwatch logs` reads them too.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from . import jsonfile
from .base import LogDriver, LogInfo, LogMessage
from .options import parse_bool

CACHE_KEYS = frozenset({"cache-disabled", "cache-max-size", "cache-max-file", "cache-compress"})
CACHED_DRIVERS = frozenset({"journald", "fluentd", "gelf"})
_DEFAULTS = {"max-size": "20m", "max-file": "5", "compress": "true"}


def split_opts(opts: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(the driver's own opts, the cache-* opts)."""
    own = {k: v for k, v in opts.items() if k not in CACHE_KEYS}
    return own, {k: v for k, v in opts.items() if k in CACHE_KEYS}


def parse_config(driver: str, cache_opts: dict[str, str]) -> jsonfile.JSONFileConfig | None:
    """The cache's json-file settings, or None when this driver has no cache or it is disabled."""
    if cache_opts and driver not in CACHED_DRIVERS:
        raise ValueError(f"log opts {', '.join(sorted(cache_opts))} apply only to {', '.join(sorted(CACHED_DRIVERS))}")
    if parse_bool("cache-disabled", cache_opts.get("cache-disabled", "false")) or driver not in CACHED_DRIVERS:
        return None
    as_json_file = {k.removeprefix("cache-"): v for k, v in cache_opts.items() if k != "cache-disabled"}
    try:
        return jsonfile.parse_config({**_DEFAULTS, **as_json_file})
    except ValueError as e:
        raise ValueError(f"log cache: {e}") from None


@dataclass
class CachedDriver:
    """Every message to the real driver and to the local cache; drops are the real driver's."""

    primary: LogDriver
    cache: LogDriver

    @property
    def dropped(self) -> int:
        return self.primary.dropped

    def log(self, msg: LogMessage) -> None:
        self.cache.log(msg)
        self.primary.log(msg)

    def close(self) -> None:
        self.primary.close()
        self.cache.close()


def with_cache(primary: LogDriver, cfg: jsonfile.JSONFileConfig | None, info: LogInfo, cache_path: str) -> LogDriver:
    if cfg is None or not cache_path:
        return primary
    return CachedDriver(primary, jsonfile.JSONFileDriver(cfg, replace(info, log_path=cache_path)))
