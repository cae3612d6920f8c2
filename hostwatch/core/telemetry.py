"""Serving a component's own metrics when it runs alone (`hostwatch ship`, `hostwatch index`).

Inside `hostwatch up` the exporter's /metrics carries every component's collectors instead; either
way a component only provides objects with prometheus_client's `collect()`.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.metrics_core import Metric

from hostwatch.core.addresses import parse_listen_address, url_for

__all__ = ["Collector", "Service", "TelemetryServer", "parse_listen_address", "registry_of", "serve_alone",
           "url_for"]


class Collector(Protocol):
    def collect(self) -> Iterable[Metric]: ...


def registry_of(collectors: Sequence[Collector]) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    for c in collectors:
        reg.register(c)  # type: ignore[arg-type]
    return reg


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass


class _Server4(ThreadingWSGIServer):
    address_family = socket.AF_INET


class _Server6(ThreadingWSGIServer):
    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # ":port" also takes IPv4
        super().server_bind()


class TelemetryServer:
    """/metrics (text or OpenMetrics, as negotiated) and /healthz on its own listener.

    prometheus_client's WSGI app on its threading server, not aiohttp: importing aiohttp (which builds
    its TLS contexts at import) was ~100 ms of CPU at every `hostwatch ship` start. Collectors run in
    the server's threads, as they do in the exporter's worker threads inside `hostwatch up`.
    """

    def __init__(self, listen_address: str, collectors: Sequence[Collector]) -> None:
        self.listen_address = listen_address
        self.registry = registry_of(collectors)
        self.server: ThreadingWSGIServer | None = None
        self._thread: threading.Thread | None = None

    def _app(self) -> Any:
        metrics = make_wsgi_app(self.registry)

        def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
            if environ.get("PATH_INFO") == "/healthz":
                start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
                return [b"ok\n"]
            return metrics(environ, start_response)  # type: ignore[no-any-return]

        return app

    async def start(self) -> None:
        host, port = parse_listen_address(self.listen_address)
        app = self._app()
        if host is None:  # every interface: dual-stack where the host has IPv6
            try:
                self.server = make_server("::", port, app, _Server6, handler_class=_QuietHandler)
            except OSError:
                self.server = make_server("0.0.0.0", port, app, _Server4, handler_class=_QuietHandler)
        else:
            family = _Server6 if ":" in host else _Server4
            self.server = make_server(host, port, app, family, handler_class=_QuietHandler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="hostwatch-telemetry",
                                        daemon=True)
        self._thread.start()

    @property
    def addresses(self) -> list[Any]:
        return [self.server.server_address[:2]] if self.server is not None else []

    async def stop(self) -> None:
        if self.server is not None:
            await asyncio.to_thread(self.server.shutdown)
            self.server.server_close()
            self.server = None


class Service(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


async def serve_alone(name: str, service: Service, collectors: Sequence[Collector], listen_address: str,
                      banner: str, start_errors: tuple[type[BaseException], ...] = (OSError,),
                      failed: Callable[[], bool] = lambda: False) -> int:
    """`hostwatch <name>` on its own: start `service` and its /metrics, print `banner`, run until SIGINT or
    SIGTERM, stop both. 1 (and one line) when either cannot start, or when `failed()` at the end."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    telemetry = TelemetryServer(listen_address, collectors)
    try:
        await service.start()
        await telemetry.start()
    except start_errors as e:
        await service.stop()
        await telemetry.stop()
        print(f"hostwatch {name}: {e}", file=sys.stderr)
        return 1
    print(f"hostwatch {name}: {banner}; metrics on {listen_address}", file=sys.stderr, flush=True)
    try:
        await stop.wait()
    finally:
        await service.stop()
        await telemetry.stop()
    return 1 if failed() else 0
