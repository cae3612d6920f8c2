"""Time formats shared by every component: Go's RFC3339Nano, RFC 3339 parsing, durations."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime


def rfc3339_nano(ts: float | None = None, ns: int | None = None) -> str:
    """Go's time.RFC3339Nano in UTC: fractional seconds with trailing zeros trimmed."""
    if ns is None:
        ns = time.time_ns() if ts is None else int(ts * 1e9)
    secs, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        base += "." + f"{frac:09d}".rstrip("0")
    return base + "Z"


def parse_rfc3339(value: str | None) -> float | None:
    """Seconds since the epoch from an RFC3339(Nano) string; None for empty or Go's zero time."""
    ns = parse_rfc3339_ns(value)
    if ns is None:
        return None
    whole, frac = divmod(ns, 1_000_000_000)
    return whole + frac / 1e9  # whole seconds exact, then the fraction (as float("0.<frac>") gives it)


def parse_rfc3339_ns(value: str | None) -> int | None:
    """Nanoseconds since the epoch from an RFC3339(Nano) string, exactly; None for empty or Go's
    zero time. Raises ValueError on anything else that is not RFC 3339."""
    if not value or value.startswith("0001-01-01"):
        return None
    body = value[:-1] if value[-1:] in ("Z", "z") else value
    tz_offset = 0
    for sign in ("+", "-"):
        idx = body.rfind(sign)
        if idx > 10:
            hh, _, mm = body[idx + 1 :].partition(":")
            tz_offset = (int(hh) * 3600 + int(mm or 0) * 60) * (1 if sign == "+" else -1)
            body = body[:idx]
            break
    whole, _, frac = body.partition(".")
    if frac and not frac.isdigit():
        raise ValueError(f"invalid RFC 3339 time: {value!r}")
    secs = int(datetime.strptime(whole.replace("t", "T"), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp())
    return (secs - tz_offset) * 1_000_000_000 + int((frac + "000000000")[:9] if frac else 0)


_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w|y)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
           "d": 86400.0, "w": 604800.0, "y": 31536000.0}


def parse_duration(text: str) -> float:
    """Seconds from a Prometheus/Go duration such as 500ms, 5m, 1h30m, 2d; a bare number is seconds."""
    s = text.strip()
    try:
        return float(s)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _DURATION_RE.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_S[m.group(2)]
        pos = m.end()
    if not s or pos != len(s):
        raise ValueError(f"invalid duration {text!r} (expected e.g. 500ms, 30s, 5m, 1h30m)")
    return total
