"""`hostwatch alerting` (argparse); `register(subparsers)` adds it (hostwatch/cli.py wires it)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable, Sequence

from alerting.settings import AlertingConfig
from hostwatch.core.config import ConfigError, add_flags, apply_flags
from hostwatch.core.gctune import settle_after_start

USAGE_ERROR = 125


SubcommandHook = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def register(subparsers: argparse._SubParsersAction, subcommands: Sequence[SubcommandHook] = ()) -> None:  # type: ignore[type-arg]
    """Adds `alerting`; each of `subcommands` may add its own `hostwatch alerting <verb>` (e.g. on-call's
    `who-is-on-call`), setting its own `func`; without a verb, `alerting` runs the service."""
    p = subparsers.add_parser(
        "alerting",
        help="Alertmanager-compatible alert routing with HA de-duplication through Kafka",
        description=("Receive alerts (Alertmanager API v2: Prometheus and amtool work unchanged), group and route "
                     "them as an Alertmanager configuration file says, page whoever is on call through escalation "
                     "policies, and notify exactly once across replicas that share a Kafka topic. Without Kafka: "
                     "one replica, state in --state.dir. The page at / shows alerts, silences, acks, on-call."),
    )
    add_flags(p, AlertingConfig)
    p.add_argument("--log.level", dest="log_level", default="info", choices=("debug", "info", "warn", "error"),
                   help="log level (default %(default)s)")
    p.set_defaults(func=run)
    if subcommands:
        verbs = p.add_subparsers(dest="alerting_cmd", metavar="COMMAND", required=False)
        for hook in subcommands:
            hook(verbs)


def config_from_args(args: argparse.Namespace) -> AlertingConfig:
    return apply_flags(AlertingConfig(), args)


async def serve(config: AlertingConfig) -> None:
    from alerting.service import AlertingService

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    service = AlertingService(config)
    reload_requested = asyncio.Event()
    loop.add_signal_handler(signal.SIGHUP, reload_requested.set)
    async with service:
        settle_after_start()
        print(f"hostwatch alerting {service.replica} listening on {service.address} (port {service.port})",
              file=sys.stderr, flush=True)
        while not stop.is_set():
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(reload_requested.wait())]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()
            if reload_requested.is_set():
                reload_requested.clear()
                try:
                    await service.reload()
                except ConfigError as e:
                    print(f"hostwatch alerting: reload failed: {e}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    level = {"warn": "WARNING"}.get(args.log_level, args.log_level.upper())
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args)
        asyncio.run(serve(config))
    except ConfigError as e:
        print(f"hostwatch alerting: {e}", file=sys.stderr)
        return USAGE_ERROR
    except OSError as e:
        print(f"hostwatch alerting: {e.strerror or e}", file=sys.stderr)
        return USAGE_ERROR
    return 0
