"""Removing a container: what both the `rm` verb and a `--rm` container's own monitor do.

It lives apart from the CLI verbs (runtime/manage.py) because the long-lived monitor needs it too,
and the monitor should load nothing of the CLI.
"""

from __future__ import annotations

from hostwatch.core.containers import ContainerState
from runtime import network
from runtime.cgroups import Cgroups
from runtime.state import StateStore


def remove_container(store: StateStore, cgroups: Cgroups, state: ContainerState) -> None:
    """Cgroups first: if a process refuses to die, the state stays so `rm -f` can be retried."""
    if state.cgroup:
        cgroups.remove(state.cgroup)
    if state.network.get("mode") == "bridge":
        network.detach_bridge(state.id)
        network.release_ip(state.network.get("ip", ""), store.dir(state.id))
    store.remove(state.id)
