"""Client queries answered by the protocol layer instead of the SQL engine.

asyncpg learns about every type outside its small built-in set (``float4[]``, ``int8[]``,
``jsonb[]`` ...) with one recursive catalog query, ``WITH RECURSIVE typeinfo_tree ...``, whose
result must use exactly PostgreSQL's column types (``oid[]``, ``text[]``, ``name``, ``"char"``):
a ``bigint[]`` column there makes asyncpg introspect ``bigint[]`` with the same query, forever.
The engine computes catalog columns as DuckDB ``BIGINT``, so this query is answered here, from
the same type table :mod:`tarndb.sql.pgcatalog` serves, with Postgres' column types.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..engine.result import Column, Result
from ..engine.types import ColumnType

_TYPEINFO_COLUMNS = [
    Column("oid", ColumnType("oid")),
    Column("ns", ColumnType("name")),
    Column("name", ColumnType("name")),
    Column("kind", ColumnType("char")),
    Column("basetype", ColumnType("oid")),
    Column("elemtype", ColumnType("oid")),
    Column("elemdelim", ColumnType("char")),
    Column("range_subtype", ColumnType("oid")),
    Column("attrtypoids", ColumnType("oid", 1)),
    Column("attrnames", ColumnType("text", 1)),
    Column("depth", ColumnType("int4")),
    Column("basetype_name", ColumnType("text")),
    Column("elemtype_name", ColumnType("text")),
    Column("range_subtype_name", ColumnType("text")),
]


def _types() -> dict[int, dict[str, Any]]:
    from ..sql import pgcatalog

    return {int(r["oid"]): r for r in pgcatalog._type_rows()}


def _type_name(types: dict[int, dict[str, Any]], oid: int | None) -> str | None:
    if not oid:
        return None
    from ..sql import pgcatalog

    row = types.get(oid)
    if row is None:
        return None
    if row["typelem"]:
        inner = _type_name(types, int(row["typelem"]))
        return f"{inner}[]" if inner else None
    return pgcatalog._NICE.get(row["typname"], row["typname"])


def _typeinfo(db: Any, session: Any, params: list[Any]) -> Result:
    """asyncpg's INTRO_LOOKUP_TYPES(_13): the requested types and their element types."""
    wanted = [int(x) for x in (params[0] or [])] if params else []
    types = _types()
    rows: dict[tuple[int, int], tuple[Any, ...]] = {}

    def visit(oid: int, depth: int) -> None:
        row = types.get(oid)
        if row is None:
            return
        elem = int(row["typelem"]) or None
        key = (oid, depth)
        if key not in rows:
            elem_row = types.get(elem) if elem else None
            rows[key] = (oid, "pg_catalog", row["typname"], row["typtype"], None,
                         elem or 0, elem_row["typdelim"] if elem_row else None, None, None,
                         None, depth, None, _type_name(types, elem), None)
        if elem:
            visit(elem, depth + 1)

    for oid in wanted:
        visit(oid, 0)
    ordered = sorted(rows.values(), key=lambda r: -r[10])
    return Result(columns=list(_TYPEINFO_COLUMNS), command=f"SELECT {len(ordered)}",
                  rowcount=len(ordered), _rows=ordered)


Handler = Callable[[Any, Any, list[Any]], Result]


def match(sql: str) -> tuple[Handler, list[ColumnType], list[Column]] | None:
    """(handler, parameter types, result columns) when ``sql`` is answered here."""
    head = sql.lstrip()[:40].lower()
    if head.startswith("with recursive typeinfo_tree(") and "typeinfo_tree tt" in sql:
        return _typeinfo, [ColumnType("oid", 1)], list(_TYPEINFO_COLUMNS)
    return None
