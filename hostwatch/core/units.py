"""Human units the Docker CLI accepts: sizes like `64m`, CPU counts like `0.5`."""

from __future__ import annotations

import re

_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?$", re.IGNORECASE)
_MULT = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_size(text: str) -> int:
    """Bytes from Docker's RAMInBytes syntax (binary multiples): 512, 64m, 1.5g, 10MiB."""
    m = _SIZE_RE.match(text.strip())
    if not m:
        raise ValueError(f"invalid size: {text!r} (expected a number with an optional b, k, m, g suffix)")
    return int(float(m.group(1)) * _MULT[m.group(2).lower()])


def parse_cpus(text: str) -> int:
    """Nano-CPUs from a decimal CPU count, like `docker run --cpus`."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"invalid --cpus value: {text!r}") from None
    if not 0 < value <= 1024:
        raise ValueError(f"invalid --cpus value: {text!r} (must be > 0)")
    return int(round(value * 1e9))


def human_size(n: float, base: int = 1000, units: tuple[str, ...] = ("kB", "MB", "GB", "TB", "PB"),
               digits: int = 3) -> str:
    """docker/go-units sizes: bytes as an integer, larger units to `digits` significant digits
    (HumanSizeWithPrecision; `docker ps -s`, `docker images`, `docker stats`)."""
    if abs(n) < base:
        return f"{int(n)}B"
    for unit in units:
        n /= base
        if abs(n) < base or unit == units[-1]:
            return f"{n:.{digits}g}{unit}"
    raise AssertionError("unreachable")


def binary_size(n: float) -> str:
    return human_size(n, 1024, ("KiB", "MiB", "GiB", "TiB"), 4)


def human_duration(seconds: float) -> str:
    """docker/go-units HumanDuration as `docker ps` shows it: "5 seconds", "3 minutes", "2 days"."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = int(seconds // size)
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{int(seconds)} seconds"
