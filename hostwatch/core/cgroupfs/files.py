"""The names the kernel gives things in a cgroup filesystem: controllers and interface files.

Sources: Documentation/admin-guide/cgroup-v1/{cgroups,cpuacct,memory,blkio-controller,pids,cpusets}.rst,
scheduler/sched-bwc.rst, cgroup-v2.rst and accounting/psi.rst. The runtime writes these files, the
exporter reads them; both take the names from here.
"""

from __future__ import annotations

# cgroup v1 hierarchies hostwatch uses (each may be co-mounted with others, e.g. "cpu,cpuacct").
V1_CONTROLLERS = ("cpu", "cpuacct", "memory", "pids", "cpuset", "blkio")
# cgroup v2 controllers in the order the kernel lists them in cgroup.controllers.
V2_CONTROLLERS = ("cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc")
# The v2 controllers the runtime enables for its children (cgroup.subtree_control), in write order.
V2_DELEGATED = ("cpu", "memory", "pids", "cpuset", "io")
# A hybrid host's cgroup2 mount, below the v1 hierarchies' root: no controllers, PSI files only.
HYBRID_UNIFIED = "unified"

# Core files (both versions unless noted).
PROCS = "cgroup.procs"
CONTROLLERS = "cgroup.controllers"  # v2: present in every cgroup2 directory, and only there
SUBTREE_CONTROL = "cgroup.subtree_control"  # v2
KILL = "cgroup.kill"  # v2, kernel >= 5.14

# cpu, cpuacct
CPU_STAT = "cpu.stat"
CPU_SHARES = "cpu.shares"  # v1
CPU_CFS_PERIOD = "cpu.cfs_period_us"  # v1
CPU_CFS_QUOTA = "cpu.cfs_quota_us"  # v1
CPUACCT_USAGE = "cpuacct.usage"  # v1
CPUACCT_USAGE_PERCPU = "cpuacct.usage_percpu"  # v1
CPUACCT_STAT = "cpuacct.stat"  # v1, USER_HZ ticks
CPU_MAX = "cpu.max"  # v2: "<quota|max> <period>"
CPU_WEIGHT = "cpu.weight"  # v2

# memory
MEMORY_STAT = "memory.stat"
MEMORY_LIMIT = "memory.limit_in_bytes"  # v1
MEMORY_MEMSW_LIMIT = "memory.memsw.limit_in_bytes"  # v1, only with swap accounting
MEMORY_SOFT_LIMIT = "memory.soft_limit_in_bytes"  # v1
MEMORY_USAGE = "memory.usage_in_bytes"  # v1
MEMORY_MAX_USAGE = "memory.max_usage_in_bytes"  # v1
MEMORY_FAILCNT = "memory.failcnt"  # v1
MEMORY_OOM_CONTROL = "memory.oom_control"  # v1
MEMORY_MAX = "memory.max"  # v2
MEMORY_MIN = "memory.min"  # v2
MEMORY_SWAP_MAX = "memory.swap.max"  # v2
MEMORY_CURRENT = "memory.current"  # v2
MEMORY_SWAP_CURRENT = "memory.swap.current"  # v2
MEMORY_PEAK = "memory.peak"  # v2, kernel >= 5.19
MEMORY_EVENTS = "memory.events"  # v2

# pids
PIDS_MAX = "pids.max"
PIDS_CURRENT = "pids.current"

# cpuset
CPUSET_CPUS = "cpuset.cpus"
CPUSET_MEMS = "cpuset.mems"

# block I/O
BLKIO_SERVICE_BYTES = "blkio.throttle.io_service_bytes_recursive"  # v1
BLKIO_SERVICED = "blkio.throttle.io_serviced_recursive"  # v1
BLKIO_WRITE_BPS_DEVICE = "blkio.throttle.write_bps_device"  # v1
IO_STAT = "io.stat"  # v2

# pressure stall information, per resource
PRESSURE = {"cpu": "cpu.pressure", "memory": "memory.pressure", "io": "io.pressure"}
