"""Binding table names in a statement to DuckDB views over Lance datasets.

Each table a statement reads becomes a temporary DuckDB view named ``__t<n>`` over the Lance
dataset's latest committed version, plus the session's own uncommitted changes when it is in a
transaction (rows it removed are hidden, rows it added are appended). The statement's
``RangeVar`` nodes are pointed at those views, keeping the user's alias (or the table name as
alias) so qualified column references still resolve.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from postgast import pg_query_pb2 as pb

from ..errors import UndefinedTable
from ..sql import ast
from ..storage.tables import RID
from .catalog import ColumnInfo, TableInfo

if TYPE_CHECKING:
    from .session import Session

_counter = itertools.count()
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def select_expr(col: ColumnInfo) -> str:
    """How a stored column appears in views: json/jsonb as JSON, uuid as UUID."""
    q = quote_ident(col.name)
    if col.type.ndim == 0 and col.type.base in ("json", "jsonb"):
        return f"CAST({q} AS JSON) AS {q}"
    if col.type.ndim == 0 and col.type.base == "uuid":
        return f"CAST({q} AS UUID) AS {q}"
    return q


class Scope:
    """The views one statement registered; dropped when the statement ends."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.cur = session.cursor
        self._views: list[str] = []
        self._objects: list[str] = []
        #: per-statement scoring functions registered on the cursor
        self.functions: list[str] = []
        #: True while describing a statement: parameters have no values yet
        self.describing = False
        #: EXPLAIN lines contributed by rewrites (which search path ran)
        self.plan: list[str] = []
        #: alias -> table, for every table bound in the statement
        self.tables: dict[str, TableInfo] = {}

    def register(self, obj: Any, prefix: str = "__o") -> str:
        name = f"{prefix}{next(_counter)}"
        self.cur.register(name, obj)
        self._objects.append(name)
        return name

    def view(self, info: TableInfo, with_rid: bool = False) -> str:
        db = self.session.db
        store = db.store(info)
        ds = store.dataset()
        raw = self.register(ds, "__raw")
        cols = ", ".join(select_expr(c) for c in info.columns)
        rid = f"{RID}, " if with_rid else ""
        sql = f"SELECT {rid}{cols} FROM {raw}"
        change = self.session.pending_change(info)
        if change is not None:
            if change.removed:
                removed = self.register(pa.table({RID: pa.array(sorted(change.removed),
                                                                pa.int64())}), "__del")
                sql += f" WHERE {RID} NOT IN (SELECT {RID} FROM {removed})"
            if change.added is not None and change.added.num_rows:
                added = self.register(change.added, "__add")
                sql += f" UNION ALL SELECT {rid}{cols} FROM {added}"
        name = f"__t{next(_counter)}"
        self.cur.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")
        self._views.append(name)
        return name

    def bind(self, stmt: pb.Node, skip_first_target: Any = None) -> None:
        """Point every RangeVar in ``stmt`` at a view (tables) or a catalog relation."""
        ctes = {c.common_table_expr.ctename for m in ast.walk(stmt)
                if isinstance(m, pb.WithClause) for c in m.ctes}
        for m in list(ast.walk(stmt)):
            if not isinstance(m, pb.RangeVar) or m is skip_first_target:
                continue
            if not m.schemaname and m.relname in ctes:
                continue
            if m.relname.startswith("__t") and not m.schemaname:
                continue
            self.bind_range_var(m)

    def bind_range_var(self, rv: pb.RangeVar, with_rid: bool = False) -> TableInfo | None:
        session = self.session
        schema = rv.schemaname or None
        if schema in SYSTEM_SCHEMAS or (schema is None and rv.relname.startswith("pg_")
                                        and session.db.catalog.find_table(
                                            session.workspace, rv.relname) is None):
            rel = session.db.system_relation(schema, rv.relname, session)
            if rel is not None:
                name = self.register(rel, "__c")
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
        view = self.view(info, with_rid=with_rid)
        alias = rv.alias.aliasname if rv.HasField("alias") and rv.alias.aliasname \
            else info.name
        rv.schemaname = ""
        rv.catalogname = ""
        rv.relname = view
        rv.alias.aliasname = alias
        self.tables[alias] = info
        return info

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
