"""cAdvisor-compatible container metrics from cgroup v1/v2 and /proc.

readers/ (cgroup v1/v2 + procfs + mounts, `open_reader`; files kept open in readers.fdcache)
-> discovery (+ runtimes: containerd, CRI-O, podman) -> collectors/ (one per metric group; the disk
group's layers measured by diskusage, off the scrape path) -> families -> Exporter (exporter.scrape)
-> aiohttp server (exporter.server: single flight, --web.max-requests). CLI: exporter.command;
metric kinds and cAdvisor's flag semantics: exporter.groups.

Import what you need from its module (exporter.server.ExporterService, exporter.scrape.Exporter, ...):
this package imports nothing at import time, so the CLI stays fast to start.
"""
