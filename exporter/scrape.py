"""The exporter core: discovery + collectors -> families, with per-collector errors and timing.

`Exporter` is a prometheus_client collector (`collect()`), so it can be registered in any
`CollectorRegistry`; the HTTP server uses `render()`, which produces the same bytes faster, and
shares one collection between concurrent scrapes (exporter.server).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client.metrics_core import Metric
from prometheus_client.registry import CollectorRegistry

from exporter.collectors import GroupCollector, Scrape, build_collectors
from exporter.collectors.load import LiveOwners
from exporter.collectors.version import VersionCollector
from exporter.config import ExporterConfig
from exporter.discovery import Discovery
from exporter.diskusage import DiskUsage
from exporter.families import Family, render, render_chunks
from exporter.readers import CgroupReader, open_reader, procfs
from exporter.runtimes import list_foreign
from exporter.selfprocess import SelfProcess
from hostwatch.core.telemetry import Collector

log = logging.getLogger("hostwatch.exporter")


def _boot_time(proc_root: str) -> float | None:
    """Boot time truncated to the minute, the earliest cAdvisor dates a cgroup from."""
    try:
        bt = procfs.boot_time(proc_root)
    except (OSError, ValueError):
        return None
    return None if bt is None else float(bt - bt % 60)



@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic collector off meanwhile, back on after only if it was on (an outer pause stays)."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


class Exporter:
    def __init__(self, config: ExporterConfig, reader: CgroupReader | None = None,
                 telemetry: Sequence[Collector] = ()) -> None:
        """`telemetry`: other components' collectors (the shipper's, ...) served on the same /metrics."""
        self.config = config
        self.telemetry = list(telemetry)
        self.reader = reader or open_reader(config.cgroup_root, config.proc_root, max_open_files=config.max_open_files)
        self.discovery = Discovery(
            self.reader,
            config.state_root,
            config.docker_root,
            config.label_allowlist,
            raw_cgroups=config.raw_cgroups,
            refresh_seconds=config.metadata_refresh_seconds,
            store_labels=config.store_container_labels,
            foreign=lambda: list_foreign(config.containerd_state, config.containers_storage),
            boot_time=_boot_time(config.proc_root),
        )
        self.disk_usage = DiskUsage(config.disk_usage_refresh_seconds, config.disk_usage_max_cpu)
        disabled = config.disabled_metrics
        self.collectors: list[GroupCollector] = build_collectors(
            disabled,
            config.proc_root,
            config.sys_root,
            config.etc_root,
            self.reader.has_pressure(),
            config.spec_refresh_seconds,
            config.metadata_refresh_seconds,
            files=getattr(self.reader, "files", None),
            disk_usage=self.disk_usage,
            load_reader=config.load_reader,
        )
        self.version = VersionCollector(config.etc_root)
        self.errors: Counter[str] = Counter({c.name: 0 for c in self.collectors} | {"discovery": 0})
        self.scrapes = 0  # /metrics requests served (the server counts them; a bare collect() is one)
        self.collections = 0  # collections run: concurrent scrapes share one
        self.rejected = 0  # scrapes refused beyond --web.max-requests
        self._lock = threading.Lock()
        self._process: SelfProcess | None = None
        if config.self_process_metrics:
            self._process = SelfProcess()

    # prometheus_client Collector protocol
    def describe(self) -> list[Metric]:
        return []

    def collect(self, now: float | None = None, self_metrics: bool = True, request: bool = True) -> list[Metric]:
        """One collection's families. Never raises: failures become counted errors and missing series.
        `request`: count it as a scrape served (the server counts its requests itself)."""
        # A collection allocates a few hundred thousand short-lived objects and no cycles: the cyclic
        # collector would only walk them again and again meanwhile.
        with self._lock, gc_paused():
            return self._collect(now, self_metrics, request)

    def _collect(self, now: float | None, self_metrics: bool, request: bool) -> list[Metric]:
        t0 = time.perf_counter()
        failed = 0
        try:
            targets = self.discovery.targets()
            discovered = True
        except Exception:
            log.exception("discovery failed")
            self.errors["discovery"] += 1
            failed = 1
            targets = []
            discovered = False
        files = getattr(self.reader, "files", None)
        if files is not None:
            files.prefetch()  # every kept file in one tight loop of preads, before any parsing
        scrape = Scrape(targets, self.reader, now)
        # Sequential on purpose: the cost is kernfs read time, which measured no faster (and less
        # steady) spread over worker threads.
        out: list[Metric] = list(self.version.collect(scrape))
        durations: dict[str, float] = {}
        try:
            for c in self.collectors:
                fams, durations[c.name], crashed = self._run(c, scrape)
                failed |= crashed
                out.extend(fams)
        finally:
            if files is not None:
                files.end_prefetch()
        scrape_error = Family("container_scrape_error",
                              "1 if there was an error while getting container metrics, 0 otherwise", "gauge")
        scrape_error.add(None, failed)
        out.append(scrape_error)
        if discovered:  # close the kept files of cgroups that are gone (not all of them on a failed walk)
            forget = getattr(self.reader, "forget", None)
            if forget is not None:
                forget(LiveOwners({t.cg for t in targets}))
        self.errors.update(scrape.errors)
        self.errors["discovery"] += self.discovery.errors
        self.discovery.errors = 0
        self.collections += 1
        if request:
            self.scrapes += 1
        if self_metrics:
            out.extend(self._self_metrics(durations, time.perf_counter() - t0, len(targets)))
            for component in self.telemetry:
                out.extend(component.collect())
        return out

    @staticmethod
    def _run(c: GroupCollector, scrape: Scrape) -> tuple[list[Family], float, int]:
        t = time.perf_counter()
        try:
            fams = list(c.collect(scrape))
            crashed = 0
        except Exception:
            log.exception("collector %s failed", c.name)
            scrape.error(c.name)
            fams = []
            crashed = 1
        return fams, time.perf_counter() - t, crashed

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
        collections = Family("hostwatch_exporter_collections_total",
                             "Collections run; concurrent scrapes share one.", "counter")
        collections.add(None, self.collections)
        rejected = Family("hostwatch_exporter_scrapes_rejected_total",
                          "Scrapes answered 503 because --web.max-requests were in flight.", "counter")
        rejected.add(None, self.rejected)
        cgroups = Family("hostwatch_exporter_cgroups", "Cgroups reported in this scrape.", "gauge")
        cgroups.add(None, targets)
        files = getattr(self.reader, "files", None)
        open_files = Family("hostwatch_exporter_open_files",
                            "cgroup and /proc files kept open between scrapes (read again with pread).", "gauge")
        open_files.add(None, files.open_count if files is not None else 0)
        walks = Family("hostwatch_exporter_disk_usage_walks_total",
                       "Writable layers measured, in the background.", "counter")
        walks.add(None, self.disk_usage.walks)
        fams: list[Metric] = [dur, per, errs, scrapes, collections, rejected, cgroups, open_files, walks]
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

    def close(self) -> None:
        """Stop the disk-usage walker and close the kept files."""
        self.disk_usage.close()
        with self._lock:
            close = getattr(self.reader, "close", None)
            if close is not None:
                close()
