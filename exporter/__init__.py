"""cAdvisor-compatible container metrics from cgroup v1/v2 and /proc.

readers/ (cgroup v1/v2 + procfs, `open_reader`) -> discovery -> collectors/ (one per metric group)
-> families -> Exporter (exporter.scrape) -> aiohttp server (exporter.server). CLI: exporter.command.

Import what you need from its module (exporter.server.ExporterService, exporter.scrape.Exporter, ...):
this package imports nothing at import time, so the CLI stays fast to start.
"""
