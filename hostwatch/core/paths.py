"""Every default path and environment variable hostwatch reads, defined once."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR = Path("/var/lib/hostwatch")  # `up --data-dir`: state, images, embedded peers' data
STATE_ROOT = DATA_DIR / "containers"  # the bundled runtime's container state
RUN_DIR = Path("/run/hostwatch")  # host-wide runtime files (bridge IPAM leases)
DOCKER_CONTAINERS = Path("/var/lib/docker/containers")  # Docker's state, read-only
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_ROOT = Path("/proc")
CGROUP_PARENT = "hostwatch"  # the runtime's containers live in /<CGROUP_PARENT>/<id>

ENV_STATE_ROOT = "HOSTWATCH_STATE_ROOT"
ENV_RUN_DIR = "HOSTWATCH_RUN_DIR"
ENV_BRIDGE_SUBNET = "HOSTWATCH_BRIDGE_SUBNET"


def state_root() -> Path:
    """The runtime's state root: $HOSTWATCH_STATE_ROOT, else STATE_ROOT."""
    return Path(os.environ.get(ENV_STATE_ROOT) or STATE_ROOT)


def run_dir() -> Path:
    return Path(os.environ.get(ENV_RUN_DIR) or RUN_DIR)
