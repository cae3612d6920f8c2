"""Inhibition (inhibit/inhibit.go): a target alert is muted while a source alert that is not resolved
has the same values (missing = "") for every `equal` label. An alert matching both sides of a rule
cannot be inhibited by alerts that also match both sides."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from alerting.config import InhibitRule
from alerting.matchers import all_match
from alerting.model import Alert


class _Rule:
    def __init__(self, rule: InhibitRule) -> None:
        self.rule = rule
        # Source alerts indexed by their `equal` values, so a check is one lookup, not a scan.
        self.sources: dict[tuple[str, ...], dict[int, Alert]] = {}

    def key(self, labels: Mapping[str, str]) -> tuple[str, ...]:
        return tuple(labels.get(n, "") for n in self.rule.equal)

    def observe(self, alert: Alert) -> None:
        if all_match(self.rule.source_matchers, alert.labels):
            self.sources.setdefault(self.key(alert.labels), {})[alert.fp] = alert

    def forget(self, alert: Alert) -> None:
        bucket = self.sources.get(self.key(alert.labels))
        if bucket is not None:
            bucket.pop(alert.fp, None)
            if not bucket:
                del self.sources[self.key(alert.labels)]

    def inhibiting(self, labels: Mapping[str, str], now_ns: int) -> int | None:
        if not all_match(self.rule.target_matchers, labels):
            return None
        two_sided = all_match(self.rule.source_matchers, labels)
        for src in self.sources.get(self.key(labels), {}).values():
            if src.resolved_at(now_ns):
                continue
            if two_sided and all_match(self.rule.target_matchers, src.labels):
                continue
            return src.fp
        return None


class Inhibitor:
    def __init__(self, rules: Iterable[InhibitRule]) -> None:
        self.rules = [_Rule(r) for r in rules]

    def observe(self, alert: Alert, changed: bool = True) -> None:
        """A store listener: keep the source caches current."""
        for r in self.rules:
            r.observe(alert)

    def forget(self, alert: Alert) -> None:
        for r in self.rules:
            r.forget(alert)

    def load(self, alerts: Iterable[Alert]) -> None:
        for a in alerts:
            self.observe(a)

    def mutes(self, labels: Mapping[str, str], now_ns: int) -> list[str]:
        """The fingerprint (hex) of an alert that inhibits `labels`, as a list ([] when none)."""
        for r in self.rules:
            fp = r.inhibiting(labels, now_ns)
            if fp is not None:
                return [f"{fp:016x}"]
        return []

