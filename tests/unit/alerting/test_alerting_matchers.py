"""Matchers parse, print, sort and match as Alertmanager 0.25's pkg/labels does."""

from __future__ import annotations

import pytest

from alerting.matchers import Matcher, MatcherError, matchers_str, parse_matchers, sort_matchers

PARSE = [
    ('foo=bar', [("foo", "=", "bar")]),
    ('{foo="bar"}', [("foo", "=", "bar")]),
    ('foo!=bar', [("foo", "!=", "bar")]),
    ('foo=~"bar.*"', [("foo", "=~", "bar.*")]),
    ('foo!~bar', [("foo", "!~", "bar")]),
    ('  foo  =  bar  ', [("foo", "=", "bar")]),
    ('{foo="bar", baz=~"q.*",}', [("foo", "=", "bar"), ("baz", "=~", "q.*")]),
    ('a="b,c", d=e', [("a", "=", "b,c"), ("d", "=", "e")]),
    (r'a="x\"y"', [("a", "=", 'x"y')]),
    (r'a="x\\y"', [("a", "=", "x\\y")]),
    (r'a="x\ny"', [("a", "=", "x\ny")]),
    (r'a="x\qy"', [("a", "=", "x\\qy")]),  # a spurious escape keeps its backslash
    ('a=', [("a", "=", "")]),
    ('a=""', [("a", "=", "")]),
    ('a=☃', [("a", "=", "☃")]),
    ('foo:bar=1', [("foo:bar", "=", "1")]),
]


@pytest.mark.parametrize(("text", "want"), PARSE)
def test_parse(text: str, want: list[tuple[str, str, str]]) -> None:
    assert [(m.name, m.type, m.value) for m in parse_matchers(text)] == want


@pytest.mark.parametrize(("text", "error"), [
    ("foo", "bad matcher format: foo"),
    ("1foo=bar", "bad matcher format: 1foo=bar"),
    ('a="b', "unescaped double quote"),
    ('a=b"c', "unescaped double quote"),
    ('a="b"c"', "unescaped double quote"),
    ("a=~(", "invalid regular expression"),
])
def test_parse_errors(text: str, error: str) -> None:
    with pytest.raises(MatcherError, match=error.replace("(", r"\(")):
        parse_matchers(text)


MATCH = [
    ("a=b", {"a": "b"}, True), ("a=b", {"a": "c"}, False), ("a=b", {}, False),
    ("a!=b", {}, True), ("a!=b", {"a": "b"}, False),
    ("a=", {}, True),  # a missing label is ""
    ('a=~"b|c"', {"a": "c"}, True), ('a=~"b"', {"a": "bb"}, False),  # anchored
    ('a=~"b"', {"a": "b\n"}, False),  # anchored at the very end, not before a final newline
    ('a!~"b.*"', {"a": "bob"}, False), ('a!~"b.*"', {"a": "ob"}, True), ('a=~".*"', {}, True),
]


@pytest.mark.parametrize(("text", "labels", "want"), MATCH)
def test_match(text: str, labels: dict[str, str], want: bool) -> None:
    (m,) = parse_matchers(text)
    assert m.matches_labels(labels) is want


def test_print_and_sort_like_matchers_string() -> None:
    ms = sort_matchers(parse_matchers('{z="1", a=~"x\\"y", a="x", a!="x", b="line\\nbreak"}'))
    assert matchers_str(ms) == '{a="x",a!="x",a=~"x\\"y",b="line\\nbreak",z="1"}'


def test_api_form_round_trips() -> None:
    for text in ("a=b", "a!=b", "a=~b", "a!~b"):
        (m,) = parse_matchers(text)
        assert Matcher.from_api(m.api()) == m
    with pytest.raises(MatcherError, match="invalid label name"):
        Matcher.from_api({"name": "a b", "value": "x", "isRegex": False})
