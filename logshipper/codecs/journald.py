"""journalctl's JSON entries (`journalctl -o json --all`) -> LogEvent, and Docker's partial messages.

One entry is one JSON object per line. journalctl shows a field as a string when it is printable UTF-8,
as an array of byte values otherwise (binary, invalid UTF-8, control characters), as an array of those
when the field occurs more than once in the entry (the first value is taken, as `journalctl -o short`
does), and as null when it was too large (never with `--all`).

Mapping (ECS where it has a name, else Filebeat's journald input names):

    MESSAGE                  message (one trailing newline removed; invalid UTF-8 -> U+FFFD)
    __CURSOR                 event_id = blake2b-128 of the cursor, hex (re-reading an entry gives the same id)
    __REALTIME_TIMESTAMP     time_ns (microseconds); a Docker entry's SYSLOG_TIMESTAMP (RFC 3339, the
                             nanosecond time the daemon read the line, as json-file records it) wins
    PRIORITY                 log.level (emerg alert crit err warning notice info debug) and
                             log.syslog.severity.code; on a Docker entry 6 -> stream stdout, 3 -> stderr
    CONTAINER_ID_FULL        container_id (else CONTAINER_ID, 12 characters: enrich resolves it)
    CONTAINER_NAME           container_name          IMAGE_NAME          image
    CONTAINER_TAG            container.log.tag
    SYSLOG_IDENTIFIER        log.syslog.appname      SYSLOG_FACILITY     log.syslog.facility.code
    SYSLOG_PID               log.syslog.procid
    _HOSTNAME                host.hostname           _BOOT_ID            host.boot.id
    _MACHINE_ID              host.id                 _TRANSPORT          systemd.transport
    _NAMESPACE               journald.namespace
    _SYSTEMD_UNIT            systemd.unit            _SYSTEMD_USER_UNIT  systemd.user_unit
    _SYSTEMD_SLICE           systemd.slice           _SYSTEMD_CGROUP     systemd.cgroup
    _SYSTEMD_INVOCATION_ID   systemd.invocation_id
    _PID _COMM _EXE _CMDLINE process.pid process.name process.executable process.command_line
    _UID _GID                user.id user.group.id
    other user fields        journald.custom.<lower-cased name> (Docker's --log-opt labels/env attributes)

On a Docker entry the sender's fields (_PID, _COMM, _SYSTEMD_UNIT, ...) describe the daemon, not the
container, so they are left out. Docker's bookkeeping fields (CONTAINER_PARTIAL_*, CONTAINER_LOG_EPOCH,
CONTAINER_LOG_ORDINAL, SYSLOG_TIMESTAMP) are consumed, not copied.

Partial messages: Docker splits a line longer than 16 KiB into pieces; every piece but the last has
CONTAINER_PARTIAL_MESSAGE=true, and newer daemons add CONTAINER_PARTIAL_ID/ORDINAL/LAST. `Partials`
joins the pieces into one event (the first piece's id and time).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from hostwatch.core.events import JOURNALD, LogEvent
from hostwatch.core.timefmt import parse_rfc3339_ns

LEVELS = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
DOCKER_PRIORITY_STREAMS = {"6": "stdout", "3": "stderr"}
MAX_PENDING_PARTIALS = 1024  # lines half-received at once; beyond, the oldest is shipped as it is

# reasons counted in rejected{source="journald",reason}
MALFORMED_JSON = "malformed_json"
NOT_AN_OBJECT = "not_an_object"
NO_CURSOR = "no_cursor"
NO_MESSAGE = "no_message"
BAD_FIELD = "bad_field"
BAD_TIMESTAMP = "bad_timestamp"
OVERSIZED = "oversized"


class Rejected(Exception):
    def __init__(self, reason: str, cursor: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.cursor = cursor  # the rejected entry's, when it had one: reading has moved past it


def _int(text: str) -> int:
    return int(text)


# trusted fields, for entries that are not Docker's
_PROCESS_FIELDS: dict[str, tuple[str, Callable[[str], Any] | None]] = {
    "_PID": ("process.pid", _int),
    "_COMM": ("process.name", None),
    "_EXE": ("process.executable", None),
    "_CMDLINE": ("process.command_line", None),
    "_UID": ("user.id", None),
    "_GID": ("user.group.id", None),
    "_SYSTEMD_UNIT": ("systemd.unit", None),
    "_SYSTEMD_USER_UNIT": ("systemd.user_unit", None),
    "_SYSTEMD_SLICE": ("systemd.slice", None),
    "_SYSTEMD_CGROUP": ("systemd.cgroup", None),
    "_SYSTEMD_INVOCATION_ID": ("systemd.invocation_id", None),
}
# fields kept on every entry
_COMMON_FIELDS: dict[str, tuple[str, Callable[[str], Any] | None]] = {
    "SYSLOG_IDENTIFIER": ("log.syslog.appname", None),
    "SYSLOG_FACILITY": ("log.syslog.facility.code", _int),
    "SYSLOG_PID": ("log.syslog.procid", None),
    "CONTAINER_TAG": ("container.log.tag", None),
    "_HOSTNAME": ("host.hostname", None),
    "_BOOT_ID": ("host.boot.id", None),
    "_MACHINE_ID": ("host.id", None),
    "_TRANSPORT": ("systemd.transport", None),
    "_NAMESPACE": ("journald.namespace", None),
}
_ALL_FIELDS = {**_COMMON_FIELDS, **_PROCESS_FIELDS}
# consumed into LogEvent attributes or bookkeeping, never copied as custom fields
_CONSUMED = frozenset({
    "MESSAGE", "PRIORITY", "CONTAINER_ID", "CONTAINER_ID_FULL", "CONTAINER_NAME", "IMAGE_NAME",
    "CONTAINER_PARTIAL_MESSAGE", "CONTAINER_PARTIAL_ID", "CONTAINER_PARTIAL_ORDINAL", "CONTAINER_PARTIAL_LAST",
    "CONTAINER_LOG_EPOCH", "CONTAINER_LOG_ORDINAL", "SYSLOG_TIMESTAMP",
})
# skipped with one set difference before the per-field loop (the loop skips any other _FIELD too)
_FREQUENT_UNMAPPED = frozenset({"__CURSOR", "__REALTIME_TIMESTAMP", "__MONOTONIC_TIMESTAMP", "__SEQNUM",
                                "__SEQNUM_ID", "_CAP_EFFECTIVE", "_SOURCE_REALTIME_TIMESTAMP", "_RUNTIME_SCOPE",
                                "_SELINUX_CONTEXT", "_AUDIT_SESSION", "_AUDIT_LOGINUID", "_SYSTEMD_OWNER_UID",
                                "_STREAM_ID", "_SOURCE_MONOTONIC_TIMESTAMP"})
_SKIP_DOCKER = _CONSUMED | _FREQUENT_UNMAPPED | frozenset(_PROCESS_FIELDS)
_SKIP_OTHER = _CONSUMED | _FREQUENT_UNMAPPED
_CUSTOM_PREFIX = "journald.custom."


def text(value: Any) -> str | None:
    """A field's value as journalctl's JSON gives it, as text (None when absent or too large)."""
    if type(value) is str:
        return value
    if value is None:
        return None
    if type(value) is list:
        if not value:
            return ""
        first = value[0]
        if type(first) is int:
            return _bytes_text(value)
        if type(first) is str:  # several values: the first
            return first
        if type(first) is list:
            return _bytes_text(first) if not first or type(first[0]) is int else _reject_field()
        if first is None:
            return None
    return _reject_field()


def _bytes_text(values: list[Any]) -> str:
    try:
        return bytes(values).decode("utf-8", "replace")
    except (TypeError, ValueError):
        raise Rejected(BAD_FIELD) from None


def _reject_field() -> str:
    raise Rejected(BAD_FIELD)


def event_id(cursor: str) -> str:
    return hashlib.blake2b(cursor.encode(), digest_size=16).hexdigest()


_SECONDS: dict[str, int] = {}


def rfc3339_ns(value: str) -> int | None:
    """Nanoseconds from Go's RFC3339Nano in UTC, with a per-second cache; None when it is not RFC 3339
    (a classic syslog timestamp such as "Jan  2 15:04:05")."""
    if len(value) >= 20 and value[-1] == "Z" and value[19] in ".Z":
        frac = value[20:-1]
        if len(frac) <= 9 and (not frac or frac.isdigit()):
            base = value[:19]
            secs = _SECONDS.get(base)
            if secs is None:
                ns = _parse_or_none(base + "Z")
                if ns is None:
                    return None
                if len(_SECONDS) > 4096:
                    _SECONDS.clear()
                secs = _SECONDS[base] = ns // 1_000_000_000
            return secs * 1_000_000_000 + (int(frac.ljust(9, "0")) if frac else 0)
    return _parse_or_none(value)


def _parse_or_none(value: str) -> int | None:
    try:
        return parse_rfc3339_ns(value)
    except (ValueError, IndexError):
        return None


@dataclass(slots=True)
class Entry:
    cursor: str
    event: LogEvent
    more: bool  # a piece of a longer line that later pieces continue
    partial_key: tuple[str, str] | None  # Docker's: the line a piece belongs to (container id, partial id or stream)


def parse(line: bytes | str, max_message_bytes: int) -> Entry:
    """One journalctl JSON line as an Entry; raises Rejected(reason) for anything unusable."""
    try:
        d = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise Rejected(MALFORMED_JSON) from None
    if type(d) is not dict:
        raise Rejected(NOT_AN_OBJECT)
    cursor = d.get("__CURSOR")
    if type(cursor) is not str or not cursor:
        raise Rejected(NO_CURSOR)
    try:
        return _entry(d, cursor, max_message_bytes)
    except Rejected as r:
        r.cursor = cursor
        raise


def _entry(d: dict[str, Any], cursor: str, max_message_bytes: int) -> Entry:
    raw = d.get("MESSAGE")
    if type(raw) is list and len(raw) > max_message_bytes:
        raise Rejected(OVERSIZED)
    message = text(raw)
    if message is None:
        raise Rejected(NO_MESSAGE)
    if message.endswith("\n"):
        message = message[:-1]
    if len(message) > max_message_bytes or (
            len(message) * 4 > max_message_bytes and len(message.encode()) > max_message_bytes):
        raise Rejected(OVERSIZED)
    try:
        time_ns = int(text(d.get("__REALTIME_TIMESTAMP")) or "") * 1000
    except ValueError:
        raise Rejected(BAD_TIMESTAMP) from None

    full_id = text(d.get("CONTAINER_ID_FULL")) or text(d.get("CONTAINER_ID"))
    priority = text(d.get("PRIORITY"))
    level = stream = None
    fields: dict[str, Any] = {}
    if priority is not None and len(priority) == 1 and "0" <= priority <= "7":
        level = LEVELS[int(priority)]
        fields["log.syslog.severity.code"] = int(priority)
    more = False
    partial_key = None
    if full_id:
        stream = DOCKER_PRIORITY_STREAMS.get(priority or "")
        syslog_ts = d.get("SYSLOG_TIMESTAMP")
        if type(syslog_ts) is str:
            time_ns = rfc3339_ns(syslog_ts) or time_ns
        more = d.get("CONTAINER_PARTIAL_MESSAGE") == "true" or d.get("CONTAINER_PARTIAL_LAST") == "false"
        partial_key = (full_id, text(d.get("CONTAINER_PARTIAL_ID")) or stream or "")
    known, skip = (_COMMON_FIELDS, _SKIP_DOCKER) if full_id else (_ALL_FIELDS, _SKIP_OTHER)
    for key in d.keys() - skip:
        spec = known.get(key)
        if spec is None and key.startswith("_"):
            continue  # a trusted field not shipped (_CAP_EFFECTIVE, ...)
        value = d[key]
        if type(value) is not str:
            value = text(value)
            if value is None:
                continue
        if spec is None:
            fields[_CUSTOM_PREFIX + key.lower()] = value
            continue
        name, conv = spec
        if conv is None:
            fields[name] = value
        else:
            try:
                fields[name] = conv(value)
            except ValueError:
                continue  # a malformed number is left out, the entry is still shipped
    event = LogEvent(
        time_ns=time_ns, message=message, input_type=JOURNALD, event_id=event_id(cursor), stream=stream,
        container_id=full_id or None, container_name=text(d.get("CONTAINER_NAME")) or None,
        image=text(d.get("IMAGE_NAME")) or None, level=level, fields=fields or None,
    )
    return Entry(cursor, event, more, partial_key)


@dataclass(slots=True)
class _Line:
    first: LogEvent
    parts: list[str]
    nbytes: int
    since_cursor: str | None  # the read position just before the first piece: commit no further while held
    started: float
    oversized: bool = False


class Partials:
    """Joins Docker's partial pieces into whole lines, per container and partial id (or stream)."""

    def __init__(self, max_message_bytes: int) -> None:
        self.max_message_bytes = max_message_bytes
        self._pending: dict[tuple[str, str], _Line] = {}  # insertion order = the order lines began
        self.rejected: list[str] = []  # reasons for lines dropped since the last look, for the caller to count

    def __len__(self) -> int:
        return len(self._pending)

    def hold(self) -> tuple[bool, str | None]:
        """(True, cursor) when a line is incomplete: positions from `cursor` on are not yet shipped."""
        for line in self._pending.values():
            return True, line.since_cursor
        return False, None

    def add(self, entry: Entry, prev_cursor: str | None, now: float) -> list[LogEvent]:
        """The events `entry` completes: [] while a line waits for its last piece."""
        key = entry.partial_key
        if key is None:
            return [entry.event]
        line = self._pending.get(key)
        out: list[LogEvent] = []
        if line is None:
            if not entry.more:
                return [entry.event]  # a last piece whose earlier ones were never read
            if len(self._pending) >= MAX_PENDING_PARTIALS:
                out.extend(self._finish(next(iter(self._pending))))
            first = entry.event.message
            self._pending[key] = _Line(entry.event, [first], len(first.encode()), prev_cursor, now)
            return out
        piece = entry.event.message
        if not line.oversized:
            line.nbytes += len(piece.encode())
            if line.nbytes > self.max_message_bytes:
                line.oversized = True
                line.parts.clear()
            else:
                line.parts.append(piece)
        if not entry.more:
            out.extend(self._finish(key))
        return out

    def expired(self, now: float, timeout: float) -> list[LogEvent]:
        """Lines whose last piece has not come within `timeout`, shipped as they are."""
        out: list[LogEvent] = []
        while self._pending:
            key, line = next(iter(self._pending.items()))
            if now - line.started < timeout:
                break
            out.extend(self._finish(key))
        return out

    def _finish(self, key: tuple[str, str]) -> list[LogEvent]:
        line = self._pending.pop(key)
        if line.oversized:
            self.rejected.append(OVERSIZED)
            return []
        event = line.first
        if len(line.parts) > 1:
            event.message = "".join(line.parts)
        return [event]
