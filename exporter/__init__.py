"""cAdvisor-compatible container metrics from cgroup v1/v2 and /proc.

readers (exporter.cgroup, cgroup_v1, cgroup_v2, procfs) -> discovery -> collectors (one per metric
group) -> Exporter (exporter.scrape) -> aiohttp server (exporter.server). CLI: exporter.command.
"""

from exporter.config import ExporterConfig
from exporter.scrape import Exporter
from exporter.server import ExporterService, start_exporter

__all__ = ["Exporter", "ExporterConfig", "ExporterService", "start_exporter"]
