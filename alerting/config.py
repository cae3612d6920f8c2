"""Alertmanager configuration YAML: the subset hostwatch implements, with the same keys, defaults and
validation messages as Alertmanager 0.25's config package.

Unknown keys are an error naming the file and the key path (`route.routes[1].foo`); keys Alertmanager
knows but hostwatch does not implement (email_configs, time intervals, ...) are an error saying so.
Other components extend the file through `extensions` (a top-level key -> parser, e.g. on-call
`schedules:`) and a receiver may name an `escalation_policy` instead of (or besides) webhooks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from alerting.http11 import BadURL, target
from alerting.matchers import EQUAL, REGEX, Matcher, MatcherError, parse_matchers, sort_matchers
from alerting.model import LABEL_NAME_RE
from hostwatch.core.config import ConfigError
from hostwatch.core.timefmt import parse_duration

DEFAULT_GROUP_WAIT = 30.0
DEFAULT_GROUP_INTERVAL = 300.0
DEFAULT_REPEAT_INTERVAL = 4 * 3600.0
DEFAULT_RESOLVE_TIMEOUT = 300.0
GROUP_BY_ALL = "..."

Extension = Callable[[Any, str], Any]  # (raw YAML value, "file: key") -> parsed section

_ROUTE_KEYS = {"receiver", "group_by", "group_wait", "group_interval", "repeat_interval", "matchers", "match",
               "match_re", "continue", "routes"}
_ROUTE_UNSUPPORTED = {"mute_time_intervals", "active_time_intervals"}
_TOP_KEYS = {"global", "route", "inhibit_rules", "receivers", "templates"}
_TOP_UNSUPPORTED = {"time_intervals", "mute_time_intervals"}
_GLOBAL_KEYS = {"resolve_timeout"}
_INHIBIT_KEYS = {"source_matchers", "target_matchers", "source_match", "source_match_re", "target_match",
                 "target_match_re", "equal"}
_RECEIVER_KEYS = {"name", "webhook_configs", "escalation_policy"}
_WEBHOOK_KEYS = {"url", "send_resolved", "max_alerts"}
_WEBHOOK_UNSUPPORTED = {"url_file", "http_config"}


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    send_resolved: bool = True  # Alertmanager's webhook default
    max_alerts: int = 0


@dataclass(frozen=True)
class ReceiverConfig:
    name: str
    webhook_configs: tuple[WebhookConfig, ...] = ()
    # The extension point for on-call: the name of an escalation policy that the receiver pages.
    escalation_policy: str | None = None


@dataclass(frozen=True)
class RouteConfig:
    """One node as written; `None` means inherited from the parent (or the defaults at the root)."""

    receiver: str | None = None
    group_by: tuple[str, ...] | None = None
    group_by_all: bool = False
    group_wait: float | None = None
    group_interval: float | None = None
    repeat_interval: float | None = None
    # match + match_re + matchers, merged and sorted as dispatch.NewRoute does.
    matchers: tuple[Matcher, ...] = ()
    continue_: bool = False
    routes: tuple[RouteConfig, ...] = ()


@dataclass(frozen=True)
class InhibitRule:
    source_matchers: tuple[Matcher, ...]
    target_matchers: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()


@dataclass(frozen=True)
class AlertmanagerConfig:
    route: RouteConfig
    receivers: tuple[ReceiverConfig, ...]
    inhibit_rules: tuple[InhibitRule, ...] = ()
    resolve_timeout: float = DEFAULT_RESOLVE_TIMEOUT
    extensions: Mapping[str, Any] = field(default_factory=dict)
    source: str = "<config>"

    def receiver(self, name: str) -> ReceiverConfig:
        return next(r for r in self.receivers if r.name == name)

    def original(self) -> str:
        """The configuration as Alertmanager YAML (GET /api/v2/status `config.original`, which amtool
        parses for `config routes`); hostwatch-only keys are left out."""
        return yaml.safe_dump(_dump(self), sort_keys=False, allow_unicode=True)


def load(path: str | Path, extensions: Mapping[str, Extension] | None = None) -> AlertmanagerConfig:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    return loads(text, str(path), extensions)


def loads(text: str, source: str = "<config>", extensions: Mapping[str, Extension] | None = None
          ) -> AlertmanagerConfig:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source}: invalid YAML{where}: {getattr(e, 'problem', None) or e}") from None
    return parse(data, source, extensions)


def parse(data: Any, source: str = "<config>", extensions: Mapping[str, Extension] | None = None
          ) -> AlertmanagerConfig:
    p = _Parser(source)
    ext = dict(extensions or {})
    top = p.mapping(data, "", _TOP_KEYS | set(ext), _TOP_UNSUPPORTED)
    glob = p.mapping(top.get("global"), "global", _GLOBAL_KEYS, None)
    resolve_timeout = p.duration(glob, "resolve_timeout", "global.") or DEFAULT_RESOLVE_TIMEOUT
    if "route" not in top or top["route"] is None:
        raise ConfigError(f"{source}: no routes provided")
    route = p.route(top["route"], "route")
    if not route.receiver:
        raise ConfigError(f"{source}: root route must specify a default receiver")
    if route.matchers:
        raise ConfigError(f"{source}: root route must not have any matchers")
    if route.continue_:
        raise ConfigError(f"{source}: cannot have continue in root route")
    receivers = tuple(p.receiver(r, f"receivers[{i}]") for i, r in enumerate(p.sequence(top.get("receivers"),
                                                                                          "receivers")))
    names: set[str] = set()
    for r in receivers:
        if r.name in names:
            raise ConfigError(f"{source}: notification config name {r.name!r} is not unique")
        names.add(r.name)
    _check_receivers(route, names, source)
    rules = tuple(p.inhibit(r, f"inhibit_rules[{i}]") for i, r in enumerate(p.sequence(top.get("inhibit_rules"),
                                                                                      "inhibit_rules")))
    parsed_ext = {k: fn(top[k], f"{source}: {k}") for k, fn in ext.items() if k in top}
    return AlertmanagerConfig(route, receivers, rules, resolve_timeout, parsed_ext, source)


def _check_receivers(route: RouteConfig, names: set[str], source: str) -> None:
    if route.receiver and route.receiver not in names:
        raise ConfigError(f"{source}: undefined receiver {route.receiver!r} used in route")
    for child in route.routes:
        _check_receivers(child, names, source)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {where}: {message}" if where else f"{self.source}: {message}")

    def mapping(self, data: Any, where: str, known: set[str], unsupported: set[str] | None) -> dict[str, Any]:
        if data is None:
            return {}
        if not isinstance(data, Mapping):
            raise self.fail(where, "must be a mapping")
        prefix = where + "." if where else ""
        for key in data:
            if unsupported and key in unsupported:
                raise ConfigError(f"{self.source}: key {prefix + str(key)!r} is not supported by hostwatch")
            if key not in known:
                raise ConfigError(f"{self.source}: unknown key {prefix + str(key)!r}")
        return dict(data)

    def sequence(self, data: Any, where: str) -> list[Any]:
        if data is None:
            return []
        if not isinstance(data, list):
            raise self.fail(where, "must be a list")
        return data

    def duration(self, data: Mapping[str, Any], key: str, prefix: str) -> float | None:
        value = data.get(key)
        if value is None:
            return None
        try:
            return parse_duration(str(value))
        except ValueError as e:
            raise self.fail(prefix + key, str(e)) from None

    def string(self, data: Mapping[str, Any], key: str, prefix: str, required: bool = False) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                raise self.fail(prefix + key, "is required")
            return None
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise self.fail(prefix + key, "must be a string")
        return str(value)

    def label_map(self, value: Any, where: str, type_: str) -> list[Matcher]:
        if value is None:
            return []
        if not isinstance(value, Mapping):
            raise self.fail(where, "must be a mapping of label names to values")
        out = []
        for name, v in value.items():
            if not LABEL_NAME_RE.match(str(name)):
                raise self.fail(where, f"invalid label name {str(name)!r}")
            if type_ == REGEX:
                v = f"^(?:{v})$"  # config.Regexp.String() is the anchored form, so route keys print it
            try:
                out.append(Matcher.new(type_, str(name), str(v)))
            except MatcherError as e:
                raise self.fail(where, str(e)) from None
        return out

    def matcher_lines(self, value: Any, where: str) -> list[Matcher]:
        out: list[Matcher] = []
        for i, line in enumerate(self.sequence(value, where)):
            if not isinstance(line, str):
                raise self.fail(f"{where}[{i}]", "must be a string like 'name=\"value\"'")
            try:
                out.extend(parse_matchers(line))
            except MatcherError as e:
                raise self.fail(f"{where}[{i}]", str(e)) from None
        return out

    def route(self, data: Any, where: str) -> RouteConfig:
        d = self.mapping(data, where, _ROUTE_KEYS, _ROUTE_UNSUPPORTED)
        p = where + "."
        group_by: tuple[str, ...] | None = None
        group_by_all = False
        if "group_by" in d and d["group_by"] is not None:
            names = []
            for ln in self.sequence(d["group_by"], p + "group_by"):
                ln = str(ln)
                if ln == GROUP_BY_ALL:
                    group_by_all = True
                elif not LABEL_NAME_RE.match(ln):
                    raise self.fail(p + "group_by", f"invalid label name {ln!r} in group_by list")
                elif ln in names:
                    raise self.fail(p + "group_by", f"duplicated label {ln!r} in group_by")
                else:
                    names.append(ln)
            if names and group_by_all:
                raise self.fail(p + "group_by", "cannot have wildcard group_by (`...`) and other other labels "
                                                "at the same time")
            # As in Alertmanager, an empty list is no list: the route inherits its parent's group_by.
            group_by = tuple(names) if names or group_by_all else None
        gi, ri = self.duration(d, "group_interval", p), self.duration(d, "repeat_interval", p)
        if gi == 0:
            raise self.fail(p + "group_interval", "group_interval cannot be zero")
        if ri == 0:
            raise self.fail(p + "repeat_interval", "repeat_interval cannot be zero")
        cont = d.get("continue", False)
        if not isinstance(cont, bool):
            raise self.fail(p + "continue", "must be true or false")
        matchers = (self.label_map(d.get("match"), p + "match", EQUAL)
                    + self.label_map(d.get("match_re"), p + "match_re", REGEX)
                    + self.matcher_lines(d.get("matchers"), p + "matchers"))
        children = tuple(self.route(c, f"{p}routes[{i}]")
                         for i, c in enumerate(self.sequence(d.get("routes"), p + "routes")))
        return RouteConfig(self.string(d, "receiver", p), group_by, group_by_all, self.duration(d, "group_wait", p),
                           gi, ri, tuple(sort_matchers(matchers)), cont, children)

    def receiver(self, data: Any, where: str) -> ReceiverConfig:
        d = self.mapping(data, where, _RECEIVER_KEYS, _OTHER_INTEGRATIONS)
        p = where + "."
        name = self.string(d, "name", p)
        if not name:
            raise self.fail(where, "missing name in receiver")
        hooks = []
        for i, w in enumerate(self.sequence(d.get("webhook_configs"), p + "webhook_configs")):
            wp = f"{p}webhook_configs[{i}]"
            wd = self.mapping(w, wp, _WEBHOOK_KEYS, _WEBHOOK_UNSUPPORTED)
            url = self.string(wd, "url", wp + ".")
            if not url:
                raise self.fail(wp, "one of url or url_file must be configured")
            if not url.startswith(("http://", "https://")):
                raise self.fail(wp + ".url", f"unsupported scheme in URL {url!r}")
            try:
                target(url)
            except BadURL as e:
                raise self.fail(wp + ".url", str(e)) from None
            sr, ma = wd.get("send_resolved", True), wd.get("max_alerts", 0)
            if not isinstance(sr, bool):
                raise self.fail(wp + ".send_resolved", "must be true or false")
            if not isinstance(ma, int) or isinstance(ma, bool) or ma < 0:
                raise self.fail(wp + ".max_alerts", "must be a non-negative integer")
            hooks.append(WebhookConfig(url, sr, ma))
        return ReceiverConfig(name, tuple(hooks), self.string(d, "escalation_policy", p))

    def inhibit(self, data: Any, where: str) -> InhibitRule:
        d = self.mapping(data, where, _INHIBIT_KEYS, None)
        p = where + "."
        src = (self.label_map(d.get("source_match"), p + "source_match", EQUAL)
               + self.label_map(d.get("source_match_re"), p + "source_match_re", REGEX)
               + self.matcher_lines(d.get("source_matchers"), p + "source_matchers"))
        tgt = (self.label_map(d.get("target_match"), p + "target_match", EQUAL)
               + self.label_map(d.get("target_match_re"), p + "target_match_re", REGEX)
               + self.matcher_lines(d.get("target_matchers"), p + "target_matchers"))
        equal = [str(x) for x in self.sequence(d.get("equal"), p + "equal")]
        for ln in equal:
            if not LABEL_NAME_RE.match(ln):
                raise self.fail(p + "equal", f"invalid label name {ln!r}")
        return InhibitRule(tuple(src), tuple(tgt), tuple(equal))


_OTHER_INTEGRATIONS = {"email_configs", "pagerduty_configs", "slack_configs", "opsgenie_configs",
                       "wechat_configs", "pushover_configs", "victorops_configs", "sns_configs",
                       "telegram_configs", "webex_configs", "discord_configs", "msteams_configs"}


def format_duration(seconds: float) -> str:
    """Prometheus model.Duration.String(): 1h30m, 5m, 30s, 500ms, 0s."""
    ms = int(round(seconds * 1000))
    if ms == 0:
        return "0s"
    out = []
    for unit, size in (("y", 31536000000), ("w", 604800000), ("d", 86400000), ("h", 3600000), ("m", 60000),
                       ("s", 1000), ("ms", 1)):
        if ms >= size:
            out.append(f"{ms // size}{unit}")
            ms %= size
    return "".join(out)


def _dump_route(r: RouteConfig) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if r.receiver:
        out["receiver"] = r.receiver
    if r.group_by is not None:
        out["group_by"] = [GROUP_BY_ALL] if r.group_by_all else list(r.group_by)
    if r.matchers:
        out["matchers"] = [str(m) for m in r.matchers]
    out["continue"] = r.continue_
    if r.routes:
        out["routes"] = [_dump_route(c) for c in r.routes]
    for key in ("group_wait", "group_interval", "repeat_interval"):
        value = getattr(r, key)
        if value is not None:
            out[key] = format_duration(value)
    return out


def _dump(c: AlertmanagerConfig) -> dict[str, Any]:
    receivers = []
    for r in c.receivers:
        rd: dict[str, Any] = {"name": r.name}
        if r.webhook_configs:
            rd["webhook_configs"] = [{"send_resolved": w.send_resolved, "url": w.url, "max_alerts": w.max_alerts}
                                     for w in r.webhook_configs]
        receivers.append(rd)
    out: dict[str, Any] = {"global": {"resolve_timeout": format_duration(c.resolve_timeout)},
                           "route": _dump_route(c.route)}
    if c.inhibit_rules:
        out["inhibit_rules"] = [{"source_matchers": [str(m) for m in r.source_matchers],
                                 "target_matchers": [str(m) for m in r.target_matchers],
                                 "equal": list(r.equal)} for r in c.inhibit_rules]
    out["receivers"] = receivers
    out["templates"] = []
    return out
