"""container_start_time_seconds, container_creation_time_seconds, container_last_seen,
container_health_state, container_oom_events_total."""

from __future__ import annotations

from collections.abc import Iterable

from exporter.collectors.base import BlockCache, Scrape, counter, gauge, nonempty
from exporter.families import Family
from exporter.readers import procfs

# container_health_state: cAdvisor's getContainerHealthState (1 healthy, -1 no healthcheck, 0 otherwise)
_HEALTH = {"healthy": 1, "": -1}


class LifecycleCollector:
    name = "lifecycle"

    def __init__(self) -> None:
        self.blocks = BlockCache()  # dates and health change rarely: rendered once per change

    def collect(self, scrape: Scrape) -> Iterable[Family]:
        created = gauge("container_creation_time_seconds", "Container creation time since unix epoch in seconds.")
        start = gauge("container_start_time_seconds", "Start time of the container since unix epoch in seconds.")
        seen = gauge("container_last_seen", "Last time a container was seen by the exporter")
        health = gauge("container_health_state", "The result of the container's health check")
        now = scrape.now
        blocks = self.blocks
        blocks.prune(scrape.targets)
        add_seen = seen.rows.append
        for t in scrape.targets:
            meta = t.meta
            ls = t.labels
            ref = meta.ref
            state = _HEALTH.get(ref.health if ref is not None else "", 0)
            key = (ls, meta.created_at, meta.started_at, state)
            made = blocks.get(t.cg, key)
            if made is None:
                made = blocks.put(t.cg, key, [
                    created.block([(ls, (), meta.created_at)] if meta.created_at is not None else []),
                    start.block([(ls, (), meta.started_at)] if meta.started_at is not None else []),
                    health.block([(ls, (), state)]),
                ])
            c, s, h = made
            if c.rows:
                created.add_block(c)
            if s.rows:
                start.add_block(s)
            add_seen((ls, (), now))
            health.add_block(h)
        return nonempty(created, start, seen, health)


class OomCollector:
    """oom_kill from memory.events (v2) / memory.oom_control (v1, kernel >= 4.13), and for id="/" the
    host's count in /proc/vmstat: no kmsg parsing."""

    name = "oom_event"

    def __init__(self, proc_root: str = "/proc") -> None:
        self.proc_root = proc_root

    def collect(self, scrape: Scrape) -> Iterable[Family]:
        oom = counter("container_oom_events_total", "Count of out of memory events observed for the container")
        reader = scrape.reader
        for t in scrape.targets:
            try:
                if t.cg == "/":
                    kills = procfs.vmstat(self.proc_root).get("oom_kill")
                else:
                    kills = reader.oom_kills(t.cg)
            except (OSError, ValueError):
                scrape.error(self.name)
                continue
            if kills is not None:
                oom.add(t.labels, kills)
        return nonempty(oom)
