"""The verbs that act on existing containers: ps, inspect, logs, stop, kill, rm."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hostwatch.core.containers import ContainerState
from hostwatch.core.timefmt import parse_rfc3339
from hostwatch.core.units import human_duration as ago
from hostwatch.core.units import human_size
from runtime import logs as logfile
from runtime.cgroups import CgroupError, Cgroups
from runtime.images import ImageStore
from runtime.removal import remove_container
from runtime.state import StateError, StateStore, process_gone


def _status_text(s: ContainerState, now: float) -> str:
    if s.status == "running":
        return f"Up {ago(now - (parse_rfc3339(s.started) or now))}"
    if s.status == "exited":
        return f"Exited ({s.exit_code}) {ago(now - (parse_rfc3339(s.finished) or now))} ago"
    return s.status.capitalize()


def _images() -> ImageStore:
    from hostwatch.core.paths import image_root

    return ImageStore(image_root())


def _size_text(s: ContainerState, images: ImageStore) -> str:
    from runtime.image_verbs import sizes

    rw, rootfs = sizes(s, images)
    return f"{human_size(rw)} (virtual {human_size(rootfs)})"


def ps(store: StateStore, show_all: bool, quiet: bool, size: bool = False) -> int:
    now = time.time()
    rows = [s for s in store.list() if show_all or s.status == "running"]
    rows.sort(key=lambda s: s.created, reverse=True)
    if quiet:
        for s in rows:
            print(s.short_id)
        return 0
    header = ("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "NAMES")
    table = [(*header, "SIZE") if size else header]
    images = _images() if size else None
    for s in rows:
        cmd = " ".join(s.command)
        cmd = f'"{cmd[:20]}…"' if len(cmd) > 20 else f'"{cmd}"'
        created = f"{ago(now - (parse_rfc3339(s.created) or now))} ago"
        row = (s.short_id, s.image, cmd, created, _status_text(s, now), s.name)
        table.append((*row, _size_text(s, images)) if images is not None else row)
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for r in table:
        print("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return 0


def graph_driver(s: ContainerState) -> dict[str, Any] | None:
    if not s.upper_dir:
        return None
    return {"Name": "overlay2", "Data": {"LowerDir": ":".join(s.lower_dirs), "UpperDir": s.upper_dir,
                                          "MergedDir": s.merged_dir, "WorkDir": s.work_dir}}


def inspect_doc(s: ContainerState, images: ImageStore | None = None) -> dict[str, Any]:
    """Docker's `inspect` shape for the fields users and tools script against; with `images`, the
    sizes (`inspect --size`) too."""
    zero = "0001-01-01T00:00:00Z"
    doc: dict[str, Any] = {
        "Id": s.id,
        "Created": s.created,
        "Path": s.command[0] if s.command else "",
        "Args": s.command[1:],
        "Name": "/" + s.name,
        "State": {
            "Status": s.status,
            "Running": s.status == "running",
            "Pid": s.pid or 0,
            "ExitCode": s.exit_code or 0,
            "OOMKilled": s.oom_killed,
            "Error": s.error,
            "StartedAt": s.started or zero,
            "FinishedAt": s.finished or zero,
        },
        "Image": f"sha256:{s.image_id}" if s.image_id else s.image,
        "LogPath": s.log_path,
        "GraphDriver": graph_driver(s),
        "Config": {
            "Hostname": s.hostname,
            "Image": s.image,
            "Labels": s.labels,
            "Env": s.env,
            "Cmd": s.command,
            "User": s.user,
        },
        "HostConfig": {
            "Memory": s.limits.memory or 0,
            "NanoCpus": s.limits.nano_cpus or 0,
            "CpuShares": s.limits.cpu_shares or 0,
            "PidsLimit": s.limits.pids_limit,
            "CpusetCpus": s.limits.cpuset_cpus or "",
            "NetworkMode": s.network.get("mode", "none"),
            "AutoRemove": s.auto_remove,
            "Binds": [f"{v['host']}:{v['container']}" + (":ro" if v.get("ro") else "") for v in s.volumes],
            "LogConfig": {"Type": s.log_driver, "Config": s.log_opts},
            "CapAdd": s.cap_add or None,
            "CapDrop": s.cap_drop or None,
            "Privileged": s.privileged,
            "SecurityOpt": s.security_opt or None,
            "ReadonlyRootfs": s.read_only,
            "Tmpfs": s.tmpfs or None,
            "GroupAdd": s.group_add or None,
            "Ulimits": s.ulimits or None,
        },
        "NetworkSettings": {"IPAddress": str(s.network.get("ip", "")).split("/")[0]},
        "HostwatchCgroup": s.cgroup,
        "HostwatchLogDropped": s.log_dropped,
        "HostwatchCapabilities": s.capabilities,
    }
    if images is not None:
        from runtime.image_verbs import sizes

        doc["SizeRw"], doc["SizeRootFs"] = sizes(s, images)
    return doc


def inspect(store: StateStore, refs: list[str], size: bool = False) -> int:
    docs, code = [], 0
    images = _images() if size else None
    for ref in refs:
        try:
            docs.append(inspect_doc(store.resolve(ref), images))
        except StateError as e:
            print(f"Error: {e}", file=sys.stderr)
            code = 1
    print(json.dumps(docs, indent=4))
    return code


def _write(stream: str, data: bytes) -> None:
    out = sys.stderr.buffer if stream == "stderr" else sys.stdout.buffer
    out.write(data)
    out.flush()


def show_logs(store: StateStore, ref: str, follow: bool, tail: int | None) -> int:
    s = store.resolve(ref)
    readable = s.log_path or s.log_cache_path  # json-file's own file, or the dual-logging cache
    if not readable:
        print(f'Error: configured logging driver "{s.log_driver}" does not support reading', file=sys.stderr)
        return 1
    path = Path(readable)
    for stream, data in logfile.read(path, tail):
        _write(stream, data)
    if follow and path.exists():
        logfile.follow(path, _write, lambda: _running(store, s.id))
    return 0


def _running(store: StateStore, cid: str) -> bool:
    try:
        return store.load(cid).status in ("running", "created")
    except (StateError, OSError, ValueError):  # removed, or caught mid-write by a foreign editor
        return False


def _wait_exit(store: StateStore, cid: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _running(store, cid):
            return True
        time.sleep(0.02)
    return not _running(store, cid)


def _signal(s: ContainerState, sig: int) -> None:
    if s.pid:
        try:
            os.kill(s.pid, sig)
        except ProcessLookupError:
            pass


class VerbError(Exception):
    """One container could not be acted on; the verb reports it and goes on with the others."""


def _for_each(store: StateStore, refs: list[str], action: Callable[[ContainerState], None]) -> int:
    """Docker's multi-container verbs: act on each, print its ref or an error, exit 1 if any failed."""
    code = 0
    for ref in refs:
        try:
            action(store.resolve(ref))
        except (StateError, VerbError, CgroupError) as e:
            print(f"Error: {e}", file=sys.stderr)
            code = 1
            continue
        print(ref)
    return code


def stop(store: StateStore, cgroups: Cgroups, refs: list[str], timeout: float) -> int:
    def action(s: ContainerState) -> None:
        if s.status == "running":
            _signal(s, signal.SIGTERM)
            if not _wait_exit(store, s.id, timeout):
                cgroups.kill_all(s.cgroup, signal.SIGKILL)
                _wait_exit(store, s.id, 10)

    return _for_each(store, refs, action)


def kill(store: StateStore, refs: list[str], sig: int) -> int:
    def action(s: ContainerState) -> None:
        if s.status != "running":
            raise VerbError(f"cannot kill container {s.name}: container is not running")
        _signal(s, sig)

    return _for_each(store, refs, action)


def rm(store: StateStore, cgroups: Cgroups, refs: list[str], force: bool) -> int:
    def action(s: ContainerState) -> None:
        if s.status == "running":
            if not force:
                raise VerbError(f"you cannot remove a running container {s.id}. "
                                "Stop the container before attempting removal or force remove")
            cgroups.kill_all(s.cgroup, signal.SIGKILL)
            _wait_exit(store, s.id, 10)
        deadline = time.monotonic() + 5
        while not process_gone(s.monitor_pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        remove_container(store, cgroups, store.load(s.id) if store.dir(s.id).exists() else s)

    return _for_each(store, refs, action)
