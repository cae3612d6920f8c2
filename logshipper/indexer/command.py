"""`hostwatch index`: the Kafka -> Elasticsearch indexer on its own; `hostwatch search`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from hostwatch.core.config import EXIT_USAGE, ConfigError, add_config_flags, load_config
from logshipper.indexer.config import IndexerConfig

DEFAULT_LISTEN_ADDRESS = ":9102"  # its own /metrics when it runs alone; `up` serves it on :9100


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "index", help="index the shipper's Kafka topic into Elasticsearch (a consumer group member)",
        description="Consume the shipper's topic as a member of a consumer group and bulk-index every event "
                    "into Elasticsearch (_id = event.id), committing offsets only after success.")
    add_config_flags(p, IndexerConfig)
    p.add_argument("--web.listen-address", dest="listen_address", default=DEFAULT_LISTEN_ADDRESS,
                   help="address of its own /metrics (default %(default)s)")
    p.set_defaults(func=run_index)
    from logshipper.search import register as register_search

    register_search(sub)


def run_index(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(IndexerConfig, args)
        if not config.kafka.brokers:
            raise ConfigError("no Kafka brokers: give --kafka.brokers HOST:PORT,...")
    except ConfigError as e:
        print(f"hostwatch index: {e}", file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(_serve(config, args.listen_address))


async def _serve(config: IndexerConfig, listen_address: str) -> int:
    from hostwatch.core.telemetry import serve_alone
    from logshipper.indexer.service import Indexer

    indexer = Indexer(config)
    return await serve_alone("index", indexer, [indexer.metrics], listen_address,
                             f"{config.kafka.topic} -> {','.join(config.elasticsearch.hosts)} "
                             f"(group {config.kafka.group})", start_errors=(OSError, RuntimeError),
                             failed=lambda: indexer.failure is not None)
