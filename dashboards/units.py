"""Values formatted the way Grafana shows its units (bytes, Bps, percentunit, s, ops, short)."""

from __future__ import annotations

import math

_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
_SI = ("", "k", "M", "G", "T", "P")
_DURATIONS = ((86400.0, "day"), (3600.0, "hour"), (60.0, "min"), (1.0, "s"), (1e-3, "ms"), (1e-6, "µs"))


def _num(v: float, decimals: int | None) -> str:
    if decimals is not None:
        return f"{v:.{decimals}f}"
    a = abs(v)
    if a == 0 or a >= 100:
        return f"{v:.0f}"
    if a >= 1:
        return (f"{v:.1f}" if a >= 10 else f"{v:.2f}").rstrip("0").rstrip(".")
    return f"{v:.2g}"  # small values keep two significant digits: 0.012 cores, not 0


def _scaled(v: float, base: float, names: tuple[str, ...], decimals: int | None) -> str:
    i = 0
    while abs(v) >= base and i < len(names) - 1:
        v /= base
        i += 1
    return f"{_num(v, decimals)} {names[i]}".rstrip()


def format_value(v: float, unit: str, decimals: int | None = None) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    if unit == "bytes":
        return _scaled(v, 1024.0, _BINARY, decimals)
    if unit == "Bps":
        return _scaled(v, 1024.0, _BINARY, decimals) + "/s"
    if unit == "percentunit":
        return f"{_num(v * 100, decimals)}%"
    if unit == "percent":
        return f"{_num(v, decimals)}%"
    if unit == "s":
        if v == 0:
            return "0 s"
        for size, name in _DURATIONS:
            if abs(v) >= size:
                return f"{_num(v / size, decimals)} {name}"
        return f"{_num(v / 1e-6, decimals)} µs"
    if unit == "ops":
        return _scaled(v, 1000.0, _SI, decimals).rstrip() + " ops/s"
    return _scaled(v, 1000.0, _SI, decimals)
