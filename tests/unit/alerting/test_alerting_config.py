"""Alertmanager YAML: defaults, inheritance, validation messages, unknown and unsupported keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from alerting.config import format_duration, load, loads
from alerting.route import Route
from hostwatch.core.config import ConfigError

BASE = """
route:
  receiver: r
receivers:
  - name: r
    webhook_configs: [{url: "http://x/"}]
"""


def test_defaults_are_alertmanagers() -> None:
    cfg = loads(BASE)
    root = Route(cfg.route)
    assert (root.opts.group_wait, root.opts.group_interval, root.opts.repeat_interval) == (30.0, 300.0, 14400.0)
    assert cfg.resolve_timeout == 300.0
    assert root.opts.group_by == frozenset() and not root.opts.group_by_all
    hook = cfg.receivers[0].webhook_configs[0]
    assert (hook.send_resolved, hook.max_alerts) == (True, 0)


def test_children_inherit_and_override() -> None:
    cfg = loads("""
global: {resolve_timeout: 1m}
route:
  receiver: r
  group_by: [a]
  group_wait: 10s
  routes:
    - matchers: [x=1]
      group_interval: 1m
      routes:
        - matchers: [y=2]
          receiver: s
          group_by: ['...']
          repeat_interval: 1h30m
    - matchers: [x=2]
      group_by: []
receivers: [{name: r}, {name: s}]
""")
    root = Route(cfg.route)
    child, grandchild, empty = root.routes[0], root.routes[0].routes[0], root.routes[1]
    assert cfg.resolve_timeout == 60.0
    assert (child.opts.receiver, child.opts.group_by, child.opts.group_wait, child.opts.group_interval) == (
        "r", frozenset({"a"}), 10.0, 60.0)
    assert (grandchild.opts.receiver, grandchild.opts.group_by_all, grandchild.opts.repeat_interval) == (
        "s", True, 5400.0)
    assert grandchild.opts.group_interval == 60.0
    assert empty.opts.group_by == frozenset({"a"})  # an empty list inherits, as in Alertmanager
    assert grandchild.key == '{}/{x="1"}/{y="2"}'


ERRORS = [
    ("route: {receiver: r, foo: 1}\nreceivers: [{name: r}]", "unknown key 'route.foo'"),
    ("route: {receiver: r, routes: [{receiver: r, bar: 1}]}\nreceivers: [{name: r}]",
     "unknown key 'route.routes[0].bar'"),
    ("route: {receiver: r}\nreceivers: [{name: r, webhook_configs: [{url: 'http://x', tls: 1}]}]",
     "unknown key 'receivers[0].webhook_configs[0].tls'"),
    ("route: {receiver: r}\nreceivers: [{name: r, email_configs: [{to: a}]}]",
     "key 'receivers[0].email_configs' is not supported"),
    ("route: {receiver: r}\nreceivers: [{name: r}]\ntime_intervals: []", "key 'time_intervals' is not supported"),
    ("route: {receiver: r}\nreceivers: [{name: r}]\nnope: 1", "unknown key 'nope'"),
    ("receivers: [{name: r}]", "no routes provided"),
    ("route: {group_by: [a]}\nreceivers: [{name: r}]", "root route must specify a default receiver"),
    ("route: {receiver: r, matchers: [a=b]}\nreceivers: [{name: r}]", "root route must not have any matchers"),
    ("route: {receiver: r, continue: true}\nreceivers: [{name: r}]", "cannot have continue in root route"),
    ("route: {receiver: x}\nreceivers: [{name: r}]", "undefined receiver 'x' used in route"),
    ("route: {receiver: r}\nreceivers: [{name: r}, {name: r}]", "notification config name 'r' is not unique"),
    ("route: {receiver: r, group_by: ['...', a]}\nreceivers: [{name: r}]", "cannot have wildcard group_by"),
    ("route: {receiver: r, group_by: [a, a]}\nreceivers: [{name: r}]", "duplicated label 'a' in group_by"),
    ("route: {receiver: r, group_by: ['a-b']}\nreceivers: [{name: r}]", "invalid label name 'a-b' in group_by"),
    ("route: {receiver: r, group_interval: 0s}\nreceivers: [{name: r}]", "group_interval cannot be zero"),
    ("route: {receiver: r, repeat_interval: 0s}\nreceivers: [{name: r}]", "repeat_interval cannot be zero"),
    ("route: {receiver: r, group_wait: soon}\nreceivers: [{name: r}]", "route.group_wait: invalid duration"),
    ("route: {receiver: r, routes: [{matchers: ['a=\"b']}]}\nreceivers: [{name: r}]",
     "route.routes[0].matchers[0]: matcher value contains unescaped double quote"),
    ("route: {receiver: r}\nreceivers: [{webhook_configs: []}]", "missing name in receiver"),
    ("route: {receiver: r}\nreceivers: [{name: r, webhook_configs: [{send_resolved: true}]}]",
     "one of url or url_file must be configured"),
    ("route: {receiver: r}\nreceivers: [{name: r, webhook_configs: [{url: 'ftp://x/'}]}]",
     "receivers[0].webhook_configs[0].url: unsupported scheme in URL 'ftp://x/'"),
    ("route: {receiver: r}\nreceivers: [{name: r, webhook_configs: [{url: 'http://x:99999/'}]}]",
     "receivers[0].webhook_configs[0].url: bad URL 'http://x:99999/'"),
    ("route: {receiver: r}\nreceivers: [{name: r, webhook_configs: [{url: 'http:///hook'}]}]",
     "receivers[0].webhook_configs[0].url: bad URL 'http:///hook': want http:// or https:// and a host"),
    ("route: {receiver: r}\nreceivers: [{name: r}]\ninhibit_rules: [{equal: ['a b']}]", "invalid label name 'a b'"),
    ("route: {receiver: r\n", "invalid YAML"),
]


@pytest.mark.parametrize(("text", "error"), ERRORS)
def test_errors_name_the_file_and_key(text: str, error: str) -> None:
    with pytest.raises(ConfigError) as e:
        loads(text, "/etc/am.yml")
    assert str(e.value).startswith("/etc/am.yml: ") and error in str(e.value)
    assert "\n" not in str(e.value)


def test_load_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "none.yml")


def test_extensions_parse_their_own_top_level_keys() -> None:
    cfg = loads(BASE + "schedules: [{name: primary}]\n", extensions={"schedules": lambda v, where: tuple(v)})
    assert cfg.extensions["schedules"] == ({"name": "primary"},)
    with pytest.raises(ConfigError, match="unknown key 'schedules'"):
        loads(BASE + "schedules: []\n")


def test_original_is_alertmanager_yaml_that_round_trips() -> None:
    text = """
route:
  receiver: r
  group_by: ['...']
  group_wait: 1m30s
  routes: [{match: {a: b}, match_re: {c: 'd.*'}, matchers: ['e!="f"'], receiver: s, continue: true}]
receivers:
  - {name: r, webhook_configs: [{url: 'http://x/', send_resolved: false, max_alerts: 3}]}
  - {name: s, escalation_policy: ops}
inhibit_rules: [{source_matchers: [a=b], target_matchers: [c=d], equal: [e]}]
"""
    cfg = loads(text)
    again = loads(cfg.original())
    assert again.route == cfg.route
    assert again.inhibit_rules == cfg.inhibit_rules
    assert again.receivers[0] == cfg.receivers[0]
    assert "escalation_policy" not in cfg.original()  # amtool parses this; it knows no such key
    assert yaml.safe_load(cfg.original())["route"]["group_wait"] == "1m30s"


@pytest.mark.parametrize(("seconds", "text"), [(0, "0s"), (30, "30s"), (300, "5m"), (5400, "1h30m"), (0.5, "500ms"),
                                                (86400 * 8, "1w1d")])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
