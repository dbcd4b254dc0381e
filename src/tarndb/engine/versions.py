"""Table versions in SQL: every commit makes a version; read any of them, tag them, list them.

Syntax (plain Postgres grammar, so psql, psycopg and the HTTP API all carry it):

- ``SELECT ... FROM "docs@12"``                   the table as of version 12
- ``SELECT ... FROM "docs@v1-train"``             ... as of the version tagged ``v1-train``
- ``SELECT ... FROM "docs@2025-06-01T12:00:00Z"`` ... as of the last commit at or before then
- ``SELECT * FROM tarndb_versions('docs')``       version, timestamp, rows, tags
- ``SELECT tarndb_tag('docs', 'v1-train' [, 12])``  tag the current (or a given) version
- ``SELECT tarndb_untag('docs', 'v1-train')``
- ``SELECT tarndb_cleanup('docs', '7 days')``     drop untagged versions older than that
  (without an interval: the lake's ``version_retention``, else 7 days)
- ``SELECT * FROM tarndb_indexes('docs')``        indexes and the rows not yet folded in
- ``SELECT tarndb_pin_files('name', ARRAY[...])``  keep these files' bytes readable after a
  delete, under ``name`` (training sets); returns their metadata as JSON
- ``SELECT tarndb_unpin_files('name')``           drop the pin (and the bytes of pinned files
  already deleted and pinned by nothing else)

A version is read-only, and a ranking query on one is always answered exactly (never by an
approximate index), so it returns the same rows whenever it runs. Old versions stay until
``tarndb_cleanup`` or the ``version_retention`` setting drops them; tagged versions are never
dropped.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from postgast import pg_query_pb2 as pb

from .. import errors as E
from ..sql import ast
from .catalog import SCALAR_INDEX_TYPES, TableInfo
from .result import Column, Result
from .types import ColumnType

if TYPE_CHECKING:
    from .session import Session

FUNCTIONS = ("tarndb_tag", "tarndb_untag", "tarndb_cleanup", "tarndb_pin_files",
             "tarndb_unpin_files")
_PIN_FUNCTIONS = ("tarndb_pin_files", "tarndb_unpin_files")


def split_name(name: str) -> tuple[str, str] | None:
    if "@" not in name:
        return None
    base, _, spec = name.rpartition("@")
    return (base, spec) if base and spec else None


def resolve_version(session: Session, info: TableInfo, spec: str) -> int:
    ds = session.db.store(info).dataset()
    if spec.isdigit():
        version = int(spec)
        if version not in {v["version"] for v in ds.versions()}:
            raise E.UndefinedObject(f'table "{info.name}" has no version {version}')
        return version
    tags = ds.tags.list()
    if spec in tags:
        return int(tags[spec]["version"])
    try:
        when = dt.datetime.fromisoformat(spec.replace("Z", "+00:00"))
    except ValueError:
        raise E.UndefinedObject(
            f'"{spec}" is neither a version, a tag nor a timestamp of table "{info.name}"'
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    best = None
    for v in ds.versions():
        if _timestamp(v) <= when:
            best = v["version"]
    if best is None:
        raise E.UndefinedObject(f'table "{info.name}" did not exist at {spec}')
    return int(best)


def _timestamp(version: Any) -> dt.datetime:
    ts: dt.datetime = version["timestamp"]  # Lance reports naive UTC
    return ts.replace(tzinfo=dt.timezone.utc) if ts.tzinfo is None else ts


def _table_arg(session: Session, node: pb.Node, params: list[Any] | None = None) -> TableInfo:
    if ast.kind(node) == "a_const":
        name = str(ast.const_value(node))
    else:
        value = _arg_value(node, params or []) if params else None
        name = value if isinstance(value, str) else ""
    schema, _, rel = name.rpartition(".")
    info = session.resolve_table(schema.strip('"') or None, rel.strip('"'))
    if info is None or info.read_only:
        raise E.UndefinedTable(f'relation "{name}" does not exist', table=name)
    return info


def versions_table(session: Session, args: list[pb.Node]) -> pa.Table:
    if len(args) != 1:
        raise E.UndefinedFunction("tarndb_versions(table) takes one argument")
    info = _table_arg(session, args[0])
    ds = session.db.store(info).dataset()
    tags: dict[int, list[str]] = {}
    for name, t in ds.tags.list().items():
        tags.setdefault(int(t["version"]), []).append(name)
    rows = ds.versions()
    return pa.table({
        "version": pa.array([v["version"] for v in rows], pa.int64()),
        "timestamp": pa.array([_timestamp(v) for v in rows], pa.timestamp("us", tz="UTC")),
        "rows": pa.array([int(v["metadata"].get("total_rows", 0)) for v in rows], pa.int64()),
        "tags": pa.array([sorted(tags.get(v["version"], [])) for v in rows],
                         pa.list_(pa.string())),
    })


def indexes_table(session: Session, args: list[pb.Node]) -> pa.Table:
    """``tarndb_indexes('t')``: each index, its type, and the rows it has not absorbed yet
    (those are searched exactly until the next fold)."""
    if len(args) != 1:
        raise E.UndefinedFunction("tarndb_indexes(table) takes one argument")
    info = _table_arg(session, args[0])
    ds = session.db.store(info).dataset()
    mgr = None
    names, cols, types, pending = [], [], [], []
    for ix in info.indexes:
        names.append(ix.name)
        cols.append(ix.column)
        types.append(ix.index_type)
        n = 0
        if ix.index_type not in SCALAR_INDEX_TYPES:
            if mgr is None:
                from ..search import IndexManager

                mgr = IndexManager.open(session.db.store(info).uri)
            try:
                n = int(mgr.pending_rows(ds, ix.name))
            except E.TarnError:
                n = int(ds.count_rows())
        pending.append(n)
    return pa.table({"name": pa.array(names, pa.string()),
                     "column_name": pa.array(cols, pa.string()),
                     "index_type": pa.array(types, pa.string()),
                     "pending_rows": pa.array(pending, pa.int64())})


TABLE_FUNCTIONS = {"tarndb_versions": versions_table, "tarndb_indexes": indexes_table}


def is_version_function(sel: Any) -> bool:
    return (not sel.from_clause and len(sel.target_list) == 1
            and ast.kind(sel.target_list[0].res_target.val) == "func_call"
            and ast.func_name(sel.target_list[0].res_target.val.func_call) in FUNCTIONS)


def _arg_value(node: pb.Node, params: list[Any]) -> Any:
    """A constant argument: literal, ``$n``, a cast of one, or ``ARRAY[...]`` of them."""
    k = ast.kind(node)
    if k == "a_const":
        return ast.const_value(node)
    if k == "param_ref":
        n = node.param_ref.number
        if not 1 <= n <= len(params):
            raise E.InvalidParameterValue(f"there is no parameter ${n}")
        return params[n - 1]
    if k == "type_cast":
        return _arg_value(node.type_cast.arg, params)
    if k == "a_array_expr":
        return [_arg_value(e, params) for e in node.a_array_expr.elements]
    raise E.FeatureNotSupported("arguments of tarndb_* functions must be constants")


def run_function(session: Session, sel: Any, params: list[Any] | None = None) -> Result:
    fc = sel.target_list[0].res_target.val.func_call
    name = ast.func_name(fc)
    args = list(fc.args)
    if name in _PIN_FUNCTIONS:
        return _pin_function(session, name, [_arg_value(a, params or []) for a in args])
    if not args:
        raise E.UndefinedFunction(f"{name}() needs a table name")
    info = _table_arg(session, args[0], params)
    ds = session.db.store(info).dataset()
    values = [_arg_value(a, params or []) for a in args[1:]]
    if name == "tarndb_tag":
        if not values or not isinstance(values[0], str):
            raise E.InvalidParameterValue("tarndb_tag(table, tag [, version])")
        version = int(values[1]) if len(values) > 1 else ds.version
        if values[0] in ds.tags.list():
            raise E.DuplicateObject(f'tag "{values[0]}" already exists on "{info.name}"')
        if values[0].isdigit() or "@" in values[0]:
            raise E.InvalidParameterValue("a tag must not be a number or contain '@'")
        ds.tags.create(values[0], version)
        out: Any = version
        otype = ColumnType("int8")
    elif name == "tarndb_untag":
        if not values or values[0] not in ds.tags.list():
            raise E.UndefinedObject(f'tag "{values[0] if values else ""}" does not exist')
        ds.tags.delete(values[0])
        out, otype = True, ColumnType("bool")
    else:
        retention = getattr(session.db, "version_retention", None)
        older = _interval(values[0]) if values else (
            retention if retention is not None else dt.timedelta(days=7))
        stats = ds.cleanup_old_versions(older_than=older, error_if_tagged_old_versions=False)
        out, otype = int(getattr(stats, "old_versions", 0)), ColumnType("int8")
    col = Column(name, otype)
    return Result(columns=[col], command="SELECT 1", rowcount=1,
                  _arrow=pa.table({name: [out]}))


_RESULT_TYPES = {"tarndb_tag": "int8", "tarndb_untag": "bool", "tarndb_cleanup": "int8",
                 "tarndb_pin_files": "jsonb", "tarndb_unpin_files": "bool"}


def function_columns(sel: Any) -> list[Column]:
    """The result column of a ``SELECT tarndb_tag(...)``-style call, without running it (for
    the extended protocol's Describe)."""
    name = ast.func_name(sel.target_list[0].res_target.val.func_call)
    return [Column(name, ColumnType(_RESULT_TYPES[name]))]


def _pin_function(session: Session, name: str, values: list[Any]) -> Result:
    from ..files import FileStore

    store = FileStore.from_db(session.db)
    ws = session.workspace
    session.check_workspace(ws)
    if not values or not isinstance(values[0], str):
        usage = "(pin_name)" if name == "tarndb_unpin_files" else "(pin_name, file_ids)"
        raise E.InvalidParameterValue(f"usage: {name}{usage}")
    out: Any
    if name == "tarndb_unpin_files":
        out, otype = store.unpin(ws, values[0]), ColumnType("bool")
    else:
        ids = values[1] if len(values) > 1 else None
        if isinstance(ids, str) and ids.startswith("{") and ids.endswith("}"):
            # A text[] parameter sent in Postgres text form ('{id1,id2}'); ids hold no commas.
            ids = [p.strip().strip('"') for p in ids[1:-1].split(",") if p.strip()]
        if not isinstance(ids, list):
            raise E.InvalidParameterValue("tarndb_pin_files(pin_name, file_ids): file_ids is an "
                                          "array of file ids")
        metas = store.pin(ws, values[0], [str(i) for i in ids])
        out, otype = json.dumps([m.to_json() for m in metas]), ColumnType("jsonb")
    return Result(columns=[Column(name, otype)], command="SELECT 1", rowcount=1,
                  _arrow=pa.table({name: pa.array([out])}))


def parse_interval(text: str) -> dt.timedelta:
    """``'30 days'``, ``'12 hours'``, ``'1 week'`` (the forms ``tarndb_cleanup`` takes)."""
    return _interval(text)


def _interval(text: Any) -> dt.timedelta:
    parts = str(text).split()
    try:
        n = float(parts[0])
        unit = parts[1].lower().rstrip("s") if len(parts) > 1 else "day"
    except (ValueError, IndexError):
        raise E.InvalidParameterValue(f'invalid interval "{text}"') from None
    scale = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}
    if unit not in scale:
        raise E.InvalidParameterValue(f'invalid interval unit "{unit}"')
    return dt.timedelta(seconds=n * scale[unit])
