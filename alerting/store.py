"""The alert store (Alertmanager's provider/mem): one alert per fingerprint, re-posts merged into it.

A re-post whose activity range overlaps the stored alert is merged (types.Alert.Merge); otherwise it
replaces the stored one (a new firing episode). Every stored alert goes to the listeners (the
dispatcher, the inhibitor, replication), synchronously and in order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from alerting.model import Alert, parse_time_ns, validate_labels

Listener = Callable[[Alert, bool], None]  # (stored alert, changed since the last store?)


def _overlaps(new: Alert, old: Alert) -> bool:
    return (old.starts_at < new.ends_at < old.ends_at) or (old.starts_at < new.starts_at < old.ends_at)


class AlertStore:
    def __init__(self) -> None:
        self._alerts: dict[int, Alert] = {}
        self._listeners: list[Listener] = []

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def put(self, alert: Alert, now_ns: int) -> Alert:
        old = self._alerts.get(alert.fp)
        if old is not None and _overlaps(alert, old):
            alert = old.merge(alert, now_ns)
        changed = old is None or _differs(old, alert)
        self._alerts[alert.fp] = alert
        for fn in self._listeners:
            fn(alert, changed)
        return alert

    def get(self, fp: int) -> Alert | None:
        return self._alerts.get(fp)

    def __iter__(self) -> Iterator[Alert]:
        return iter(list(self._alerts.values()))

    def __len__(self) -> int:
        return len(self._alerts)

    def gc(self, now_ns: int, resolved_for_ns: int = 0) -> list[Alert]:
        """Drop alerts resolved at least `resolved_for_ns` ago (the provider's GC); returns them."""
        gone = [a for a in self._alerts.values() if a.resolved_at(now_ns - resolved_for_ns)]
        for a in gone:
            del self._alerts[a.fp]
        return gone


def _differs(old: Alert, new: Alert) -> bool:
    return (old.starts_at != new.starts_at or old.ends_at != new.ends_at or old.annotations != new.annotations
            or old.generator_url != new.generator_url)


def alert_from_api(obj: Any, now_ns: int, resolve_timeout_ns: int) -> Alert:
    """One postableAlert, completed as the API v2 handler does: UpdatedAt now; a missing startsAt is
    now (or endsAt when only that is given); a missing endsAt is now + resolve_timeout, marked Timeout.
    Empty label values are dropped. ValueError with Alertmanager's messages when invalid."""
    if not isinstance(obj, dict):  # JSON objects arrive as dicts (an isinstance against Mapping is slower)
        raise ValueError("alert must be an object")
    labels = obj.get("labels")
    if not isinstance(labels, dict):
        raise ValueError("labels in body is required")
    annotations = obj.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise ValueError("annotations must be an object")
    if "" in labels.values():
        labels = {k: v for k, v in labels.items() if v != ""}
    starts = parse_time_ns(obj.get("startsAt") or "")
    ends = parse_time_ns(obj.get("endsAt") or "")
    gen = obj.get("generatorURL") or ""
    if not isinstance(gen, str):
        raise ValueError("generatorURL must be a string")
    if starts == 0:
        starts = ends if ends else now_ns
    timeout = False
    if ends == 0:
        timeout, ends = True, now_ns + resolve_timeout_ns
    if ends < starts:
        raise ValueError("start time must be before end time")
    validate_labels(labels)
    if not labels:
        raise ValueError("at least one label pair required")
    validate_labels(annotations, "annotations")
    return Alert(labels, annotations, starts, ends, gen, now_ns, timeout)
