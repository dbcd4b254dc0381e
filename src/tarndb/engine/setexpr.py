"""``UPDATE t SET ... WHERE pk = value`` with a simple SET list, evaluated without DuckDB.

Why: an UPDATE of one row by its key spends about half its time building DuckDB views of the
row and evaluating the SET list there, all of it while the row is locked. Writers of one row
(a counter, an agent's status) queue on that lock, so the time the lock is held is what
bounds them. The row itself comes from the key lookup the general path uses too (the
write-ahead log's overlay, the key index; engine/scan.py), and the SET list is evaluated
here when every expression is one this module computes exactly as PostgreSQL does:

- a constant, a parameter, or another column of the row, assigned to a column of its own
  kind: integers to integer columns (range-checked, 22003 as PostgreSQL words it), numbers
  to float columns, strings to text columns, booleans to boolean columns, NULL to any;
- integer arithmetic (``+``, ``-``, ``*``, unary ``-``) on integer columns, constants and
  parameters, typed as PostgreSQL types it (int2 op int2 is int2, a wider operand wins; an
  integer literal is int4, or int8 when it does not fit) and checked for overflow at each
  step.

Anything else (a function, a cast, a division, a JSON or vector column, a row this
transaction already changed) returns None, and the caller takes the general path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from postgast import pg_query_pb2 as pb

from .. import errors as E
from ..sql import ast
from ..storage.tables import RID
from .catalog import ColumnInfo, TableInfo

if TYPE_CHECKING:
    from .session import Session

_INT_RANGE = {"int2": (-(1 << 15), (1 << 15) - 1, "smallint"),
              "int4": (-(1 << 31), (1 << 31) - 1, "integer"),
              "int8": (-(1 << 63), (1 << 63) - 1, "bigint")}
_INT_RANK = {"int2": 0, "int4": 1, "int8": 2}
_FLOATS = ("float4", "float8")
_TEXTS = ("text", "varchar", "name")
#: Column kinds whose stored values this module may carry over or assign.
_PLAIN = frozenset(_INT_RANGE) | frozenset(_FLOATS) | frozenset(_TEXTS) | {"bool"}


class _NotSimple(Exception):
    """The expression is not one this module evaluates: take the general path."""


def updated_rows(session: Session, info: TableInfo, node: pb.UpdateStmt,
                 targets: dict[str, pb.Node], params: list[Any]
                 ) -> tuple[pa.Table, list[int]] | None:
    """The new versions of the rows ``UPDATE ... WHERE pk = value`` changes and their
    rids, in storage form; None when the statement is not a simple one (see the module)."""
    if node.from_clause or session.pending_change(info) is not None:
        return None
    if any(c.generated_sql for c in info.columns):
        return None
    for name in targets:
        c = info.column(name)
        if c is None or c.type.ndim or c.type.is_vector or c.type.base not in _PLAIN or \
                (c.type.typmods and c.type.base != "varchar"):
            return None
    from .lookup import key_filter
    from .scan import KeyLookup, Scope

    found = key_filter(session, node, info, params)
    if found is None:
        return None
    flt, col, value = found
    try:
        typed = int(value) if col.type.base in _INT_RANGE else value
    except (TypeError, ValueError):
        return None
    scope = Scope(session)
    try:
        rows = scope.key_rows(info, KeyLookup(flt, col.name, typed, True))
    finally:
        scope.close()
    if rows is None or rows.num_rows > 1 or \
            any(c.name not in rows.column_names for c in info.columns):
        return None
    stored = rows.select([c.name for c in info.columns])
    rids = rows.column(RID).to_pylist()
    if not rids:
        return stored, []
    row = _Row(stored)
    try:
        new = {name: _assign(_eval(expr, row, info, params), info.column(name))
               for name, expr in targets.items()}
    except _NotSimple:
        return None
    # Columns the SET list leaves alone keep their stored values as they are.
    for name, value in new.items():
        i = stored.schema.get_field_index(name)
        stored = stored.set_column(i, stored.schema.field(i),
                                   pa.array([value], stored.schema.field(i).type))
    return stored, rids


class _Row:
    """The one row's values, converted to Python only for the columns an expression reads."""

    def __init__(self, rows: pa.Table) -> None:
        self._rows = rows
        self._values: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._values:
            self._values[name] = self._rows.column(name)[0].as_py()
        return self._values[name]


def _eval(node: pb.Node, row: _Row, info: TableInfo, params: list[Any]
          ) -> tuple[Any, str]:
    """(value, kind) of an expression: kind is int2/int4/int8, float, numeric (a decimal
    literal, kept as its text), text, bool or null."""
    k = ast.kind(node)
    if k == "a_const":
        c = node.a_const
        if c.isnull:
            return None, "null"
        which = c.WhichOneof("val")
        if which == "ival":
            return int(c.ival.ival), "int4"
        if which == "fval":
            text = c.fval.fval
            if "." in text or "e" in text.lower():
                return text, "numeric"
            v = int(text)
            if not -(1 << 63) <= v < (1 << 63):
                raise _NotSimple  # numeric
            return v, "int4" if -(1 << 31) <= v < (1 << 31) else "int8"
        if which == "sval":
            return c.sval.sval, "unknown"  # an untyped literal: only text columns take it
        if which == "boolval":
            return bool(c.boolval.boolval), "bool"
        raise _NotSimple
    if k == "param_ref":
        i = node.param_ref.number
        if i > len(params):
            raise _NotSimple
        v = params[i - 1]
        if v is None:
            return None, "null"
        if isinstance(v, bool):
            return v, "bool"
        if isinstance(v, (int, np.integer)):
            v = int(v)
            if not -(1 << 63) <= v < (1 << 63):
                raise _NotSimple
            return v, "int8"  # the widest: never an overflow PostgreSQL would not raise
        if isinstance(v, (float, np.floating)):
            return float(v), "float"
        if isinstance(v, str):
            return v, "unknown"
        raise _NotSimple
    if k == "column_ref":
        parts = ast.names(node.column_ref.fields)
        if len(parts) != len(node.column_ref.fields) or len(parts) > 2:
            raise _NotSimple  # * or a qualified name we do not resolve
        col = info.column(parts[-1])
        if col is None or (len(parts) == 2 and parts[0] != info.name) or col.type.ndim:
            raise _NotSimple
        base = col.type.base
        if base not in _PLAIN:
            raise _NotSimple
        v = row[col.name]  # NULL keeps the column's type (int2 NULL + int2 is int2)
        if base in _INT_RANGE:
            return (None if v is None else int(v)), base
        if base in _FLOATS:
            return (None if v is None else float(v)), "float"
        if base in _TEXTS:
            return v, "text"
        return (None if v is None else bool(v)), "bool"
    if k == "a_expr" and node.a_expr.kind == pb.AEXPR_OP:
        op = ast.op_name(node.a_expr)
        if op not in ("+", "-", "*"):
            raise _NotSimple
        right, rk = _eval(node.a_expr.rexpr, row, info, params)
        if not node.a_expr.HasField("lexpr"):  # unary minus (or plus)
            if rk not in _INT_RANGE:
                raise _NotSimple
            return (None if right is None else _checked(-right if op == "-" else right, rk)
                    ), rk
        left, lk = _eval(node.a_expr.lexpr, row, info, params)
        kinds = {lk, rk} - {"null"}
        if not kinds or not kinds <= set(_INT_RANGE):
            raise _NotSimple
        kind = max(kinds, key=lambda t: _INT_RANK[t])
        if left is None or right is None:
            return None, kind
        out = left + right if op == "+" else left - right if op == "-" else left * right
        return _checked(out, kind), kind
    raise _NotSimple


def _checked(v: int, kind: str) -> int:
    lo, hi, name = _INT_RANGE[kind]
    if not lo <= v <= hi:
        raise E.NumericValueOutOfRange(f"{name} out of range")
    return v


def _typed_null(kind: str, base: str) -> None:
    """NULL, if PostgreSQL would assign a NULL of ``kind`` to a column of ``base``."""
    fits = kind == "null" or (base in _INT_RANGE and kind in _INT_RANGE) or \
        (base in _FLOATS and (kind in _INT_RANGE or kind == "float")) or \
        (base in _TEXTS and kind == "text") or (base == "bool" and kind == "bool")
    if not fits:
        raise _NotSimple  # a type error PostgreSQL raises even for NULL
    return None


def _assign(got: tuple[Any, str], col: ColumnInfo | None) -> Any:
    """The value as the column stores it (PostgreSQL's assignment rules for these kinds)."""
    if col is None:
        raise _NotSimple
    value, kind = got
    base = col.type.base
    if value is None:
        return _typed_null(kind, base)
    if base in _INT_RANGE:
        if kind not in _INT_RANGE:
            raise _NotSimple  # rounding, text parsing: DuckDB does those as PostgreSQL
        return _checked(int(value), base)
    if base in _FLOATS:
        if kind in _INT_RANGE or kind == "float" or kind == "numeric":
            f = float(value)
            if base == "float4":
                with np.errstate(over="ignore"):
                    f32 = np.float32(f)
                if not np.isfinite(f32) and np.isfinite(f):
                    raise _NotSimple  # PostgreSQL's own overflow error
                return float(f32)
            return f
        raise _NotSimple
    if base in _TEXTS:
        if kind in ("text", "unknown"):
            return value
        raise _NotSimple
    if base == "bool":
        if kind == "bool":
            return value
        raise _NotSimple
    raise _NotSimple
