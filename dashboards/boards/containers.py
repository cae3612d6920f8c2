"""Containers: the panels people know from the cAdvisor/Docker dashboards, grouped by
`instance, name` only, so plain cAdvisor fills them as well as hostwatch does."""

from __future__ import annotations

from collections.abc import Sequence

from grafanalib.core import Template

from dashboards.boards.base import Board, container_variable, host_variable
from dashboards.exprs import BY_HOST, CONTAINERS, Exprs
from dashboards.panels import (
    BYTES,
    BYTES_RATE,
    CORES,
    ORANGE,
    PERCENT_UNIT,
    RED,
    SECONDS,
    SHORT,
    YELLOW,
    Cell,
    Query,
    stat,
    timeseries,
)

THROTTLED = 0.25  # the kubernetes-mixin's CPUThrottlingHigh threshold
NEAR_LIMIT = 0.9
RECENT = "1h"
NAME = "{{instance}} {{name}}"


def cells(e: Exprs) -> Sequence[Cell]:
    c = CONTAINERS
    ws = e.sum_by("container_memory_working_set_bytes", c)
    restarts = f"sum by (instance, name) (changes({e.sel('container_start_time_seconds', c)}[{RECENT}]))"
    return [
        stat("Containers", SHORT, [Query(f"count by (instance) ({e.sel('container_last_seen', c)})", "{{instance}}")],
             description="Named containers seen now.", w=4),
        stat("CPU in use", CORES, [Query(e.rate_by("container_cpu_usage_seconds_total", c, BY_HOST),
                                         "{{instance}}")], description="Cores the selected containers use.", w=4),
        stat("Memory working set", BYTES, [Query(e.sum_by("container_memory_working_set_bytes", c, BY_HOST),
                                                 "{{instance}}")], description="Of the selected containers.", w=4),
        stat("Throttled containers", SHORT,
             [Query(f"sum by (instance) ({e.throttled_ratio(c)} > bool {THROTTLED})", "{{instance}}")],
             steps=(("green", None), (ORANGE, 1.0)),
             description=f"Containers throttled in more than {THROTTLED:.0%} of their CFS periods.", w=4),
        stat(f"OOM kills ({RECENT})", SHORT,
             [Query(e.increase_by("container_oom_events_total", c, RECENT, BY_HOST), "{{instance}}")],
             steps=(("green", None), (RED, 1.0)), decimals=0,
             description="Processes the kernel's OOM killer ended inside the selected containers.", w=4),
        stat(f"Restarts ({RECENT})", SHORT, [Query(f"sum by (instance) ({restarts})", "{{instance}}")],
             steps=(("green", None), (YELLOW, 1.0), (RED, 3.0)), decimals=0,
             description="Times a container's start time changed (it restarted under the same name).", w=4),
        timeseries("CPU usage", CORES, [Query(e.rate_by("container_cpu_usage_seconds_total", c), NAME)],
                   description="Cores each container keeps busy (1 = one full core)."),
        timeseries("CPU throttling", PERCENT_UNIT, [Query(e.throttled_ratio(c), NAME)],
                   limit_steps=(("green", None), (ORANGE, THROTTLED)),
                   description="Share of CFS periods in which the container hit its CPU quota and had to wait. "
                               "Only containers with a quota (--cpus) have CFS periods."),
        timeseries("Memory working set", BYTES, [Query(ws, NAME)],
                   description="What the kernel cannot easily reclaim: the figure the OOM killer and "
                               "`docker stats` go by."),
        timeseries("Memory working set / limit", PERCENT_UNIT,
                   [Query(f"{ws} / {e.limit_by('container_spec_memory_limit_bytes', c)}", NAME)],
                   limit_steps=(("green", None), (RED, NEAR_LIMIT)),
                   description="Only containers with a memory limit; near 100 % the OOM killer strikes."),
        timeseries("Network rx / tx", BYTES_RATE, [
            Query(e.rate_by("container_network_receive_bytes_total", c), f"{NAME} rx"),
            Query(e.rate_by("container_network_transmit_bytes_total", c), f"{NAME} tx"),
        ], description="Containers with their own network namespace (not --net host)."),
        timeseries("Block I/O", BYTES_RATE, [
            Query(e.rate_by("container_fs_reads_bytes_total", c), f"{NAME} read"),
            Query(e.rate_by("container_fs_writes_bytes_total", c), f"{NAME} write"),
        ], description="Bytes read and written to block devices (blkio / io.stat)."),
        timeseries("OOM kills", SHORT, [Query(e.increase_by("container_oom_events_total", c, "$__rate_interval"),
                                             NAME)], w=8,
                   description="OOM kills per interval; a container whose main process is killed exits, and "
                               "its last count may never be scraped."),
        timeseries(f"Restarts ({RECENT} window)", SHORT, [Query(restarts, NAME)], w=8,
                   description="Changes of the start time within the last hour, per container name."),
        stat("Last seen", SECONDS, [
            Query(f"time() - max by (instance, name) (max_over_time({e.sel('container_last_seen', c)}[{RECENT}]))",
                  NAME),
        ], steps=(("green", None), (ORANGE, 60.0), (RED, 300.0)), w=8, h=8,
             description="Seconds since each container was last scraped; a container gone in the last hour "
                         "stays here, in red."),
    ]


def variables(e: Exprs) -> Sequence[Template]:
    return [host_variable(e), container_variable(e)]


BOARD = Board(
    name="containers", title="hostwatch / Containers",
    description="CPU (with throttling), memory against limits, network, block I/O, OOM kills and restarts per "
                "container; cAdvisor's names and labels only.",
    cells=cells, variables=variables,
)
