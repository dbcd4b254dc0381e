"""Rewrite a SELECT so that every table it reads is read at a fixed version (``"t@12"``).

The statement is parsed with the PostgreSQL grammar (postgast), every table reference is
resolved to its latest version (or to the version a ``t@tag`` / ``t@time`` reference already
names) through ``tarndb_versions()``, and the tree is deparsed with ``name@version``. Versions
are looked up with SQL, so the same code pins queries for an embedded lake and for a server.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import postgast
from postgast import pg_query_pb2 as pb

from ..sql import ast
from ._source import Source
from ._spec import TableRef, TrainingSetError

_SYSTEM_SCHEMAS = {"pg_catalog", "information_schema"}
# The file store's metadata is not a versioned user table; files are pinned by id instead.
_UNPINNED = {"_files"}


@dataclass
class VersionInfo:
    version: int
    timestamp: dt.datetime
    tags: list[str]


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def table_literal(schema: str | None, rel: str) -> str:
    """``'"ws"."t"'``: a table name as a string argument of the tarndb_* functions."""
    name = f"{quote_ident(schema)}.{quote_ident(rel)}" if schema else quote_ident(rel)
    return "'" + name.replace("'", "''") + "'"


def versions(source: Source, schema: str | None, rel: str) -> list[VersionInfo]:
    res = source.query(f"SELECT version, timestamp, tags FROM tarndb_versions("
                       f"{table_literal(schema, rel)}) ORDER BY version")
    out = []
    for version, ts, tags in res.rows:
        if isinstance(ts, str):
            ts = dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))
        if ts.tzinfo is None:
            ts = ts.replace(tzinfo=dt.timezone.utc)
        out.append(VersionInfo(int(version), ts, list(tags or [])))
    return out


def resolve(found: list[VersionInfo], spec: str | None, name: str) -> int:
    """The version ``spec`` names (None: the latest), by the engine's rules."""
    if not found:
        raise TrainingSetError(f'table "{name}" has no versions')
    if spec is None:
        return found[-1].version
    if spec.isdigit():
        if int(spec) not in {v.version for v in found}:
            raise TrainingSetError(f'table "{name}" has no version {spec}')
        return int(spec)
    for v in found:
        if spec in v.tags:
            return v.version
    try:
        when = dt.datetime.fromisoformat(spec.replace("Z", "+00:00"))
    except ValueError:
        raise TrainingSetError(f'"{spec}" is neither a version, a tag nor a timestamp of '
                               f'table "{name}"') from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    best = [v.version for v in found if v.timestamp <= when]
    if not best:
        raise TrainingSetError(f'table "{name}" did not exist at {spec}')
    return best[-1]


def display_name(schema: str | None, rel: str) -> str:
    return f"{schema}.{rel}" if schema else rel


def pin_query(source: Source, sql: str) -> tuple[str, list[TableRef]]:
    """``sql`` with every table pinned to a version, and the tables with their versions."""
    try:
        tree = postgast.parse(sql)
    except postgast.PgQueryError as e:
        raise TrainingSetError(f"the training set query does not parse: {e}") from None
    if len(tree.stmts) != 1 or ast.kind(tree.stmts[0].stmt) != "select_stmt":
        raise TrainingSetError("a training set is defined by exactly one SELECT statement")
    stmt = tree.stmts[0].stmt
    ctes = {m.ctename for m in ast.walk(stmt) if isinstance(m, pb.CommonTableExpr)}
    refs: dict[tuple[str | None, str], TableRef] = {}
    cache: dict[tuple[str | None, str], list[VersionInfo]] = {}
    for node in ast.walk(stmt):
        if not isinstance(node, pb.RangeVar):
            continue
        schema = node.schemaname or None
        rel = node.relname
        if schema in _SYSTEM_SCHEMAS or (schema is None and rel in ctes) or \
                rel in _UNPINNED or (schema is None and rel.startswith("pg_")):
            continue
        base, at, spec = rel.rpartition("@")
        if not (at and base and spec):
            base, spec = rel, ""
        key = (schema, base)
        if key not in cache:
            cache[key] = versions(source, schema, base)
        version = resolve(cache[key], spec or None, display_name(schema, base))
        node.relname = f"{base}@{version}"
        prev = refs.get(key)
        if prev is not None and prev.version != version:
            # Two versions of one table (a diff query): both are kept, keyed apart.
            refs[(schema, f"{base}@{version}")] = TableRef(display_name(schema, base), version)
        else:
            refs[key] = TableRef(display_name(schema, base), version)
    if not refs:
        raise TrainingSetError("the training set query reads no table")
    return str(postgast.deparse(tree)), list(refs.values())


def table_ref_parts(name: str) -> tuple[str | None, str]:
    """``ws.t`` / ``"ws"."t"`` / ``t`` -> (schema, table)."""
    name = name.strip()
    try:
        tree = postgast.parse(f"SELECT * FROM {name}")
        rv = tree.stmts[0].stmt.select_stmt.from_clause[0].range_var
        if rv.relname and not rv.catalogname:
            return (rv.schemaname or None), rv.relname
    except (postgast.PgQueryError, IndexError, AttributeError):
        pass
    # Unquoted names that are not SQL identifiers (workspaces may hold '-'): split plainly.
    schema, _, rel = name.rpartition(".")
    if not rel or '"' in name or schema.count(".") or not name.isprintable():
        raise TrainingSetError(f"invalid table name {name!r}")
    return (schema or None), rel
