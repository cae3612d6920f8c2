"""Alerts as Alertmanager forms them: fingerprints, label-set strings, times, ordering.

Fingerprints are prometheus/common's `labelSetToFingerprint`: FNV-1a 64 over the label names in
sorted order, each `name 0xFF value 0xFF`, rendered `%016x`. Label sets print as
`model.LabelSet.String()`: sorted, `", "` separated, Go-quoted values. Times are integer
nanoseconds since the epoch (Go keeps nanoseconds; floats would not); 0 is Go's zero time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

FNV_OFFSET = 14695981039346656037
FNV_PRIME = 1099511628211
_MASK = (1 << 64) - 1
SEPARATOR = 0xFF
ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's time.Time{} in JSON
LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
FIRING = "firing"
RESOLVED = "resolved"

_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
_FP_CACHE: dict[tuple[tuple[str, str], ...], int] = {}
_FP_CACHE_MAX = 200_000


def fnv1a_64(data: bytes, h: int = FNV_OFFSET) -> int:
    for b in data:
        h = ((h ^ b) * FNV_PRIME) & _MASK
    return h


def fingerprint(labels: Mapping[str, str]) -> int:
    """prometheus/common model.LabelSet.Fingerprint(); cached, alerts are re-sent with the same labels."""
    key = tuple(sorted(labels.items()))
    fp = _FP_CACHE.get(key)
    if fp is None:
        h = FNV_OFFSET
        for name, value in key:
            h = fnv1a_64(name.encode(), h)
            h = ((h ^ SEPARATOR) * FNV_PRIME) & _MASK
            h = fnv1a_64(value.encode(), h)
            h = ((h ^ SEPARATOR) * FNV_PRIME) & _MASK
        if len(_FP_CACHE) >= _FP_CACHE_MAX:
            _FP_CACHE.clear()
        fp = _FP_CACHE[key] = h
    return fp


def fp_hex(fp: int) -> str:
    return f"{fp:016x}"


def go_quote(s: str) -> str:
    """Go's strconv.Quote (fmt %q): printable runes kept, the rest escaped."""
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch.isprintable():
            out.append(ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        else:
            o = ord(ch)
            if o < 0x20 or o == 0x7F:
                out.append(f"\\x{o:02x}")
            elif o < 0x10000:
                out.append(f"\\u{o:04x}")
            else:
                out.append(f"\\U{o:08x}")
    out.append('"')
    return "".join(out)


def labelset_str(labels: Mapping[str, str]) -> str:
    """model.LabelSet.String(): `{a="1", b="2"}`."""
    return "{" + ", ".join(f"{k}={go_quote(labels[k])}" for k in sorted(labels)) + "}"


def regexp_quote_meta(s: str) -> str:
    """Go's regexp.QuoteMeta (the webhook's `receiver` field is quoted with it)."""
    return "".join("\\" + c if c in "\\.+*?()|[]{}^$" else c for c in s)


@lru_cache(maxsize=65536)
def parse_time_ns(value: str) -> int:
    """RFC 3339 (nano) -> ns since the epoch; Go's zero time and "" -> 0. ValueError otherwise."""
    if not value or value.startswith("0001-01-01T00:00:00"):
        return 0
    m = _TIME_RE.match(value)
    if m is None:
        raise ValueError(f"invalid time {value!r} (expected RFC 3339)")
    base, frac, tz = m.group(1), m.group(2) or "", m.group(3)
    secs = int(datetime.fromisoformat(base).replace(tzinfo=UTC).timestamp())
    if tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        secs -= sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    return secs * 1_000_000_000 + int((frac[1:] + "000000000")[:9] if frac else 0)


_TIME_RE = re.compile(r"^(\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d)(\.\d+)?([Zz]|[+-]\d\d:\d\d)$")


@lru_cache(maxsize=65536)  # an alert's times are formatted again at every flush and API read
def format_time_ns(ns: int) -> str:
    """Go's time.Time JSON (RFC3339Nano, trailing zeros trimmed); 0 -> the zero time."""
    if ns == 0:
        return ZERO_TIME
    secs, frac = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        base += "." + f"{frac:09d}".rstrip("0")
    return base + "Z"


def format_time_ms(ns: int) -> str:
    """go-openapi strfmt.DateTime (the API v2's times): milliseconds, always three digits."""
    secs, frac = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(secs, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{frac // 1_000_000:03d}Z"


_VALID_NAMES: set[str] = set()  # label names seen valid (a handful, checked once each)


def validate_labels(labels: Mapping[str, str], what: str = "label set") -> None:
    for k, v in labels.items():
        if k not in _VALID_NAMES:
            if not isinstance(k, str) or not LABEL_NAME_RE.match(k):
                raise ValueError(f"invalid {what}: invalid name {go_quote(str(k))}")
            if len(_VALID_NAMES) < 10_000:
                _VALID_NAMES.add(k)
        if type(v) is not str:
            raise ValueError(f"invalid {what}: invalid value {go_quote(str(v))}")


@dataclass(slots=True)
class Alert:
    """types.Alert: a model.Alert plus UpdatedAt and Timeout (endsAt set by resolve_timeout)."""

    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    starts_at: int = 0
    ends_at: int = 0
    generator_url: str = ""
    updated_at: int = 0
    timeout: bool = False
    fp: int = -1

    def __post_init__(self) -> None:
        if self.fp < 0:
            self.fp = fingerprint(self.labels)

    def resolved_at(self, now_ns: int) -> bool:
        """Go's ResolvedAt: endsAt set and not after `now`."""
        return self.ends_at != 0 and self.ends_at <= now_ns

    def status(self, now_ns: int) -> str:
        return RESOLVED if self.resolved_at(now_ns) else FIRING

    def copy(self) -> Alert:
        return Alert(self.labels, self.annotations, self.starts_at, self.ends_at, self.generator_url,
                     self.updated_at, self.timeout, self.fp)

    def merge(self, other: Alert, now_ns: int) -> Alert:
        """types.Alert.Merge: the younger alert's fields, the earliest start, and the end rules
        (a later explicit resolve wins; a later non-timeout end wins)."""
        a, o = self, other
        if o.updated_at < a.updated_at:
            a, o = o, a
        res = o.copy()
        if a.starts_at < o.starts_at:
            res.starts_at = a.starts_at
        if o.resolved_at(now_ns):
            if a.resolved_at(now_ns) and a.ends_at > o.ends_at:
                res.ends_at = a.ends_at
        elif a.ends_at > o.ends_at and not a.timeout:
            res.ends_at = a.ends_at
        return res


def labels_before(a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    """model.LabelSet.Before."""
    if len(a) != len(b):
        return len(a) < len(b)
    for name in sorted([*a, *b]):
        if name not in a:
            return True
        if name not in b:
            return False
        if a[name] != b[name]:
            return a[name] < b[name]
    return False


class _SortKey:
    """types.AlertSlice order: by job, then instance (alerts lacking one sort after), then labels."""

    __slots__ = ("labels",)

    def __init__(self, alert: Alert) -> None:
        self.labels = alert.labels

    def __lt__(self, other: _SortKey) -> bool:
        for key in ("job", "instance"):
            i, j = self.labels.get(key), other.labels.get(key)
            if i is None and j is None:
                continue
            if i is None:
                return False
            if j is None:
                return True
            if i != j:
                return i < j
        return labels_before(self.labels, other.labels)


def sort_alerts(alerts: list[Alert]) -> list[Alert]:
    return sorted(alerts, key=_SortKey)


def common(maps: list[dict[str, str]]) -> dict[str, str]:
    """The key/value pairs every map has (the webhook's commonLabels/commonAnnotations)."""
    if not maps:
        return {}
    out = dict(maps[0])
    for m in maps[1:]:
        for k in list(out):
            if m.get(k, "") != out[k]:
                del out[k]
    return out
