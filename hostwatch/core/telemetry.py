"""Serving a component's own metrics when it runs alone (`hostwatch ship`, `hostwatch index`).

Inside `hostwatch up` the exporter's /metrics carries every component's collectors instead; either
way a component only provides objects with prometheus_client's `collect()`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric


class Collector(Protocol):
    def collect(self) -> Iterable[Metric]: ...


def parse_listen_address(addr: str) -> tuple[str | None, int]:
    """`:9100` -> (None = all interfaces, 9100); `127.0.0.1:0`; `[::1]:9100`."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address {addr!r}: expected [host]:port")
    host = host.strip("[]")
    return (host or None), int(port)


def url_for(addr: str, path: str = "") -> str:
    host, port = parse_listen_address(addr)
    return f"http://{host or 'localhost'}:{port}{path}"


def registry_of(collectors: Sequence[Collector]) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    for c in collectors:
        reg.register(c)  # type: ignore[arg-type]
    return reg


class TelemetryServer:
    """/metrics (text or OpenMetrics, as negotiated) and /healthz on its own listener."""

    def __init__(self, listen_address: str, collectors: Sequence[Collector]) -> None:
        self.listen_address = listen_address
        self.registry = registry_of(collectors)
        self.runner: web.AppRunner | None = None

    async def _metrics(self, request: web.Request) -> web.Response:
        encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encoder(self.registry), headers={"Content-Type": content_type})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def start(self) -> None:
        host, port = parse_listen_address(self.listen_address)
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self.runner.setup()
        await web.TCPSite(self.runner, host, port, reuse_address=True).start()

    @property
    def addresses(self) -> list[Any]:
        return list(self.runner.addresses) if self.runner is not None else []

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
