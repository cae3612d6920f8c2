"""JSON string encoders that reproduce Go's output byte for byte.

Two flavours exist in Docker:

* ``jsonlog_string``: moby's ``ffjsonWriteJSONBytesAsString`` (json-file "log" and "stream"): ``\\\\`` and
  ``"`` escaped, ``\\n`` and ``\\r`` short, every other byte below 0x20 (TAB included) as ``\\u00XX``.
* ``go_json_string``: Go's ``encoding/json`` (json-file "attrs", GELF): also ``\\t``, ``\\b``, ``\\f`` short
  (Go >= 1.22).

Both escape ``<`` ``>`` ``&`` as ``\\u003c`` ``\\u003e`` ``\\u0026``, U+2028/U+2029 as ``\\u2028``/``\\u2029``
and write each byte that does not start a valid UTF-8 sequence as ``\\ufffd`` (Go's ``utf8.DecodeRune``
consumes one byte per error; a literal U+FFFD in valid input stays as its 3 raw bytes).
"""

from __future__ import annotations

import re

# A lone surrogate never comes out of a strict UTF-8 decode, so it can mark "invalid byte here".
_INVALID = "\ud800"

_COMMON = {
    "\\": "\\\\",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
    _INVALID: "\\ufffd",
}
_JSONLOG = {chr(c): f"\\u00{c:02x}" for c in range(0x20)} | _COMMON
_GOJSON = _JSONLOG | {"\t": "\\t", "\b": "\\b", "\f": "\\f"}
_ESCAPE_RE = re.compile('[\x00-\x1f"\\\\<>&\u2028\u2029\ud800]')


def _decode_go(data: bytes) -> str:
    """UTF-8 decode where each byte that cannot start a valid sequence becomes the _INVALID marker."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    out: list[str] = []
    pos = 0
    while pos < len(data):
        try:
            out.append(data[pos:].decode("utf-8"))
            break
        except UnicodeDecodeError as e:
            out.append(data[pos : pos + e.start].decode("utf-8"))
            out.append(_INVALID)
            pos += e.start + 1
    return "".join(out)


def jsonlog_string(data: bytes) -> bytes:
    """A quoted JSON string exactly as moby's jsonlog writes it."""
    text = _decode_go(data)
    escaped = _ESCAPE_RE.sub(lambda m: _JSONLOG[m.group(0)], text)
    return b'"' + escaped.encode("utf-8") + b'"'


def go_json_string(value: str | bytes) -> bytes:
    """A quoted JSON string exactly as Go's encoding/json.Marshal writes it."""
    text = _decode_go(value) if isinstance(value, bytes) else _decode_go(value.encode("utf-8", "surrogatepass"))
    escaped = _ESCAPE_RE.sub(lambda m: _GOJSON[m.group(0)], text)
    return b'"' + escaped.encode("utf-8") + b'"'


def go_json_object(items: dict[str, str]) -> bytes:
    """Go's json.Marshal of a map[string]string: keys sorted, no spaces."""
    body = b",".join(go_json_string(k) + b":" + go_json_string(v) for k, v in sorted(items.items()))
    return b"{" + body + b"}"


def go_float(value: float) -> bytes:
    """Go's encoding/json float64 formatting (shortest repr, no ".0" on integral values)."""
    if value == int(value) and abs(value) < 1e21:
        return str(int(value)).encode()
    return repr(value).encode()  # Go's exponent form (1e-07, 1e+21) matches Python's repr
