"""Argument parsing for the runtime verbs: run, ps, inspect, logs, stop, kill, rm, diff, commit, and the
image verbs images, rootfs, import, rmi."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

# Each verb imports what it needs when it runs: `hostwatch ps` should not pay for the log drivers.
LOG_DRIVERS = ("json-file", "journald", "fluentd", "gelf", "none")  # runtime.logdrivers.DRIVERS, tested equal
NET_MODES = ("none", "host", "bridge")  # runtime.network.MODES, tested equal


def state_root() -> Path:
    from hostwatch.core.paths import state_root as root

    return root()


def _store():  # type: ignore[no-untyped-def]
    from runtime.state import StateStore

    return StateStore(state_root())


def _manage():  # type: ignore[no-untyped-def]
    from runtime import manage

    return manage


def _cgroups():  # type: ignore[no-untyped-def]
    from runtime.cgroups import detect

    return detect()


def _run(a: argparse.Namespace) -> int:
    from hostwatch.core.exits import EXIT_USAGE
    from runtime.run import RunOptions, UsageError, run

    command = list(a.command)
    if command and command[0] == "--":
        command = command[1:]
    opts = RunOptions(
        command=command, name=a.name, detach=a.detach, auto_remove=a.rm, volumes=a.volume or [],
        cpus=a.cpus, cpu_shares=a.cpu_shares, memory=a.memory, pids_limit=a.pids_limit,
        cpuset_cpus=a.cpuset_cpus, hostname=a.hostname, env=a.env or [], labels=a.label or [],
        rootfs=a.rootfs, net=a.net, log_driver=a.log_driver, log_opts=a.log_opt or [],
        image=a.image, read_only=a.read_only, privileged=a.privileged, cap_add=a.cap_add or [],
        cap_drop=a.cap_drop or [], security_opt=a.security_opt or [], tmpfs=a.tmpfs or [], user=a.user,
        group_add=a.group_add or [], ulimits=a.ulimit or [],
    )
    try:
        return run(opts, _store(), _cgroups())
    except UsageError as e:
        print(f"hostwatch: {e}", file=sys.stderr)
        return EXIT_USAGE


def _signal_number(text: str) -> int:
    name = text.upper()
    if name.isdigit():
        return int(name)
    try:
        return int(signal.Signals[name if name.startswith("SIG") else "SIG" + name])
    except KeyError:
        raise argparse.ArgumentTypeError(f"invalid signal: {text}") from None


def _images():  # type: ignore[no-untyped-def]
    from hostwatch.core.paths import image_root
    from runtime.images import ImageStore

    return ImageStore(image_root())


def _verbs():  # type: ignore[no-untyped-def]
    from runtime import image_verbs

    return image_verbs


def _register_images(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("images", help="list images")
    p.add_argument("-q", "--quiet", action="store_true", help="only print ids")
    p.set_defaults(func=lambda a: _verbs().images(_images(), a.quiet))

    p = sub.add_parser("rootfs", help="build a busybox root filesystem (Debian's busybox-static) and its image")
    p.add_argument("dest", nargs="?", help="directory to build into (default: a layer of the image store)")
    p.add_argument("--name", default="busybox", help="image to register it as, unless it exists (default: busybox)")
    p.set_defaults(func=lambda a: _verbs().rootfs(_images(), a.dest, a.name))

    p = sub.add_parser("import", help="create an image from a filesystem tarball (as `docker export` writes)")
    p.add_argument("file", help="FILE.tar, FILE.tar.gz, .tar.bz2 or .tar.xz")
    p.add_argument("name", help="image name[:tag]")
    p.set_defaults(func=lambda a: _verbs().import_(_images(), a.file, a.name))

    p = sub.add_parser("commit", help="create an image from a container's changes, on top of its image")
    p.add_argument("container")
    p.add_argument("name", help="image name[:tag]")
    p.set_defaults(func=lambda a: _verbs().commit(_store(), _images(), a.container, a.name))

    p = sub.add_parser("rmi", help="remove images (their layers, unless another image or a container uses them)")
    p.add_argument("-f", "--force", action="store_true", help="untag even when a container uses the image")
    p.add_argument("images", nargs="+")
    p.set_defaults(func=lambda a: _verbs().rmi(_store(), _images(), a.images, a.force))

    p = sub.add_parser("diff", help="list a container's changes to its image: A added, C changed, D deleted")
    p.add_argument("container")
    p.set_defaults(func=lambda a: _verbs().diff(_store(), a.container))


def _register_confinement(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image", help="image to run (hostwatch images); its layers under the container's own")
    p.add_argument("--read-only", action="store_true", help="mount the container's root filesystem read-only")
    p.add_argument("--privileged", action="store_true",
                   help="every capability, no seccomp, no masked paths, all devices")
    p.add_argument("--cap-add", action="append", metavar="CAP", help="add a capability (NAME, CAP_NAME or ALL)")
    p.add_argument("--cap-drop", action="append", metavar="CAP", help="drop a capability (NAME, CAP_NAME or ALL)")
    p.add_argument("--security-opt", action="append", metavar="OPT",
                   help="seccomp=unconfined|PROFILE.json, no-new-privileges")
    p.add_argument("--tmpfs", action="append", metavar="PATH[:OPTS]", help="mount a tmpfs (rw,noexec,nosuid,nodev)")
    p.add_argument("-u", "--user", help="UID[:GID] or NAME[:GROUP] to run as")
    p.add_argument("--group-add", action="append", metavar="GROUP", help="additional group to join")
    p.add_argument("--ulimit", action="append", metavar="NAME=SOFT[:HARD]", help="resource limit, e.g. nofile=64")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("run", help="create and start a container", add_help=False,
                       usage="hostwatch run [OPTIONS] -- CMD [ARG...]")
    p.add_argument("--name", help="container name (unique; [a-zA-Z0-9][a-zA-Z0-9_.-]*)")
    p.add_argument("-d", "--detach", action="store_true", help="run in the background and print the id")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("-v", "--volume", action="append", metavar="HOST:CTR[:ro]", help="bind mount a volume")
    p.add_argument("--cpus", help="number of CPUs (CFS quota), e.g. 0.5")
    p.add_argument("--cpu-shares", type=int, help="relative CPU weight")
    p.add_argument("-m", "--memory", help="memory limit, e.g. 64m")
    p.add_argument("--pids-limit", type=int, help="maximum number of tasks")
    p.add_argument("--cpuset-cpus", help="CPUs the container may use, e.g. 0-1")
    p.add_argument("-h", "--hostname", help="container host name (default: short id)")
    p.add_argument("-e", "--env", action="append", metavar="K=V", help="environment variable")
    p.add_argument("-l", "--label", action="append", metavar="K=V", help="container label")
    p.add_argument("--rootfs", help="root filesystem directory, read-only under the container's own overlay layer "
                                    "(default: the host's filesystem, image 'host')")
    p.add_argument("--net", "--network", dest="net", default="none", choices=NET_MODES,
                   help="network mode (default: none)")
    p.add_argument("--log-driver", default="json-file", choices=LOG_DRIVERS, help="log driver")
    p.add_argument("--log-opt", action="append", metavar="K=V", help="log driver option")
    _register_confinement(p)
    p.add_argument("--help", action="help", help="show this help message and exit")
    p.add_argument("command", nargs=argparse.REMAINDER, help="command and arguments, after --")
    p.set_defaults(func=_run)

    p = sub.add_parser("ps", help="list containers")
    p.add_argument("-a", "--all", action="store_true", help="show all containers (default: running)")
    p.add_argument("-q", "--quiet", action="store_true", help="only print ids")
    p.add_argument("-s", "--size", action="store_true", help="show the writable layer's size (and the image's)")
    p.set_defaults(func=lambda a: _manage().ps(_store(), a.all, a.quiet, a.size))

    p = sub.add_parser("inspect", help="print containers' details as JSON")
    p.add_argument("-s", "--size", action="store_true", help="add SizeRw and SizeRootFs")
    p.add_argument("containers", nargs="+")
    p.set_defaults(func=lambda a: _manage().inspect(_store(), a.containers, a.size))

    p = sub.add_parser("logs", help="print a container's logs (json-file driver)")
    p.add_argument("-f", "--follow", action="store_true", help="follow log output")
    p.add_argument("-n", "--tail", type=int, default=None, help="number of lines from the end")
    p.add_argument("container")
    p.set_defaults(func=lambda a: _manage().show_logs(_store(), a.container, a.follow, a.tail))

    p = sub.add_parser("stop", help="stop containers: SIGTERM, then SIGKILL after a grace period")
    p.add_argument("-t", "--time", type=float, default=10.0, help="seconds to wait before killing")
    p.add_argument("containers", nargs="+")
    p.set_defaults(func=lambda a: _manage().stop(_store(), _cgroups(), a.containers, a.time))

    p = sub.add_parser("kill", help="send a signal to containers (default SIGKILL)")
    p.add_argument("-s", "--signal", type=_signal_number, default=signal.SIGKILL, help="signal name or number")
    p.add_argument("containers", nargs="+")
    p.set_defaults(func=lambda a: _manage().kill(_store(), a.containers, a.signal))

    p = sub.add_parser("rm", help="remove containers (state and cgroups)")
    p.add_argument("-f", "--force", action="store_true", help="kill a running container first")
    p.add_argument("containers", nargs="+")
    p.set_defaults(func=lambda a: _manage().rm(_store(), _cgroups(), a.containers, a.force))

    _register_images(sub)
