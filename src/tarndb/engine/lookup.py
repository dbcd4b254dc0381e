"""Fast paths for the smallest statements, answered without a DuckDB plan, view or Arrow
round trip; any other shape of query takes the general path.

- Constant selects: ``SELECT 1``, ``SELECT 'x' AS name, 2`` (integer, string, boolean and NULL
  literals, no FROM). Connection pools send ``SELECT 1`` before handing out a connection, so
  its cost is every pooled statement's cost; DuckDB's own round trip is a third of it.
- Rankings: ``SELECT cols[, score] FROM t [WHERE ...] ORDER BY col <#> q LIMIT k``
  (:func:`.planner.try_direct`): the search, then one take of the selected columns.
- System catalog queries (``pg_catalog.*``, ``information_schema.*`` only, as drivers send at
  connect and introspection time): their answers depend on the catalog, the session's
  settings and who it runs as, so they are kept per catalog version and session state; a
  repeated one costs a dictionary lookup instead of building the catalog relations and a
  DuckDB plan.
- Point lookups: ``SELECT cols FROM t WHERE key = constant [LIMIT n]`` on a one-column
  primary key. Fetching one row by its primary key is the most common statement an
  application sends. What the parse tree decides is kept per statement (:data:`_POINTS`); an
  integer key's row is found in memory (:func:`.colcache.key_rows`: per fragment, the key
  values sorted with their positions) and its columns are slices of the kept fragment
  arrays, wide text included; only columns not kept (vectors, JSON, arrays, very large text)
  are taken from Lance. Rows still in the write-ahead log come from its overlay. Other keys
  are filtered in Lance. A transaction that wrote to the table, a composite key, a NULL or
  mistyped value, or any other shape takes the general path, as does everything under
  ``SET tarndb.fast_paths = off``.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from postgast import pg_query_pb2 as pb

from ..sql import ast
from ..storage.rowmap import rows_by_rid
from ..storage.tables import RID
from . import colcache, views
from .result import Column, Result
from .scan import _lance_literal, column_mask, logged_key_rows
from .types import ColumnType
from .values import column_to_python

if TYPE_CHECKING:
    from .session import Session


def key_filter(session: Session, sel: Any, info: Any, params: list[Any]
                ) -> tuple[str, Any, Any] | None:
    """(Lance filter, key column, key value) of ``WHERE key = constant``."""
    where = sel.where_clause
    if ast.kind(where) != "a_expr" or where.a_expr.kind != pb.AEXPR_OP \
            or ast.op_name(where.a_expr) != "=":  # not key = ANY(...)
        return None
    keys = set(info.primary_key) if len(info.primary_key) == 1 else set()
    for a, b in ((where.a_expr.lexpr, where.a_expr.rexpr),
                 (where.a_expr.rexpr, where.a_expr.lexpr)):
        if ast.kind(a) != "column_ref":
            continue
        col = info.column(ast.names(a.column_ref.fields)[-1])
        if col is None or col.name not in keys:
            continue
        if ast.kind(b) == "a_const":
            value = ast.const_value(b)
        elif ast.kind(b) == "param_ref" and b.param_ref.number <= len(params):
            value = params[b.param_ref.number - 1]
        else:
            return None
        literal = _lance_literal(value, col)
        if literal is not None:
            return f"`{col.name}` = {literal}", col, value
    return None


_INT4 = ColumnType("int4")
_INT8 = ColumnType("int8")
_TEXT = ColumnType("text")
_BOOL = ColumnType("bool")


def _constant(node: pb.Node) -> tuple[Any, ColumnType] | None:
    """A literal's value and the type the general path gives it (None: not one handled
    here; floats are numeric there, and casts go through DuckDB)."""
    if node.WhichOneof("node") != "a_const":
        return None
    c = node.a_const
    if c.isnull:
        return None, _TEXT
    k = c.WhichOneof("val")
    if k == "ival":
        return c.ival.ival, _INT4
    if k == "sval":
        return c.sval.sval, _TEXT
    if k == "boolval":
        return c.boolval.boolval, _BOOL
    if k == "fval":
        text = c.fval.fval
        if text.lstrip("-").isdigit():
            v = int(text)
            if -(1 << 63) <= v < (1 << 63):
                return v, _INT8
    return None


def try_constant(sel: Any) -> Result | None:
    """``SELECT <literals>`` without FROM (see the module docstring)."""
    if (sel.from_clause or sel.HasField("where_clause") or sel.group_clause
            or sel.distinct_clause or sel.sort_clause or sel.HasField("limit_count")
            or sel.HasField("limit_offset") or sel.HasField("having_clause")
            or sel.with_clause.ctes or sel.op != pb.SETOP_NONE or sel.window_clause
            or sel.HasField("into_clause") or sel.locking_clause or sel.values_lists
            or not sel.target_list):
        return None
    cols: list[Column] = []
    row: list[Any] = []
    for t in sel.target_list:
        rt = t.res_target
        found = _constant(rt.val)
        if found is None or rt.indirection:
            return None
        row.append(found[0])
        cols.append(Column(rt.name or "?column?", found[1]))
    return Result(columns=cols, command="SELECT 1", rowcount=1, _rows=[tuple(row)])


def try_lookup(session: Session, stmt: pb.Node, params: list[Any], text: str | None = None
               ) -> Result | None:
    """The answer of a statement a fast path takes, or None. ``text``: the statement's SQL
    when ``stmt`` is its whole parse tree (what is kept per statement is then found by the
    text, without serialising the tree)."""
    sel = stmt.select_stmt
    if not session.fast_paths:
        return None
    if not sel.from_clause:
        found = try_constant(sel)
        if text is not None:
            if len(_CONSTANTS) >= _CONSTANTS_MAX:
                _CONSTANTS.clear()
            _CONSTANTS[text] = found
        return found
    if not sel.sort_clause:
        shape = _point_shape(stmt, text)
        if shape is not None and not shape.system:  # (a user table: no catalog query)
            return _point_lookup(session, shape, params)
    key = _catalog_key(session, stmt, params, text)
    if key is not None:
        return _cached_catalog_query(session, stmt, params, key)
    if sel.sort_clause:
        from .planner import try_direct

        direct: Result | None = try_direct(session, stmt, params)
        return direct
    return None


def known_point(session: Session, text: str) -> _Point | None:
    """The point-lookup shape of the statement ``text`` when one is known (it ran before)
    and the session may take it without the parse tree: then :meth:`.Session.execute_all`
    answers it through :func:`point_answer` without parsing it again. None for anything
    else, and for a role whose privileges are checked (that check reads the tree)."""
    shape = _POINTS.get(text)
    if shape is None or shape.system or not session.fast_paths:
        return None
    if getattr(session, "acl_role", None) is not None and \
            session.db.statement_hooks.get("check_privileges") is not None:
        return None
    return shape


#: Statement text -> its answer when it is a constant select (:func:`try_constant`; None:
#: not one), for :func:`known_constant`.
_CONSTANTS: dict[str, Result | None] = {}
_CONSTANTS_MAX = 256


def known_constant(session: Session, text: str) -> Result | None:
    """A copy of the answer of the constant select ``text`` (``SELECT 1``, a pool's ping)
    when it ran before: what :func:`try_constant` gives for its tree, without parsing it
    again. None for anything else, under ``tarndb.fast_paths = off``, and for a role whose
    privileges are checked (the check reads the tree)."""
    found = _CONSTANTS.get(text)
    if found is None or not session.fast_paths or (
            getattr(session, "acl_role", None) is not None and
            session.db.statement_hooks.get("check_privileges") is not None):
        return None
    return Result(columns=list(found.columns), command=found.command,
                  rowcount=found.rowcount, _rows=list(found.rows))


def point_answer(session: Session, shape: _Point, params: list[Any]) -> Result | None:
    """A known point lookup's answer (:func:`known_point`); None: the general path."""
    return _point_lookup(session, shape, params)


def known_catalog(session: Session, text: str) -> bool:
    """Whether the statement ``text`` is known to read system catalogs only (it ran before,
    :func:`_catalog_key`), so that :func:`catalog_answer` may answer it from the kept
    answers without parsing it; not for a role whose privileges are checked."""
    if not _CATALOG_SHAPES.get(text) or not session.fast_paths:
        return False
    return getattr(session, "acl_role", None) is None or \
        session.db.statement_hooks.get("check_privileges") is None


def catalog_answer(session: Session, text: str, params: list[Any]) -> Result | None:
    """The kept answer of a known catalog query (:func:`known_catalog`) for this session's
    state; None when none is kept (the caller runs the statement, which keeps it)."""
    if getattr(session, "_overlay", None) or getattr(session, "_txn", None) or \
            views.staged(session):
        return None
    key = _catalog_key_of(session, text, params)
    with _CATALOG_LOCK:
        hit = _CATALOG_CACHE.get(key)
        if hit is None:
            return None
        _CATALOG_CACHE.move_to_end(key)
    return Result(columns=list(hit.columns), command=hit.command, rowcount=hit.rowcount,
                  _rows=hit._rows, _arrow=hit._arrow)


@dataclass(frozen=True)
class _Point:
    """What a point lookup's parse tree alone decides (kept per statement, :data:`_POINTS`):
    the table's name, the select list's column references, the ``WHERE col = value`` sides
    and LIMIT. Each call binds the table (resolved again: DDL and other servers' changes
    are seen), the columns and the parameters."""

    schema: str | None
    relname: str
    alias: str | None
    #: (column reference names, output name or "") per select-list entry
    targets: tuple[tuple[tuple[str, ...], str], ...]
    #: (column name, parameter number or 0, the constant when 0) per side of the ``=``
    sides: tuple[tuple[str, int, Any], ...]
    limit: int | None
    #: the FROM item names a system catalog relation (the kept catalog answers take it)
    system: bool


#: Statement (its SQL text, else its serialized parse tree) -> its point-lookup shape, None:
#: not one. (Serialising even a small tree costs more than the rest of finding its shape.)
_POINTS: dict[str | bytes, _Point | None] = {}
_POINTS_MAX = 1024
_INT_TEXT = re.compile(r"-?[0-9]+")


def _point_shape(stmt: pb.Node, text: str | None = None) -> _Point | None:
    blob = text if text is not None else stmt.SerializeToString()
    try:
        return _POINTS[blob]
    except KeyError:
        pass
    shape = _read_point(stmt.select_stmt)
    if len(_POINTS) >= _POINTS_MAX:
        _POINTS.clear()
    _POINTS[blob] = shape
    return shape


def _read_point(sel: Any) -> _Point | None:
    """``SELECT cols FROM t WHERE col = constant [LIMIT n]``'s shape, or None."""
    if (len(sel.from_clause) != 1 or ast.kind(sel.from_clause[0]) != "range_var"
            or not sel.HasField("where_clause") or sel.group_clause or sel.distinct_clause
            or sel.sort_clause or sel.HasField("limit_offset") or sel.HasField("having_clause")
            or sel.with_clause.ctes or sel.op != pb.SETOP_NONE or sel.window_clause
            or sel.HasField("into_clause") or sel.locking_clause):
        return None
    rv = sel.from_clause[0].range_var
    if rv.schemaname in ("pg_catalog", "information_schema") or rv.catalogname \
            or not rv.inh:
        return None
    targets: list[tuple[tuple[str, ...], str]] = []
    for t in sel.target_list:
        rt = t.res_target
        if ast.kind(rt.val) != "column_ref" or rt.indirection:
            return None
        targets.append((tuple(ast.names(rt.val.column_ref.fields)), rt.name))
    limit = None
    if sel.HasField("limit_count"):
        if ast.kind(sel.limit_count) != "a_const" or \
                not isinstance(ast.const_value(sel.limit_count), int):
            return None
        limit = int(ast.const_value(sel.limit_count))
        if limit < 0:  # an error: the general path says which
            return None
    where = sel.where_clause
    if ast.kind(where) != "a_expr" or where.a_expr.kind != pb.AEXPR_OP \
            or ast.op_name(where.a_expr) != "=":  # not key = ANY(...)
        return None
    sides: list[tuple[str, int, Any]] = []
    for a, b in ((where.a_expr.lexpr, where.a_expr.rexpr),
                 (where.a_expr.rexpr, where.a_expr.lexpr)):
        if ast.kind(a) != "column_ref":
            continue
        names = ast.names(a.column_ref.fields)
        if len(names) > 2 or (len(names) == 2 and names[0] not in
                              (rv.alias.aliasname if rv.HasField("alias") else rv.relname,)):
            continue
        if ast.kind(b) == "a_const":
            sides.append((names[-1], 0, ast.const_value(b)))
        elif ast.kind(b) == "param_ref":
            sides.append((names[-1], b.param_ref.number, None))
    if not sides:
        return None
    return _Point(rv.schemaname or None, rv.relname,
                  rv.alias.aliasname if rv.HasField("alias") else None, tuple(targets),
                  tuple(sides), limit,
                  _is_system_relation(rv.schemaname.lower(), rv.relname.lower()))


#: (point shape, database, catalog version, how names resolve) -> the table and what the
#: shape binds to in it (:func:`_bind`): a definition is fixed per catalog version.
_BOUND: dict[tuple[Any, ...], tuple[Any, list[tuple[str, Any]], list[Column],
                                    list[tuple[Any, int, Any]], list[str]]] = {}
_BOUND_MAX = 1024


def _bind(session: Session, shape: _Point) -> tuple[Any, list[tuple[str, Any]], list[Column],
                                                    list[tuple[Any, int, Any]],
                                                    list[str]] | None:
    """The table ``shape`` reads, its selected (output name, column) pairs, the result's
    columns, the ``=`` sides that name the one-column primary key and the stored columns
    read (:func:`_wanted`); None: not a table the fast path reads. Kept per catalog
    version and whatever else decides how a name resolves (search path, user, workspace,
    allowed workspaces); a session with its own uncommitted DDL resolves afresh."""
    db = session.db
    staged = bool(getattr(session, "_overlay", None))
    key: tuple[Any, ...] | None = None
    if not staged:
        db.catalog.refresh()  # what resolving the name does (rate-limited)
        allowed = session.allowed_workspaces
        key = (shape, id(db), db.catalog.version, session.settings.get("search_path", ""),
               session.user, session.workspace,
               None if allowed is None else frozenset(allowed))
        hit = _BOUND.get(key)
        if hit is not None:
            return hit
    info = session.resolve_table(shape.schema, shape.relname)
    if info is None or info.read_only or len(info.primary_key) != 1:
        return None
    alias = shape.alias or info.name
    columns: list[tuple[str, Any]] = []
    for parts, name in shape.targets:
        targets = _stored(parts, name, alias, info)
        if targets is None:
            return None
        columns.extend(targets)
    pk = info.primary_key[0]
    sides = [(col, number, const) for name, number, const in shape.sides
             if (col := info.column(name)) is not None and col.name == pk]
    bound = (info, columns, [Column(name, c.type) for name, c in columns], sides,
             _wanted(columns))
    if key is not None:
        if len(_BOUND) >= _BOUND_MAX:
            _BOUND.clear()
        _BOUND[key] = bound
    return bound


def _point_lookup(session: Session, shape: _Point, params: list[Any]) -> Result | None:
    """A point lookup's answer (module docstring), or None for the general path."""
    bound = _bind(session, shape)
    if bound is None:
        return None
    info, columns, out, sides, wanted = bound
    if session.pending_change(info) is not None:
        return None
    mask = column_mask(session, info)
    if mask is not None and not {c.name for _, c in columns} | {c.name for c, _, _ in sides} \
            <= mask:
        return None  # a column the role may not read: the general path's view lacks it
    for col, number, const in sides:
        if number:
            if number > len(params):
                return None
            value = params[number - 1]
        else:
            value = const
        if col.type.base in ("int2", "int4", "int8"):
            # The general path's own reading of an integer key's value (a string of digits
            # is cast); anything else (NULL, a float, a bad string) goes that way.
            if isinstance(value, str) and _INT_TEXT.fullmatch(value):
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                return None
            return _answer(session, info, col, value, columns, out, shape.limit, None,
                           wanted)
        literal = _lance_literal(value, col)
        if literal is not None:
            return _answer(session, info, col, value, columns, out, shape.limit,
                           f"`{col.name}` = {literal}", wanted)
    return None


def _answer(session: Session, info: Any, key_col: Any, value: Any,
            columns: list[tuple[str, Any]], out: list[Column], limit: int | None,
            flt: str | None, wanted: list[str]) -> Result:
    """The rows of key ``value``: from the write-ahead log's overlay when the key's newest
    row is logged, else the newest committed Lance version minus the rows the log hides
    (or the transaction's snapshot); integer keys from memory (:func:`.colcache.key_rows`),
    other keys by Lance's filter ``flt``; ``wanted``: the stored columns read."""
    got = session.overlay_read(info)
    table = _logged_row(got, key_col.name, value, wanted, limit)
    if table is None:
        if got is not None and flt is None:
            # Not in the log: the overlay's dataset is the newest committed version, minus
            # the rows the log replaced or deleted (no second look at the log, no fold).
            rows = _by_key(got[0], key_col.name, value, wanted, limit, got[2], columns, out)
            if rows is not None:
                return rows
        store = session.db.store(info)
        # A REPEATABLE READ transaction reads its snapshot (the first read pins it).
        ds = store.dataset(session.snapshot_version(info)) \
            if session.in_transaction and session.serializable else store.dataset()
        if flt is None:
            rows = _by_key(ds, key_col.name, value, wanted, limit, None, columns, out)
            if rows is not None:
                return rows
            flt = f"`{key_col.name}` = {value}"
        table = ds.to_table(columns=wanted, filter=flt, limit=limit)
    return _result(columns, out, {c: table.column(c) for c in wanted}, table.num_rows)


def _wanted(columns: list[tuple[str, Any]]) -> list[str]:
    """The stored columns a select list reads, each once, in order."""
    return list(dict.fromkeys(c.name for _, c in columns))


def _result(columns: list[tuple[str, Any]], out: list[Column], data: dict[str, Any],
            n: int) -> Result:
    """The Result of one lookup's rows: Python values converted as the general path
    converts its Arrow result (values.column_to_python), without an Arrow table; ``out``:
    the result's columns (kept with the bound statement, copied: a Result's are its own)."""
    if n == 0:
        rows: list[tuple[Any, ...]] = []
    else:
        converted: dict[str, list[Any]] = {}
        for _, c in columns:
            if c.name not in converted:
                converted[c.name] = column_to_python(data[c.name], c.type)
        rows = list(zip(*(converted[c.name] for _, c in columns), strict=True)) \
            if columns else [() for _ in range(n)]
    return Result(columns=list(out), command=f"SELECT {n}", rowcount=n, _rows=rows)


def _logged_row(got: tuple[Any, Any, set[int]] | None, column: str, value: Any,
                wanted: list[str], limit: int | None) -> pa.Table | None:
    """The row of primary key ``value`` when its newest version is in the table's
    write-ahead log (a row many writers update), from the statement's overlay read
    (:meth:`.Session.overlay_read`) without folding the log; None otherwise (the caller
    reads Lance)."""
    mine = logged_key_rows(got[1] if got is not None else None, column, value)
    if mine is None:
        return None
    return mine.select(wanted).slice(0, limit if limit is not None else mine.num_rows)


def _by_key(ds: Any, column: str, value: Any, wanted: list[str], limit: int | None,
            hidden: set[int] | None, columns: list[tuple[str, Any]], out: list[Column]
            ) -> Result | None:
    """The rows whose integer key is ``value`` (:func:`.colcache.key_rows`): the columns it
    keeps from memory, the others by a Lance take of just those rows. None: the caller
    filters in Lance."""
    found = colcache.key_rows(ds, column, value, wanted, hidden, limit)
    if found is None:
        return None
    data, rest, rids, where = found
    if rest and rids.size:
        taken = _take(ds, rids, where, rest)
        if taken is None:
            return None
        data.update(taken)
    elif rest:
        for c in rest:
            data[c] = pa.array([], ds.schema.field(c).type)
    return _result(columns, out, data, int(rids.size))


def _take(ds: Any, rids: Any, where: list[tuple[int, int]], columns: list[str]
          ) -> dict[str, Any] | None:
    """``columns`` of the rows ``rids`` (ascending) from Lance: each by its fragment's take
    of its position among the fragment's live rows (~250 us for a 384-d vector, against
    ~400 us for a dataset take by row id, which first maps the id to its fragment), checked
    by ``__rid``; the dataset take when a fragment's answer is not the row."""
    want = [*columns, RID] if RID not in columns else columns
    parts: list[Any] = []
    for rid, (fid, pos) in zip(rids.tolist(), where, strict=True):
        frag = ds.get_fragment(fid)
        t = frag.take([pos], columns=want) if frag is not None else None
        if t is None or t.num_rows != 1 or t.column(RID)[0].as_py() != rid:
            parts = []
            break
        parts.append(t)
    if parts:
        taken = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
    else:
        taken = rows_by_rid(ds, rids, want)
        if taken.num_rows != rids.size:
            return None
        order = np.argsort(taken.column(RID).to_numpy(), kind="stable")  # rids ascending
        taken = taken.take(pa.array(order))
    return {c: taken.column(c) for c in columns}


# -- system catalog queries ------------------------------------------------------------------

#: Relations whose rows change without the catalog changing (sessions, locks).
_LIVE_RELATIONS = ("pg_stat", "pg_locks", "pg_prepared", "pg_cursors", "pg_backend")
#: Functions whose answer changes from call to call, or that do something.
_VOLATILE = frozenset({
    "now", "clock_timestamp", "statement_timestamp", "transaction_timestamp", "timeofday",
    "random", "setseed", "pg_backend_pid", "txid_current", "txid_current_if_assigned",
    "pg_current_xact_id", "nextval", "currval", "setval", "lastval", "gen_random_uuid",
    "uuid_generate_v4", "pg_sleep", "set_config", "pg_cancel_backend", "pg_terminate_backend",
    "pg_notify", "inet_client_addr", "inet_client_port", "pg_postmaster_start_time",
    "pg_conf_load_time", "pg_current_wal_lsn", "embed", "deep_memory",
    # sizes follow the data, not the catalog
    "pg_relation_size", "pg_total_relation_size", "pg_table_size", "pg_indexes_size",
    "pg_database_size", "pg_column_size"})
_TIME_SVF = frozenset({pb.SVFOP_CURRENT_DATE, pb.SVFOP_CURRENT_TIME, pb.SVFOP_CURRENT_TIME_N,
                       pb.SVFOP_CURRENT_TIMESTAMP, pb.SVFOP_CURRENT_TIMESTAMP_N,
                       pb.SVFOP_LOCALTIME, pb.SVFOP_LOCALTIME_N, pb.SVFOP_LOCALTIMESTAMP,
                       pb.SVFOP_LOCALTIMESTAMP_N})
_CATALOG_CACHE: OrderedDict[Hashable, Result] = OrderedDict()
_CATALOG_LOCK = threading.Lock()
_CATALOG_MAX_ENTRIES = 1024
_CATALOG_MAX_BYTES = 1 << 20  # per answer


def _is_system_relation(schema: str, name: str) -> bool:
    """``schema.name`` (``name`` alone: an unqualified ``pg_*``) is a relation of the system
    catalogs that :mod:`tarndb.sql.pgcatalog` builds, never a user's table."""
    from ..sql import pgcatalog, pgcatalog15

    if schema == "information_schema":
        return name in pgcatalog._INFORMATION_SCHEMA
    if schema in ("pg_catalog", ""):
        return name in pgcatalog._RELATIONS or name in pgcatalog15.COLUMNS
    return False


def _catalog_key(session: Session, stmt: pb.Node, params: list[Any], text: str | None = None
                 ) -> Hashable | None:
    """The cache key of a query that reads system catalogs only (None: not one); ``text``:
    the statement's SQL, which then stands for its tree."""
    sel = stmt.select_stmt
    if sel.locking_clause or sel.HasField("into_clause"):
        return None
    # Most statements name a user table at the top: no walk of the whole tree for them.
    ctes = {c.common_table_expr.ctename for c in sel.with_clause.ctes}
    for item in sel.from_clause:
        if item.WhichOneof("node") == "range_var":
            rv = item.range_var
            if not (not rv.schemaname and rv.relname in ctes) and \
                    not _is_system_relation(rv.schemaname.lower(), rv.relname.lower()):
                return None
    # Uncommitted DDL or writes of this transaction change what the catalogs show it.
    if getattr(session, "_overlay", None) or getattr(session, "_txn", None) or \
            views.staged(session):
        return None
    blob = text if text is not None else stmt.SerializeToString()
    shape = _CATALOG_SHAPES.get(blob)
    if shape is None:
        shape = _catalog_only(stmt, ctes)
        if len(_CATALOG_SHAPES) >= _CATALOG_MAX_ENTRIES:
            _CATALOG_SHAPES.clear()
        _CATALOG_SHAPES[blob] = shape
    if not shape:
        return None
    return _catalog_key_of(session, blob, params)


def _catalog_key_of(session: Session, blob: str | bytes, params: list[Any]) -> Hashable:
    db = session.db
    db.catalog.refresh()  # what the uncached query would do (rate-limited)
    allowed = session.allowed_workspaces
    return (blob, repr(params), db.catalog.version,
            tuple(sorted(session.settings.items())), session.user, session.workspace,
            None if allowed is None else frozenset(allowed), session.read_only,
            repr(getattr(session, "acl_role", None)), id(db))


#: Statement (SQL text or serialized parse tree) -> whether it reads system catalogs only,
#: with nothing volatile (:func:`_catalog_only`): a tree walk costs more than the cached
#: answer.
_CATALOG_SHAPES: dict[str | bytes, bool] = {}


def _catalog_only(stmt: pb.Node, ctes: set[str]) -> bool:
    """Whether ``stmt`` reads system catalog relations only (at least one), and calls
    nothing whose answer changes from call to call."""
    relations = 0
    for m in ast.walk(stmt):
        if isinstance(m, pb.CommonTableExpr):
            ctes.add(m.ctename)
        elif isinstance(m, pb.RangeVar):
            schema, name = m.schemaname.lower(), m.relname.lower()
            if not schema and m.relname in ctes:
                continue
            if not _is_system_relation(schema, name):
                return False
            if name.startswith(_LIVE_RELATIONS):
                return False
            relations += 1
        elif isinstance(m, (pb.RangeFunction, pb.RangeTableFunc, pb.RangeTableSample)):
            return False
        elif isinstance(m, pb.FuncCall):
            names = ast.names(m.funcname)
            if not names or names[-1].lower() in _VOLATILE or \
                    names[-1].lower().startswith(("pg_advisory", "pg_try_advisory",
                                                  "tarndb_")):
                return False
        elif isinstance(m, pb.SQLValueFunction) and m.op in _TIME_SVF:
            return False
    return relations > 0


def _cached_catalog_query(session: Session, stmt: pb.Node, params: list[Any],
                          key: Hashable) -> Result:
    with _CATALOG_LOCK:
        hit = _CATALOG_CACHE.get(key)
        if hit is not None:
            _CATALOG_CACHE.move_to_end(key)
    if hit is None:
        res = session.run_select(stmt, params)
        rows = res.rows  # converted once, here
        if res.notices or (res._arrow is not None and res._arrow.nbytes > _CATALOG_MAX_BYTES):
            return res
        hit = Result(columns=list(res.columns), command=res.command, rowcount=res.rowcount,
                     _rows=rows, _arrow=res._arrow)
        with _CATALOG_LOCK:
            _CATALOG_CACHE[key] = hit
            while len(_CATALOG_CACHE) > _CATALOG_MAX_ENTRIES:
                _CATALOG_CACHE.popitem(last=False)
    return Result(columns=list(hit.columns), command=hit.command, rowcount=hit.rowcount,
                  _rows=hit._rows, _arrow=hit._arrow)


def stored_columns(rt: Any, alias: str, info: Any) -> list[tuple[str, Any]] | None:
    """(output name, ColumnInfo) pairs of a select-list column reference (``col``,
    ``alias.col`` or ``*``) to the table ``info``; None for anything else (another table,
    an unknown column, ``* AS name``). The fast paths answer only such lists."""
    return _stored(tuple(ast.names(rt.val.column_ref.fields)), rt.name, alias, info)


def _stored(parts: tuple[str, ...], name: str, alias: str, info: Any
            ) -> list[tuple[str, Any]] | None:
    if len(parts) > 2 or (len(parts) == 2 and parts[0] != alias):
        return None
    if parts[-1] == "*":
        return None if name else [(c.name, c) for c in info.columns]
    col = info.column(parts[-1])
    return None if col is None else [(name or col.name, col)]
