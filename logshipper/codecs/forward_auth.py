"""The forward protocol's shared-key handshake (spec v1 "Handshake Messages", in_forward.rb), pure.

    server  ['HELO', {nonce, auth, keepalive}]            nonce: random bytes; auth: the user-auth salt,
                                                          "" when no login is asked
    client  ['PING', hostname, shared_key_salt, sha512_hex(shared_key_salt + hostname + nonce + key),
             username, sha512_hex(auth + username + password)]   (username/digest "" without a login)
    server  ['PONG', true, '', self_hostname, sha512_hex(shared_key_salt + self_hostname + nonce + key)]
            or ['PONG', false, reason, '', ''] and the connection is closed

Strings and bytes take part in the digests as their bytes (strings as UTF-8).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import msgpack

from .forward import text


def _b(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")


def sha512_hex(*parts: str | bytes) -> str:
    h = hashlib.sha512()
    for p in parts:
        h.update(_b(p))
    return h.hexdigest()


def helo(nonce: bytes, auth_salt: bytes | None) -> bytes:
    return msgpack.packb(["HELO", {"nonce": nonce, "auth": auth_salt if auth_salt else "", "keepalive": True}])


@dataclass(frozen=True, slots=True)
class PingResult:
    ok: bool
    reason: str  # why not, as PONG tells the client
    salt: bytes = b""  # the client's shared_key_salt: the PONG digest uses it
    hostname: str = ""
    username: str = ""


def check_ping(obj: Any, nonce: bytes, shared_key: str, auth_salt: bytes | None,
               users: dict[str, str]) -> PingResult:
    """Verify a PING; `auth_salt` (sent in HELO) set means one of `users` (name -> password) must log in."""
    if not (isinstance(obj, list) and len(obj) == 6 and obj[0] == "PING"
            and all(isinstance(x, (str, bytes)) for x in obj[1:4])
            and all(isinstance(x, (str, bytes, type(None))) for x in obj[4:])):
        return PingResult(False, "invalid ping message")
    _, hostname, salt, digest, username, password_digest = obj
    username, password_digest = username or "", password_digest or ""  # fluent-logger-node may send nil
    if not hmac.compare_digest(_b(digest), sha512_hex(salt, hostname, nonce, shared_key).encode()):
        return PingResult(False, "shared_key mismatch", hostname=text(hostname))
    if auth_salt:
        password = users.get(text(username))
        expected = sha512_hex(auth_salt, username, password).encode() if password is not None else b""
        if password is None or not hmac.compare_digest(_b(password_digest), expected):
            return PingResult(False, "username/password mismatch", hostname=text(hostname), username=text(username))
    return PingResult(True, "", _b(salt), text(hostname), text(username))


def pong(result: PingResult, self_hostname: str, nonce: bytes, shared_key: str) -> bytes:
    if not result.ok:
        return msgpack.packb(["PONG", False, result.reason, "", ""])
    return msgpack.packb(["PONG", True, "", self_hostname, sha512_hex(result.salt, self_hostname, nonce, shared_key)])


def parse_users(entries: tuple[str, ...]) -> dict[str, str]:
    """`USER:PASSWORD` entries (ForwardConfig.users) -> {user: password}; ValueError names a bad one."""
    users: dict[str, str] = {}
    for entry in entries:
        name, sep, password = entry.partition(":")
        if not sep or not name:
            raise ValueError(f"forward.users entry {name or entry!r} is not USER:PASSWORD")
        users[name] = password
    return users
