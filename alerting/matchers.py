"""Label matchers as Alertmanager 0.25's pkg/labels parses, prints, sorts and evaluates them.

`{a="b", c=~"d.*"}`: braces optional, comma separated, values quoted or bare; `\\"`, `\\\\` and
`\\n` are unescaped in quoted values, other backslashes stay literal. Regexes are anchored
(`^(?:re)$`); a missing label matches as "".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

EQUAL, NOT_EQUAL, REGEX, NOT_REGEX = "=", "!=", "=~", "!~"
_TYPE_ORDER = {EQUAL: 0, NOT_EQUAL: 1, REGEX: 2, NOT_REGEX: 3}
# '=~' before '=' so that '=' does not swallow the '~' (as pkg/labels/parse.go says).
_MATCHER_RE = re.compile(r"^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|=|!=|!~)\s*(.*?)\s*$", re.S)
_LABEL_NAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class MatcherError(ValueError):
    pass


@dataclass(frozen=True)
class Matcher:
    name: str
    type: str
    value: str
    _re: re.Pattern[str] | None = field(default=None, compare=False, repr=False, hash=False)

    @staticmethod
    def new(type_: str, name: str, value: str) -> Matcher:
        if type_ not in _TYPE_ORDER:
            raise MatcherError(f"unknown matcher type {type_!r}")
        rx = None
        if type_ in (REGEX, NOT_REGEX):
            try:
                rx = re.compile("(?:" + value + ")")
            except re.error as e:
                raise MatcherError(f"invalid regular expression {value!r}: {e}") from None
        return Matcher(name, type_, value, rx)

    def matches(self, value: str) -> bool:
        if self.type == EQUAL:
            return value == self.value
        if self.type == NOT_EQUAL:
            return value != self.value
        assert self._re is not None
        hit = self._re.fullmatch(value) is not None
        return hit if self.type == REGEX else not hit

    def matches_labels(self, labels: Mapping[str, str]) -> bool:
        return self.matches(labels.get(self.name, ""))

    def sort_key(self) -> tuple[str, str, int]:
        return (self.name, self.value, _TYPE_ORDER[self.type])

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        return f'{self.name}{self.type}"{escaped}"'

    def api(self) -> dict[str, object]:
        """The API v2 form: {name, value, isRegex, isEqual}."""
        return {"isEqual": self.type in (EQUAL, REGEX), "isRegex": self.type in (REGEX, NOT_REGEX),
                "name": self.name, "value": self.value}

    @staticmethod
    def from_api(obj: Mapping[str, object]) -> Matcher:
        name, value = obj.get("name"), obj.get("value")
        if not isinstance(name, str) or not isinstance(value, str):
            raise MatcherError("matcher name and value are required strings")
        if not _LABEL_NAME_RE.match(name):
            raise MatcherError(f"invalid label name {name!r}")
        is_regex, is_equal = bool(obj.get("isRegex", False)), obj.get("isEqual", True) is not False
        type_ = (REGEX if is_equal else NOT_REGEX) if is_regex else (EQUAL if is_equal else NOT_EQUAL)
        return Matcher.new(type_, name, value)


def sort_matchers(ms: Iterable[Matcher]) -> list[Matcher]:
    return sorted(ms, key=Matcher.sort_key)


def matchers_str(ms: Iterable[Matcher]) -> str:
    """labels.Matchers.String(): `{a="b",c=~"d"}` (no spaces)."""
    return "{" + ",".join(str(m) for m in ms) + "}"


def all_match(ms: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches_labels(labels) for m in ms)


def parse_matchers(s: str) -> list[Matcher]:
    """labels.ParseMatchers: one or more comma-separated matchers, optionally in braces."""
    if s.startswith("{"):
        s = s[1:]
    if s.endswith("}"):
        s = s[:-1]
    tokens: list[str] = []
    token: list[str] = []
    inside_quotes = escaped = False
    for ch in s:
        if ch == "," and not inside_quotes:
            tokens.append("".join(token))
            token = []
            continue
        if ch == '"':
            if not escaped:
                inside_quotes = not inside_quotes
            else:
                escaped = False
        elif ch == "\\":
            escaped = not escaped
        else:
            escaped = False
        token.append(ch)
    last = "".join(token).strip()
    if last:
        tokens.append(last)
    return [parse_matcher(t) for t in tokens]


def parse_matcher(s: str) -> Matcher:
    """labels.ParseMatcher: `name op value`, the value bare or double-quoted."""
    m = _MATCHER_RE.match(s)
    if m is None:
        raise MatcherError(f"bad matcher format: {s}")
    name, op, raw = m.group(1), m.group(2), m.group(3)
    expect_quote = raw.startswith('"')
    if expect_quote:
        raw = raw[1:]
    out: list[str] = []
    escaped = False
    last = len(raw) - 1
    for i, ch in enumerate(raw):
        if escaped:
            escaped = False
            if ch == "n":
                out.append("\n")
            elif ch in ('"', "\\"):
                out.append(ch)
            else:
                out.append("\\" + ch)  # a spurious escape: the backslash is literal
            continue
        if ch == "\\":
            if i < last:
                escaped = True
                continue
            out.append("\\")
        elif ch == '"':
            if not expect_quote or i < last:
                raise MatcherError(f"matcher value contains unescaped double quote: {m.group(3)}")
            expect_quote = False
        else:
            out.append(ch)
    if expect_quote:
        raise MatcherError(f"matcher value contains unescaped double quote: {m.group(3)}")
    return Matcher.new(op, name, "".join(out))
