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
    """(open fds, sockets among them) of one process, as cAdvisor counts them."""
    base = f"{proc_root}/{pid}/fd"
    names = fsread.listdir(base)
    sockets = 0
    for name in names:
        try:
            if fsread.readlink(f"{base}/{name}").startswith("socket:"):
                sockets += 1
        except OSError:
            continue  # closed while we looked
    return len(names), sockets


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
