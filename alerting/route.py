"""The routing tree (dispatch/route.go): options inherited down the tree, depth-first matching where
the first matching child wins unless it has `continue`, and the route keys that groupKeys start with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from alerting.config import (
    DEFAULT_GROUP_INTERVAL,
    DEFAULT_GROUP_WAIT,
    DEFAULT_REPEAT_INTERVAL,
    RouteConfig,
)
from alerting.matchers import Matcher, matchers_str
from alerting.model import fingerprint, labelset_str

_CACHE_MAX = 100_000


@dataclass(frozen=True)
class RouteOpts:
    receiver: str
    group_by: frozenset[str]
    group_by_all: bool
    group_wait: float
    group_interval: float
    repeat_interval: float


class Route:
    opts: RouteOpts
    key: str

    def __init__(self, cfg: RouteConfig, parent: Route | None = None) -> None:
        base = parent.opts if parent is not None else RouteOpts("", frozenset(), False, DEFAULT_GROUP_WAIT,
                                                                DEFAULT_GROUP_INTERVAL, DEFAULT_REPEAT_INTERVAL)
        group_by, group_by_all = base.group_by, base.group_by_all
        if cfg.group_by is not None:
            group_by, group_by_all = frozenset(cfg.group_by), cfg.group_by_all
        self.opts = RouteOpts(
            cfg.receiver or base.receiver, group_by, group_by_all,
            base.group_wait if cfg.group_wait is None else cfg.group_wait,
            base.group_interval if cfg.group_interval is None else cfg.group_interval,
            base.repeat_interval if cfg.repeat_interval is None else cfg.repeat_interval)
        self.parent = parent
        self.matchers: tuple[Matcher, ...] = cfg.matchers
        self.continue_ = cfg.continue_
        self.key = (parent.key + "/" if parent is not None else "") + matchers_str(self.matchers)
        self.routes = [Route(c, self) for c in cfg.routes]
        self._cache: dict[int, list[Route]] = {}
        self._groups: dict[int, list[tuple[Route, dict[str, str], int]]] = {}

    def match(self, labels: Mapping[str, str]) -> list[Route]:
        """Every route the alert goes to, in tree order (an alert matching no child stays here)."""
        for m in self.matchers:
            if not m.matches(labels.get(m.name, "")):
                return []
        out: list[Route] = []
        for child in self.routes:
            hit = child.match(labels)
            out.extend(hit)
            if hit and not child.continue_:
                break
        return out or [self]

    def match_cached(self, labels: Mapping[str, str], fp: int | None = None) -> list[Route]:
        """match(), memoised per label set (by fingerprint, as Alertmanager keys alerts): Prometheus
        re-sends the same alerts every minute."""
        key = fingerprint(labels) if fp is None else fp
        hit = self._cache.get(key)
        if hit is None:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            hit = self._cache[key] = self.match(labels)
        return hit

    def groups_for(self, labels: Mapping[str, str], fp: int) -> list[tuple[Route, dict[str, str], int]]:
        """(route, group labels, their fingerprint) for every route the alert goes to, memoised."""
        hit = self._groups.get(fp)
        if hit is None:
            if len(self._groups) >= _CACHE_MAX:
                self._groups.clear()
            hit = []
            for r in self.match_cached(labels, fp):
                gl = r.group_labels(labels)
                hit.append((r, gl, fingerprint(gl)))
            self._groups[fp] = hit
        return hit

    def walk(self) -> list[Route]:
        out = [self]
        for c in self.routes:
            out.extend(c.walk())
        return out

    def group_labels(self, labels: Mapping[str, str]) -> dict[str, str]:
        """getGroupLabels: the alert's labels named in group_by (all of them for '...')."""
        if self.opts.group_by_all:
            return dict(labels)
        return {k: v for k, v in labels.items() if k in self.opts.group_by}

    def group_key(self, group_labels: Mapping[str, str]) -> str:
        """aggrGroup.GroupKey(): `<route key>:<group labels>`."""
        return f"{self.key}:{labelset_str(group_labels)}"

    def __repr__(self) -> str:
        return f"Route({self.key!r} -> {self.opts.receiver})"
