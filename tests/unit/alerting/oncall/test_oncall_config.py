"""The on-call YAML sections: a full file through the core's Alertmanager parser, and one-line
errors that name the file and the key for every kind of mistake."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
import yaml

from alerting import config as amconfig
from alerting.oncall.config import EXTENSIONS, ONCALL_KEYS, from_alertmanager, parse_oncall
from alerting.oncall.contacts import EMAIL, WEBHOOK
from alerting.oncall.rotation import TurnLength
from hostwatch.core.config import ConfigError

FILE = """
route: {receiver: pager}
receivers:
  - name: pager
    escalation_policy: ops
people:
  - name: alice
    contacts: [{webhook_url: "http://127.0.0.1:1/alice"}, {email: alice@example.com}]
  - name: bob
    contacts: [{webhook_url: "https://hooks.example/bob"}]
schedules:
  - name: primary
    time_zone: Europe/Berlin
    layers:
      - name: base
        users: [alice, bob]
        rotation: 1w
        start: 2024-03-25T09:00:00
      - users: [bob]
        rotation: 12h
        start: 2024-03-25T09:00:00+02:00
        end: 2025-01-01
        time_zone: America/New_York
        restrictions:
          - {days: [mon, tue, wed, thu, friday], start_time: 09:00, end_time: 17:00}
          - {start_time: "22:00", end_time: "06:00"}
          - {type: weekly, start_day: sat, start_time: 10:00, duration: 4h}
          - {type: weekly, start_day: fri, start_time: "17:00", end_day: mon, end_time: "09:00"}
    overrides:
      - {user: alice, start: 2024-03-30T00:00:00, end: "2024-03-31T00:00:00Z"}
escalation_policies:
  - name: ops
    repeat: 2
    notify_on_ack: true
    levels:
      - {schedules: [primary], timeout: 15m}
      - {users: [alice, bob]}
"""


def test_full_file_through_the_cores_parser() -> None:
    am = amconfig.loads(FILE, "am.yml", EXTENSIONS)
    oc = from_alertmanager(am)
    assert set(ONCALL_KEYS) == set(am.extensions)
    assert [(c.type, c.address) for c in oc.people["alice"].contacts] == [
        (WEBHOOK, "http://127.0.0.1:1/alice"), (EMAIL, "alice@example.com")]
    base, extra = oc.schedules["primary"].layers
    assert base.name == "base" and base.turn == TurnLength(days=7) and str(base.zone) == "Europe/Berlin"
    assert base.start == datetime(2024, 3, 25, 8, tzinfo=UTC)  # 09:00 CET
    assert extra.name == "layer 2" and extra.turn == TurnLength(seconds=43200)
    assert extra.start == datetime(2024, 3, 25, 7, tzinfo=UTC) and str(extra.zone) == "America/New_York"
    assert extra.end == datetime(2025, 1, 1, 5, tzinfo=UTC)  # a date: midnight in the layer's zone
    biz, nights, sat, weekend = extra.restrictions
    assert (biz.start, biz.duration, biz.days) == (time(9), timedelta(hours=8), frozenset(range(5)))
    assert (nights.start, nights.duration, len(nights.days)) == (time(22), timedelta(hours=8), 7)
    assert (sat.start, sat.duration, sat.days) == (time(10), timedelta(hours=4), frozenset({5}))
    assert (weekend.start, weekend.duration, weekend.days) == (time(17), timedelta(hours=64), frozenset({4}))
    (o,) = oc.schedules["primary"].overrides
    assert (o.user, o.start, o.end) == ("alice", datetime(2024, 3, 29, 23, tzinfo=UTC),
                                        datetime(2024, 3, 31, tzinfo=UTC))
    p = oc.policies["ops"]
    assert (p.repeat, p.notify_on_ack, p.steps) == (2, True, 6)
    assert p.levels[0].timeout == timedelta(minutes=15) and p.levels[1].timeout == timedelta(minutes=30)
    assert p.levels[1].users == ("alice", "bob")


def test_no_oncall_sections_is_an_empty_config() -> None:
    oc = from_alertmanager(amconfig.loads("route: {receiver: r}\nreceivers: [{name: r}]\n", "am.yml", EXTENSIONS))
    assert (dict(oc.people), dict(oc.schedules), dict(oc.policies)) == ({}, {}, {})


def test_receiver_naming_an_unknown_policy() -> None:
    text = FILE.replace("escalation_policy: ops", "escalation_policy: nope")
    with pytest.raises(ConfigError) as e:
        from_alertmanager(amconfig.loads(text, "am.yml", EXTENSIONS))
    assert str(e.value) == "am.yml: receivers[0].escalation_policy: unknown escalation policy 'nope' (receiver 'pager')"


BASE = yaml.safe_load(FILE)


def set_path(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `data` with `a.b[0].c` set (None deletes)."""
    out = copy.deepcopy(data)
    node: Any = out
    parts = path.replace("[", ".").replace("]", "").split(".")
    for part in parts[:-1]:
        node = node[int(part)] if part.isdigit() else node[part]
    last = parts[-1]
    if value is None:
        del node[int(last) if last.isdigit() else last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return out


L1 = "schedules[0].layers[1]"
ERRORS = [
    ("people[0].phone", "+49", "unknown key 'people[0].phone'"),
    ("people[0].contacts", [], "people[0].contacts: must not be empty"),
    ("people[0].contacts[0]", {"webhook_url": "http://a", "email": "a@b"}, "give exactly one of webhook_url or email"),
    ("people[0].contacts[0]", {"pager": "123"}, "unknown key 'people[0].contacts[0].pager'"),
    ("people[0].contacts[0].webhook_url", "ftp://x", "people[0].contacts[0].webhook_url: 'ftp://x' is not an http"),
    ("people[0].contacts[0].webhook_url", "http://pager:0x50/a",
     "people[0].contacts[0].webhook_url: 'http://pager:0x50/a' is not an http"),
    ("people[0].contacts[1].email", "nobody", "people[0].contacts[1].email: 'nobody' is not an email address"),
    ("people[1].name", "alice", "people[1].name: duplicate name 'alice'"),
    ("people[1].name", "bob smith", "people[1].name: 'bob smith' is not a name"),
    ("schedules[0].time_zone", "Europe/Berln", "schedules[0].time_zone: unknown time zone 'Europe/Berln'"),
    ("schedules[0].colour", "red", "unknown key 'schedules[0].colour'"),
    ("schedules[0].layers", [], "schedules[0].layers: must not be empty"),
    (f"{L1}.users", ["alice", "zed"], f"{L1}.users[1]: unknown person 'zed' (not in people)"),
    (f"{L1}.users", [], f"{L1}.users: must not be empty"),
    (f"{L1}.rotation", "1d12h", f"{L1}.rotation: invalid rotation '1d12h' (expected e.g. 1d, 1w, 12h): use whole"),
    (f"{L1}.rotation", "10", f"{L1}.rotation: invalid rotation '10'"),
    (f"{L1}.rotation", "0d", f"{L1}.rotation: invalid rotation '0d'"),
    (f"{L1}.rotation", "1.5d", f"{L1}.rotation: invalid rotation '1.5d'"),
    (f"{L1}.rotation", "400d", f"{L1}.rotation: a rotation is at most a year long"),
    (f"{L1}.rotation", None, f"{L1}.rotation: is required"),
    (f"{L1}.start", "next monday", f"{L1}.start: invalid time 'next monday'"),
    (f"{L1}.end", "2024-01-01T00:00:00", f"{L1}.end: must be after start"),
    (f"{L1}.time_zone", "Mars/Olympus", f"{L1}.time_zone: unknown time zone 'Mars/Olympus'"),
    (f"{L1}.restrictions[0].start_time", "25:00", f"{L1}.restrictions[0].start_time: invalid time of day '25:00'"),
    (f"{L1}.restrictions[0].start_time", "9am", f"{L1}.restrictions[0].start_time: invalid time of day '9am'"),
    (f"{L1}.restrictions[0].days", ["mon", "funday"], f"{L1}.restrictions[0].days[1]: unknown day 'funday'"),
    (f"{L1}.restrictions[0].duration", "8h", f"{L1}.restrictions[0]: give either end_time or duration"),
    (f"{L1}.restrictions[1].end_time", None, f"{L1}.restrictions[1]: give either end_time or duration"),
    (f"{L1}.restrictions[3].duration", "4h", f"{L1}.restrictions[3]: give either duration or end_day and end_time"),
    (f"{L1}.restrictions[1]", {"start_time": "09:00", "duration": "25h"}, f"{L1}.restrictions[1]: a daily "
     "restriction lasts at most 24h"),
    (f"{L1}.restrictions[1]", {"type": "monthly"}, f"{L1}.restrictions[1].type: must be daily or weekly"),
    (f"{L1}.restrictions[1]", "weekdays", f"{L1}.restrictions[1]: must be a mapping"),
    (f"{L1}.restrictions[2].duration", "8d", f"{L1}.restrictions[2]: a weekly restriction lasts at most 7 days"),
    (f"{L1}.restrictions[2].duration", "8", f"{L1}.restrictions[2].duration: invalid duration '8' (give a unit"),
    (f"{L1}.restrictions[2].start_day", None, f"{L1}.restrictions[2].start_day: is required"),
    (f"{L1}.restrictions[2].days", ["mon"], f"unknown key '{L1}.restrictions[2].days'"),
    ("schedules[0].overrides[0].user", "zed", "schedules[0].overrides[0].user: unknown person 'zed'"),
    ("schedules[0].overrides[0].end", "2024-03-29T00:00:00", "schedules[0].overrides[0].end: must be after start"),
    ("schedules[0].overrides[0].end", None, "schedules[0].overrides[0].end: is required"),
    ("escalation_policies[0].repeat", 10, "escalation_policies[0].repeat: must be an integer from 0 to 9"),
    ("escalation_policies[0].repeat", "twice", "escalation_policies[0].repeat: must be an integer"),
    ("escalation_policies[0].notify_on_ack", "yes", "escalation_policies[0].notify_on_ack: must be true or false"),
    ("escalation_policies[0].levels", [], "escalation_policies[0].levels: must not be empty"),
    ("escalation_policies[0].levels[1]", {"timeout": "5m"}, "escalation_policies[0].levels[1]: needs at least one "
     "target"),
    ("escalation_policies[0].levels[0].schedules", ["secondary"], "escalation_policies[0].levels[0].schedules[0]: "
     "unknown schedule 'secondary'"),
    ("escalation_policies[0].levels[1].users", ["zed"], "escalation_policies[0].levels[1].users[0]: unknown person"),
    ("escalation_policies[0].levels[0].timeout", 15, "escalation_policies[0].levels[0].timeout: invalid duration 15"),
    ("escalation_policies[0].levels[0].timeout", "0m", "escalation_policies[0].levels[0].timeout: must be more than 0"),
    ("escalation_policies[0].levels[0].wait", "5m", "unknown key 'escalation_policies[0].levels[0].wait'"),
    ("escalation_policies[0].name", None, "escalation_policies[0].name: is required"),
    ("schedules", {"primary": {}}, "schedules: must be a list"),
]


@pytest.mark.parametrize(("path", "value", "message"), ERRORS, ids=[f"{p}={v!r}" for p, v, _ in ERRORS])
def test_errors_name_the_file_and_the_key(path: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_oncall(set_path(BASE, path, value), "/etc/hostwatch/am.yml")
    text = str(e.value)
    assert text.startswith("/etc/hostwatch/am.yml: ") and "\n" not in text
    assert message in text


def test_the_base_of_the_error_table_is_valid() -> None:
    oc = parse_oncall(BASE, "am.yml")
    assert list(oc.schedules) == ["primary"] and list(oc.policies) == ["ops"]


def test_unquoted_sexagesimal_times_read_back_as_clock_times() -> None:
    data = set_path(BASE, f"{L1}.restrictions[0]", {"start_time": 570, "end_time": 1020})  # 9:30 and 17:00
    r = parse_oncall(data, "am.yml").schedules["primary"].layers[1].restrictions[0]
    assert (r.start, r.duration) == (time(9, 30), timedelta(hours=7, minutes=30))
    data = set_path(BASE, f"{L1}.restrictions[0]", {"start_time": 32430, "duration": "1h"})  # 9:00:30
    assert parse_oncall(data, "am.yml").schedules["primary"].layers[1].restrictions[0].start == time(9, 0, 30)
