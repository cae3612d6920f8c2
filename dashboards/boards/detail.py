"""Container detail: one container against its limits, its pressure next to the host's, the
namespaces it shares, and its log volume from Elasticsearch."""

from __future__ import annotations

from collections.abc import Sequence

from grafanalib.core import Template

from dashboards.boards.base import Board, container_variable, host_variable
from dashboards.boards.containers import NEAR_LIMIT, RECENT, THROTTLED
from dashboards.exprs import BY_CONTAINER, CONTAINERS, HOST, ROOT, Exprs
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
    LogQuery,
    Query,
    log_volume,
    stat,
    timeseries,
)

PSI_RESOURCES = ("cpu", "memory", "io")


def pressure(e: Exprs, resource: str) -> Query:
    """The container's PSI next to the whole host's: on cgroup v1 only the host's line exists."""
    metric = f"container_pressure_{resource}_waiting_seconds_total"
    mine = e.labelled(e.rate_by(metric, CONTAINERS), "scope", "container")
    host = e.labelled(e.rate_by(metric, ROOT, ("instance",)), "scope", "host")
    return Query(f"{mine} or {host}", f"{{{{scope}}}} {resource}")


def cells(e: Exprs) -> Sequence[Cell]:
    c = CONTAINERS
    limit = e.limit_by("container_spec_memory_limit_bytes", c)
    ws = e.sum_by("container_memory_working_set_bytes", c)
    everyone = e.sel("container_namespace_info", HOST)
    shared = (f"count by (instance, namespace) ({everyone} and on (instance, namespace, inode) "
              f"{e.sel('container_namespace_info', c)}) - 1")
    return [
        stat("CPU limit", CORES, [Query(e.cpu_cores_limit(c), "{{name}}")],
             description="CFS quota / period: the cores it may use (none: unlimited).", decimals=2),
        stat("Memory limit", BYTES, [Query(limit, "{{name}}")], description="memory.limit (none: unlimited)."),
        stat("Memory used of limit", PERCENT_UNIT, [Query(f"{ws} / {limit}", "{{name}}")],
             steps=(("green", None), (YELLOW, 0.75), (RED, NEAR_LIMIT)), description="Working set over the limit."),
        stat("Up for", SECONDS, [Query(f"time() - max by (instance, name) ({e.sel('container_start_time_seconds', c)})",
                                     "{{name}}")],
             description="Since the container (re)started."),
        stat(f"OOM kills ({RECENT})", SHORT, [Query(e.increase_by("container_oom_events_total", c, RECENT),
                                                    "{{name}}")], steps=(("green", None), (RED, 1.0)), decimals=0,
             description="Processes the OOM killer ended in this container."),
        stat(f"Restarts ({RECENT})", SHORT,
             [Query(f"sum by (instance, name) (changes({e.sel('container_start_time_seconds', c)}[{RECENT}]))",
                    "{{name}}")], steps=(("green", None), (YELLOW, 1.0), (RED, 3.0)), decimals=0,
             description="Times its start time changed."),
        timeseries("CPU: usage vs limit", CORES, [
            Query(e.rate_by("container_cpu_usage_seconds_total", c), "used"),
            Query(e.cpu_cores_limit(c), "limit"),
        ], description="Cores used against the CFS quota."),
        timeseries("CPU throttling", PERCENT_UNIT, [Query(e.throttled_ratio(c), "throttled periods")],
                   limit_steps=(("green", None), (ORANGE, THROTTLED)),
                   description="Share of CFS periods in which it hit its quota."),
        timeseries("Memory vs limit", BYTES, [
            Query(ws, "working set"),
            Query(e.sum_by("container_memory_rss", c), "rss"),
            Query(e.sum_by("container_memory_cache", c), "page cache"),
            Query(limit, "limit"),
        ], description="Working set, anonymous memory and page cache against memory.limit."),
        timeseries("Pressure stall (PSI): container and host", PERCENT_UNIT,
                   [pressure(e, r) for r in PSI_RESOURCES],
                   description="Share of time some task waited for CPU, memory or IO. Per-container lines need "
                               "cgroup v2 (cpu.pressure and friends); the host's come from /proc/pressure."),
        timeseries("Network rx / tx", BYTES_RATE, [
            Query(e.rate_by("container_network_receive_bytes_total", c, (*BY_CONTAINER, "interface")),
                  "{{interface}} rx"),
            Query(e.rate_by("container_network_transmit_bytes_total", c, (*BY_CONTAINER, "interface")),
                  "{{interface}} tx"),
        ], description="Per interface of its network namespace."),
        timeseries("Block I/O", BYTES_RATE, [
            Query(e.rate_by("container_fs_reads_bytes_total", c, (*BY_CONTAINER, "device")), "{{device}} read"),
            Query(e.rate_by("container_fs_writes_bytes_total", c, (*BY_CONTAINER, "device")), "{{device}} write"),
        ], description="Per block device."),
        timeseries("Processes, threads, open files", SHORT, [
            Query(e.sum_by("container_processes", c), "processes"),
            Query(e.sum_by("container_threads", c), "threads"),
            Query(e.sum_by("container_file_descriptors", c), "file descriptors"),
            Query(e.sum_by("container_sockets", c), "sockets"),
        ], description="Tasks (pids.current) and open files of its processes."),
        stat("Namespaces shared with other cgroups", SHORT, [Query(shared, "{{namespace}}")],
             steps=(("green", None), (ORANGE, 1.0)), decimals=0, w=12, h=8,
             description="For each namespace type, how many other cgroups share this container's namespace "
                         "(0: its own). A container usually shares the user and cgroup namespaces with the host; "
                         "a shared net or pid namespace means --net host, a pod or a sidecar."),
        log_volume("Log lines (Elasticsearch)", [LogQuery('container.name:"$container"', "$container")], w=24,
                   description="Lines the shipper delivered and the indexer stored for this container."),
    ]


def variables(e: Exprs) -> Sequence[Template]:
    return [host_variable(e, multi=False), container_variable(e, multi=False)]


BOARD = Board(
    name="container-detail", title="hostwatch / Container detail",
    description="One container: resource use against its limits, PSI pressure, namespaces it shares, log volume.",
    cells=cells, variables=variables,
)
