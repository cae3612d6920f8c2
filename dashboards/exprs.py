"""PromQL builders over the catalogue: every metric name is looked up as it is spelled (an unknown one
raises UnknownMetric at build time), and the common shapes (rate by, ratio, top k) are written once.

Container queries use only cAdvisor's labels: `instance` (the scraped agent) and `name` (the Docker
name), never the kubelet's `container`/`pod`, so the same panels serve plain cAdvisor hosts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dashboards.catalogue import Catalogue

RATE_WINDOW = "$__rate_interval"
BY_CONTAINER = ("instance", "name")
BY_HOST = ("instance",)


@dataclass(frozen=True)
class Scope:
    """Label matchers every selector of a panel carries, e.g. instance=~"$host", name=~"$container"."""

    matchers: tuple[str, ...] = ()

    def extend(self, *more: str) -> Scope:
        return Scope(self.matchers + more)


HOST = Scope(('instance=~"$host"',))
ROOT = HOST.extend('id="/"')  # the root cgroup: the whole host, as cAdvisor reports it
CONTAINERS = HOST.extend('name=~"$container"')  # $container's All value is .+ : named containers only
NAMED_MATCHER = 'name!=""'  # a container, not a raw cgroup


class Exprs:
    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue

    def sel(self, metric: str, scope: Scope = Scope(), *more: str) -> str:
        name = self.catalogue.name(metric)
        matchers = (*scope.matchers, *more)
        return f"{name}{{{','.join(matchers)}}}" if matchers else name

    def rate(self, metric: str, scope: Scope = Scope(), *more: str) -> str:
        return f"rate({self.sel(metric, scope, *more)}[{RATE_WINDOW}])"

    def rate_by(self, metric: str, scope: Scope = Scope(), by: Sequence[str] = BY_CONTAINER, *more: str) -> str:
        return f"sum by ({', '.join(by)}) ({self.rate(metric, scope, *more)})"

    def sum_by(self, metric: str, scope: Scope = Scope(), by: Sequence[str] = BY_CONTAINER, *more: str) -> str:
        return f"sum by ({', '.join(by)}) ({self.sel(metric, scope, *more)})"

    def increase_by(self, metric: str, scope: Scope, window: str, by: Sequence[str] = BY_CONTAINER) -> str:
        return f"sum by ({', '.join(by)}) (increase({self.sel(metric, scope)}[{window}]))"

    def limit_by(self, metric: str, scope: Scope, by: Sequence[str] = BY_CONTAINER) -> str:
        """A limit gauge without its "unlimited" zeros (cAdvisor reports no limit as 0)."""
        return f"sum by ({', '.join(by)}) ({self.sel(metric, scope)} > 0)"

    def cpu_cores_limit(self, scope: Scope, by: Sequence[str] = BY_CONTAINER) -> str:
        """CFS quota / period: the cores a container may use."""
        g = ", ".join(by)
        return (f"sum by ({g}) ({self.sel('container_spec_cpu_quota', scope)}) / "
                f"sum by ({g}) ({self.sel('container_spec_cpu_period', scope)})")

    def throttled_ratio(self, scope: Scope, by: Sequence[str] = BY_CONTAINER) -> str:
        """Share of CFS periods in which the container was throttled."""
        return (f"{self.rate_by('container_cpu_cfs_throttled_periods_total', scope, by)} / "
                f"{self.rate_by('container_cpu_cfs_periods_total', scope, by)}")

    def host_cores(self, scope: Scope = HOST) -> str:
        return f"max by (instance) ({self.sel('machine_cpu_cores', scope)})"

    def top(self, k: int, expr: str) -> str:
        return f"topk({k}, {expr})"

    def histogram_p(self, q: float, metric: str, scope: Scope = Scope(), by: Sequence[str] = BY_HOST) -> str:
        buckets = self.rate_by(f"{metric}_bucket", scope, (*by, "le"))
        return f"histogram_quantile({q}, {buckets})"

    def labelled(self, expr: str, label: str, value: str) -> str:
        """expr with label=value added (to tell two series of one panel apart in a legend)."""
        return f'label_replace({expr}, "{label}", "{value}", "", "")'
