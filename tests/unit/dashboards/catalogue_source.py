"""The source of dashboards/exported.py: every metric family the agent's components define, read from
the components themselves.

- the exporter: its real `Exporter` scraping the cgroup v1, v2 and hybrid fixture trees (every
  collector, with its own self-metrics and prometheus_client's process_* families);
- the shipper, the indexer and the alerting replicas: their metric classes (`ShipperMetrics`,
  `IndexerMetrics`, `AlertingMetrics`), whose prometheus_client metrics know their names, types and
  label names before any sample exists.

dashboards/ may not import those packages (the layer rule), so the catalogue is generated here, as a
golden file, and `test_catalogue_is_current` fails while dashboards/exported.py is stale.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.metrics_core import Metric

from alerting.metrics import AlertingMetrics
from exporter.config import ExporterConfig
from exporter.scrape import Exporter
from logshipper.indexer.telemetry import IndexerMetrics
from logshipper.telemetry import ShipperMetrics

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures" / "exporter"
TREES = ("v1", "v2", "hybrid")
GENERATED = REPO / "dashboards" / "exported.py"
# Labels that depend on the exporter's configuration (--container-labels), not on the code.
_CONFIGURED_LABEL_PREFIX = "container_label_"

MAX_LINE = 120  # ruff's line length: the generated file is checked like any other

Row = tuple[str, str, str, tuple[str, ...]]  # (family name as queried, type, component, labels)


def _queried_name(metric: Metric) -> str:
    """The name PromQL uses: counters end in _total (prometheus_client's Metric.name lacks it)."""
    return metric.name + "_total" if metric.type == "counter" else metric.name


def exporter_rows() -> Iterator[Row]:
    for tree in TREES:
        config = ExporterConfig(
            cgroup_root=str(FIXTURES / tree), proc_root=str(FIXTURES / "proc"), sys_root=str(FIXTURES / "sys"),
            etc_root=str(FIXTURES / "etc"), state_root=FIXTURES / "state", docker_root=FIXTURES / "docker",
            self_process_metrics=True, spec_refresh_seconds=0.0,
        )
        for fam in Exporter(config).collect(now=0.0, self_metrics=True):
            labels = {k for s in fam.samples for k in s.labels if not k.startswith(_CONFIGURED_LABEL_PREFIX)}
            yield _queried_name(fam), fam.type, "exporter", tuple(sorted(labels))


def wrapper_rows(component: str, owner: object) -> Iterator[Row]:
    """The prometheus_client metrics an object holds as attributes (its registry's definitions)."""
    for value in vars(owner).values():
        if isinstance(value, MetricWrapperBase):
            name, typ = value._name, value._type  # noqa: SLF001 - prometheus_client keeps them here
            labels = tuple(sorted(value._labelnames))  # noqa: SLF001
            yield (name + "_total" if typ == "counter" else name), typ, component, labels


def component_rows() -> Iterator[Row]:
    yield from wrapper_rows("logshipper", ShipperMetrics())
    yield from wrapper_rows("indexer", IndexerMetrics())
    yield from wrapper_rows("alerting", AlertingMetrics())


def merge(rows: Iterable[Row]) -> list[Row]:
    """One row per family: the union of its labels over every tree it appears in."""
    out: dict[str, Row] = {}
    for name, typ, component, labels in rows:
        old = out.get(name)
        if old is not None:
            if (old[1], old[2]) != (typ, component):
                raise ValueError(f"{name} defined twice: {old[1]}/{old[2]} and {typ}/{component}")
            labels = tuple(sorted(set(old[3]) | set(labels)))
        out[name] = (name, typ, component, labels)
    return [out[k] for k in sorted(out)]


def render(rows: list[Row]) -> str:
    lines = [
        '"""Every metric family the agent exports: the exporter (cAdvisor\'s names plus hostwatch\'s extras),',
        "the log shipper, the indexer and the alerting replicas, with type and label names.",
        "",
        "GENERATED from the components' own definitions by tests/unit/dashboards/catalogue_source.py; do",
        "not edit. `HOSTWATCH_UPDATE_CATALOGUE=1 pytest tests/unit/dashboards` regenerates it, and the unit",
        "tests fail while it is stale: a renamed metric then breaks the dashboards build.",
        '"""',
        "",
        "# (name as PromQL spells it, type, component, label names)",
        "FAMILIES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (",
    ]
    for name, typ, component, labels in rows:
        inner = ", ".join(f'"{label}"' for label in labels)
        label_tuple = f"({inner},)" if len(labels) == 1 else f"({inner})"
        line = f'    ("{name}", "{typ}", "{component}", {label_tuple}),'
        if len(line) > MAX_LINE:
            line = f'    ("{name}", "{typ}", "{component}",\n     {label_tuple}),'
        lines.append(line)
    lines.append(")")
    return "\n".join(lines) + "\n"


def generate() -> str:
    return render(merge([*exporter_rows(), *component_rows()]))
