"""What the container's PID 1 does between fork and exec: namespaces, mounts, hostname, exec."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from hostwatch.core.containers import ContainerState
from runtime import namespaces as ns
from runtime.network import bring_up_loopback

_DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def unshare_namespaces(state: ContainerState) -> None:
    flags = ns.CLONE_NEWNS | ns.CLONE_NEWUTS | ns.CLONE_NEWIPC
    if state.network.get("mode") != "host":
        flags |= ns.CLONE_NEWNET
    ns.unshare(flags)


def _bind(src: str, dst: str, readonly: bool) -> None:
    ns.mount(src, dst, None, ns.MS_BIND | ns.MS_REC)
    if readonly:
        ns.mount(src, dst, None, ns.MS_BIND | ns.MS_REMOUNT | ns.MS_RDONLY | ns.MS_REC)


def _mount_volumes(state: ContainerState, root: str) -> None:
    for vol in state.volumes:
        target = root.rstrip("/") + "/" + vol["container"].lstrip("/")
        if os.path.isdir(vol["host"]):
            os.makedirs(target, exist_ok=True)
        elif not os.path.exists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            Path(target).touch()
        _bind(vol["host"], target, bool(vol.get("ro")))


def _populate_dev(root: str) -> None:
    dev = f"{root}/dev"
    os.makedirs(dev, exist_ok=True)
    ns.mount("tmpfs", dev, "tmpfs", ns.MS_NOSUID, "mode=755,size=65536k")
    for name in _DEVICES:
        Path(f"{dev}/{name}").touch()
        ns.mount(f"/dev/{name}", f"{dev}/{name}", None, ns.MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{dev}/{name}")
    os.makedirs(f"{dev}/shm", exist_ok=True)
    ns.mount("shm", f"{dev}/shm", "tmpfs", ns.MS_NOSUID | ns.MS_NODEV, "mode=1777,size=65536k")


def setup_filesystem(state: ContainerState) -> None:
    # Private propagation first, so nothing mounted here leaks back to the host.
    ns.mount("none", "/", None, ns.MS_REC | ns.MS_PRIVATE)
    if not state.rootfs:
        _mount_volumes(state, "/")
        ns.mount("proc", "/proc", "proc", ns.MS_NOSUID | ns.MS_NODEV | ns.MS_NOEXEC)
        return
    root = state.rootfs
    ns.mount(root, root, None, ns.MS_BIND | ns.MS_REC)
    _mount_volumes(state, root)
    os.makedirs(f"{root}/proc", exist_ok=True)
    ns.mount("proc", f"{root}/proc", "proc", ns.MS_NOSUID | ns.MS_NODEV | ns.MS_NOEXEC)
    os.makedirs(f"{root}/sys", exist_ok=True)
    ns.mount("sysfs", f"{root}/sys", "sysfs", ns.MS_RDONLY | ns.MS_NOSUID | ns.MS_NODEV | ns.MS_NOEXEC)
    _populate_dev(root)
    # runc's way: stack the old root under the new one and detach it, with no put_old directory.
    # A directory in the rootfs would be shared by every container started from it, and one
    # container's rmdir pulled it from under another that was starting at the same moment.
    os.chdir(root)
    ns.pivot_root(".", ".")
    ns.umount(".")
    os.chdir("/")


def container_env(state: ContainerState) -> dict[str, str]:
    env = {"PATH": DEFAULT_PATH, "HOSTNAME": state.hostname, "HOME": "/root"}
    for item in state.env:
        key, _, value = item.partition("=")
        env[key] = value
    return env


def prepare(state: ContainerState) -> None:
    """Everything after the monitor released us, up to (not including) exec."""
    if state.network.get("mode") != "host":
        bring_up_loopback()
    socket.sethostname(state.hostname)
    setup_filesystem(state)
    os.chdir("/")
