"""Postgres array text (``'{1,2}'``, ``'{{1,2},{3,4}}'``, ``'{a,"b c",NULL}'``) for DuckDB.

Postgres reads an array typed as text with braces; DuckDB's cast from text to a list reads the
same grammar (commas, double quotes, NULL) with brackets. So the braces are translated, which
is exact unless a quoted element itself holds a brace: such text is refused with an error
rather than altered.
"""

from __future__ import annotations

import re

from ..errors import FeatureNotSupported

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
