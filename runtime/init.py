"""What the container's PID 1 does between unsharing its namespaces and exec: mounts, hostname, user."""

from __future__ import annotations

import os
import socket

from hostwatch.core.containers import ContainerState
from runtime import mounts
from runtime.confine import User, resolve_user
from runtime.network import bring_up_loopback

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def container_env(state: ContainerState, home: str = "/root") -> dict[str, str]:
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": state.hostname, "HOME": home}
    for item in state.env:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def prepare(state: ContainerState) -> User:
    """Everything after the monitor released us, up to dropping privileges: returns the user to
    become, looked up in the container's own /etc."""
    if state.network.get("mode") != "host":
        bring_up_loopback()
    socket.sethostname(state.hostname)
    mounts.setup(state)
    os.chdir("/")
    return resolve_user(state.user, state.group_add)
