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
