"""The on-call sections of the Alertmanager configuration file: `people:`, `schedules:`,
`escalation_policies:`, beside `route:` and `receivers:`; a receiver pages a policy with
`escalation_policy: NAME`.

    people:
      - name: alice
        contacts: [{webhook_url: "http://pager.example/alice"}, {email: alice@example.com}]
    schedules:
      - name: primary
        time_zone: Europe/Berlin          # IANA; the default for its layers and overrides (UTC)
        layers:                           # lowest first: a later layer wins where it has someone
          - name: weekly
            users: [alice, bob]
            rotation: 1w                  # 1d/2d/1w: calendar turns; 8h/12h: elapsed (rotation.py)
            start: 2024-01-01T09:00:00    # the first hand-off, local time (or with an offset)
            restrictions:                 # optional; PagerDuty's daily and weekly restrictions
              - {days: [mon, tue, wed, thu, fri], start_time: "09:00", end_time: "17:00"}
              - {type: weekly, start_day: sat, start_time: "10:00", duration: 4h}
        overrides:
          - {user: carol, start: 2024-03-30T00:00:00, end: 2024-04-01T00:00:00}
    escalation_policies:
      - name: ops
        repeat: 1                         # run the levels once more (PagerDuty's num_loops, <= 9)
        levels:
          - {schedules: [primary], timeout: 15m}
          - {users: [carol], timeout: 30m}

Unquoted `17:00` is the integer 1020 to YAML 1.1 (sexagesimal); a time of day given as such an
integer is read back as HH:MM (<= 1440) or HH:MM:SS. Errors are one line naming the file and the key
path; unknown keys are rejected.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from alerting.http11 import BadURL, target
from alerting.oncall.contacts import EMAIL, WEBHOOK, Contact, Person
from alerting.oncall.escalation import DEFAULT_LEVEL_TIMEOUT, MAX_REPEAT, EscalationPolicy, Level
from alerting.oncall.rotation import ALL_DAYS, DAY, WEEK, WEEKDAYS, Layer, Restriction, TurnLength, resolve_local
from alerting.oncall.schedule import Override, Schedule
from hostwatch.core.config import ConfigError
from hostwatch.core.timefmt import parse_duration

ONCALL_KEYS = ("people", "schedules", "escalation_policies")
DEFAULT_TIME_ZONE = "UTC"
MAX_TURN = timedelta(days=365)  # PagerDuty: rotation_turn_length_seconds <= 1 year
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]*$")  # people's names go into ack URLs and log keys
_TURN_RE = re.compile(r"(\d+(?:\.\d+)?)(w|d|h|m|s)")
_CALENDAR = {"w": 7, "d": 1}
_ELAPSED = {"h": 3600.0, "m": 60.0, "s": 1.0}
_DAY_NAMES = {name: i for i, name in enumerate(WEEKDAYS)} | {
    full: i for i, full in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"))}


def _is_http_url(value: str) -> bool:
    try:
        target(value)
    except BadURL:
        return False
    return True


class _Receiver(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def escalation_policy(self) -> str | None: ...


class _AlertmanagerConfig(Protocol):
    @property
    def extensions(self) -> Mapping[str, Any]: ...
    @property
    def receivers(self) -> Iterable[_Receiver]: ...
    @property
    def source(self) -> str: ...


@dataclass(frozen=True)
class OnCallConfig:
    people: Mapping[str, Person] = field(default_factory=dict)
    schedules: Mapping[str, Schedule] = field(default_factory=dict)
    policies: Mapping[str, EscalationPolicy] = field(default_factory=dict)
    source: str = "<config>"

    def check_receivers(self, receivers: Iterable[_Receiver]) -> None:
        """Every `escalation_policy:` a receiver names must exist."""
        for i, r in enumerate(receivers):
            if r.escalation_policy is not None and r.escalation_policy not in self.policies:
                raise ConfigError(f"{self.source}: receivers[{i}].escalation_policy: unknown escalation policy "
                                  f"{r.escalation_policy!r} (receiver {r.name!r})")


def _keep(value: Any, where: str) -> Any:
    return value


# For alerting.config.parse(extensions=...): the core then accepts the keys and keeps them raw;
# `from_alertmanager` parses and links them (a schedule names people, a policy schedules).
EXTENSIONS: dict[str, Callable[[Any, str], Any]] = {k: _keep for k in ONCALL_KEYS}


def from_alertmanager(cfg: _AlertmanagerConfig) -> OnCallConfig:
    oncall = parse_oncall({k: v for k, v in cfg.extensions.items() if k in ONCALL_KEYS}, cfg.source)
    oncall.check_receivers(cfg.receivers)
    return oncall


def parse_oncall(data: Mapping[str, Any] | None, source: str = "<config>") -> OnCallConfig:
    """The on-call sections of a top-level mapping (other keys are the caller's to check)."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: the file must be a mapping")
    p = _Reader(source)
    people = p.named(data.get("people"), "people", p.person)
    schedules = p.named(data.get("schedules"), "schedules", p.schedule)
    policies = p.named(data.get("escalation_policies"), "escalation_policies", p.policy)
    for where, user in p.user_refs:
        if user not in people:
            raise p.fail(where, f"unknown person {user!r} (not in people)")
    for where, name in p.schedule_refs:
        if name not in schedules:
            raise p.fail(where, f"unknown schedule {name!r}")
    return OnCallConfig(people, schedules, policies, source)


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source
        self.user_refs: list[tuple[str, str]] = []
        self.schedule_refs: list[tuple[str, str]] = []

    def fail(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {where}: {message}")

    def mapping(self, data: Any, where: str, known: set[str], required: tuple[str, ...] = ()) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            raise self.fail(where, "must be a mapping")
        for key in data:
            if key not in known:
                raise ConfigError(f"{self.source}: unknown key {f'{where}.{key}'!r}")
        for key in required:
            if data.get(key) is None:
                raise self.fail(f"{where}.{key}", "is required")
        return dict(data)

    def sequence(self, data: Any, where: str, required: bool = False) -> list[Any]:
        if data is None:
            data = []
        if not isinstance(data, list):
            raise self.fail(where, "must be a list")
        if required and not data:
            raise self.fail(where, "must not be empty")
        return data

    def named(self, data: Any, where: str, build: Callable[[Any, str], Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for i, item in enumerate(self.sequence(data, where)):
            obj = build(item, f"{where}[{i}]")
            if obj.name in out:
                raise self.fail(f"{where}[{i}].name", f"duplicate name {obj.name!r}")
            out[obj.name] = obj
        return out

    def name(self, d: Mapping[str, Any], where: str) -> str:
        value = d.get("name")
        if not isinstance(value, str) or not NAME_RE.match(value):
            raise self.fail(f"{where}.name", f"{value!r} is not a name (letters, digits and _.@+- only)")
        return value

    def names(self, value: Any, where: str, refs: list[tuple[str, str]]) -> tuple[str, ...]:
        out = []
        for i, item in enumerate(self.sequence(value, where)):
            if not isinstance(item, str):
                raise self.fail(f"{where}[{i}]", "must be a name")
            refs.append((f"{where}[{i}]", item))
            out.append(item)
        return tuple(out)

    def person(self, data: Any, where: str) -> Person:
        d = self.mapping(data, where, {"name", "contacts"}, ("name",))
        contacts = []
        for i, c in enumerate(self.sequence(d.get("contacts"), f"{where}.contacts", required=True)):
            cw = f"{where}.contacts[{i}]"
            cd = self.mapping(c, cw, {"webhook_url", "email"})
            if len(cd) != 1:
                raise self.fail(cw, "give exactly one of webhook_url or email")
            ((key, value),) = cd.items()
            if not isinstance(value, str):
                raise self.fail(f"{cw}.{key}", "must be a string")
            if key == "webhook_url" and not _is_http_url(value):
                raise self.fail(f"{cw}.{key}", f"{value!r} is not an http(s) URL")
            if key == "email" and not re.match(r"^[^@\s]+@[^@\s]+$", value):
                raise self.fail(f"{cw}.{key}", f"{value!r} is not an email address")
            contacts.append(Contact(WEBHOOK if key == "webhook_url" else EMAIL, value))
        return Person(self.name(d, where), tuple(contacts))

    def zone(self, value: Any, where: str) -> ZoneInfo:
        try:
            return ZoneInfo(str(value))
        except (ZoneInfoNotFoundError, ValueError):
            raise self.fail(where, f"unknown time zone {value!r} (expected an IANA name like Europe/Berlin)") from None

    def instant(self, value: Any, zone: ZoneInfo, where: str) -> datetime:
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.strip())
            except ValueError:
                raise self.fail(where, f"invalid time {value!r} (expected e.g. 2024-01-01T09:00:00)") from None
        if isinstance(value, date) and not isinstance(value, datetime):
            value = datetime.combine(value, time())
        if not isinstance(value, datetime):
            raise self.fail(where, f"invalid time {value!r} (expected e.g. 2024-01-01T09:00:00)")
        return resolve_local(value, zone) if value.tzinfo is None else value

    def duration(self, value: Any, where: str) -> timedelta:
        if not isinstance(value, str) or not value.strip() or value.strip()[-1].isdigit():
            raise self.fail(where, f"invalid duration {value!r} (give a unit, e.g. 15m, 8h)")
        try:
            seconds = parse_duration(value)
        except ValueError as e:
            raise self.fail(where, str(e)) from None
        if seconds <= 0:
            raise self.fail(where, "must be more than 0")
        return timedelta(seconds=seconds)

    def turn(self, value: Any, where: str) -> TurnLength:
        text = str(value).strip()
        pos, days, seconds, units = 0, 0.0, 0.0, set()
        for m in _TURN_RE.finditer(text):
            if m.start() != pos:
                break
            n, unit = float(m.group(1)), m.group(2)
            units.add(unit)
            if unit in _CALENDAR:
                days += n * _CALENDAR[unit]
            else:
                seconds += n * _ELAPSED[unit]
            pos = m.end()
        bad = f"invalid rotation {value!r} (expected e.g. 1d, 1w, 12h)"
        if not text or pos != len(text):
            raise self.fail(where, bad)
        if days and seconds:
            raise self.fail(where, f"{bad}: use whole days/weeks (fixed local hand-off time) or hours/minutes "
                                   "(elapsed time), not both")
        if days != int(days) or (days or seconds) <= 0:
            raise self.fail(where, bad)
        if days * DAY > MAX_TURN or timedelta(seconds=seconds) > MAX_TURN:
            raise self.fail(where, "a rotation is at most a year long")
        return TurnLength(int(days), seconds)

    def time_of_day(self, value: Any, where: str, allow_24: bool = False) -> timedelta:
        if isinstance(value, int) and not isinstance(value, bool):  # YAML 1.1 sexagesimal
            h, m, s = (value // 60, value % 60, 0) if value <= 1440 else (value // 3600, value // 60 % 60, value % 60)
        else:
            m_ = re.match(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$", str(value).strip())
            if m_ is None:
                raise self.fail(where, f"invalid time of day {value!r} (expected HH:MM)")
            h, m, s = int(m_.group(1)), int(m_.group(2)), int(m_.group(3) or 0)
        out = timedelta(hours=h, minutes=m, seconds=s)
        if m > 59 or s > 59 or out > DAY or (out == DAY and not allow_24):
            raise self.fail(where, f"invalid time of day {value!r}")
        return out

    def day(self, value: Any, where: str) -> int:
        i = _DAY_NAMES.get(str(value).strip().lower())
        if i is None:
            raise self.fail(where, f"unknown day {value!r} (expected one of {', '.join(WEEKDAYS)})")
        return i

    def restriction(self, data: Any, where: str) -> Restriction:
        if not isinstance(data, Mapping):
            raise self.fail(where, "must be a mapping")
        kind = data.get("type", "daily")
        if kind == "weekly":
            d = self.mapping(data, where, {"type", "start_day", "start_time", "duration", "end_day", "end_time"},
                             ("start_day", "start_time"))
            first = self.day(d["start_day"], f"{where}.start_day")
            start = self.time_of_day(d["start_time"], f"{where}.start_time")
            if ("duration" in d) == ("end_day" in d or "end_time" in d):
                raise self.fail(where, "give either duration or end_day and end_time")
            if "duration" in d:
                length = self.duration(d["duration"], f"{where}.duration")
            else:
                last = self.day(d.get("end_day"), f"{where}.end_day")
                end = self.time_of_day(d.get("end_time", "00:00"), f"{where}.end_time", allow_24=True)
                length = ((last - first) % 7) * DAY + end - start
                length = length + WEEK if length <= timedelta(0) else length
            if length > WEEK:
                raise self.fail(where, "a weekly restriction lasts at most 7 days")
            return Restriction(_as_time(start), length, frozenset({first}))
        if kind != "daily":
            raise self.fail(f"{where}.type", f"must be daily or weekly, not {kind!r}")
        d = self.mapping(data, where, {"type", "days", "start_time", "end_time", "duration"}, ("start_time",))
        start = self.time_of_day(d["start_time"], f"{where}.start_time")
        if ("duration" in d) == ("end_time" in d):
            raise self.fail(where, "give either end_time or duration")
        if "duration" in d:
            length = self.duration(d["duration"], f"{where}.duration")
        else:
            length = self.time_of_day(d["end_time"], f"{where}.end_time", allow_24=True) - start
            length = length + DAY if length <= timedelta(0) else length  # 22:00-06:00 runs overnight
        if length > DAY:
            raise self.fail(where, "a daily restriction lasts at most 24h (use type: weekly for longer)")
        days = ALL_DAYS
        if "days" in d:
            days = frozenset(self.day(x, f"{where}.days[{i}]")
                             for i, x in enumerate(self.sequence(d["days"], f"{where}.days", required=True)))
        return Restriction(_as_time(start), length, days)

    def layer(self, data: Any, where: str, default_zone: ZoneInfo, index: int) -> Layer:
        d = self.mapping(data, where, {"name", "users", "rotation", "start", "end", "time_zone", "restrictions"},
                         ("users", "rotation", "start"))
        zone = self.zone(d["time_zone"], f"{where}.time_zone") if "time_zone" in d else default_zone
        users = self.names(d["users"], f"{where}.users", self.user_refs)
        if not users:
            raise self.fail(f"{where}.users", "must not be empty")
        start = self.instant(d["start"], zone, f"{where}.start")
        end = self.instant(d["end"], zone, f"{where}.end") if d.get("end") is not None else None
        if end is not None and end <= start:
            raise self.fail(f"{where}.end", "must be after start")
        restrictions = tuple(self.restriction(r, f"{where}.restrictions[{i}]")
                             for i, r in enumerate(self.sequence(d.get("restrictions"), f"{where}.restrictions")))
        turn = self.turn(d["rotation"], f"{where}.rotation")
        return Layer(str(d.get("name") or f"layer {index + 1}"), users, turn, start, zone, restrictions, end)

    def schedule(self, data: Any, where: str) -> Schedule:
        d = self.mapping(data, where, {"name", "time_zone", "layers", "overrides"}, ("name",))
        name = self.name(d, where)
        zone = self.zone(d.get("time_zone", DEFAULT_TIME_ZONE), f"{where}.time_zone")
        layers = tuple(self.layer(x, f"{where}.layers[{i}]", zone, i)
                       for i, x in enumerate(self.sequence(d.get("layers"), f"{where}.layers", required=True)))
        overrides = []
        for i, o in enumerate(self.sequence(d.get("overrides"), f"{where}.overrides")):
            ow = f"{where}.overrides[{i}]"
            od = self.mapping(o, ow, {"user", "start", "end"}, ("user", "start", "end"))
            user = od["user"]
            if not isinstance(user, str):
                raise self.fail(f"{ow}.user", "must be a name")
            self.user_refs.append((f"{ow}.user", user))
            start, end = self.instant(od["start"], zone, f"{ow}.start"), self.instant(od["end"], zone, f"{ow}.end")
            if end <= start:
                raise self.fail(f"{ow}.end", "must be after start")
            overrides.append(Override(user, start, end))
        return Schedule(name, zone, layers, tuple(overrides))

    def policy(self, data: Any, where: str) -> EscalationPolicy:
        d = self.mapping(data, where, {"name", "levels", "repeat", "notify_on_ack"}, ("name",))
        name = self.name(d, where)
        repeat, notify = d.get("repeat", 0), d.get("notify_on_ack", False)
        if not isinstance(repeat, int) or isinstance(repeat, bool) or not 0 <= repeat <= MAX_REPEAT:
            raise self.fail(f"{where}.repeat", f"must be an integer from 0 to {MAX_REPEAT}")
        if not isinstance(notify, bool):
            raise self.fail(f"{where}.notify_on_ack", "must be true or false")
        levels = []
        for i, lv in enumerate(self.sequence(d.get("levels"), f"{where}.levels", required=True)):
            lw = f"{where}.levels[{i}]"
            ld = self.mapping(lv, lw, {"schedules", "users", "timeout"})
            schedules = self.names(ld.get("schedules"), f"{lw}.schedules", self.schedule_refs)
            users = self.names(ld.get("users"), f"{lw}.users", self.user_refs)
            if not schedules and not users:
                raise self.fail(lw, "needs at least one target (schedules or users)")
            timeout = self.duration(ld["timeout"], f"{lw}.timeout") if "timeout" in ld else DEFAULT_LEVEL_TIMEOUT
            levels.append(Level(schedules, users, timeout))
        return EscalationPolicy(name, tuple(levels), repeat, notify)


def _as_time(offset: timedelta) -> time:
    seconds = int(offset.total_seconds())
    return time(seconds // 3600, seconds // 60 % 60, seconds % 60)
