"""The running shipper: sources -> transforms -> encode -> buffer -> Kafka sink, on one asyncio loop.

`Shipper` is the service `hostwatch ship` and `hostwatch up` run (start()/stop()). Every batch a
source emits is enriched with container metadata, optionally joined into multi-line events,
encoded as ECS JSON records keyed by container id, and pushed into the buffer; the sink's delivery
releases it from the buffer, and that runs the source's ack (its checkpoint or protocol ack).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Sequence
from pathlib import Path

from hostwatch.core.events import Batch, LogEvent
from hostwatch.core.paths import DOCKER_CONTAINERS, state_root
from logshipper import ecs
from logshipper.buffer import DiskBuffer, open_buffer
from logshipper.buffer.base import Buffer, RecordBatch, Run
from logshipper.codecs.dockerjson_lines import LineBatch
from logshipper.config import ShipperConfig
from logshipper.sinks.kafka import KafkaSink, topic_for
from logshipper.sources.base import Source
from logshipper.telemetry import ShipperMetrics
from logshipper.transforms.enrich import Enricher
from logshipper.transforms.multiline import Multiline

log = logging.getLogger("hostwatch.logshipper")


def build_sources(config: ShipperConfig, metrics: ShipperMetrics) -> list[Source]:
    """The sources the config enables; each imported only when enabled."""
    limit = config.max_message_bytes
    state = config.state.dir
    sources: list[Source] = []
    if config.docker.enabled:
        from logshipper.sources.docker_json import DockerJsonSource

        sources.append(DockerJsonSource(config.docker, metrics, max_message_bytes=limit,
                                        state_dir=state / "docker_json"))
    if config.journald.enabled:
        from logshipper.sources.journald import JournaldSource

        sources.append(JournaldSource(config.journald, metrics, max_message_bytes=limit, state_dir=state / "journald"))
    if config.forward.enabled:
        from logshipper.sources.fluent_forward import FluentForwardSource

        sources.append(FluentForwardSource(config.forward, metrics, max_message_bytes=limit))
    if config.gelf.enabled:
        from logshipper.sources.gelf import GelfSource

        sources.append(GelfSource(config.gelf, metrics, max_message_bytes=limit))
    return sources


class Shipper:
    def __init__(self, config: ShipperConfig, metrics: ShipperMetrics | None = None,
                 sources: Sequence[Source] | None = None, state_root_dir: Path | None = None,
                 docker_root: Path = DOCKER_CONTAINERS) -> None:
        if not config.kafka.brokers:
            raise ValueError("no Kafka brokers: give --kafka.brokers HOST:PORT (or run `hostwatch up`)")
        self.config = config
        self.metrics = metrics or ShipperMetrics()
        self.host_name = config.host_name or socket.gethostname()
        self.sources: list[Source] = list(sources) if sources is not None else build_sources(config, self.metrics)
        self.enricher = Enricher(state_root_dir or state_root(), docker_root)
        self.multiline = (Multiline(config.multiline, self._push, max_message_bytes=config.max_message_bytes)
                          if config.multiline.enabled else None)
        self.buffer: Buffer | None = None
        self.sink: KafkaSink | None = None
        self._started: list[Source] = []
        self._static_topic = "{" not in config.kafka.topic
        self._sequence = 0  # event.sequence: increasing across this shipper's events

    async def start(self) -> None:
        cfg = self.config
        cfg.state.dir.mkdir(parents=True, exist_ok=True)
        self.buffer = open_buffer(cfg.buffer, cfg.state.dir, self.metrics)
        await self.buffer.open()
        self.sink = KafkaSink(cfg.kafka, self.buffer, self.metrics)
        await self.sink.start()
        if isinstance(self.buffer, DiskBuffer):
            self.buffer.keep_in_window = self.sink.keeping_up
        if self.multiline is not None:
            await self.multiline.start()
        try:
            for source in self.sources:
                await source.start(self.emit)
                self._started.append(source)
        except BaseException:
            await self.stop()
            raise
        log.info("shipping %s into Kafka %s topic %s", ", ".join(s.name for s in self._started),
                 ",".join(cfg.kafka.brokers), cfg.kafka.topic)

    async def stop(self) -> None:
        """Stop intake first, then flush what is buffered for as long as the sink allows."""
        for source in reversed(self._started):
            try:
                await source.stop()
            except Exception:  # noqa: BLE001 - one source failing to stop must not keep the rest running
                log.exception("stopping source %s", source.name)
        self._started.clear()
        if self.multiline is not None:
            await self.multiline.stop()
        if self.sink is not None:
            await self.sink.stop()
            self.sink = None
        if self.buffer is not None:
            await self.buffer.close()
            self.buffer = None

    async def emit(self, batch: Batch) -> None:
        """What sources call: count, enrich, then join lines or encode and buffer."""
        if type(batch) is LineBatch and batch.columnar and self.multiline is None:
            await self._push_lines(batch)
            return
        if not batch.events:
            if batch.ack is not None:
                batch.ack()
            return
        self.metrics.received.labels(batch.source).inc(len(batch.events))
        self.enricher.apply(batch.events)
        if self.multiline is not None:
            await self.multiline.push(batch)
        else:
            await self._push(batch)

    async def _push(self, batch: Batch) -> None:
        assert self.buffer is not None, "emit before start"
        runs = self.encode(batch.events)
        oldest = min(e.time_ns for e in batch.events) if batch.events else time.time_ns()
        await self.buffer.push(RecordBatch(None, batch.ack, batch.source, oldest, runs=runs,
                                           replayable=batch.replayable).sized())

    async def _push_lines(self, batch: LineBatch) -> None:
        """docker_json's columns (one file, so one container): enriched once, rendered from a template."""
        assert self.buffer is not None, "emit before start"
        n = len(batch)
        self.metrics.received.labels(batch.source).inc(n)
        cid = batch.ref.container_id
        name = image = None
        labels: dict[str, str] | None = None
        if cid is not None:
            meta = self.enricher.lookup(cid)
            cid, name, image, labels = meta.container_id, meta.container_name, meta.image, meta.labels
        created, seq = self._next_sequence(n)
        values = ecs.render_lines(batch, self.host_name, created, seq, cid, name, image, labels)
        template = self.config.kafka.topic
        topic = template if self._static_topic else topic_for(template, labels or {})
        run = Run(topic, cid.encode() if cid else None, values)
        await self.buffer.push(RecordBatch(None, batch.ack, batch.source, batch.oldest_ns, runs=[run],
                                           replayable=batch.replayable).sized())

    def _next_sequence(self, n: int) -> tuple[int, int]:
        """event.created for a batch of n events, and the event.sequence of its first."""
        created = time.time_ns()
        seq = self._sequence = max(self._sequence, created)
        self._sequence += n
        return created, seq

    def encode(self, events: list[LogEvent]) -> list[Run]:
        """Records of `events` in order, consecutive ones of one topic and key in one run."""
        host = self.host_name
        created, seq = self._next_sequence(len(events))
        template = self.config.kafka.topic
        static = self._static_topic
        encode = ecs.encode
        runs: list[Run] = []
        last: Run | None = None
        for i, e in enumerate(events):
            topic = template if static else topic_for(template, e.labels or {})
            key = e.container_id.encode() if e.container_id else None
            value = encode(e, host, created, seq + i)
            if last is not None and last.key == key and last.topic == topic:
                last.values.append(value)
            else:
                last = Run(topic, key, [value])
                runs.append(last)
        return runs
