"""`hostwatch exporter` and `hostwatch stats` (argparse); `register(subparsers)` adds both."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from exporter.config import (
    DEFAULT_CGROUP_ROOT,
    DEFAULT_CONTAINERD_STATE,
    DEFAULT_CONTAINERS_STORAGE,
    DEFAULT_DISK_USAGE_MAX_CPU,
    DEFAULT_DISK_USAGE_REFRESH_SECONDS,
    DEFAULT_LISTEN_ADDRESS,
    DEFAULT_MAX_REQUESTS,
    DEFAULT_PROC_ROOT,
    DEFAULT_SYS_ROOT,
    DEFAULT_TELEMETRY_PATH,
    ExporterConfig,
    parse_bool,
    split_list,
)
from exporter.groups import describe_kinds, resolve_disabled
from hostwatch.core.config import EXIT_USAGE
from hostwatch.core.paths import DOCKER_CONTAINERS, ENV_STATE_ROOT, STATE_ROOT, state_root


def _add_roots(p: argparse.ArgumentParser) -> None:
    p.add_argument("--state-root", default=None,
                   help=f"bundled runtime state (default ${ENV_STATE_ROOT} or {STATE_ROOT})")
    p.add_argument("--docker-root", default=str(DOCKER_CONTAINERS),
                   help="Docker containers dir, read-only (default %(default)s)")
    p.add_argument("--containerd-state", default=str(DEFAULT_CONTAINERD_STATE),
                   help="containerd's state dir, for its task bundles (default %(default)s)")
    p.add_argument("--containers-storage", default=str(DEFAULT_CONTAINERS_STORAGE),
                   help="podman/CRI-O containers/storage root (default %(default)s)")
    p.add_argument("--cgroup-root", default=DEFAULT_CGROUP_ROOT, help="cgroup mount root (default %(default)s)")
    p.add_argument("--proc-root", default=DEFAULT_PROC_ROOT, help="procfs root (default %(default)s)")
    p.add_argument("--sys-root", default=DEFAULT_SYS_ROOT, help="sysfs root, for device names (default %(default)s)")
    _add_label_flags(p)


def _go_flag(p: argparse.ArgumentParser, name: str, **kw: object) -> None:
    """A cAdvisor flag under its own spelling (--name and Go's -name) and the dashed one."""
    spellings = [f"--{name}", f"-{name}"]
    if "_" in name:
        spellings.append("--" + name.replace("_", "-"))
    p.add_argument(*spellings, dest=name, **kw)  # type: ignore[arg-type]


def _add_label_flags(p: argparse.ArgumentParser) -> None:
    _go_flag(p, "store_container_labels", nargs="?", const="true", default=None, metavar="BOOL",
             help="every container label becomes container_label_<key> on every series, \"\" where a "
                  "container lacks it (default true, as cAdvisor; env vars never become labels)")
    _go_flag(p, "whitelisted_container_labels", default=None, metavar="K1,K2",
             help="with --store_container_labels=false: only these label keys")
    p.add_argument("--container-labels", default=None, metavar="K1,K2",
                   help="the older spelling of --store_container_labels=false --whitelisted_container_labels=K1,K2")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "exporter",
        help="serve cAdvisor-compatible container metrics on /metrics",
        description="Serve cAdvisor-compatible container metrics (cgroup v1/v2 + /proc) for Prometheus.",
    )
    p.add_argument("--web.listen-address", dest="listen_address", default=DEFAULT_LISTEN_ADDRESS,
                   help="address to listen on (default %(default)s)")
    p.add_argument("--web.config.file", dest="web_config_file", default=None,
                   help="exporter-toolkit style web config: TLS and basic auth")
    p.add_argument("--web.telemetry-path", dest="telemetry_path", default=DEFAULT_TELEMETRY_PATH,
                   help="path of the metrics endpoint (default %(default)s)")
    p.add_argument("--web.max-requests", dest="max_requests", type=int, default=DEFAULT_MAX_REQUESTS,
                   help="concurrent scrapes beyond this get 503 (default %(default)s; 0: no limit); "
                        "concurrent scrapes share one collection")
    _go_flag(p, "disable_metrics", default=None, metavar="KINDS",
             help="comma-separated metric kinds to switch off, replacing the default-off list as in "
                  "cAdvisor; " + describe_kinds())
    _go_flag(p, "enable_metrics", default=None, metavar="KINDS",
             help="comma-separated metric kinds to switch on; when set, every other cAdvisor kind is off")
    _go_flag(p, "enable_load_reader", nargs="?", const="true", default=None, metavar="BOOL",
             help="compute container_cpu_load_average_10s from the tasks' states (cAdvisor's milli-load "
                  "scale); off: 0, as in cAdvisor (default false)")
    p.add_argument("--disk-usage-interval", type=float, default=DEFAULT_DISK_USAGE_REFRESH_SECONDS,
                   metavar="SECONDS", help="how often a container's writable layer is measured, off the "
                                           "scrape path (default %(default)s; 0: never)")
    p.add_argument("--max-open-files", type=int, default=0, metavar="N",
                   help="the most cgroup and /proc files kept open between scrapes, each about 4 KiB of kernel "
                        "memory (default 0: all it reads, raising RLIMIT_NOFILE as needed)")
    p.add_argument("--disk-usage-max-cpu", type=float, default=DEFAULT_DISK_USAGE_MAX_CPU, metavar="FRACTION",
                   help="share of one CPU that measuring layers may use (default %(default)s)")
    p.add_argument("--no-raw-cgroups", action="store_true",
                   help="report only named containers (and the root), not every cgroup")
    _add_roots(p)
    p.set_defaults(func=run_exporter)

    s = subparsers.add_parser(
        "stats",
        help="live resource usage of containers, like docker stats",
        description="Live CPU, memory, network, block I/O and PIDs per container, from the exporter's readers.",
    )
    s.add_argument("containers", nargs="*", help="names or IDs (default: all running containers)")
    s.add_argument("--no-stream", action="store_true", help="print one snapshot and exit")
    s.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    s.add_argument("-a", "--all", action="store_true", help="also show unnamed (raw) cgroups")
    s.add_argument("--interval", type=float, default=1.0, help="seconds between samples (default 1)")
    _add_roots(s)
    s.set_defaults(func=run_stats)


def label_settings(args: argparse.Namespace) -> tuple[bool, tuple[str, ...]]:
    """(store all labels?, allowlist) from cAdvisor's two flags and the older --container-labels."""
    store_flag = getattr(args, "store_container_labels", None)
    allow_flag = getattr(args, "whitelisted_container_labels", None)
    older = getattr(args, "container_labels", None)
    allowlist = split_list(allow_flag or "") + split_list(older or "")
    store = parse_bool(store_flag) if store_flag is not None else older is None
    return store, allowlist


def config_from_args(args: argparse.Namespace) -> ExporterConfig:
    """ExporterConfig from the parsed flags (also usable by `hostwatch up`)."""
    web = getattr(args, "web_config_file", None)
    store, allowlist = label_settings(args)
    load = getattr(args, "enable_load_reader", None)
    return ExporterConfig(
        listen_address=getattr(args, "listen_address", DEFAULT_LISTEN_ADDRESS),
        web_config_file=Path(web) if web else None,
        disabled_metrics=resolve_disabled(getattr(args, "disable_metrics", None),
                                          getattr(args, "enable_metrics", None)),
        state_root=Path(args.state_root) if args.state_root else state_root(),
        docker_root=Path(args.docker_root),
        containerd_state=Path(args.containerd_state),
        containers_storage=Path(args.containers_storage),
        cgroup_root=args.cgroup_root,
        proc_root=args.proc_root,
        sys_root=args.sys_root,
        store_container_labels=store,
        label_allowlist=allowlist,
        raw_cgroups=not getattr(args, "no_raw_cgroups", False),
        telemetry_path=getattr(args, "telemetry_path", DEFAULT_TELEMETRY_PATH),
        max_requests=getattr(args, "max_requests", DEFAULT_MAX_REQUESTS),
        load_reader=parse_bool(load) if load is not None else False,
        disk_usage_refresh_seconds=getattr(args, "disk_usage_interval", DEFAULT_DISK_USAGE_REFRESH_SECONDS),
        disk_usage_max_cpu=getattr(args, "disk_usage_max_cpu", DEFAULT_DISK_USAGE_MAX_CPU),
        max_open_files=getattr(args, "max_open_files", 0),
    )


async def serve(config: ExporterConfig) -> None:
    """Serve until SIGINT/SIGTERM."""
    import asyncio

    from exporter.server import ExporterService

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with ExporterService(config) as service:
        print(f"hostwatch exporter listening on {config.listen_address} (port {service.port})",
              file=sys.stderr, flush=True)
        await stop.wait()


def run_exporter(args: argparse.Namespace) -> int:
    import asyncio

    from exporter.readers import UnsupportedHierarchy
    from exporter.webconfig import WebConfigError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
        asyncio.run(serve(config))
    except (ValueError, WebConfigError, UnsupportedHierarchy, OSError) as e:
        print(f"hostwatch exporter: {e}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def run_stats(args: argparse.Namespace) -> int:
    from exporter.discovery import Discovery
    from exporter.readers import UnsupportedHierarchy, open_reader
    from exporter.stats import StatsView, run

    try:
        config = config_from_args(args)
        reader = open_reader(config.cgroup_root, config.proc_root)
    except (ValueError, UnsupportedHierarchy) as e:
        print(f"hostwatch stats: {e}", file=sys.stderr)
        return EXIT_USAGE
    discovery = Discovery(reader, config.state_root, config.docker_root, raw_cgroups=True,
                          refresh_seconds=0.0)
    view = StatsView(discovery, config.proc_root, include_raw=args.all, select=args.containers)
    try:
        return run(view, stream=not args.no_stream, fmt=args.format, interval=args.interval)
    except KeyboardInterrupt:
        return 0
