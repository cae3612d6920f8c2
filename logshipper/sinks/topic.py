"""Topic templates: `kafka.topic` may name the topic after container labels.

Syntax: literal text with placeholders `{labels.KEY}` or `{labels.KEY|DEFAULT}`, e.g.
`logs-{labels.app|default}` or `{labels.com.docker.compose.project|misc}.logs`.
- KEY is the label's key as the container has it (dots allowed: everything after `labels.` up to
  `|` or `}`); DEFAULT is used when the label is missing or empty. With no `|DEFAULT`, a missing
  label renders as the empty string.
- A label's value is made a legal topic name piece: every character outside `[A-Za-z0-9._-]`
  becomes `_`. The whole topic is cut at Kafka's 249 characters.
- Literal text and defaults must themselves be legal topic characters, and a template must have
  literal text or a default (so it never renders empty); a bad template (unbalanced braces, a
  placeholder other than `labels.KEY`, an illegal character) is a ValueError when the config is
  loaded, never a failure per event.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache

MAX_TOPIC_LENGTH = 249  # Kafka's limit
_LEGAL = re.compile(r"[A-Za-z0-9._-]*")
_ILLEGAL = re.compile(r"[^A-Za-z0-9._-]")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_RENDER_CACHE_ENTRIES = 4096


class TopicTemplate:
    """A parsed template; `render(labels)` is cheap for repeated label values (cached)."""

    def __init__(self, template: str) -> None:
        self.template = template
        self._parts: list[tuple[str, str | None, str]] = []  # (literal before, label key or None, default)
        self._tail = ""
        pos = 0
        for m in _PLACEHOLDER.finditer(template):
            literal = template[pos:m.start()]
            key, default = _parse_placeholder(m.group(1), template)
            self._check_literal(literal)
            self._parts.append((literal, key, default))
            pos = m.end()
        self._tail = template[pos:]
        self._check_literal(self._tail)
        if not self._tail and not any(literal or default for literal, _, default in self._parts):
            raise ValueError(f"kafka.topic {template!r}: the topic is empty or can render empty; add literal "
                             "text or a {labels.KEY|DEFAULT}")
        self._keys = tuple(key for _, key, _ in self._parts if key is not None)
        self._cache: dict[tuple[str | None, ...], str] = {}

    @property
    def static(self) -> bool:
        """True when the template has no placeholder (the topic is the template itself)."""
        return not self._parts

    def _check_literal(self, text: str) -> None:
        if "{" in text or "}" in text:
            raise ValueError(f"kafka.topic {self.template!r}: unbalanced brace")
        if not _LEGAL.fullmatch(text):
            raise ValueError(f"kafka.topic {self.template!r}: {text!r} has characters a Kafka topic cannot have "
                             "(only A-Z a-z 0-9 . _ -)")

    def render(self, labels: Mapping[str, str]) -> str:
        if not self._parts:
            return self.template
        values = tuple(labels.get(k) for k in self._keys)
        topic = self._cache.get(values)
        if topic is None:
            if len(self._cache) >= _RENDER_CACHE_ENTRIES:
                self._cache.clear()
            topic = self._cache[values] = self._render(values)
        return topic

    def _render(self, values: tuple[str | None, ...]) -> str:
        out: list[str] = []
        it = iter(values)
        for literal, _key, default in self._parts:
            out.append(literal)
            value = next(it)
            out.append(_ILLEGAL.sub("_", value) if value else default)
        out.append(self._tail)
        return "".join(out)[:MAX_TOPIC_LENGTH]


def _parse_placeholder(body: str, template: str) -> tuple[str, str]:
    name, sep, default = body.partition("|")
    if not name.startswith("labels.") or len(name) == len("labels."):
        raise ValueError(f"kafka.topic {template!r}: {{{body}}} is not a placeholder; use {{labels.KEY}} or "
                         "{labels.KEY|DEFAULT}")
    if sep and not _LEGAL.fullmatch(default):
        raise ValueError(f"kafka.topic {template!r}: default {default!r} has characters a Kafka topic cannot have")
    return name[len("labels."):], default


@lru_cache(maxsize=64)
def compile_template(template: str) -> TopicTemplate:
    return TopicTemplate(template)


def topic_for(template: str, labels: Mapping[str, str]) -> str:
    """The topic of an event whose container has `labels` (see the module doc for the syntax)."""
    return compile_template(template).render(labels)
