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
ENV_IMAGE_ROOT = "HOSTWATCH_IMAGE_ROOT"


def state_root() -> Path:
    """The runtime's state root: $HOSTWATCH_STATE_ROOT, else STATE_ROOT."""
    return Path(os.environ.get(ENV_STATE_ROOT) or STATE_ROOT)


def image_root() -> Path:
    """The runtime's image store: $HOSTWATCH_IMAGE_ROOT, else "images" beside the state root
    (DATA_DIR/images by default), so a private state root brings its own images."""
    return Path(os.environ.get(ENV_IMAGE_ROOT) or state_root().parent / "images")


def run_dir() -> Path:
    return Path(os.environ.get(ENV_RUN_DIR) or RUN_DIR)
