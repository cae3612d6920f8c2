"""The exporter core: discovery + collectors -> families, with per-collector errors and timing.

`Exporter` is a prometheus_client collector (`collect()`), so it can be registered in any
`CollectorRegistry`; the HTTP server uses `render()`, which produces the same bytes faster.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import ProcessCollector
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import CollectorRegistry

from exporter.collectors import GroupCollector, Scrape, build_collectors
from exporter.config import ExporterConfig
from exporter.discovery import Discovery
from exporter.families import Family, render, render_chunks
from exporter.readers import CgroupReader, open_reader
from hostwatch.core.telemetry import Collector

log = logging.getLogger("hostwatch.exporter")


class Exporter:
    def __init__(self, config: ExporterConfig, reader: CgroupReader | None = None,
                 telemetry: Sequence[Collector] = ()) -> None:
        """`telemetry`: other components' collectors (the shipper's, ...) served on the same /metrics."""
        self.config = config
        self.telemetry = list(telemetry)
        self.reader = reader or open_reader(config.cgroup_root, config.proc_root)
        self.discovery = Discovery(
            self.reader,
            config.state_root,
            config.docker_root,
            config.label_allowlist,
            raw_cgroups=config.raw_cgroups,
            refresh_seconds=config.metadata_refresh_seconds,
        )
        disabled = config.disabled_metrics
        self.collectors: list[GroupCollector] = build_collectors(
            disabled,
            config.proc_root,
            config.sys_root,
            config.etc_root,
            self.reader.has_pressure(),
            config.spec_refresh_seconds,
            config.metadata_refresh_seconds,
        )
        self.errors: Counter[str] = Counter({c.name: 0 for c in self.collectors} | {"discovery": 0})
        self.scrapes = 0
        self._lock = threading.Lock()
        self._process: ProcessCollector | None = None
        if config.self_process_metrics:
            self._process = ProcessCollector(namespace="", registry=None)

    # prometheus_client Collector protocol
    def describe(self) -> list[Metric]:
        return []

    def collect(self, now: float | None = None, self_metrics: bool = True) -> list[Metric]:
        """One scrape's families. Never raises: failures become counted errors and missing series."""
        with self._lock:
            t0 = time.perf_counter()
            try:
                targets = self.discovery.targets()
            except Exception:
                log.exception("discovery failed")
                self.errors["discovery"] += 1
                targets = []
            scrape = Scrape(targets, self.reader, now)
            # Sequential on purpose: the cost is kernfs open/read time, which measured no faster
            # (and less steady) spread over worker threads.
            out: list[Metric] = []
            durations: dict[str, float] = {}
            for c in self.collectors:
                fams, durations[c.name] = self._run(c, scrape)
                out.extend(fams)
            self.errors.update(scrape.errors)
            self.scrapes += 1
            if self_metrics:
                out.extend(self._self_metrics(durations, time.perf_counter() - t0, len(targets)))
                for component in self.telemetry:
                    out.extend(component.collect())
            return out

    @staticmethod
    def _run(c: GroupCollector, scrape: Scrape) -> tuple[list[Family], float]:
        t = time.perf_counter()
        try:
            fams = list(c.collect(scrape))
        except Exception:
            log.exception("collector %s failed", c.name)
            scrape.error(c.name)
            fams = []
        return fams, time.perf_counter() - t

    def _self_metrics(self, durations: dict[str, float], total: float, targets: int) -> Iterable[Metric]:
        dur = Family("hostwatch_exporter_scrape_duration_seconds", "Time this scrape spent collecting.", "gauge")
        dur.add(None, total)
        per = Family(
            "hostwatch_exporter_collector_duration_seconds",
            "Time each collector spent in this scrape.",
            "gauge",
            ("collector",),
        )
        for name, d in durations.items():
            per.add(None, d, name)
        errs = Family(
            "hostwatch_exporter_collector_errors_total",
            "Files that could not be read or parsed, and collector failures, by collector.",
            "counter",
            ("collector",),
        )
        for name in sorted(self.errors):
            errs.add(None, self.errors[name], name)
        scrapes = Family("hostwatch_exporter_scrapes_total", "Scrapes served.", "counter")
        scrapes.add(None, self.scrapes)
        cgroups = Family("hostwatch_exporter_cgroups", "Cgroups reported in this scrape.", "gauge")
        cgroups.add(None, targets)
        fams: list[Metric] = [dur, per, errs, scrapes, cgroups]
        if self._process is not None:
            fams.extend(self._process.collect())
        return fams

    def render(self, openmetrics: bool = False) -> bytes:
        return render(self.collect(), openmetrics)

    def render_chunks(self, openmetrics: bool = False) -> Iterator[bytes]:
        return render_chunks(self.collect(), openmetrics)

    def registry(self) -> CollectorRegistry:
        """A private registry holding only this exporter (for prometheus_client's own tooling)."""
        reg = CollectorRegistry(auto_describe=False)
        reg.register(self)  # type: ignore[arg-type]
        return reg
