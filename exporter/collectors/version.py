"""cadvisor_version_info: dashboards build their variables from it (label_values(cadvisor_version_info,
...)). As in cAdvisor v0.60: kernelVersion is uname -r, osVersion the PRETTY_NAME of the exporter's
os-release, dockerVersion empty (v0.60 no longer fills it), and cadvisorVersion/cadvisorRevision name
what is serving: hostwatch's version and git revision."""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Iterable
from pathlib import Path

from exporter.collectors.base import Scrape, gauge
from exporter.families import Family
from exporter.readers import procfs

REPO = Path(__file__).resolve().parents[2]


def hostwatch_version() -> str:
    try:
        return importlib.metadata.version("hostwatch")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def git_revision(repo: Path = REPO) -> str:
    """The checkout's commit, read from .git without running git; "" outside a checkout."""
    try:
        head = (repo / ".git" / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head[:12]
        ref = head[5:]
        path = repo / ".git" / ref
        if path.is_file():
            return path.read_text().strip()[:12]
        for line in (repo / ".git" / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0][:12]
    except OSError:
        pass
    return ""


class VersionCollector:
    name = "version"

    def __init__(self, etc_root: str = "/etc") -> None:
        # Read once: none of these change while the exporter runs.
        self.values = (git_revision(), hostwatch_version(), "", os.uname().release, procfs.os_release(etc_root))

    def collect(self, scrape: Scrape) -> Iterable[Family]:
        info = gauge(
            "cadvisor_version_info",
            "A metric with a constant '1' value labeled by kernel version, OS version, docker version, "
            "cadvisor version & cadvisor revision.",
            "cadvisorRevision", "cadvisorVersion", "dockerVersion", "kernelVersion", "osVersion",
        )
        info.add(None, 1, *self.values)
        return [info]
