"""aiohttp server for /metrics and /healthz; `ExporterService` is what `hostwatch up` embeds.

Collections run in one dedicated worker thread (never on the event loop, never two at once), and
concurrent scrapes share one (single flight: an HA pair of Prometheus servers costs one collection,
and each body variant is rendered once per collection). Beyond `--web.max-requests` scrapes in
flight a scrape gets 503, as node_exporter answers. Content negotiation (text 0.0.4 / OpenMetrics)
follows prometheus_client's `choose_encoder`, and the body is gzipped when the scraper accepts it, as
prometheus_client's handlers do.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import gc
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric

from exporter.config import ExporterConfig, parse_listen_address
from exporter.families import render_chunks
from exporter.scrape import Exporter, gc_paused
from exporter.webconfig import BasicAuth, WebConfig, load_web_config
from hostwatch.core.telemetry import Collector

log = logging.getLogger("hostwatch.exporter")

try:  # ISA-L's deflate: the same gzip, about four times faster than zlib's at level 1 (and smaller)
    from isal import isal_zlib as _deflate
except ImportError:  # pragma: no cover - isal is a dependency; zlib is the fallback
    import zlib as _deflate  # type: ignore[no-redef]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_INDEX = """<html><head><title>hostwatch exporter</title></head><body><h1>hostwatch exporter</h1>
<p><a href="{path}">Metrics</a></p></body></html>"""


def negotiate(accept: str) -> tuple[bool, str]:
    """(openmetrics?, content type) for an Accept header, exactly as prometheus_client decides."""
    _, content_type = choose_encoder(accept)
    return content_type.startswith("application/openmetrics-text"), content_type


class Flight:
    """One collection and the bodies rendered from it, shared by the scrapes that arrive meanwhile."""

    def __init__(self, families: asyncio.Future[list[Metric]]) -> None:
        self.families: asyncio.Future[list[Metric]] | None = families
        self.bodies: dict[tuple[bool, bool], asyncio.Future[list[bytes]]] = {}
        self.users = 0  # scrapes still being served from it


class GcPause:
    """The cyclic collector held off from a collection's start until its families are freed. A scrape
    allocates ~100k rows and no cycles; switched back on while they live (between the collection and
    the rendering), it walked them all once: ~4 ms of a 1000-container scrape's ~85, measured. Nested
    pauses (overlapping flights, Exporter.collect's and produce's own) leave it to the outermost."""

    def __init__(self) -> None:
        self.depth = 0
        self.was_on = False

    def pause(self) -> None:
        if self.depth == 0:
            self.was_on = gc.isenabled()
            gc.disable()
        self.depth += 1

    def resume(self) -> None:
        self.depth -= 1
        if self.depth == 0 and self.was_on:
            gc.enable()


def produce(families: list[Metric], openmetrics: bool, gz: bool) -> list[bytes]:
    """The body as pieces (one per family): compressed family by family when gzipped, so no whole
    text is ever held; written piece by piece when not."""
    with gc_paused():  # rendering makes no cycles; the cyclic collector would only walk the rows meanwhile
        return _produce(families, openmetrics, gz)


def produce_taking(holder: list[list[Metric]], openmetrics: bool, gz: bool) -> list[bytes]:
    """produce() of the families in `holder`, which it empties: the worker thread's call then keeps no
    reference to them once the body is made."""
    return produce(holder.pop(), openmetrics, gz)


def _produce(families: list[Metric], openmetrics: bool, gz: bool) -> list[bytes]:
    if not gz:
        return list(render_chunks(families, openmetrics))
    z = _deflate.compressobj(1, _deflate.DEFLATED, 16 + _deflate.MAX_WBITS)  # gzip framing
    pieces = [z.compress(chunk) for chunk in render_chunks(families, openmetrics)]
    pieces.append(z.flush())
    return [b"".join(pieces)]


class Scrapes:
    """Single flight over the exporter's collections, and the --web.max-requests bound."""

    def __init__(self, exporter: Exporter, executor: ThreadPoolExecutor, max_requests: int) -> None:
        self.exporter = exporter
        self.executor = executor
        self.max_requests = max_requests
        self.in_flight = 0
        self._flight: Flight | None = None
        self._gc = GcPause()

    def admit(self) -> bool:
        if self.max_requests > 0 and self.in_flight >= self.max_requests:
            self.exporter.rejected += 1
            return False
        self.in_flight += 1
        self.exporter.scrapes += 1
        return True

    def done(self) -> None:
        self.in_flight -= 1

    async def body(self, openmetrics: bool, gz: bool) -> list[bytes]:
        loop = asyncio.get_running_loop()
        flight = self._flight
        if flight is None:
            self._gc.pause()
            fut = loop.run_in_executor(self.executor, lambda: self.exporter.collect(request=False))
            flight = self._flight = Flight(fut)

            def landed(_: object, this: Flight = flight) -> None:
                if self._flight is this:
                    self._flight = None  # later scrapes get a fresh collection
                self._release(this)  # if its scrapes went away meanwhile

            fut.add_done_callback(landed)
            del fut  # the flight holds the rows, so that dropping them there frees them
        flight.users += 1
        try:
            assert flight.families is not None
            key = (openmetrics, gz)
            body = flight.bodies.get(key)
            if body is None:
                holder = [await asyncio.shield(flight.families)]
                body = flight.bodies.get(key)  # another scrape may have asked for it meanwhile
                if body is None:
                    body = flight.bodies[key] = loop.run_in_executor(
                        self.executor, produce_taking, holder, openmetrics, gz)
                del holder
            return await asyncio.shield(body)
        finally:
            flight.users -= 1
            self._release(flight)

    def _release(self, flight: Flight) -> None:
        """A landed flight nobody is served from any more: drop its rows, then let the GC back on."""
        if flight.users == 0 and self._flight is not flight and flight.families is not None:
            flight.families = None  # the last reference to the rows: freed now, before the GC is back
            flight.bodies = {}
            self._gc.resume()


def build_app(exporter: Exporter, web_config: WebConfig, executor: ThreadPoolExecutor,
              scrapes: Scrapes | None = None) -> web.Application:
    auth = BasicAuth(web_config.users) if web_config.users else None
    path = exporter.config.telemetry_path
    if scrapes is None:
        scrapes = Scrapes(exporter, executor, exporter.config.max_requests)

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if auth is not None and not await _authorized(request, auth, executor):
            resp: web.StreamResponse = web.Response(
                status=401, text="Unauthorized\n", headers={"WWW-Authenticate": 'Basic realm="hostwatch"'}
            )
        else:
            resp = await handler(request)
        for k, v in web_config.headers.items():
            resp.headers[k] = v
        return resp

    async def metrics(request: web.Request) -> web.StreamResponse:
        if not scrapes.admit():
            return web.Response(
                status=503, text=f"Limit of concurrent requests reached ({scrapes.max_requests}), try again later.\n")
        try:
            openmetrics, content_type = negotiate(request.headers.get("Accept", ""))
            gz = "gzip" in request.headers.get("Accept-Encoding", "")
            pieces = await scrapes.body(openmetrics, gz)
        finally:
            scrapes.done()
        headers = {"Content-Type": content_type}
        if gz:
            headers["Content-Encoding"] = "gzip"
            return web.Response(body=pieces[0], headers=headers)
        # Uncompressed, a 1000-container body is megabytes: written family by family, never joined.
        resp = web.StreamResponse(headers=headers | web_config.headers)
        resp.content_length = sum(len(p) for p in pieces)
        await resp.prepare(request)
        for piece in pieces:
            await resp.write(piece)
        await resp.write_eof()
        return resp

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=_INDEX.format(path=path), content_type="text/html")

    app = web.Application(middlewares=[guard])
    app.router.add_get(path, metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/", index)
    return app


async def _authorized(request: web.Request, auth: BasicAuth, executor: ThreadPoolExecutor) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, sep, password = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    if not sep:
        return False
    # bcrypt is slow on purpose: keep it off the event loop.
    return await asyncio.get_running_loop().run_in_executor(None, auth.check, user, password)


class ExporterService:
    """start()/stop() (or `async with`) the exporter's HTTP server on the running loop."""

    def __init__(self, config: ExporterConfig, exporter: Exporter | None = None,
                 telemetry: Sequence[Collector] = ()) -> None:
        self.config = config
        self.exporter = exporter
        self.telemetry = telemetry
        self.runner: web.AppRunner | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.scrapes: Scrapes | None = None
        self._own_exporter = exporter is None

    async def start(self) -> None:
        cfg = self.config
        web_config = load_web_config(cfg.web_config_file) if cfg.web_config_file else WebConfig()
        host, port = parse_listen_address(cfg.listen_address)
        if self.exporter is None:
            self.exporter = Exporter(cfg, telemetry=self.telemetry)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hostwatch-scrape")
        self.scrapes = Scrapes(self.exporter, self._executor, cfg.max_requests)
        app = build_app(self.exporter, web_config, self._executor, self.scrapes)
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port, ssl_context=web_config.ssl_context, reuse_address=True)
        await site.start()
        log.info("exporter listening on %s", ", ".join(map(str, self.addresses)))

    @property
    def addresses(self) -> list[Any]:
        return list(self.runner.addresses) if self.runner is not None else []

    @property
    def port(self) -> int:
        return int(self.addresses[0][1])

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        if self._own_exporter and self.exporter is not None:
            self.exporter.close()

    async def __aenter__(self) -> ExporterService:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
