"""Postgres array text (``'{1,2}'``, ``'{{1,2},{3,4}}'``, ``'{a,"b c",NULL}'``) for DuckDB.

Postgres reads an array typed as text with braces; DuckDB's cast from text to a list reads the
same grammar (commas, double quotes, NULL) with brackets. So the braces are translated, which
is exact unless a quoted element itself holds a brace: such text is refused with an error
rather than altered.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..errors import FeatureNotSupported, InvalidTextRepresentation

_BRACE_IN_QUOTES = r'"(?:[^"\\]|\\.)*[{}](?:[^"\\]|\\.)*"'
_BRACE_IN_QUOTES_RE = re.compile(_BRACE_IN_QUOTES)
_BRACES = str.maketrans("{}", "[]")
_REFUSED = "array text with a brace inside a quoted element is not supported; use ARRAY[...]"


def to_duckdb_text(text: str) -> str:
    """``text`` in DuckDB's list syntax (text already in it is returned as is)."""
    if not text.lstrip().startswith("{"):
        return text
    if _BRACE_IN_QUOTES_RE.search(text):
        raise FeatureNotSupported(_REFUSED)
    return text.translate(_BRACES)


def to_duckdb_sql(expr: str) -> str:
    """A DuckDB expression doing :func:`to_duckdb_text` on the text SQL expression ``expr``."""
    return (f"CASE WHEN regexp_matches({expr}, '{_BRACE_IN_QUOTES}') "
            f"THEN error('{_REFUSED}') ELSE translate({expr}, '{{}}', '[]') END")


def _malformed(s: str) -> InvalidTextRepresentation:
    return InvalidTextRepresentation(f'invalid input syntax for type array: "{s[:100]}"')


def parse_array_text(s: str, elem: Callable[[str], Any]) -> Any:
    """Parse a Postgres array literal ``{...}`` (any depth, quoted elements, NULL)."""
    s = s.strip()
    if s.startswith("[") and "=" in s:  # explicit bounds '[1:3]={1,2,3}'
        s = s[s.index("=") + 1:].strip()
    if not s.startswith("{"):
        raise _malformed(s)
    pos = 0
    n = len(s)

    def parse_level() -> list[Any]:
        nonlocal pos
        assert s[pos] == "{"
        pos += 1
        out: list[Any] = []
        while True:
            while pos < n and s[pos].isspace():
                pos += 1
            if pos >= n:
                raise _malformed(s)
            c = s[pos]
            if c == "}":
                pos += 1
                return out
            if c == "{":
                out.append(parse_level())
            elif c == '"':
                pos += 1
                buf = []
                while True:
                    if pos >= n:
                        raise _malformed(s)
                    ch = s[pos]
                    if ch == "\\":
                        buf.append(s[pos + 1:pos + 2])
                        pos += 2
                    elif ch == '"':
                        pos += 1
                        break
                    else:
                        buf.append(ch)
                        pos += 1
                out.append(elem("".join(buf)))
            else:
                start = pos
                while pos < n and s[pos] not in ",}":
                    pos += 1
                tok = s[start:pos].strip()
                if tok.replace("\\", "") == "":
                    raise _malformed(s)
                out.append(None if tok.upper() == "NULL" else elem(tok.replace("\\", "")))
            while pos < n and s[pos].isspace():
                pos += 1
            if pos < n and s[pos] == ",":
                pos += 1
            elif pos < n and s[pos] == "}":
                continue
            else:
                raise _malformed(s)

    result = parse_level()
    if s[pos:].strip():
        raise _malformed(s)
    return result
