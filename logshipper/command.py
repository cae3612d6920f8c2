"""`hostwatch ship`: the log shipper on its own (inside `hostwatch up` it shares the agent's /metrics)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from hostwatch.core.config import EXIT_USAGE, ConfigError, add_config_flags, load_config
from hostwatch.core.gctune import settle_after_start
from logshipper.config import ShipperConfig

DEFAULT_LISTEN_ADDRESS = ":9101"  # its own /metrics when it runs alone; `up` serves it on :9100


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "ship", help="ship container logs (json-file, journald, fluentd, gelf) into Kafka",
        description="Tail Docker json-file logs and journald, receive the fluentd (forward) and gelf log "
                    "drivers, and ship every line into Kafka as one ECS JSON record, losing nothing.")
    add_config_flags(p, ShipperConfig)
    p.add_argument("--web.listen-address", dest="listen_address", default=DEFAULT_LISTEN_ADDRESS,
                   help="address of its own /metrics (default %(default)s)")
    p.set_defaults(func=run_ship)


def run_ship(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(ShipperConfig, args)
        if not config.kafka.brokers:
            raise ConfigError("no Kafka brokers: give --kafka.brokers HOST:PORT,... (or use `hostwatch up`)")
    except ConfigError as e:
        print(f"hostwatch ship: {e}", file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(_serve(config, args.listen_address))


async def _serve(config: ShipperConfig, listen_address: str) -> int:
    from hostwatch.core.telemetry import serve_alone
    from logshipper.pipeline import Shipper

    shipper = Shipper(config)
    settle_after_start()
    return await serve_alone("ship", shipper, [shipper.metrics], listen_address,
                             f"shipping to Kafka {','.join(config.kafka.brokers)} topic {config.kafka.topic}")
