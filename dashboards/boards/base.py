"""What every dashboard shares: its identity, the dashboard object, the host/container variables."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from grafanalib.core import Dashboard, Template, Templating, Time

from dashboards.catalogue import Catalogue
from dashboards.exprs import HOST, NAMED_MATCHER, Exprs
from dashboards.panels import Cell, flow, variable

# Grafana 10/11 dashboards; grafanalib 0.7.1 would say 12, which turns modern panels into legacy ones.
SCHEMA_VERSION = 39
TAG = "hostwatch"
REFRESH = "30s"
DEFAULT_RANGE = Time("now-1h", "now")
ALL_HOSTS = ".*"
ALL_NAMED = ".+"  # every container that has a name (raw cgroups have none)


@dataclass(frozen=True)
class Board:
    name: str  # the file name and what `hostwatch dashboards render --dashboard` takes
    title: str
    description: str
    cells: Callable[[Exprs], Sequence[Cell]]
    variables: Callable[[Exprs], Sequence[Template]]

    @property
    def uid(self) -> str:
        return f"hostwatch-{self.name}"

    def dashboard(self, catalogue: Catalogue) -> Dashboard:
        e = Exprs(catalogue)
        return Dashboard(
            title=self.title, uid=self.uid, description=self.description, tags=[TAG],
            panels=flow(self.cells(e)), templating=Templating(list=list(self.variables(e))),
            time=DEFAULT_RANGE, refresh=REFRESH, schemaVersion=SCHEMA_VERSION, timezone="browser",
            graphTooltip=1, editable=False,
        ).auto_panel_ids()


def host_variable(e: Exprs, *, multi: bool = True) -> Template:
    return variable("host", "Host", f"label_values({e.sel('machine_cpu_cores')}, instance)", multi=multi,
                    all_value=ALL_HOSTS if multi else None)


def container_variable(e: Exprs, *, multi: bool = True) -> Template:
    query = f"label_values({e.sel('container_last_seen', HOST.extend(NAMED_MATCHER))}, name)"
    return variable("container", "Container", query, multi=multi, all_value=ALL_NAMED if multi else None)
