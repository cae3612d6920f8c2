"""The metric catalogue the dashboards and alert rules are written against.

Every name a panel or rule may use is here, with its type and labels: the families the agent's own
components define (dashboards/exported.py, generated from them) plus the series Prometheus itself
makes (`up`, `ALERTS`). A panel that names anything else fails the build, naming the panel.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from dashboards.exported import FAMILIES

# Job names the dashboards and rules select on; compose/prometheus/prometheus.yml uses the same.
JOB_AGENT = "hostwatch"
JOB_INDEXER = "hostwatch-indexer"
JOB_ALERTING = "hostwatch-alerting"

# Prometheus attaches these to every scraped series.
TARGET_LABELS = frozenset({"instance", "job"})

# Names the exporter exports that plain cAdvisor does not (everything hostwatch_* is ours as well).
HOSTWATCH_EXTRAS = frozenset({
    "container_namespace_info",
    "container_memory_events_total",
    "machine_memory_available_bytes",
    "machine_boot_time_seconds",
})

COMPONENT_PROMETHEUS = "prometheus"


@dataclass(frozen=True)
class Metric:
    """One series name as PromQL spells it (a histogram has three: _bucket, _sum, _count)."""

    name: str
    type: str
    component: str
    labels: frozenset[str] | None  # None: open (ALERTS carries each rule's own labels)

    @property
    def cadvisor(self) -> bool:
        """Whether a host running plain cAdvisor (and Prometheus) has this series too."""
        if self.component == COMPONENT_PROMETHEUS:
            return True
        return (self.component == "exporter" and self.name.startswith(("container_", "machine_"))
                and self.name not in HOSTWATCH_EXTRAS)

    def has_label(self, label: str) -> bool:
        return self.labels is None or label in self.labels or label in TARGET_LABELS


class UnknownMetric(KeyError):
    def __init__(self, name: str, known: Iterable[str]) -> None:
        close = difflib.get_close_matches(name, list(known), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        super().__init__(f"{name} is not a metric the agent exports{hint}")
        self.name = name

    def __str__(self) -> str:
        return str(self.args[0])


def _series(name: str, typ: str, component: str, labels: tuple[str, ...]) -> Iterator[Metric]:
    if typ == "histogram":
        yield Metric(f"{name}_bucket", typ, component, frozenset(labels) | {"le"})
        yield Metric(f"{name}_sum", typ, component, frozenset(labels))
        yield Metric(f"{name}_count", typ, component, frozenset(labels))
    else:
        yield Metric(name, typ, component, frozenset(labels))


PROMETHEUS_SERIES = (
    Metric("up", "gauge", COMPONENT_PROMETHEUS, frozenset()),
    Metric("ALERTS", "gauge", COMPONENT_PROMETHEUS, None),
)


class Catalogue:
    def __init__(self, families: Iterable[tuple[str, str, str, tuple[str, ...]]] = FAMILIES,
                 extra: Iterable[Metric] = PROMETHEUS_SERIES) -> None:
        self._by_name: dict[str, Metric] = {}
        for row in families:
            for m in _series(*row):
                self._by_name[m.name] = m
        for m in extra:
            self._by_name[m.name] = m

    def __getitem__(self, name: str) -> Metric:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownMetric(name, self._by_name) from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __iter__(self) -> Iterator[Metric]:
        return iter(self._by_name.values())

    def name(self, name: str) -> str:
        """`name`, once it is known to be exported: panels spell every metric through this."""
        return self[name].name
