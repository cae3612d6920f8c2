"""container_start_time_seconds, container_last_seen, container_oom_events_total."""

from __future__ import annotations

from collections.abc import Iterable

from exporter.collectors.base import Scrape, counter, gauge, nonempty
from exporter.families import Family


class LifecycleCollector:
    name = "lifecycle"

    def collect(self, scrape: Scrape) -> Iterable[Family]:
        start = gauge("container_start_time_seconds", "Start time of the container since unix epoch in seconds.")
        seen = gauge("container_last_seen", "Last time a container was seen by the exporter")
        now = scrape.now
        for t in scrape.targets:
            if t.meta.started_at is not None:
                start.add(t.labels, t.meta.started_at)
            seen.add(t.labels, now)
        return nonempty(start, seen)


class OomCollector:
    """oom_kill from memory.events (v2) / memory.oom_control (v1, kernel >= 4.13): no kmsg parsing."""

    name = "oom_event"

    def collect(self, scrape: Scrape) -> Iterable[Family]:
        oom = counter("container_oom_events_total", "Count of out of memory events observed for the container")
        reader = scrape.reader
        for t in scrape.targets:
            if t.cg == "/":
                continue
            try:
                kills = reader.oom_kills(t.cg)
            except (OSError, ValueError):
                scrape.error(self.name)
                continue
            if kills is not None:
                oom.add(t.labels, kills)
        return nonempty(oom)
