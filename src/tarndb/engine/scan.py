"""Binding table names in a statement to DuckDB views over Lance datasets.

Each table a statement reads becomes a temporary DuckDB view named ``__t<n>`` over the Lance
dataset's latest committed version, plus the session's own uncommitted changes when it is in a
transaction (rows it removed are hidden, rows it added are appended). The statement's
``RangeVar`` nodes are pointed at those views, keeping the user's alias (or the table name as
alias) so qualified column references still resolve.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, NamedTuple

import lance
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from postgast import pg_query_pb2 as pb

from ..errors import UndefinedFunction, UndefinedTable
from ..sql import ast
from ..storage.tables import RID, conform_rows
from . import setconfig
from .catalog import SCALAR_INDEX_TYPES, ColumnInfo, TableInfo
from .commit import unique_keys

if TYPE_CHECKING:
    from .session import Session


class KeyLookup(NamedTuple):
    """``column = value`` in a statement's WHERE clause, on a column with a scalar index."""

    filter: str  # as a Lance filter
    column: str
    value: Any
    unique: bool  # the column is a unique key by itself


def logged_key_rows(logged: pa.Table | None, column: str, value: Any) -> pa.Table | None:
    """The rows of the write-ahead log's overlay (TableStore.overlay) whose ``column`` is
    ``value``; None when there are none (or the value is not of the column's type). For a
    unique key they are the key's only live row: any Lance row with the key is an older
    version, or was deleted before the key was reused."""
    if logged is None or not logged.num_rows:
        return None
    col = logged.column(column)
    if pa.types.is_integer(col.type) and type(value) is int and not col.null_count:
        # An integer key (the common case, and every write of a hot row asks): numpy finds
        # it in a few microseconds, where Arrow's compute wrappers cost tens.
        hits = np.flatnonzero(col.to_numpy() == value)
        if not hits.size:
            return None
        return logged if hits.size == logged.num_rows else logged.take(hits)
    try:
        mine = logged.filter(pc.equal(col, pa.scalar(value, col.type)))
    except (pa.ArrowException, ValueError, OverflowError, TypeError):
        return None
    return mine if mine.num_rows else None

_counter = itertools.count()
#: Lance's I/O buffer for a streamed scan (Scope.streaming)
_STREAM_IO_BUFFER = 16 << 20
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")
#: ``RangeVar.catalogname`` of a table read inside a view read with its owner's rights
#: (engine/views.py sets it, bind_range_var clears it): a NUL, which no SQL name holds
OWNER_READ = "\x00owner"


def column_mask(session: Session, info: TableInfo) -> frozenset[str] | None:
    """The only columns of ``info`` this session's role may read, when it reads the table
    through column grants (the privilege store's answer, pgwire/acl.py); None: no limit."""
    mask_of = getattr(session.db, "column_mask", None)
    if mask_of is None or getattr(session, "acl_role", None) is None:
        return None
    mask: frozenset[str] | None = mask_of(session, info)
    return mask


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def select_expr(col: ColumnInfo, stored: str | None = None) -> str:
    """How a stored column appears in views: json/jsonb as JSON, uuid as UUID.
    ``stored``: SQL of the stored value when it is not the column itself."""
    q = quote_ident(col.name)
    v = stored or q
    if col.type.ndim == 0 and col.type.base in ("json", "jsonb"):
        return f"CAST({v} AS JSON) AS {q}"
    if col.type.ndim == 0 and col.type.base == "uuid":
        return f"CAST({v} AS UUID) AS {q}"
    if col.type.is_sparse:  # NULL as Lance stores it: a struct of NULLs (engine/sparsevec.py)
        return f"CASE WHEN struct_extract({v}, 'dim') IS NULL THEN NULL ELSE {v} END AS {q}"
    if col.type.dim is not None:  # vector(n): DuckDB's fixed-size FLOAT[n]
        return f"CAST({v} AS FLOAT[{col.type.dim}]) AS {q}"
    return q if stored is None else f"{v} AS {q}"


class Scope:
    """The views one statement registered; dropped when the statement ends."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.cur = session.cursor
        self._views: list[str] = []
        self._objects: list[str] = []
        #: per-statement scoring functions registered on the cursor
        self.functions: list[str] = []
        self._params: list[Any] | None = None
        self._range_vars: dict[str, pb.RangeVar] = {}
        #: scores the planner got from search/, keyed by the serialized <#> expression
        self.precomputed: dict[bytes, Any] = {}
        self._single_table_selects: list[pb.SelectStmt] = []
        #: True while describing a statement: parameters have no values yet
        self.describing = False
        #: EXPLAIN lines contributed by rewrites (which search path ran)
        self.plan: list[str] = []
        #: alias -> table, for every table bound in the statement
        self.tables: dict[str, TableInfo] = {}
        #: alias -> the only columns its view shows (a role's column grants: see
        #: :meth:`bind_range_var`)
        self.masks: dict[str, frozenset[str]] = {}
        #: tables are read as one-pass streams with little read-ahead (Session.streamed_
        #: selects: COPY table TO, whose statement reads its table once)
        self.streaming = False

    def register(self, obj: Any, prefix: str = "__o") -> str:
        name = f"{prefix}{next(_counter)}"
        self.cur.register(name, obj)
        self._objects.append(name)
        return name

    def view(self, info: TableInfo, with_rid: bool = False, lookup: KeyLookup | None = None,
             mask: frozenset[str] | None = None) -> str:
        """A view of the table for this statement; ``mask``: the only columns it shows."""
        db = self.session.db
        store = db.store(info)
        prefilter = lookup.filter if lookup is not None else None
        if lookup is not None:
            merged = self.key_rows(info, lookup)
            if merged is not None:
                return self._view_over(info, merged, with_rid, set(merged.schema.names),
                                       self._retyped(info, merged.schema), mask)
        try:
            ds = store.dataset(info.as_of if info.as_of is not None or info.read_only
                               else self.session.snapshot_version(info))
        except (ValueError, OSError):
            if not info.read_only:
                raise
            # A system table nothing has written yet (no file uploaded): empty.
            ds = pa.table({c.name: pa.array([], c.type.arrow) for c in info.columns})
            prefilter = None
        if prefilter is not None:
            # A point lookup on an indexed key: let Lance's scalar index find the rows and
            # hand DuckDB only those (DuckDB still applies the whole WHERE clause).
            raw = self.register(ds.to_table(filter=prefilter), "__raw")
            self.plan.append(f"Lance scalar-index prefilter on {info.name}: {prefilter}")
        elif self.streaming and isinstance(ds, lance.LanceDataset):
            # One pass, a few batches read ahead: a whole-table dataset scan reads far ahead
            # (a COPY TO of 300 MB of vectors peaked at ~330 MB; this way at ~120 MB).
            raw = self.register(ds.scanner(batch_readahead=2, fragment_readahead=1,
                                           io_buffer_size=_STREAM_IO_BUFFER).to_reader(),
                                "__raw")
        else:
            raw = self.register(ds, "__raw")
        return self._view_over(info, raw, with_rid, set(ds.schema.names),
                               self._retyped(info, ds.schema), mask)

    def _retyped(self, info: TableInfo, schema: pa.Schema) -> dict[str, pa.DataType] | None:
        """The stored types of a table whose column types this transaction changed (it
        reads them converted until COMMIT rewrites them: engine/retype.py)."""
        from . import retype

        if info.as_of is not None or not retype.retyped(self.session, info.path):
            return None
        return {f.name: f.type for f in schema}

    def key_rows(self, info: TableInfo, lookup: KeyLookup) -> pa.Table | None:
        """A key lookup's rows without folding the table's write-ahead log: the Lance rows
        the key filter finds, less those the log's records replaced or deleted, plus the
        logged rows (DuckDB applies the whole WHERE clause to them). A row that many
        writers update then costs no Lance commit per statement (storage/tables.py)."""
        got = self.session.overlay_read(info)
        if got is None:
            return None
        ds, logged, hidden = got
        prefilter = lookup.filter
        mine = logged_key_rows(logged, lookup.column, lookup.value) if lookup.unique \
            else None
        if mine is not None:
            self.plan.append(f"key lookup on {info.name} in the write-ahead log: {prefilter}")
            return mine
        if lookup.unique:
            found = self._by_key_index(info, ds, lookup, hidden)
            if found is not None:
                return found
        rows = ds.to_table(filter=prefilter)
        if hidden and rows.num_rows:
            gone = pc.is_in(rows.column(RID), value_set=pa.array(list(hidden), pa.int64()))
            rows = rows.filter(pc.invert(gone))
        if logged is not None and logged.num_rows:
            rows = pa.concat_tables([rows, conform_rows(logged, rows.schema)])
        self.plan.append(f"Lance scalar-index prefilter on {info.name}: {prefilter}"
                         + (" (with logged rows)" if logged is not None else ""))
        return rows

    def _by_key_index(self, info: TableInfo, ds: Any, lookup: KeyLookup, hidden: set[int]
                      ) -> pa.Table | None:
        """The live Lance row of a unique key, found by the write path's key index and
        taken by its row address: no index search or scan in Lance (whose scalar index
        does not cover rows appended since it was built). None when the key index cannot
        answer (the caller filters in Lance)."""
        from ..storage.rowmap import rows_by_rid

        key = next((k for k in unique_keys(info) if list(k.columns) == [lookup.column]),
                   None)
        if key is None:
            return None
        try:
            ix = self.session.db.writes.key_index(info, key, int(ds.version))
            rid = ix.get(lookup.value)
        except (TypeError, ValueError):
            return None
        if ix.version != int(ds.version):
            return None  # the index is of another version than the rows read
        want = [] if rid is None or int(rid) in hidden else [int(rid)]
        rows = rows_by_rid(ds, want)
        if want and rows.num_rows != 1:
            return None  # not where the row map says: let Lance look
        self.plan.append(f"key lookup on {info.name} by the key index: {lookup.filter}")
        return rows

    def _view_over(self, info: TableInfo, raw: str | pa.Table, with_rid: bool,
                   present: set[str], stored: dict[str, pa.DataType] | None = None,
                   mask: frozenset[str] | None = None) -> str:
        change = self.session.pending_change(info) if info.as_of is None else None
        columns = [c for c in info.columns if mask is None or c.name in mask]
        if isinstance(raw, pa.Table):
            names = [c.name for c in columns]
            if change is None and stored is None and all(n in present for n in names) and \
                    all(select_expr(c) == quote_ident(c.name) for c in columns):
                # Rows already in memory, of plain columns: DuckDB reads them as they are
                # (a view would cost a CREATE and a DROP per statement).
                return self.register(raw.select([RID, *names] if with_rid else names), "__t")
            raw = self.register(raw, "__raw")
        cols = ", ".join(select_expr(c) if c.name in present  # an older version may lack it
                         else f"CAST(NULL AS {c.type.duckdb}) AS {quote_ident(c.name)}"
                         for c in columns)
        added_cols = cols
        if stored is not None:
            from . import retype

            cols = ", ".join(
                select_expr(c, retype.view_expr(quote_ident(c.name), c, stored[c.name]))
                if c.name in stored else
                f"CAST(NULL AS {c.type.duckdb}) AS {quote_ident(c.name)}"
                for c in columns)
        rid = f"{RID}, " if with_rid else ""
        sql = f"SELECT {rid}{cols} FROM {raw}"
        if change is not None:
            if change.removed:
                removed = self.register(pa.table({RID: pa.array(sorted(change.removed),
                                                                pa.int64())}), "__del")
                sql += f" WHERE {RID} NOT IN (SELECT {RID} FROM {removed})"
            if change.added is not None and change.added.num_rows:
                added = self.register(change.added, "__add")
                sql += f" UNION ALL SELECT {rid}{added_cols} FROM {added}"
        name = f"__t{next(_counter)}"
        self.cur.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")
        self._views.append(name)
        return name

    def bind(self, stmt: pb.Node, skip_first_target: Any = None,
             params: list[Any] | None = None) -> None:
        """Point every RangeVar in ``stmt`` at a view (tables) or a catalog relation."""
        self._params = params
        from . import views

        # a view's name -> its query (engine/views.py); the names this scope registered so
        # far are the only ``__...`` names the statement may use unqualified
        views.expand(self.session, stmt, known=set(self._objects) | set(self._views))
        if ast.kind(stmt) == "select_stmt":
            from ..sql import pgcatalog

            # Postgres catalog idioms clients send at connect time (pg_catalog.f(),
            # 't'::regclass, current_schema()) made runnable on DuckDB.
            pgcatalog.rewrite(stmt, self.session.db, self.session)
        # One walk serves every question below (a walk is most of a small statement's
        # planning time); only a replaced table function makes a second one necessary.
        nodes = list(ast.walk(stmt))
        functions = [m for m in nodes
                     if isinstance(m, pb.Node) and ast.kind(m) == "range_function"]
        for m in functions:
            _refuse_relation_functions(m)
        if functions and sum(self._bind_function(m) for m in functions):
            nodes = list(ast.walk(stmt))
        ctes = {c.common_table_expr.ctename for m in nodes
                if isinstance(m, pb.WithClause) for c in m.ctes}
        self._single_table_selects = [
            m for m in nodes
            if isinstance(m, pb.SelectStmt) and len(m.from_clause) == 1
            and ast.kind(m.from_clause[0]) == "range_var"]
        using_join = False
        for m in nodes:
            if not isinstance(m, pb.RangeVar) or m is skip_first_target:
                if isinstance(m, pb.FuncCall):
                    setconfig.rename(m)  # set_config() is SET: it reaches the session
                elif isinstance(m, pb.JoinExpr) and (m.using_clause or m.is_natural):
                    using_join = True
                continue
            if not m.schemaname and m.relname in ctes:
                continue
            if not m.schemaname and (m.relname in self._objects or m.relname in self._views):
                continue  # already points at something this scope registered
            self.bind_range_var(m)
        strip_schema_qualifiers(nodes, self.tables)
        if using_join and self.tables:
            from ..sql.rewrite import joinstar

            # ``*`` over JOIN USING / NATURAL in PostgreSQL's order, before anything counts
            # result columns by position (pgvector's result types, describe)
            joinstar.apply(stmt, self)

    def _bind_function(self, node: pb.Node) -> bool:
        """Table functions tarndb answers itself (``tarndb_versions('t')``); whether
        ``node`` was one (and is now a RangeVar over its result)."""
        rf = node.range_function
        if len(rf.functions) != 1:
            return False
        items = rf.functions[0].list.items
        if not items or ast.kind(items[0]) != "func_call":
            return False
        fc = items[0].func_call
        from .versions import TABLE_FUNCTIONS

        fname = ast.func_name(fc)
        build = TABLE_FUNCTIONS.get(fname)
        if build is None:
            return False
        name = self.register(build(self.session, list(fc.args)), "__tf")
        alias = rf.alias.aliasname if rf.HasField("alias") else fname
        new = pb.Node()
        new.range_var.relname = name
        new.range_var.inh = True
        new.range_var.relpersistence = "p"
        new.range_var.alias.aliasname = alias
        node.CopyFrom(new)
        return True

    def _lookup_filter(self, rv: pb.RangeVar, info: TableInfo,
                       sel: pb.SelectStmt | None = None) -> KeyLookup | None:
        """A Lance filter for ``key = constant`` when rv is a SELECT's only table."""
        if sel is not None:
            if len(sel.from_clause) != 1:
                return None
        else:
            # Compared by value: protobuf wrappers are not stable objects to key a dict on.
            sel = next((m for m in self._single_table_selects
                        if m.from_clause[0].range_var == rv), None)
        if sel is None or not sel.HasField("where_clause"):
            return None
        keys = set(info.primary_key[:1]) if len(info.primary_key) == 1 else set()
        keys |= {ix.column for ix in info.indexes
                 if ix.index_type in SCALAR_INDEX_TYPES and not ix.options.get("columns")
                 and not ix.options.get("expression")}
        if not keys:
            return None
        conjuncts = [sel.where_clause]
        while conjuncts:
            node = conjuncts.pop()
            if ast.kind(node) == "bool_expr" and node.bool_expr.boolop == pb.AND_EXPR:
                conjuncts.extend(node.bool_expr.args)
                continue
            if ast.kind(node) != "a_expr" or node.a_expr.kind != pb.AEXPR_OP \
                    or ast.op_name(node.a_expr) != "=":  # not key = ANY(...)
                continue
            for a, b in ((node.a_expr.lexpr, node.a_expr.rexpr),
                         (node.a_expr.rexpr, node.a_expr.lexpr)):
                if ast.kind(a) != "column_ref":
                    continue
                parts = ast.names(a.column_ref.fields)
                col = info.column(parts[-1])
                if col is None or col.name not in keys or col.type.ndim:
                    continue
                value = self._constant(b)
                literal = _lance_literal(value, col)
                if literal is not None:
                    typed = int(literal) if col.type.base in ("int2", "int4", "int8") \
                        else value
                    unique = any(list(k.columns) == [col.name] for k in unique_keys(info))
                    return KeyLookup(
                        f"{quote_ident(col.name).replace(chr(34), '`')} = {literal}",
                        col.name, typed, unique)
        return None

    def _constant(self, node: pb.Node) -> Any:
        k = ast.kind(node)
        if k == "a_const":
            return ast.const_value(node)
        if k == "param_ref" and self._params is not None \
                and node.param_ref.number <= len(self._params):
            return self._params[node.param_ref.number - 1]
        return None

    def bind_range_var(self, rv: pb.RangeVar, with_rid: bool = False,
                       target_of: pb.SelectStmt | None = None,
                       params: list[Any] | None = None) -> TableInfo | None:
        """Point ``rv`` at a view of its table. ``target_of``: the SELECT that finds the
        rows an UPDATE or DELETE writes, with its ``params`` (its WHERE clause may name a
        key: then Lance's scalar index finds the rows, not a scan)."""
        if params is not None:
            self._params = params
        session = self.session
        # what a view read with its owner's rights reads (engine/views.py marks it): the
        # owner's whole table, never the reader's column grants
        owner_read = rv.catalogname == OWNER_READ
        if owner_read:
            rv.catalogname = ""
        schema = rv.schemaname or None
        if schema in SYSTEM_SCHEMAS or (schema is None and rv.relname.startswith("pg_")
                                        and session.db.catalog.find_table(
                                            session.workspace, rv.relname, fresh=False)
                                        is None):
            rel = session.db.system_relation(schema, rv.relname, session)
            if rel is not None:
                name = self.register(rel, "__c")
                chars = [f.name for f in rel.schema if pa.types.is_dictionary(f.type)]
                if chars:  # "char" catalog columns (pgcatalog's pg_char enum)
                    view = f"__t{next(_counter)}"
                    casts = ", ".join(f"CAST({quote_ident(c)} AS VARCHAR)::pg_char AS "
                                      f"{quote_ident(c)}" for c in chars)
                    self.cur.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * "
                                     f"REPLACE ({casts}) FROM {name}")
                    self._views.append(view)
                    name = view
                alias = rv.alias.aliasname if rv.HasField("alias") else rv.relname
                rv.schemaname = ""
                rv.relname = name
                rv.alias.aliasname = alias
            return None
        info = session.resolve_table(schema, rv.relname)
        if info is None:
            raise UndefinedTable(f'relation "{rv.relname}" does not exist',
                                 position=rv.location + 1 if rv.location >= 0 else None,
                                 table=rv.relname)
        lookup = (self._lookup_filter(rv, info) if not with_rid
                  else self._lookup_filter(rv, info, target_of) if target_of is not None
                  else None)
        # A role reading through column grants sees only those columns in the view: the
        # privilege check (pgwire/acl.py) refused the statement if it names others, and
        # should a name it missed reach DuckDB, the value is not there to read. A write's
        # target (``with_rid``) keeps every column: its new rows are made from them.
        # Describing a statement (no row is read) leaves them too: PostgreSQL describes a
        # statement it would refuse to run, and refuses it when it runs.
        mask = None if owner_read or with_rid or self.describing \
            else column_mask(session, info)
        view = self.view(info, with_rid=with_rid, lookup=lookup, mask=mask)
        alias = rv.alias.aliasname if rv.HasField("alias") and rv.alias.aliasname \
            else info.name
        if mask is not None:
            self.masks[alias] = mask
        rv.schemaname = ""
        rv.catalogname = ""
        rv.relname = view
        rv.alias.aliasname = alias
        self.tables[alias] = info
        self._range_vars[alias] = rv
        return info

    def bound_table(self, rv: pb.RangeVar) -> tuple[str, TableInfo] | None:
        """(alias, table) of a RangeVar that :meth:`bind_range_var` pointed at a view of a
        lake table; None for anything else (a CTE, a catalog relation, not bound)."""
        alias = rv.alias.aliasname
        bound = self._range_vars.get(alias)
        # an alias names one view per binding: a later one of the same alias (in another
        # subquery) points elsewhere, and then this is not known here
        if not alias or bound is None or bound.relname != rv.relname \
                or alias not in self.tables:
            return None
        return alias, self.tables[alias]

    def restrict(self, alias: str, info: TableInfo, rids: Any) -> None:
        """Re-point ``alias`` at a view holding only the rows with these row ids."""
        from .planner import rows_by_rid

        rows = rows_by_rid(self.session.db.store(info).dataset(info.as_of), rids)
        raw = self.register(rows, "__top")
        mask = self.masks.get(alias)
        cols = ", ".join(select_expr(c) for c in info.columns if mask is None or c.name in mask)
        name = f"__t{next(_counter)}"
        self.cur.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {cols} FROM {raw}")
        self._views.append(name)
        self._range_vars[alias].relname = name

    def close(self) -> None:
        for v in self._views:
            try:
                self.cur.execute(f"DROP VIEW IF EXISTS {v}")
            except Exception:  # noqa: BLE001 - cleanup must not mask the real error
                pass
        for o in self._objects:
            try:
                self.cur.unregister(o)
            except Exception:  # noqa: BLE001
                pass
        for f in self.functions:
            try:
                self.cur.remove_function(f)
            except Exception:  # noqa: BLE001
                pass
        self._views.clear()
        self._objects.clear()
        self.functions.clear()


#: DuckDB table functions that read a relation named by a string: they would reach what a
#: scope registered (the whole table behind a view read with its owner's rights), never
#: through the privilege checks, and PostgreSQL has none of them.
_RELATION_FUNCTIONS = frozenset({"query", "query_table"})


def _refuse_relation_functions(node: pb.Node) -> None:
    for f in node.range_function.functions:
        for item in f.list.items:
            if ast.kind(item) == "func_call" and \
                    ast.func_name(item.func_call) in _RELATION_FUNCTIONS:
                name = ast.func_name(item.func_call)
                raise UndefinedFunction(f"function {name}() does not exist",
                                        hint="Name the tables in the statement itself.")


def strip_schema_qualifiers(nodes: Any, tables: dict[str, TableInfo]) -> None:
    """``schema.table.column`` (what SQLAlchemy writes for a table with a schema) ->
    ``table.column`` when ``table`` is bound in the statement: the views keep the table's
    name as their alias, and DuckDB knows no schema for them."""
    for m in nodes:
        if not isinstance(m, pb.ColumnRef) or len(m.fields) < 3:
            continue
        parts = ast.names(m.fields)
        if len(parts) != len(m.fields):
            continue
        info = tables.get(parts[-2])
        if info is not None and parts[-3] == info.workspace:
            del m.fields[:len(m.fields) - 2]


def _lance_literal(value: Any, col: ColumnInfo) -> str | None:
    """A constant as a Lance (DataFusion) SQL literal for ``col``, or None if unsure."""
    base = col.type.base
    if isinstance(value, bool) or value is None:
        return None
    if base in ("int2", "int4", "int8") and isinstance(value, int):
        return str(value)
    if base in ("int2", "int4", "int8") and isinstance(value, str) and value.lstrip("-").isdigit():
        return str(int(value))
    if base in ("text", "varchar", "bpchar") and isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return None
