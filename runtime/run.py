"""`hostwatch run`: validate everything first, then create state, cgroups and the monitor."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from hostwatch.core.cgroupfs import parse_cpuset
from hostwatch.core.containers import ContainerState, Limits
from hostwatch.core.exits import EXIT_USAGE
from hostwatch.core.paths import CGROUP_PARENT, image_root
from hostwatch.core.timefmt import rfc3339_nano
from hostwatch.core.units import parse_cpus, parse_size
from runtime import caps, devices, layers, logdrivers, monitor, network, security, status
from runtime.cgroups import CgroupError, Cgroups
from runtime.images import ImageError, ImageStore
from runtime.state import StateError, StateStore

_NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")
_ADJECTIVES = ("brave", "calm", "eager", "fancy", "jolly", "keen", "lucid", "quiet", "sharp", "tender")
_NOUNS = ("babbage", "curie", "darwin", "euler", "hopper", "lovelace", "noether", "ritchie", "turing")
MIN_MEMORY = 6 * 1024 * 1024
LAYER_DIRS = ("upper", "work", "merged")  # overlay2's names, in the container's state dir
SECCOMP_FILE = "seccomp.json"  # the resolved profile; seccomp.bpf beside it is what PID 1 loads


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
    image: str | None = None
    read_only: bool = False
    privileged: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)
    security_opt: list[str] = field(default_factory=list)
    tmpfs: list[str] = field(default_factory=list)
    user: str | None = None
    group_add: list[str] = field(default_factory=list)
    ulimits: list[str] = field(default_factory=list)


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


@dataclass
class Layers:
    image: str  # the name `ps` and `inspect` show
    image_id: str = ""
    rootfs: str | None = None  # --rootfs DIR
    lower: list[str] = field(default_factory=list)  # top first; [] = the host's filesystem


def _layers(o: RunOptions, images: ImageStore) -> Layers:
    if o.image is not None and o.rootfs is not None:
        raise UsageError("--image and --rootfs are mutually exclusive")
    if o.image is not None:
        try:
            image = images.get(o.image)
        except ImageError as e:
            raise UsageError(str(e)) from None
        lower = images.lower_dirs(image)
        missing = [d for d in lower if not os.path.isdir(d)]
        if missing:
            raise UsageError(f"image {image.name} is damaged: layer {missing[0]} is missing")
        return Layers(image.name.removesuffix(":latest"), image.id, None, lower)
    if o.rootfs is None:
        return Layers("host")
    real = os.path.realpath(o.rootfs)
    if not os.path.isdir(real):
        raise UsageError(f"rootfs {o.rootfs} does not exist or is not a directory")
    if real == "/":
        return Layers("host")
    return Layers(os.path.basename(real), "", real, [real])


def _check_layer_home(lay: Layers, store: StateStore) -> None:
    """The writable layer lives in the state dir: refuse what overlayfs would refuse at start."""
    if not lay.lower:
        return
    store.root.mkdir(parents=True, exist_ok=True)
    root = os.path.realpath(store.root)
    try:
        layers.check_upper_fs(root)
        layers.mount_options(lay.lower, root, root)
    except layers.LayerError as e:
        raise UsageError(str(e)) from None
    for lower in lay.lower:
        if root == lower or root.startswith(lower.rstrip("/") + "/") or lower.startswith(root + "/"):
            raise UsageError(f"rootfs {lower} and the state root {root} overlap: overlayfs cannot stack them")


Seccomp = tuple[dict[str, object], bytes] | None  # the resolved profile and its compiled program


def _confinement(o: RunOptions) -> tuple[dict[str, object], Seccomp]:
    """The confinement fields of the state, and the seccomp filter (None: no filter)."""
    try:
        capabilities = caps.resolve(o.cap_add, o.cap_drop, o.privileged)
        opts = security.parse_security_opts(o.security_opt)
        profile = security.seccomp_profile(opts, o.privileged, capabilities)
        program = b""
        if profile is not None:
            from runtime.seccomp import cache
            from runtime.seccomp.libseccomp import SeccompError

            try:  # a profile libseccomp cannot compile fails now, not at start
                program = cache.program(profile)
            except SeccompError as e:
                raise ValueError(f"seccomp profile {opts.seccomp or 'default'}: {e}") from None
        tmpfs = dict(security.parse_tmpfs(t) for t in o.tmpfs)
        fields: dict[str, object] = {
            "privileged": o.privileged, "cap_add": list(o.cap_add), "cap_drop": list(o.cap_drop),
            "capabilities": capabilities, "security_opt": list(o.security_opt),
            "no_new_privileges": opts.no_new_privileges, "tmpfs": tmpfs, "read_only": o.read_only,
            "user": security.parse_user(o.user) if o.user else "",
            "group_add": [security.parse_group(g) for g in o.group_add],
            "ulimits": [security.parse_ulimit(u) for u in o.ulimits],
        }
    except ValueError as e:
        raise UsageError(str(e)) from None
    return fields, (profile, program) if profile is not None else None


def _name(o: RunOptions, store: StateStore) -> str:
    if o.name is not None:
        if not _NAME_RE.match(o.name) or ".." in o.name:
            raise UsageError(f"invalid container name {o.name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")
        return o.name
    taken = {s.name for s in store.list()}
    while True:
        a, n = int.from_bytes(os.urandom(4)), int.from_bytes(os.urandom(4))  # not secrets: ~5 ms of every start
        name = f"{_ADJECTIVES[a % len(_ADJECTIVES)]}_{_NOUNS[n % len(_NOUNS)]}_{os.urandom(2).hex()}"
        if name not in taken:
            return name


def build_state(o: RunOptions, store: StateStore, cid: str, images: ImageStore | None = None) -> ContainerState:
    """Turn the options into a container's first state; raises UsageError for any bad input."""
    return _prepare(o, store, cid, images or ImageStore(image_root()))[0]


def _prepare(o: RunOptions, store: StateStore, cid: str, images: ImageStore) -> tuple[ContainerState, Seccomp]:
    if not o.command:
        raise UsageError("requires a command to run: hostwatch run [OPTIONS] -- CMD [ARG...]")
    if o.net not in network.MODES:
        raise UsageError(f"invalid --net {o.net!r}: expected one of {', '.join(network.MODES)}")
    limits = _limits(o)
    lay = _layers(o, images)
    log_opts = _pairs(o.log_opts, "--log-opt")
    try:
        logdrivers.validate(o.log_driver, log_opts)
        cached = logdrivers.cache.parse_config(o.log_driver, logdrivers.cache.split_opts(log_opts)[1]) is not None
    except ValueError as e:
        raise UsageError(str(e)) from None
    confinement, filt = _confinement(o)
    if o.read_only and not lay.lower:
        raise UsageError("--read-only needs a root filesystem: --rootfs DIR or --image NAME")
    env = []
    for item in o.env:
        if "=" not in item:
            if item not in os.environ:
                continue
            item = f"{item}={os.environ[item]}"
        env.append(item)
    name = _name(o, store)
    labels, volumes = _pairs(o.labels, "--label"), _volumes(o.volumes)
    _check_layer_home(lay, store)  # last: it may create the state root
    home = store.dir(cid)
    state = ContainerState(
        id=cid,
        name=name,
        image=lay.image,
        rootfs=lay.rootfs,
        command=list(o.command),
        hostname=o.hostname or cid[:12],
        labels=labels,
        env=env,
        limits=limits,
        volumes=volumes,
        network={"mode": o.net},
        log_driver=o.log_driver,
        log_opts=log_opts,
        log_path=str(home / f"{cid}-json.log") if o.log_driver == "json-file" else "",
        log_cache_path=str(home / "container-cached.log") if cached else "",
        auto_remove=o.auto_remove,
        cgroup=f"/{CGROUP_PARENT}/{cid}",
        created=rfc3339_nano(),
        image_id=lay.image_id,
        lower_dirs=lay.lower,
        upper_dir=str(home / LAYER_DIRS[0]) if lay.lower else "",
        work_dir=str(home / LAYER_DIRS[1]) if lay.lower else "",
        merged_dir=str(home / LAYER_DIRS[2]) if lay.lower else "",
        seccomp_profile=str(home / SECCOMP_FILE) if filt is not None else "",
        **confinement,  # type: ignore[arg-type]
    )
    return state, filt


def _create(o: RunOptions, store: StateStore, cgroups: Cgroups) -> ContainerState:
    cid = store.new_id()
    with store.lock():
        state, filt = _prepare(o, store, cid, ImageStore(image_root()))
        try:
            store.create(state)
        except StateError as e:
            raise UsageError(str(e)) from None
        try:
            _write_private_files(state, filt)
        except OSError as e:
            store.remove(cid)
            raise UsageError(f"cannot prepare the container's files: {e}") from None
        if state.network["mode"] == "bridge":
            try:
                state.network["ip"] = network.allocate_ip(store.dir(cid))
            except network.NetworkError as e:
                store.remove(cid)
                raise UsageError(str(e)) from None
            store.save(state)
    try:
        cgroups.create(state.cgroup, state.limits)
        cgroups.restrict_devices(state.cgroup, devices.rules(state.privileged))
    except CgroupError as e:
        try:
            cgroups.remove(state.cgroup)
        except CgroupError:
            pass
        network.release_ip(state.network.get("ip", ""), store.dir(cid))
        store.remove(cid)
        raise UsageError(f"cgroups: {e}") from None
    return state


def _write_private_files(state: ContainerState, filt: Seccomp) -> None:
    for path in (state.upper_dir, state.work_dir, state.merged_dir):
        if path:
            os.mkdir(path, 0o755)
    if filt is not None:
        profile, program = filt
        with open(state.seccomp_profile, "w") as f:
            json.dump(profile, f)
        Path(state.seccomp_profile).with_suffix(".bpf").write_bytes(program)


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
