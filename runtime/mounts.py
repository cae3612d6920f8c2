"""The container's filesystem, set up by its PID 1 in its own mount namespace before exec.

A container with a rootfs gets an overlay (its image's layers read-only, its own upper layer) at
its merged directory, with volumes, /proc, /sys (read-only), a /dev of its own and any --tmpfs
mounted on top; then pivot_root makes that its root. As runc does, Docker's masked paths are covered
(a read-only tmpfs on a directory, /dev/null on a file) and its read-only paths remounted read-only,
after the pivot; --read-only remounts the root itself last. A --privileged container gets none of
that masking, a writable /sys and the host's device nodes. The overlay exists only in the container's
mount namespace: it goes away with the container's last process, whatever happens to the monitor.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

from hostwatch.core.cgroupfs.mountinfo import parse_mountinfo
from hostwatch.core.containers import ContainerState
from runtime import devices, layers, security
from runtime import namespaces as ns

# moby daemon/pkg/oci/defaults.go
MASKED_PATHS = ("/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/sched_debug", "/proc/scsi", "/proc/timer_list", "/proc/timer_stats",
                "/sys/devices/virtual/powercap", "/sys/firmware")
THERMAL_THROTTLE = "/sys/devices/system/cpu/cpu*/thermal_throttle"  # masked where present
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
_DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
_KEEP_FLAGS = ns.MS_NOSUID | ns.MS_NODEV | ns.MS_NOEXEC  # statvfs ST_* bits are the same as MS_*


def masked_paths() -> list[str]:
    return [*MASKED_PATHS, *sorted(glob.glob(THERMAL_THROTTLE))]


def _bind(src: str, dst: str, readonly: bool) -> None:
    ns.mount(src, dst, None, ns.MS_BIND | ns.MS_REC)
    if readonly:
        remount_readonly(dst)


def remount_readonly(path: str) -> None:
    flags = os.statvfs(path).f_flag & _KEEP_FLAGS
    ns.mount("", path, None, flags | ns.MS_BIND | ns.MS_REMOUNT | ns.MS_RDONLY)


def _target(root: str, path: str) -> str:
    return root.rstrip("/") + "/" + path.lstrip("/")


def _mount_volumes(state: ContainerState, root: str) -> None:
    for vol in state.volumes:
        target = _target(root, vol["container"])
        if os.path.isdir(vol["host"]):
            os.makedirs(target, exist_ok=True)
        elif not os.path.exists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            Path(target).touch()
        _bind(vol["host"], target, bool(vol.get("ro")))


def _mount_tmpfs(state: ContainerState, root: str) -> None:
    for path, options in state.tmpfs.items():
        target = _target(root, path)
        os.makedirs(target, exist_ok=True)
        flags, data = security.tmpfs_mount_options(options)
        ns.mount("tmpfs", target, "tmpfs", flags, data or None)


def _populate_dev(root: str, privileged: bool) -> None:
    dev = f"{root}/dev"
    os.makedirs(dev, exist_ok=True)
    ns.mount("tmpfs", dev, "tmpfs", ns.MS_NOSUID, "mode=755,size=65536k")
    if privileged:
        devices.copy_host_devices(dev)
    else:
        for name in _DEVICES:
            Path(f"{dev}/{name}").touch()
            ns.mount(f"/dev/{name}", f"{dev}/{name}", None, ns.MS_BIND)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{dev}/{name}")
    os.makedirs(f"{dev}/pts", exist_ok=True)
    ns.mount("devpts", f"{dev}/pts", "devpts", ns.MS_NOSUID | ns.MS_NOEXEC,
             "newinstance,ptmxmode=0666,mode=0620,gid=5")
    os.symlink("pts/ptmx", f"{dev}/ptmx")
    os.makedirs(f"{dev}/shm", exist_ok=True)
    ns.mount("shm", f"{dev}/shm", "tmpfs", ns.MS_NOSUID | ns.MS_NODEV | ns.MS_NOEXEC, "mode=1777,size=65536k")
    os.makedirs(f"{dev}/mqueue", exist_ok=True)
    ns.mount("mqueue", f"{dev}/mqueue", "mqueue", ns.MS_NOSUID | ns.MS_NODEV | ns.MS_NOEXEC)


def _mask_and_protect() -> None:
    """runc's readonlyPath/maskPaths, on the container's own paths (after the pivot)."""
    for path in READONLY_PATHS:
        if os.path.exists(path):
            _bind(path, path, readonly=True)
    for path in masked_paths():
        if os.path.isdir(path) and not os.path.islink(path):
            ns.mount("tmpfs", path, "tmpfs", ns.MS_RDONLY)
        elif os.path.exists(path):
            ns.mount("/dev/null", path, None, ns.MS_BIND)


def _sys_readonly_below(top: str) -> None:
    """Remount `top` and every mount below it read-only (the host's /sys of a host-fs container,
    whose cgroup mounts would otherwise let it write its own limits)."""
    with open("/proc/self/mountinfo") as f:
        table = parse_mountinfo(f.read())
    for point in [str(m.mount_point) for m in table if m.mount_point.is_relative_to(top)]:
        try:
            remount_readonly(point)
        except OSError:
            continue  # covered by a later mount, or gone: nothing of it is reachable


def _host_filesystem(state: ContainerState) -> None:
    _mount_volumes(state, "/")
    ns.mount("proc", "/proc", "proc", ns.MS_NOSUID | ns.MS_NODEV | ns.MS_NOEXEC)
    _mount_tmpfs(state, "/")
    if not state.privileged:
        _sys_readonly_below("/sys")
        _mask_and_protect()
    if state.read_only:
        remount_readonly("/")


def setup(state: ContainerState) -> None:
    # Private propagation first, so nothing mounted here leaks back to the host.
    ns.mount("none", "/", None, ns.MS_REC | ns.MS_PRIVATE)
    if not state.upper_dir:
        _host_filesystem(state)
        return
    root = state.merged_dir
    layers.mount_overlay(ns.mount, state.lower_dirs, state.upper_dir, state.work_dir, root)
    _mount_volumes(state, root)
    os.makedirs(f"{root}/proc", exist_ok=True)
    ns.mount("proc", f"{root}/proc", "proc", ns.MS_NOSUID | ns.MS_NODEV | ns.MS_NOEXEC)
    os.makedirs(f"{root}/sys", exist_ok=True)
    sys_flags = ns.MS_NOSUID | ns.MS_NODEV | ns.MS_NOEXEC | (0 if state.privileged else ns.MS_RDONLY)
    ns.mount("sysfs", f"{root}/sys", "sysfs", sys_flags)
    _populate_dev(root, state.privileged)
    _mount_tmpfs(state, root)
    # runc's way: stack the old root under the new one and detach it, with no put_old directory.
    os.chdir(root)
    ns.pivot_root(".", ".")
    ns.umount(".")
    os.chdir("/")
    if not state.privileged:
        _mask_and_protect()
    if state.read_only:
        remount_readonly("/")
