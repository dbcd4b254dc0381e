"""Describe a statement without running it: parameter types and result columns.

The extended query protocol asks for both before any value is bound (asyncpg encodes its
arguments by the types the server describes), so they are inferred: a parameter cast in the
SQL has the cast's type, one inserted into or assigned to a column has the column's type, and
the rest are asked of DuckDB's binder through a prepared statement. The result columns are
DuckDB's ``DESCRIBE`` of the statement as it would run: bound, never run, as a Describe
must leave no trace (no scan, no nextval(), no lock).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from postgast import pg_query_pb2 as pb

from .. import errors as E
from ..sql import ast, colnames
from ..sql.literals import lift_arrays
from ..sql.rewrite import casts
from . import versions
from .result import Column
from .scan import Scope
from .types import ColumnType, from_duckdb, resolve_type

if TYPE_CHECKING:
    from .session import Session

_ids = itertools.count()
TEXT = ColumnType("text")


def _param_types_from_tree(session: Session, stmt: pb.Node, n: int) -> dict[int, ColumnType]:
    found: dict[int, ColumnType] = {}
    for m in ast.walk(stmt):
        if isinstance(m, pb.TypeCast) and ast.kind(m.arg) == "param_ref":
            try:
                t = resolve_type(ast.names(m.type_name.names), len(m.type_name.array_bounds))
            except E.TarnError:
                continue
            found.setdefault(m.arg.param_ref.number, t)
    kind = ast.kind(stmt)
    node = ast.inner(stmt)
    if kind == "insert_stmt":
        info = session.resolve_table(node.relation.schemaname or None, node.relation.relname)
        if info is not None and node.HasField("select_stmt"):
            names = [c.res_target.name for c in node.cols] or info.column_names
            for row in node.select_stmt.select_stmt.values_lists:
                for i, item in enumerate(row.list.items):
                    if ast.kind(item) == "param_ref" and i < len(names):
                        col = info.column(names[i])
                        if col is not None:
                            found.setdefault(item.param_ref.number, col.type)
        if info is not None and node.HasField("on_conflict_clause"):
            for t in node.on_conflict_clause.target_list:  # DO UPDATE SET col = $n
                col = info.column(t.res_target.name)
                if ast.kind(t.res_target.val) == "param_ref" and col is not None:
                    found.setdefault(t.res_target.val.param_ref.number, col.type)
    if kind == "update_stmt":
        info = session.resolve_table(node.relation.schemaname or None, node.relation.relname)
        if info is not None:
            for t in node.target_list:
                v = t.res_target.val
                col = info.column(t.res_target.name)
                if ast.kind(v) == "param_ref" and col is not None:
                    found.setdefault(v.param_ref.number, col.type)
    # col = $n / $n = col comparisons against known columns
    tables = {}
    for m in ast.walk(stmt):
        if isinstance(m, pb.RangeVar):
            info = session.resolve_table(m.schemaname or None, m.relname)
            if info is not None:
                tables[m.alias.aliasname if m.HasField("alias") else info.name] = info
    for m in ast.walk(stmt):
        if isinstance(m, pb.A_Expr) and ast.op_name(m) in ("=", "<>", "!=", "<", ">", "<=",
                                                            ">=", "<->", "<=>", "<+>", "<#>"):
            for a, b in ((m.lexpr, m.rexpr), (m.rexpr, m.lexpr)):
                if ast.kind(a) == "column_ref" and ast.kind(b) == "param_ref":
                    parts = ast.names(a.column_ref.fields)
                    for alias, info in tables.items():
                        if len(parts) > 1 and parts[-2] != alias:
                            continue
                        col = info.column(parts[-1])
                        if col is not None:
                            found.setdefault(b.param_ref.number, col.type)
                            break
    return found


def describe(session: Session, sql: str, given: list[ColumnType | None]
             ) -> tuple[list[ColumnType], list[Column]]:
    lifted = lift_arrays(sql)
    tree = ast.parse(lifted.sql)
    if len(tree.stmts) != 1:
        if not tree.stmts:
            return [], []
        raise E.SyntaxError_("cannot insert multiple commands into a prepared statement")
    stmt = tree.stmts[0].stmt
    from ..sql.rewrite.params import max_param

    n = max_param(stmt)
    user_n = min(n, lifted.first_param - 1) if lifted.arrays else n
    inferred = _param_types_from_tree(session, stmt, n)
    types: list[ColumnType] = []
    for i in range(user_n):
        g = given[i] if i < len(given) else None
        types.append(g or inferred.get(i + 1) or TEXT)
    kind = ast.kind(stmt)
    cols: list[Column] = []
    if kind == "select_stmt" and versions.is_version_function(stmt.select_stmt):
        cols = versions.function_columns(stmt.select_stmt)
    elif kind == "select_stmt":
        colnames.apply(stmt)
        cols = _select_columns(session, stmt, n, lifted.arrays, lifted.first_param)
    elif kind in ("insert_stmt", "update_stmt", "delete_stmt"):
        node = ast.inner(stmt)
        if node.returning_clause.exprs:
            info = session.table_for(node.relation)
            alias = node.relation.alias.aliasname if node.relation.HasField("alias") \
                else info.name
            sel = pb.Node()
            for t in node.returning_clause.exprs:
                sel.select_stmt.target_list.add().CopyFrom(t)
            rv = sel.select_stmt.from_clause.add().range_var
            rv.CopyFrom(node.relation)
            rv.alias.aliasname = alias
            cols = _select_columns(session, sel, n, lifted.arrays, lifted.first_param)
    elif kind == "variable_show_stmt":
        name = ast.inner(stmt).name.lower()
        cols = [Column(name, TEXT)]
    elif kind == "explain_stmt":
        cols = [Column("QUERY PLAN", TEXT)]
    return types, cols


def _select_columns(session: Session, stmt: pb.Node, n: int, arrays: list[Any],
                    first: int) -> list[Column]:
    from ..sql.rewrite import jsonb, pgvector, ranking, similarity
    from ..sql.rewrite import params as param_rule

    values: list[Any] = [None] * n
    for i, a in enumerate(arrays):
        if first - 1 + i < n:
            values[first - 1 + i] = a
    # FOR UPDATE / SHARE locks the rows a statement reads, and shapes none (the statement
    # drops it where it runs too, engine/dml.py): DuckDB has no syntax for it
    for m in list(ast.walk(stmt)):
        if isinstance(m, pb.SelectStmt):
            del m.locking_clause[:]
    scope = Scope(session)
    scope.describing = True
    try:
        scope.bind(stmt)
        vectors = pgvector.result_types(stmt, scope)
        pgvector.apply(stmt, scope)
        jsonb.apply(stmt, scope)
        similarity.apply(stmt, scope, values)
        ranking.apply(stmt, scope)
        casts.apply(stmt)
        sql, duck_params = param_rule.apply(stmt, values)
        # DuckDB's DESCRIBE binds the query and answers its columns without running it (no
        # scan, no nextval(), no advisory lock taken), with the names as they are (a
        # wrapping SELECT * would rename a repeated one ``a_1``).
        session.cursor.execute(f"DESCRIBE {sql}", duck_params or None)
        desc = session.cursor.fetchall()
    except Exception as e:  # noqa: BLE001
        from .duck_errors import translate

        raise translate(e) from e
    finally:
        scope.close()
    cols = [Column(str(d[0]), from_duckdb(str(d[1]))) for d in desc]
    for i, t in vectors.items():  # vector without a dimension: not real[]
        if i < len(cols) and cols[i].type.base == "float4":
            cols[i] = Column(cols[i].name, t)
    return cols
