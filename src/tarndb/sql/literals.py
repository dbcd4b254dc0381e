"""Lift big numeric array literals out of SQL text before it is parsed.

Clients inline embeddings as SQL text: ``ARRAY[0.12, -0.5, ...]::float4[]`` or, for a ColQwen
bag of vectors, ``ARRAY[ARRAY[...], ...]::float4[][]`` with tens of thousands of numbers.
Building a parse tree for that costs hundreds of milliseconds; scanning it once and handing the
numbers to numpy costs a few. Each lifted literal becomes a new ``$n`` parameter whose value is
a numpy array, and the cast that followed it stays in the text, so the rest of the pipeline
sees an ordinary typed parameter.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

# Only literals at least this big are worth lifting; small ones keep Postgres' typing rules.
MIN_LIFT = 8

_PARAM = re.compile(r"\$(\d+)")
_CAST = re.compile(
    r"\s*::\s*(float4|real|float8|double\s+precision|float|embedding(?:_2d)?)((?:\s*\[\s*\])*)",
    re.IGNORECASE,
)
_NUM_CHARS = frozenset("0123456789+-.eE, \t\r\n[]")


@dataclass
class Lifted:
    sql: str
    #: Values for the new parameters, in order; the first is ``$first_param``.
    arrays: list[np.ndarray] = field(default_factory=list)
    first_param: int = 1
    #: (position in new text, characters removed there) to map error positions back.
    _shifts: list[tuple[int, int]] = field(default_factory=list)

    def original_position(self, pos: int) -> int:
        """Map a 1-based position in the rewritten text to the original text."""
        starts = [p for p, _ in self._shifts]
        i = bisect_right(starts, pos - 1)
        return pos + sum(delta for _, delta in self._shifts[:i])


def _skip_quoted(sql: str, i: int) -> int:
    """If sql[i] opens a string, identifier, comment or dollar quote, return its end."""
    ch = sql[i]
    n = len(sql)
    if ch == "'" or ch == '"':
        j = i + 1
        while j < n:
            if sql[j] == ch:
                if j + 1 < n and sql[j + 1] == ch:
                    j += 2
                    continue
                return j + 1
            if ch == "'" and sql[j] == "\\" and i > 0 and sql[i - 1] in "eE":
                j += 2
                continue
            j += 1
        return n
    if ch == "-" and sql.startswith("--", i):
        j = sql.find("\n", i)
        return n if j < 0 else j + 1
    if ch == "/" and sql.startswith("/*", i):
        j = sql.find("*/", i + 2)
        return n if j < 0 else j + 2
    if ch == "$":
        m = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$", sql[i:])
        if m:
            tag = m.group(0)
            j = sql.find(tag, i + len(tag))
            return n if j < 0 else j + len(tag)
    return i


_ARRAY_WORD = re.compile(r"array", re.IGNORECASE)
_INTERESTING = re.compile(r"['\"$]|--|/\*|(?<![A-Za-z0-9_])ARRAY(?=\s*\[)", re.IGNORECASE)
# Deletes every character a numeric literal body may hold; what is left disqualifies it.
_BODY_CHARS = str.maketrans("", "", "[]0123456789 \t\r\n\f\v.,eE+-ARYary")


def _has_array_letters(text: str) -> bool:
    # str.__contains__ is a memchr-speed scan; a regex character class is ~100x slower on
    # the megabyte bodies this module exists for.
    return any(c in text for c in "ARYary")


def _strip_array_words(text: str) -> str:
    text = text.replace("ARRAY", "").replace("array", "")
    return _ARRAY_WORD.sub("", text) if _has_array_letters(text) else text


def _scan_array(sql: str, i: int) -> int:
    """sql[i] is the ``[`` after ARRAY; return the index after the matching ``]`` if the
    literal holds only numbers, brackets and nested ARRAY keywords, else -1."""
    depth = 0
    pos = i
    n = len(sql)
    while True:
        # Jump bracket to bracket with str.find: the numbers between them are not looked at.
        o = sql.find("[", pos, n)
        c = sql.find("]", pos, n)
        if c < 0:
            return -1
        if 0 <= o < c:
            depth += 1
            pos = o + 1
            continue
        depth -= 1
        pos = c + 1
        if depth == 0:
            body = sql[i:pos]
            # Anything but numbers (a string, a function call, a column) means it is not a
            # literal to lift, and its brackets may not even be the array's own.
            if body.translate(_BODY_CHARS):
                return -1
            if _has_array_letters(body) and _has_array_letters(_strip_array_words(body)):
                return -1
            return pos


_STRIP = str.maketrans("", "", "[] \t\r\nARYary")
_LEADING = re.compile(r"[\[\sARYary]*")


#: Longer number lists go to Arrow's cast, which overtakes orjson at a few thousand numbers.
_JSON_MAX = 32768


def _json_numbers(numbers: str, dtype: type) -> np.ndarray | None:
    """The numbers as one JSON array: orjson parses a 384-d embedding in ~15 us, 8x faster than
    Arrow's split-and-cast (a psycopg2 ``executemany`` inlines one per row). Forms JSON lacks
    (``+1``, ``.5``, ``1.``, ``NaN``) make it give up, and Arrow's parser decides. orjson reads
    doubles; rounding those to float4 equals parsing float4 directly unless a literal has more
    than 17 significant digits and lies within 1e-17 of a float4 rounding midpoint."""
    try:
        values = orjson.loads(b"[%b]" % numbers.encode())
    except orjson.JSONDecodeError:
        return None
    try:
        with np.errstate(over="ignore"):  # 1e39 as float4 is inf, as Arrow's cast makes it
            return np.array(values, dtype=np.float64 if dtype is np.float64 else np.float32)
    except (TypeError, ValueError):  # a nested list: a ragged or deeper literal
        return None


def _arrow_numbers(numbers: str, dtype: type) -> np.ndarray | None:
    try:
        # Arrow's string-to-float cast is several times faster than numpy's text parser.
        return pc.cast(pc.split_pattern(pa.array([numbers]), ",").flatten(),
                       pa.float64() if dtype is np.float64 else pa.float32()
                       ).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, ValueError):
        return None


def _parse_numbers(body: str, dtype: type) -> np.ndarray | None:
    depth = _LEADING.match(body).group().count("[")  # type: ignore[union-attr]
    numbers = body.translate(_STRIP)
    flat = _json_numbers(numbers, dtype) if len(numbers) <= _JSON_MAX else None
    if flat is None:
        flat = _arrow_numbers(numbers, dtype)
    if flat is None:
        return None
    if depth == 1:
        return flat
    if depth != 2:
        return None
    rows = [r for r in body[body.index("[") + 1:body.rindex("]")].split("]") if "[" in r]
    width = rows[0].count(",") + 1 if rows else 0
    if width == 0 or width * len(rows) != flat.size:
        return None  # ragged: leave it to the parser, which reports the dimension error
    for r in rows[1:]:
        if r.count(",") != width:  # the comma before the row's "[" plus width - 1 inside
            return None
    return flat.reshape(len(rows), width)


def lift_arrays(sql: str, min_size: int = MIN_LIFT) -> Lifted:
    """Replace big numeric ``ARRAY[...]`` literals by ``$n`` parameters."""
    if "ARRAY" not in sql and "array" not in sql and "Array" not in sql:
        return Lifted(sql)
    existing = [int(m) for m in _PARAM.findall(sql)]
    next_param = max(existing, default=0) + 1
    first = next_param
    out: list[str] = []
    arrays: list[np.ndarray] = []
    shifts: list[tuple[int, int]] = []
    out_len = 0
    i = 0
    last = 0
    n = len(sql)
    while i < n:
        m = _INTERESTING.search(sql, i)
        if m is None:
            break
        i = m.start()
        if m.group()[0] in "'\"$-/":
            j = _skip_quoted(sql, i)
            i = j if j != i else i + 1
            continue
        k = i + 5
        while k < n and sql[k].isspace():
            k += 1
        end = _scan_array(sql, k)
        if end < 0:
            i = k
            continue
        cast = _CAST.match(sql, end)
        float_cast = cast is not None
        body = sql[k:end]
        looks_float = "." in body or "e" in body.replace("ARRAY", "").replace("array", "")
        dtype: type = np.float32
        if cast is not None and cast.group(1).lower().startswith(("float8", "double")):
            dtype = np.float64
        if cast is not None and cast.group(1).lower() == "float" and not cast.group(2):
            float_cast = False
        values = _parse_numbers(body, dtype) if (float_cast or looks_float) else None
        if values is None or values.size < min_size:
            i = end
            continue
        placeholder = f"${next_param}"
        next_param += 1
        out.append(sql[last:i])
        out_len += i - last
        shifts.append((out_len + len(placeholder), (end - i) - len(placeholder)))
        out.append(placeholder)
        out_len += len(placeholder)
        arrays.append(values)
        last = i = end
    if not arrays:
        return Lifted(sql)
    out.append(sql[last:])
    return Lifted("".join(out), arrays, first, shifts)
