"""Row ids a WHERE clause allows, kept per table version: :class:`FilterCache`.

A filtered ranking (``WHERE category = $2 ORDER BY emb <#> $1 LIMIT 10``) first evaluates its
WHERE clause to the set of allowed rows, which at a million rows costs more than the search
itself. Applications repeat the same few filters (a tenant, a category) with new query
vectors, and a committed table version never changes, so the allowed rows are kept, as search
engines keep filter bitsets. The key is the table's path and version, the clause, the values
of the parameters it uses and the session time zone; a write makes a new version and so a new
key. Only clauses whose answer depends on nothing else are kept: no subqueries, no functions
outside an immutable allowlist, no ``now()``/``current_user`` and the like.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import numpy as np
from postgast import pg_query_pb2 as pb

from ..sql import ast

#: Functions whose value depends only on their arguments (lower-case, unqualified).
IMMUTABLE_FUNCTIONS = frozenset({
    "abs", "ceil", "ceiling", "floor", "round", "trunc", "sign", "sqrt", "power", "mod", "ln",
    "log", "exp", "greatest", "least", "coalesce", "nullif", "lower", "upper", "length",
    "char_length", "character_length", "octet_length", "trim", "btrim", "ltrim", "rtrim",
    "substr", "substring", "left", "right", "strpos", "position", "replace", "concat",
    "starts_with", "ends_with", "contains", "regexp_matches", "regexp_like", "like_escape",
    "date_trunc", "date_part", "extract", "to_timestamp", "make_date", "array_length",
    "cardinality", "array_position", "array_contains", "list_contains", "json_extract",
    "json_extract_string", "jsonb_extract_path", "jsonb_extract_path_text", "isfinite",
})
_DEFAULT_MAX_BYTES = 256 << 20
_DEFAULT_MAX_ENTRIES = 256


def cache_key(where: pb.Node, table_path: str, version: int, params: list[Any],
              settings: dict[str, Any]) -> Hashable | None:
    """The cache key for ``where`` on one table version, or None when its answer may change
    without the table changing."""
    used: set[int] = set()
    for m in ast.walk(where):
        if isinstance(m, (pb.SubLink, pb.RangeVar, pb.SQLValueFunction)):
            return None
        if isinstance(m, pb.FuncCall):
            names = ast.names(m.funcname)
            if not names or names[-1].lower() not in IMMUTABLE_FUNCTIONS:
                return None
        elif isinstance(m, pb.ParamRef):
            used.add(m.number)
    values = []
    for n in sorted(used):
        v = params[n - 1] if n - 1 < len(params) else None
        if isinstance(v, np.ndarray):
            v = (v.dtype.str, v.shape, v.tobytes())
        elif isinstance(v, (list, dict)):
            v = repr(v)
        try:
            hash(v)
        except TypeError:
            return None
        values.append((n, v))
    return (table_path, version, where.SerializeToString(), tuple(values),
            str(settings.get("timezone", "")))


class FilterCache:
    """A least-recently-used map from :func:`cache_key` to a sorted int64 array of row ids,
    bounded in entries and bytes; shared by every session of a Database."""

    def __init__(self, max_bytes: int = _DEFAULT_MAX_BYTES,
                 max_entries: int = _DEFAULT_MAX_ENTRIES) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> np.ndarray | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return found

    def put(self, key: Hashable, rids: np.ndarray) -> None:
        if rids.nbytes > self.max_bytes // 4:
            return  # one filter must not push out everything else
        rids = rids.copy()
        rids.flags.writeable = False  # shared between sessions: nobody may change it
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._entries[key] = rids
            self._bytes += rids.nbytes
            while self._entries and (self._bytes > self.max_bytes
                                     or len(self._entries) > self.max_entries):
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.nbytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)
