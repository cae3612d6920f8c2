"""The one cgroup-filesystem layer: the runtime writes through it, the exporter reads through it.

- files: controller lists and interface file names;
- values: how files spell values (shares <-> weight, cpusets, "unlimited", flat-keyed, PID lists);
- layout: `detect()`, the one v1/v2/hybrid rule, giving a `Layout` (version, hierarchy paths);
- mountinfo: the /proc/<pid>/mountinfo parser `detect()` reads the mount table with.

Pure and small: no cgroup is created or read here beyond what detection needs.
"""

from __future__ import annotations

from .layout import CgroupError, Layout, detect
from .values import (
    CPU_PERIOD_US,
    is_unlimited,
    parse_cpuset,
    parse_flat_keyed,
    parse_procs,
    shares_to_weight,
    weight_to_shares,
)

__all__ = [
    "CPU_PERIOD_US",
    "CgroupError",
    "Layout",
    "detect",
    "is_unlimited",
    "parse_cpuset",
    "parse_flat_keyed",
    "parse_procs",
    "shares_to_weight",
    "weight_to_shares",
]
