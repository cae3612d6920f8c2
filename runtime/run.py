"""`hostwatch run`: validate everything first, then create state, cgroups and the monitor."""

from __future__ import annotations

import os
import re
import secrets
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from hostwatch.core.cgroupfs import parse_cpuset
from hostwatch.core.config import EXIT_USAGE
from hostwatch.core.containers import ContainerState, Limits
from hostwatch.core.paths import CGROUP_PARENT
from hostwatch.core.timefmt import rfc3339_nano
from hostwatch.core.units import parse_cpus, parse_size
from runtime import logdrivers, monitor, network, status
from runtime.cgroups import CgroupError, Cgroups
from runtime.state import StateError, StateStore

_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_ADJECTIVES = ("brave", "calm", "eager", "fancy", "jolly", "keen", "lucid", "quiet", "sharp", "tender")
_NOUNS = ("babbage", "curie", "darwin", "euler", "hopper", "lovelace", "noether", "ritchie", "turing")
MIN_MEMORY = 6 * 1024 * 1024


class UsageError(Exception):
    """Bad input: reported on one line with exit code EXIT_USAGE (125), before anything is created."""


@dataclass
class RunOptions:
    command: list[str]
    name: str | None = None
    detach: bool = False
    auto_remove: bool = False
    volumes: list[str] = field(default_factory=list)
    cpus: str | None = None
    cpu_shares: int | None = None
    memory: str | None = None
    pids_limit: int | None = None
    cpuset_cpus: str | None = None
    hostname: str | None = None
    env: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    rootfs: str | None = None
    net: str = "none"
    log_driver: str = "json-file"
    log_opts: list[str] = field(default_factory=list)


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key or not sep:
            raise UsageError(f"invalid {what} {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def _limits(o: RunOptions) -> Limits:
    try:
        limits = Limits(
            memory=parse_size(o.memory) if o.memory else None,
            nano_cpus=parse_cpus(o.cpus) if o.cpus else None,
            cpu_shares=o.cpu_shares,
            pids_limit=o.pids_limit,
            cpuset_cpus=parse_cpuset(o.cpuset_cpus) if o.cpuset_cpus else None,
        )
    except ValueError as e:
        raise UsageError(str(e)) from None
    if limits.memory is not None and limits.memory < MIN_MEMORY:
        raise UsageError("minimum memory limit allowed is 6MB")
    if limits.cpu_shares is not None and limits.cpu_shares < 2:
        raise UsageError("--cpu-shares must be at least 2")
    if limits.pids_limit is not None and limits.pids_limit < 1:
        raise UsageError("--pids-limit must be a positive number")
    return limits


def _volumes(specs: list[str]) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for spec in specs:
        parts = spec.split(":")
        mode_ok = len(parts) == 2 or (len(parts) == 3 and parts[2] in ("ro", "rw"))
        if not mode_ok or not parts[0] or not parts[1]:
            raise UsageError(f"invalid volume specification {spec!r}: expected HOST:CONTAINER[:ro]")
        host, ctr = parts[0], parts[1]
        if not os.path.isabs(host) or not os.path.isabs(ctr) or ".." in Path(ctr).parts:
            raise UsageError(f"invalid volume specification {spec!r}: paths must be absolute")
        if not os.path.exists(host):
            raise UsageError(f"invalid volume specification {spec!r}: {host} does not exist")
        out.append({"host": os.path.realpath(host), "container": ctr, "ro": len(parts) == 3 and parts[2] == "ro"})
    return out


def _rootfs(path: str | None) -> tuple[str | None, str]:
    if path is None:
        return None, "host"
    real = os.path.realpath(path)
    if not os.path.isdir(real):
        raise UsageError(f"rootfs {path} does not exist or is not a directory")
    if real == "/":
        return None, "host"
    return real, os.path.basename(real)


def _name(o: RunOptions, store: StateStore) -> str:
    if o.name is not None:
        if not _NAME_RE.match(o.name) or ".." in o.name:
            raise UsageError(f"invalid container name {o.name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        return o.name
    taken = {s.name for s in store.list()}
    while True:
        name = f"{secrets.choice(_ADJECTIVES)}_{secrets.choice(_NOUNS)}_{secrets.token_hex(2)}"
        if name not in taken:
            return name


def build_state(o: RunOptions, store: StateStore, cid: str) -> ContainerState:
    """Turn the options into a container's first state; raises UsageError for any bad input."""
    if not o.command:
        raise UsageError("requires a command to run: hostwatch run [OPTIONS] -- CMD [ARG...]")
    if o.net not in network.MODES:
        raise UsageError(f"invalid --net {o.net!r}: expected one of {', '.join(network.MODES)}")
    limits = _limits(o)
    rootfs, image = _rootfs(o.rootfs)
    log_opts = _pairs(o.log_opts, "--log-opt")
    try:
        logdrivers.validate(o.log_driver, log_opts)
        cached = logdrivers.cache.parse_config(o.log_driver, logdrivers.cache.split_opts(log_opts)[1]) is not None
    except ValueError as e:
        raise UsageError(str(e)) from None
    env = []
    for item in o.env:
        if "=" not in item:
            if item not in os.environ:
                continue
            item = f"{item}={os.environ[item]}"
        env.append(item)
    return ContainerState(
        id=cid,
        name=_name(o, store),
        image=image,
        rootfs=rootfs,
        command=list(o.command),
        hostname=o.hostname or cid[:12],
        labels=_pairs(o.labels, "--label"),
        env=env,
        limits=limits,
        volumes=_volumes(o.volumes),
        network={"mode": o.net},
        log_driver=o.log_driver,
        log_opts=log_opts,
        log_path=str(store.dir(cid) / f"{cid}-json.log") if o.log_driver == "json-file" else "",
        log_cache_path=str(store.dir(cid) / "container-cached.log") if cached else "",
        auto_remove=o.auto_remove,
        cgroup=f"/{CGROUP_PARENT}/{cid}",
        created=rfc3339_nano(),
    )


def _create(o: RunOptions, store: StateStore, cgroups: Cgroups) -> ContainerState:
    cid = store.new_id()
    with store.lock():
        state = build_state(o, store, cid)
        try:
            store.create(state)
        except StateError as e:
            raise UsageError(str(e)) from None
        if state.network["mode"] == "bridge":
            try:
                state.network["ip"] = network.allocate_ip(store.dir(cid))
            except network.NetworkError as e:
                store.remove(cid)
                raise UsageError(str(e)) from None
            store.save(state)
    try:
        cgroups.create(state.cgroup, state.limits)
    except CgroupError as e:
        store.remove(cid)
        raise UsageError(f"cgroups: {e}") from None
    return state


def run(o: RunOptions, store: StateStore, cgroups: Cgroups) -> int:
    state = _create(o, store, cgroups)
    status_r, status_w = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    monitor.spawn(store, cgroups, state.id, status_w, attached=not o.detach)
    os.close(status_w)
    with os.fdopen(status_r, "rb") as stream:
        return _follow_status(stream, state, o.detach)


def _follow_status(stream: BinaryIO, state: ContainerState, detach: bool) -> int:
    container_pid = 0

    def proxy(signum: int, _frame: object) -> None:
        if container_pid:
            os.kill(container_pid, signum)

    for event in status.read(stream):
        if isinstance(event, status.ProtocolError):
            print(f"hostwatch: monitor of {state.name}: {event}", file=sys.stderr)
        elif isinstance(event, status.Started):
            container_pid = event.pid
            if detach:
                print(state.id)
                return 0
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(sig, proxy)
        elif isinstance(event, status.StartFailed):
            print(f"hostwatch: failed to start container {state.name}: {event.message}", file=sys.stderr)
            return event.code
        else:
            return event.code
    print(f"hostwatch: monitor of {state.name} exited unexpectedly; see its monitor.err", file=sys.stderr)
    return EXIT_USAGE  # Docker's 125 covers its own failures as well as bad flags
