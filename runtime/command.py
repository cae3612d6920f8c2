"""Argument parsing for the runtime verbs: run, ps, inspect, logs, stop, kill, rm, rootfs."""

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
    from hostwatch.core.config import EXIT_USAGE
    from runtime.run import RunOptions, UsageError, run

    command = list(a.command)
    if command and command[0] == "--":
        command = command[1:]
    opts = RunOptions(
        command=command, name=a.name, detach=a.detach, auto_remove=a.rm, volumes=a.volume or [],
        cpus=a.cpus, cpu_shares=a.cpu_shares, memory=a.memory, pids_limit=a.pids_limit,
        cpuset_cpus=a.cpuset_cpus, hostname=a.hostname, env=a.env or [], labels=a.label or [],
        rootfs=a.rootfs, net=a.net, log_driver=a.log_driver, log_opts=a.log_opt or [],
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


def _rootfs(a: argparse.Namespace) -> int:
    from runtime.rootfs import build_busybox_rootfs

    print(build_busybox_rootfs(Path(a.dest)))
    return 0


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
    p.add_argument("--rootfs", help="root filesystem directory (default: the host's, image 'host')")
    p.add_argument("--net", "--network", dest="net", default="none", choices=NET_MODES,
                   help="network mode (default: none)")
    p.add_argument("--log-driver", default="json-file", choices=LOG_DRIVERS, help="log driver")
    p.add_argument("--log-opt", action="append", metavar="K=V", help="log driver option")
    p.add_argument("--help", action="help", help="show this help message and exit")
    p.add_argument("command", nargs=argparse.REMAINDER, help="command and arguments, after --")
    p.set_defaults(func=_run)

    p = sub.add_parser("ps", help="list containers")
    p.add_argument("-a", "--all", action="store_true", help="show all containers (default: running)")
    p.add_argument("-q", "--quiet", action="store_true", help="only print ids")
    p.set_defaults(func=lambda a: _manage().ps(_store(), a.all, a.quiet))

    p = sub.add_parser("inspect", help="print containers' details as JSON")
    p.add_argument("containers", nargs="+")
    p.set_defaults(func=lambda a: _manage().inspect(_store(), a.containers))

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

    p = sub.add_parser("rootfs", help="build a busybox root filesystem from Debian's busybox-static")
    p.add_argument("dest", help="directory to build into")
    p.set_defaults(func=_rootfs)
