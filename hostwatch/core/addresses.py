"""Listen addresses as every hostwatch flag spells them: `:9100`, `127.0.0.1:0`, `[::1]:9100`."""

from __future__ import annotations


def parse_listen_address(addr: str, what: str = "listen address") -> tuple[str | None, int]:
    """`:9100` -> (None = all interfaces, 9100); `127.0.0.1:0`; `[::1]:9100`. ValueError names `what`."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"{what} {addr!r}: expected [host]:port")
    return (host.strip("[]") or None), int(port)


def url_for(addr: str, path: str = "") -> str:
    host, port = parse_listen_address(addr)
    return f"http://{host or 'localhost'}:{port}{path}"
