"""Prometheus exporter-toolkit style `--web.config.file`: TLS and bcrypt basic auth.

    tls_server_config: {cert_file, key_file, client_auth_type, client_ca_file, min_version, max_version}
    http_server_config: {headers: {Name: value}}
    basic_auth_users: {user: <bcrypt hash>}

Passwords are checked with the C library's crypt(3) (libxcrypt understands $2a$/$2b$/$2y$ bcrypt);
successful checks are cached like exporter-toolkit does, so a scrape every second costs no bcrypt.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import hmac
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_TOP = {"tls_server_config", "http_server_config", "basic_auth_users"}
_TLS = {
    "cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version", "max_version",
    "cipher_suites", "curve_preferences", "prefer_server_cipher_suites", "client_allowed_sans",
}
_HTTP = {"headers", "http2"}
_TLS_VERSIONS = {
    "TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
    "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3,
}
_CLIENT_AUTH = {
    "NoClientCert": ssl.CERT_NONE,
    "RequestClientCert": ssl.CERT_OPTIONAL,
    "RequireAnyClientCert": ssl.CERT_REQUIRED,
    "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
    "RequireAndVerifyClientCert": ssl.CERT_REQUIRED,
}


class WebConfigError(ValueError):
    pass


@dataclass
class WebConfig:
    ssl_context: ssl.SSLContext | None = None
    users: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


def _check_keys(data: Any, allowed: set[str], where: str, path: Path) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise WebConfigError(f"{path}: {where} must be a mapping")
    for key in data:
        if key not in allowed:
            raise WebConfigError(f"{path}: unknown key {key!r} in {where}")
    return data


def load_web_config(path: Path) -> WebConfig:
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise WebConfigError(f"{path}: {e}") from e
    top = _check_keys(raw, _TOP, "web config", path)
    tls = _check_keys(top.get("tls_server_config"), _TLS, "tls_server_config", path)
    http = _check_keys(top.get("http_server_config"), _HTTP, "http_server_config", path)
    users = top.get("basic_auth_users") or {}
    if not isinstance(users, dict):
        raise WebConfigError(f"{path}: basic_auth_users must be a mapping of user: bcrypt hash")
    cfg = WebConfig(users={str(k): str(v) for k, v in users.items()})
    cfg.headers = {str(k): str(v) for k, v in (http.get("headers") or {}).items()}
    if tls:
        cfg.ssl_context = _ssl_context(tls, path)
    return cfg


def _ssl_context(tls: dict[str, Any], path: Path) -> ssl.SSLContext:
    base = path.parent
    if not tls.get("cert_file") or not tls.get("key_file"):
        raise WebConfigError(f"{path}: tls_server_config needs cert_file and key_file")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = _TLS_VERSIONS.get(str(tls.get("min_version", "TLS12")), ssl.TLSVersion.TLSv1_2)
    if "max_version" in tls:
        if tls["max_version"] not in _TLS_VERSIONS:
            raise WebConfigError(f"{path}: unknown max_version {tls['max_version']!r}")
        ctx.maximum_version = _TLS_VERSIONS[tls["max_version"]]
    try:
        ctx.load_cert_chain(base / tls["cert_file"], base / tls["key_file"])
    except (OSError, ssl.SSLError) as e:
        raise WebConfigError(f"{path}: cannot load cert_file/key_file: {e}") from e
    auth = str(tls.get("client_auth_type", "NoClientCert"))
    if auth not in _CLIENT_AUTH:
        raise WebConfigError(f"{path}: unknown client_auth_type {auth!r}")
    ctx.verify_mode = _CLIENT_AUTH[auth]
    if tls.get("client_ca_file"):
        ctx.load_verify_locations(base / tls["client_ca_file"])
    elif auth in ("VerifyClientCertIfGiven", "RequireAndVerifyClientCert"):
        raise WebConfigError(f"{path}: client_auth_type {auth} needs client_ca_file")
    return ctx


class _Crypt:
    def __init__(self) -> None:
        name = ctypes.util.find_library("crypt") or "libcrypt.so.1"
        self._lib = ctypes.CDLL(name)
        self._lib.crypt.restype = ctypes.c_char_p
        self._lib.crypt.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        self._lock = threading.Lock()  # crypt(3) returns a static buffer

    def __call__(self, password: bytes, setting: bytes) -> bytes | None:
        with self._lock:
            out = self._lib.crypt(password, setting)
            return None if out is None else bytes(out)


_crypt: _Crypt | None = None


def bcrypt_matches(password: str, hashed: str) -> bool:
    global _crypt
    if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
        return False
    if _crypt is None:
        _crypt = _Crypt()
    out = _crypt(password.encode(), hashed.encode())
    return out is not None and hmac.compare_digest(out, hashed.encode())


class BasicAuth:
    """Checks `user:password` against the bcrypt hashes; remembers successes (keyed by a hash)."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = users
        self._ok: set[bytes] = set()

    def check(self, user: str, password: str) -> bool:
        hashed = self.users.get(user)
        if hashed is None:
            return False
        key = hashlib.sha256(f"{user}\0{password}\0{hashed}".encode()).digest()
        if key in self._ok:
            return True
        if bcrypt_matches(password, hashed):
            if len(self._ok) > 1000:
                self._ok.clear()
            self._ok.add(key)
            return True
        return False
