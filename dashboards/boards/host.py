"""Host overview: the machine as the root cgroup (`id="/"`) and machine_* report it, with no
node_exporter needed; the busiest containers; the agent's own cost."""

from __future__ import annotations

from collections.abc import Sequence

from grafanalib.core import Template

from dashboards.boards.base import Board, host_variable
from dashboards.exprs import BY_HOST, HOST, NAMED_MATCHER, ROOT, Exprs
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

BUSY_STEPS = (("green", None), (YELLOW, 0.7), (RED, 0.9))
TOP = 5


def cells(e: Exprs) -> Sequence[Cell]:
    cores = e.host_cores()
    memory = f"max by (instance) ({e.sel('machine_memory_bytes', HOST)})"
    named = HOST.extend(NAMED_MATCHER)
    pressure = [Query(e.rate_by(f"container_pressure_{r}_waiting_seconds_total", ROOT, BY_HOST),
                      f"{{{{instance}}}} {r}") for r in ("cpu", "memory", "io")]
    return [
        stat("CPU cores", SHORT, [Query(cores, "{{instance}}")], description="Logical CPUs (machine_cpu_cores)."),
        stat("Memory installed", BYTES, [Query(memory, "{{instance}}")], description="machine_memory_bytes."),
        stat("CPU busy", PERCENT_UNIT, [Query(f"{e.rate_by('container_cpu_usage_seconds_total', ROOT, BY_HOST)} / "
                                              f"{cores}", "{{instance}}")],
             steps=BUSY_STEPS, description="CPU time used by everything on the host, as a share of all cores."),
        stat("Memory in use", PERCENT_UNIT,
             [Query(f"{e.sum_by('container_memory_working_set_bytes', ROOT, BY_HOST)} / {memory}", "{{instance}}")],
             steps=BUSY_STEPS, description="Working set of the root cgroup (what the kernel cannot reclaim "
                                           "easily) over installed memory."),
        stat("Containers", SHORT, [Query(f"count by (instance) ({e.sel('container_last_seen', named)})",
                                         "{{instance}}")], description="Named containers the agent sees now."),
        stat("Uptime", SECONDS, [Query(f"time() - max by (instance) ({e.sel('machine_boot_time_seconds', HOST)})",
                                       "{{instance}}")], description="Since the host booted."),
        timeseries("CPU", CORES, [
            Query(e.rate_by("container_cpu_user_seconds_total", ROOT, BY_HOST), "{{instance}} user"),
            Query(e.rate_by("container_cpu_system_seconds_total", ROOT, BY_HOST), "{{instance}} system"),
            Query(cores, "{{instance}} cores"),
        ], description="Cores busy in user and system mode, against the cores there are."),
        timeseries("Memory", BYTES, [
            Query(e.sum_by("container_memory_working_set_bytes", ROOT, BY_HOST), "{{instance}} working set"),
            Query(e.sum_by("container_memory_cache", ROOT, BY_HOST), "{{instance}} page cache"),
            Query(f"max by (instance) ({e.sel('machine_memory_available_bytes', HOST)})", "{{instance}} available"),
            Query(memory, "{{instance}} installed"),
        ], description="Working set and page cache of the whole host; available is MemAvailable."),
        timeseries("Load: pressure stall (PSI)", PERCENT_UNIT, pressure,
                   description="Share of time some task waited for CPU, memory or IO (/proc/pressure): the "
                               "modern load average, comparable across hosts of any size."),
        timeseries("Disk I/O", BYTES_RATE, [
            Query(e.rate_by("container_fs_reads_bytes_total", ROOT, ("instance", "device")),
                  "{{instance}} {{device}} read"),
            Query(e.rate_by("container_fs_writes_bytes_total", ROOT, ("instance", "device")),
                  "{{instance}} {{device}} write"),
        ], description="Bytes read and written per block device."),
        timeseries("Network", BYTES_RATE, [
            Query(e.rate_by("container_network_receive_bytes_total", ROOT, ("instance", "interface")),
                  "{{instance}} {{interface}} rx"),
            Query(e.rate_by("container_network_transmit_bytes_total", ROOT, ("instance", "interface")),
                  "{{instance}} {{interface}} tx"),
        ], description="Bytes received and sent per interface of the host's network namespace."),
        timeseries("Agent: scrape duration", SECONDS, [
            Query(f"max by (instance) ({e.sel('hostwatch_exporter_scrape_duration_seconds', HOST)})",
                  "{{instance}}"),
        ], description="How long the agent took to read every cgroup for one scrape."),
        timeseries(f"Top {TOP} containers by CPU", CORES, [
            Query(e.top(TOP, e.rate_by("container_cpu_usage_seconds_total", named)), "{{instance}} {{name}}"),
        ], description="Cores each container keeps busy."),
        timeseries(f"Top {TOP} containers by memory", BYTES, [
            Query(e.top(TOP, e.sum_by("container_memory_working_set_bytes", named)), "{{instance}} {{name}}"),
        ], description="Working set of each container."),
        timeseries("Disk space used", PERCENT_UNIT, [
            Query(f"max by (instance, device) ({e.sel('container_fs_usage_bytes', ROOT)}) / "
                  f"max by (instance, device) ({e.sel('container_fs_limit_bytes', ROOT)} > 0)",
                  "{{instance}} {{device}}"),
        ], limit_steps=(("green", None), (ORANGE, 0.8), (RED, 0.9)), w=12, h=6,
           description="Used over size of each filesystem the host's root cgroup reports (cAdvisor's "
                       "root-cgroup container_fs_* series)."),
        timeseries("Agent: unreadable files", SHORT, [
            Query(e.rate_by("hostwatch_exporter_collector_errors_total", HOST, ("instance", "collector")),
                  "{{instance}} {{collector}}"),
        ], description="Cgroup and /proc files a collector could not read or parse, per second (0 is normal; "
                       "a race with an exiting container now and then is harmless).", w=12, h=6,
           limit_steps=(("green", None), (ORANGE, 1.0))),
    ]


def variables(e: Exprs) -> Sequence[Template]:
    return [host_variable(e)]


BOARD = Board(
    name="host-overview", title="hostwatch / Host overview",
    description="CPU, memory, pressure, disk and network of each host, its containers and the agent.",
    cells=cells, variables=variables,
)
