"""container_pressure_{cpu,memory,io}_{stalled,waiting}_seconds_total from *.pressure (PSI)."""

from __future__ import annotations

from collections.abc import Iterable

from exporter.collectors.base import Scrape, counter, nonempty
from exporter.families import Family


class PressureCollector:
    name = "pressure"

    def collect(self, scrape: Scrape) -> Iterable[Family]:
        fams = {}
        for res, what in (("cpu", "CPU"), ("memory", "memory"), ("io", "IO")):
            fams[res] = (
                counter(
                    f"container_pressure_{res}_stalled_seconds_total",
                    f"Total time duration no tasks in the container could make progress due to {what} congestion.",
                ),
                counter(
                    f"container_pressure_{res}_waiting_seconds_total",
                    f"Total time duration tasks in the container have waited due to {what} congestion.",
                ),
            )
        reader = scrape.reader
        for t in scrape.targets:
            try:
                psi = reader.pressure(t.cg)
            except (OSError, ValueError):
                scrape.error(self.name)
                continue
            for res, p in psi.items():
                stalled, waiting = fams[res]
                if p.full_us is not None:
                    stalled.add(t.labels, p.full_us / 1e6)
                waiting.add(t.labels, p.some_us / 1e6)
        return nonempty(*(f for pair in fams.values() for f in pair))
