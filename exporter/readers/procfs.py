"""procfs readers over a root path (proc(5)): net/dev, ns/*, fd/, meminfo, stat."""

from __future__ import annotations

from dataclasses import dataclass

from exporter.readers import fsread

NAMESPACES = ("cgroup", "ipc", "mnt", "net", "pid", "user", "uts")
SKIP_PREFIXES = ("veth", "docker")


@dataclass(slots=True)
class NetCounters:
    rx_bytes: int
    rx_packets: int
    rx_errors: int
    rx_dropped: int
    tx_bytes: int
    tx_packets: int
    tx_errors: int
    tx_dropped: int


def parse_net_dev(data: bytes) -> dict[str, NetCounters]:
    """/proc/<pid>/net/dev: two header lines, then `iface: 8 receive fields 8 transmit fields`."""
    out: dict[str, NetCounters] = {}
    for line in data.split(b"\n")[2:]:
        name, sep, rest = line.partition(b":")
        if not sep:
            continue
        iface = name.strip().decode()
        if iface == "lo" or iface.startswith(SKIP_PREFIXES):
            continue
        f = rest.split()
        if len(f) < 16:
            continue
        out[iface] = NetCounters(
            int(f[0]), int(f[1]), int(f[2]), int(f[3]), int(f[8]), int(f[9]), int(f[10]), int(f[11])
        )
    return out


def net_dev(proc_root: str, pid: int | str) -> dict[str, NetCounters]:
    return parse_net_dev(fsread.read_bytes(f"{proc_root}/{pid}/net/dev"))


def namespace_inode(proc_root: str, pid: int | str, ns: str) -> int:
    """`net:[4026531840]` -> 4026531840."""
    link = fsread.readlink(f"{proc_root}/{pid}/ns/{ns}")
    return int(link[link.index("[") + 1 : link.index("]")])


def namespaces(proc_root: str, pid: int | str) -> dict[str, int]:
    out: dict[str, int] = {}
    for ns in NAMESPACES:
        try:
            out[ns] = namespace_inode(proc_root, pid, ns)
        except FileNotFoundError:
            continue  # a kernel without this namespace type (cgroup < 4.6)
    return out


def fd_counts(proc_root: str, pid: int) -> tuple[int, int]:
    """(open fds, sockets among them) of one process, as cAdvisor counts them (a descriptor closed
    while we look is counted, not as a socket)."""
    return fsread.fd_counts(f"{proc_root}/{pid}/fd")


def host_pid(proc_root: str) -> str:
    """The process whose namespaces are "the host's": PID 1, or ourselves when PID 1's namespace
    links are not ours to read (the exporter itself runs in a sandbox or a user namespace)."""
    try:
        fsread.readlink(f"{proc_root}/1/ns/net")
        return "1"
    except OSError:
        return "self"


def meminfo(proc_root: str) -> dict[str, int]:
    """/proc/meminfo values in bytes (the file says kB)."""
    out: dict[str, int] = {}
    for line in fsread.read_bytes(f"{proc_root}/meminfo").split(b"\n"):
        key, _, rest = line.partition(b":")
        parts = rest.split()
        if parts:
            value = int(parts[0])
            out[key.decode()] = value * 1024 if len(parts) > 1 and parts[1] == b"kB" else value
    return out


def cpu_count(proc_root: str) -> int:
    """Online logical CPUs: the cpuN lines of /proc/stat."""
    data = fsread.read_bytes(f"{proc_root}/stat")
    return sum(1 for line in data.split(b"\n") if line.startswith(b"cpu") and line[3:4].isdigit())


def boot_time(proc_root: str) -> int | None:
    for line in fsread.read_bytes(f"{proc_root}/stat").split(b"\n"):
        if line.startswith(b"btime "):
            return int(line.split()[1])
    return None


def read_id(path: str) -> str:
    try:
        return fsread.read_text(path).strip()
    except OSError:
        return ""


# /proc/<tid>/stat state letters -> container_tasks_state's states, as the kernel's cgroupstats counts
# them (kernel/cgroup/cgroup-v1.c): R running, S sleeping, D uninterruptible, T/t stopped. iowaiting
# (a task in I/O wait outside those states) has no letter of its own in /proc, so it stays 0.
TASK_STATES = ("sleeping", "running", "stopped", "uninterruptible", "iowaiting")
_STATE_INDEX = {ord("S"): 0, ord("R"): 1, ord("T"): 2, ord("t"): 2, ord("D"): 3}


def task_state(data: bytes) -> int | None:
    """The index in TASK_STATES of a /proc/<tid>/stat line's state, None for the states not counted
    (I idle, Z zombie, X dead, ...). The state follows the last ")" (a comm may contain one)."""
    end = data.rfind(b")")
    if end < 0 or end + 2 >= len(data):
        return None
    return _STATE_INDEX.get(data[end + 2])


# /proc/net/tcp{,6} "st" column (include/net/tcp_states.h) -> cAdvisor's tcp_state label values.
TCP_STATES = ("established", "synsent", "synrecv", "finwait1", "finwait2", "timewait", "close", "closewait",
              "lastack", "listen", "closing")
_TCP_INDEX = {f"{i + 1:02X}".encode(): i for i in range(len(TCP_STATES))}


def parse_tcp(data: bytes) -> list[int]:
    """Sockets per state, in TCP_STATES order, from /proc/<pid>/net/tcp (or tcp6)."""
    counts = [0] * len(TCP_STATES)
    for line in data.split(b"\n")[1:]:
        fields = line.split(None, 4)
        if len(fields) > 3:
            i = _TCP_INDEX.get(fields[3])
            if i is not None:
                counts[i] += 1
    return counts


UDP_STATES = ("listen", "dropped", "rxqueued", "txqueued")


def parse_udp(data: bytes) -> list[int]:
    """(sockets, drops, bytes queued to receive, to send), UDP_STATES order, from /proc/<pid>/net/udp."""
    listen = dropped = rxq = txq = 0
    for line in data.split(b"\n")[1:]:
        fields = line.split()
        if not fields:
            continue
        listen += 1
        if len(fields) < 13:
            continue
        tx, _, rx = fields[4].partition(b":")  # "tx_queue:rx_queue", hex
        try:
            txq += int(tx, 16)
            rxq += int(rx, 16)
            dropped += int(fields[12])
        except ValueError:
            continue
    return [listen, dropped, rxq, txq]


# /proc/diskstats columns after major, minor and name (Documentation/admin-guide/iostats.rst).
DISKSTAT_FIELDS = ("reads_completed", "reads_merged", "sectors_read", "read_ms", "writes_completed",
                   "writes_merged", "sectors_written", "write_ms", "io_in_progress", "io_ms", "weighted_io_ms")


def parse_diskstats(data: bytes) -> dict[str, tuple[int, ...]]:
    """"major:minor" -> the 11 classic counters, DISKSTAT_FIELDS order."""
    out: dict[str, tuple[int, ...]] = {}
    for line in data.split(b"\n"):
        f = line.split()
        if len(f) < 14:
            continue
        out[f"{int(f[0])}:{int(f[1])}"] = tuple(int(x) for x in f[3:14])
    return out


def stat_counters(proc_root: str) -> dict[str, int]:
    """/proc/stat's single-number lines (btime, procs_running, procs_blocked, ...)."""
    out: dict[str, int] = {}
    for line in fsread.read_bytes(f"{proc_root}/stat").split(b"\n"):
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0].decode()] = int(parts[1])
    return out


def os_release(etc_root: str) -> str:
    """PRETTY_NAME from os-release, as cAdvisor's osVersion: "Linux" without one, "Unknown" without
    the file."""
    for path in (f"{etc_root}/os-release", f"{etc_root}/../usr/lib/os-release"):
        try:
            text = fsread.read_text(path)
        except OSError:
            continue
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() == "PRETTY_NAME":
                return value.strip().strip('"')
        return "Linux"
    return "Unknown"


def vmstat(proc_root: str) -> dict[str, int]:
    """/proc/vmstat (oom_kill: the host's OOM kills since boot, kernel >= 4.13)."""
    return {k.decode(): v for k, v in fsread.parse_kv(fsread.read_bytes(f"{proc_root}/vmstat")).items()}
