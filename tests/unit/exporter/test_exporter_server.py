"""The HTTP surface: /metrics negotiation and gzip, /healthz, basic auth and TLS from a web config."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ctypes
import ctypes.util
import gc
import gzip
import ssl
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from selfsigned import self_signed

from exporter.server import ExporterService, negotiate
from exporter.webconfig import WebConfigError, bcrypt_matches, load_web_config

from exporter_testdata import fixture_config

OM_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
             "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")  # what Prometheus 2.42 sends


def run_with_service(config_overrides: dict[str, Any], body: Callable[[str], Awaitable[None]],
                     scheme: str = "http") -> None:
    async def main() -> None:
        cfg = fixture_config("v2", listen_address="127.0.0.1:0", **config_overrides)
        async with ExporterService(cfg) as svc:
            await body(f"{scheme}://127.0.0.1:{svc.port}")

    asyncio.run(main())


def test_negotiation_follows_prometheus_client() -> None:
    assert negotiate(OM_ACCEPT)[0] is True
    assert negotiate("text/plain;version=0.0.4")[0] is False
    assert negotiate("")[1].startswith("text/plain; version=0.0.4")


def test_metrics_text_openmetrics_gzip_healthz() -> None:
    async def body(base: str) -> None:
        async with aiohttp.ClientSession(auto_decompress=False) as s:
            async with s.get(base + "/metrics", headers={"Accept-Encoding": "identity"}) as r:
                assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                text = await r.text()
                assert "# TYPE container_cpu_usage_seconds_total counter" in text
                assert "hostwatch_exporter_scrape_duration_seconds " in text
            async with s.get(base + "/metrics", headers={"Accept": OM_ACCEPT, "Accept-Encoding": "gzip"}) as r:
                assert r.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
                assert r.headers["Content-Encoding"] == "gzip"
                om = gzip.decompress(await r.read()).decode()
                assert om.endswith("# EOF\n") and "# TYPE container_cpu_usage_seconds counter" in om
            async with s.get(base + "/healthz") as r:
                assert r.status == 200 and (await r.text()) == "ok\n"

    run_with_service({}, body)


def _bcrypt(password: str) -> str:
    lib = ctypes.CDLL(ctypes.util.find_library("crypt") or "libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    lib.crypt.restype = ctypes.c_char_p
    lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    return str(lib.crypt(password.encode(), lib.crypt_gensalt(b"$2y$", 4, None, 0)).decode())


def test_bcrypt_check() -> None:
    h = _bcrypt("s3cret")
    assert bcrypt_matches("s3cret", h) and not bcrypt_matches("nope", h)
    assert not bcrypt_matches("s3cret", "plain-text-is-not-a-hash")


def test_basic_auth_and_tls(tmp_path: Path) -> None:
    self_signed(tmp_path)
    web = tmp_path / "web.yml"
    web.write_text(
        "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n"
        "http_server_config:\n  headers:\n    X-Frame-Options: deny\n"
        f"basic_auth_users:\n  prometheus: '{_bcrypt('s3cret')}'\n"
    )
    ctx = ssl.create_default_context(cafile=str(tmp_path / "tls.crt"))
    ctx.check_hostname = False

    async def body(base: str) -> None:
        async with aiohttp.ClientSession() as s:
            async with s.get(base + "/metrics", ssl=ctx) as r:
                assert r.status == 401 and "Basic" in r.headers["WWW-Authenticate"]
            bad = {"Authorization": "Basic " + base64.b64encode(b"prometheus:wrong").decode()}
            async with s.get(base + "/metrics", ssl=ctx, headers=bad) as r:
                assert r.status == 401
            good = {"Authorization": "Basic " + base64.b64encode(b"prometheus:s3cret").decode()}
            for _ in range(2):  # second time from the success cache
                async with s.get(base + "/metrics", ssl=ctx, headers=good) as r:
                    assert r.status == 200 and r.headers["X-Frame-Options"] == "deny"
                    assert "container_memory_usage_bytes" in await r.text()
            with pytest.raises(aiohttp.ClientError):
                async with s.get(base.replace("https", "http") + "/metrics", headers=good) as r:
                    await r.read()

    run_with_service({"web_config_file": web}, body, scheme="https")


@pytest.mark.parametrize("text,match", [
    ("basic_auth_user: {}\n", "unknown key 'basic_auth_user'"),
    ("tls_server_config:\n  cert_file: a\n  keyfile: b\n", "unknown key 'keyfile' in tls_server_config"),
    ("tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n", "cannot load"),
    ("tls_server_config:\n  cert_file: a\n", "needs cert_file and key_file"),
    ("basic_auth_users: [a, b]\n", "must be a mapping"),
])
def test_web_config_errors_name_the_file_and_key(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "web.yml"
    path.write_text(text)
    with pytest.raises(WebConfigError, match=match) as e:
        load_web_config(path)
    assert str(path) in str(e.value)


class _Gate:
    """A collector that holds the collection until `ready()` (or 10 s): concurrent scrapes then
    overlap by construction, not by timing."""

    name = "gate"

    def __init__(self, ready: Callable[[], bool]) -> None:
        self.ready = ready
        self.calls = 0

    def collect(self, scrape: object) -> list[Any]:
        self.calls += 1
        deadline = time.monotonic() + 10
        while not self.ready() and time.monotonic() < deadline:
            time.sleep(0.005)
        return []


def test_concurrent_scrapes_share_one_collection() -> None:
    async def main() -> None:
        cfg = fixture_config("v2", listen_address="127.0.0.1:0")
        async with ExporterService(cfg) as svc:
            assert svc.exporter is not None and svc.scrapes is not None
            scrapes = svc.scrapes
            gate = _Gate(lambda: scrapes.in_flight >= 2)
            svc.exporter.collectors.insert(0, gate)  # type: ignore[arg-type]
            url = f"http://127.0.0.1:{svc.port}/metrics"
            async with aiohttp.ClientSession() as s:
                async def get() -> str:
                    async with s.get(url, headers={"Accept": OM_ACCEPT}) as r:
                        assert r.status == 200
                        return await r.text()

                a, b = await asyncio.gather(get(), get())  # an HA pair of Prometheus servers
            assert gate.calls == 1 and svc.exporter.collections == 1 and svc.exporter.scrapes == 2
            assert a == b and "hostwatch_exporter_collections_total 1.0" in a
            assert "hostwatch_exporter_scrapes_total 2.0" in a

    asyncio.run(main())


def test_scrapes_beyond_max_requests_get_503() -> None:
    release = threading.Event()

    async def main() -> None:
        cfg = fixture_config("v2", listen_address="127.0.0.1:0", max_requests=1)
        async with ExporterService(cfg) as svc:
            assert svc.exporter is not None and svc.scrapes is not None
            svc.exporter.collectors.insert(0, _Gate(release.is_set))  # type: ignore[arg-type]
            url = f"http://127.0.0.1:{svc.port}/metrics"
            async with aiohttp.ClientSession() as s:
                first = asyncio.ensure_future(s.get(url))
                while svc.scrapes.in_flight < 1:
                    await asyncio.sleep(0.005)
                async with s.get(url) as r:
                    assert r.status == 503 and "Limit of concurrent requests reached (1)" in await r.text()
                release.set()
                async with await first as r:
                    assert r.status == 200
            assert svc.exporter.rejected == 1 and svc.exporter.collections == 1

    asyncio.run(main())


class _Marker:
    """A family stand-in whose death the test can see (weakref), collected with the scrape's rows."""

    name = "marker"

    def __init__(self) -> None:
        self.refs: list[Any] = []

    def collect(self, scrape: object) -> list[Any]:
        from exporter.families import Family

        fam = Family("marker_probe", "probe", "gauge")
        self.refs.append(weakref.ref(fam))
        return [fam]


def test_the_gc_stays_off_from_a_collection_until_its_rows_are_freed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Switched back on while a scrape's rows live, the cyclic collector walks them all once (~4 ms of
    a 1000-container scrape): it comes back only once the flight's families are gone, also when the
    scrape that started the collection went away before it landed."""
    marker = _Marker()
    enabled_with_rows_alive: list[bool] = []
    real_enable = gc.enable

    def enable() -> None:
        enabled_with_rows_alive.append(any(r() is not None for r in marker.refs))
        real_enable()

    monkeypatch.setattr(gc, "enable", enable)
    release = threading.Event()
    off_during: list[bool] = []

    async def main() -> None:
        cfg = fixture_config("v2", listen_address="127.0.0.1:0")
        async with ExporterService(cfg) as svc:
            assert svc.exporter is not None and svc.scrapes is not None
            svc.exporter.collectors.insert(0, marker)  # type: ignore[arg-type]
            url = f"http://127.0.0.1:{svc.port}/metrics"
            async with aiohttp.ClientSession() as s:
                async with s.get(url) as r:
                    assert r.status == 200 and "marker_probe" in await r.text()
                assert gc.isenabled()
                svc.exporter.collectors.insert(0, _Gate(release.is_set))  # type: ignore[arg-type]
                gone = asyncio.ensure_future(s.get(url))
                while svc.scrapes.in_flight < 1:
                    await asyncio.sleep(0.005)
                off_during.append(not gc.isenabled())
                gone.cancel()  # the scraper hangs up while its collection runs
                with contextlib.suppress(asyncio.CancelledError):
                    await gone
                release.set()
                for _ in range(400):
                    if gc.isenabled():
                        break
                    await asyncio.sleep(0.005)
                assert gc.isenabled()

    assert gc.isenabled()
    asyncio.run(main())
    assert off_during == [True]
    assert len(marker.refs) == 2 and enabled_with_rows_alive and not any(enabled_with_rows_alive)
