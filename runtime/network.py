"""Container networking: none (only lo), host, or bridge.

The bridge `hw0` lives in a network namespace the runtime owns (`/run/netns/hostwatch`), never in
the host's root namespace: containers on it reach each other and nothing else (no NAT, no route out).
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import socket
import struct
import subprocess
from pathlib import Path

from hostwatch.core.paths import ENV_BRIDGE_SUBNET, run_dir

NETNS = "hostwatch"
BRIDGE = "hw0"
DEFAULT_SUBNET = "10.88.0.0/16"
MODES = ("none", "host", "bridge")

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


class NetworkError(Exception):
    pass


def subnet() -> ipaddress.IPv4Network:
    text = os.environ.get(ENV_BRIDGE_SUBNET, DEFAULT_SUBNET)
    try:
        net = ipaddress.IPv4Network(text)
    except ValueError as e:
        raise NetworkError(f"invalid HOSTWATCH_BRIDGE_SUBNET {text!r}: {e}") from None
    if not net.is_private:
        raise NetworkError(f"HOSTWATCH_BRIDGE_SUBNET {text} is not a private range")
    return net


def _lease_dir() -> Path:
    return run_dir() / "ipam"


def allocate_ip(owner: Path) -> str:
    """Lease the lowest free address (the subnet's first host is kept for a gateway).

    Leases are files shared by every state root on the host, because the bridge is: each names
    its owner (the container's state dir), and a lease whose owner is gone is stale and reused.
    """
    net = subnet()
    leases = _lease_dir()
    leases.mkdir(parents=True, exist_ok=True)
    lock = os.open(leases / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        hosts = net.hosts()
        next(hosts, None)
        for addr in hosts:
            lease = leases / str(addr)
            try:
                holder = lease.read_text()
            except FileNotFoundError:
                holder = ""
            if holder and os.path.exists(holder):
                continue
            lease.write_text(str(owner))
            return f"{addr}/{net.prefixlen}"
    finally:
        os.close(lock)
    raise NetworkError(f"no free address left in {net}")


def release_ip(address: str, owner: Path) -> None:
    lease = _lease_dir() / address.split("/")[0]
    try:
        if lease.read_text() == str(owner):
            lease.unlink()
    except FileNotFoundError:
        pass


def bring_up_loopback() -> None:
    """Called inside the container's fresh net namespace, where lo starts down."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        ifr = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(s, _SIOCGIFFLAGS, ifr)[:18])[1]
        fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | _IFF_UP))


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)}: {proc.stderr.strip()}")


def veth_name(cid: str) -> str:
    return "hw" + cid[:12]  # IFNAMSIZ is 16 including the NUL


def ensure_bridge() -> None:
    if not os.path.exists(f"/run/netns/{NETNS}"):
        _ip("netns", "add", NETNS)
    probe = subprocess.run(["ip", "-n", NETNS, "link", "show", BRIDGE], capture_output=True)
    if probe.returncode != 0:
        _ip("-n", NETNS, "link", "add", BRIDGE, "type", "bridge")
    _ip("-n", NETNS, "link", "set", "lo", "up")
    _ip("-n", NETNS, "link", "set", BRIDGE, "up")


def attach_bridge(cid: str, pid: int, address: str) -> None:
    """Create a veth pair: eth0 in the container, its peer on hw0 in the runtime's namespace.

    The pair is made from inside the container's netns and the peer is moved by namespace *name*:
    the monitor's helpers run in the container's pid namespace, where a host PID means nothing.
    """
    ensure_bridge()
    host_end = veth_name(cid)
    netns = f"--net=/proc/{pid}/ns/net"
    for args in (("link", "add", "eth0", "type", "veth", "peer", "name", host_end, "netns", NETNS),
                 ("addr", "add", address, "dev", "eth0"), ("link", "set", "eth0", "up")):
        proc = subprocess.run(["nsenter", netns, "ip", *args], capture_output=True, text=True)
        if proc.returncode != 0:
            raise NetworkError(f"ip {' '.join(args)} in container: {proc.stderr.strip()}")
    _ip("-n", NETNS, "link", "set", host_end, "master", BRIDGE, "up")


def detach_bridge(cid: str) -> None:
    """The veth vanishes with the container's namespace; this covers a namespace kept alive elsewhere."""
    try:
        subprocess.run(["ip", "-n", NETNS, "link", "del", veth_name(cid)], capture_output=True)
    except OSError:
        pass  # a monitor whose pid namespace has ended can no longer fork; the veth is gone anyway
