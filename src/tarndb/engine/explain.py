"""EXPLAIN: DuckDB's plan for the rewritten statement, headed by how tarndb ran ``<#>``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from .. import errors as E
from ..sql import ast
from . import planner
from .result import Column, Result
from .scan import Scope
from .types import ColumnType

if TYPE_CHECKING:
    from .session import Session


def explain(session: Session, node: Any, params: list[Any]) -> Result:
    stmt = node.query
    if ast.kind(stmt) != "select_stmt":
        raise E.FeatureNotSupported("EXPLAIN supports SELECT statements")
    from ..sql.rewrite import casts, jsonb, pgvector, ranking, similarity
    from ..sql.rewrite import params as param_rule

    scope = Scope(session)
    try:
        scope.bind(stmt, params=params)
        pgvector.apply(stmt, scope)
        jsonb.apply(stmt, scope)
        planner.plan(stmt, scope, params)
        similarity.apply(stmt, scope, params)
        ranking.apply(stmt, scope)
        casts.apply(stmt)
        sql, duck_params = param_rule.apply(stmt, params)
        table, _ = session.run_duckdb("EXPLAIN " + sql, duck_params)
        lines = list(scope.plan)
        if table is not None and table.num_columns >= 2:
            for text in table.column(1).to_pylist():
                lines.extend(str(text).splitlines())
    finally:
        scope.close()
    return Result(columns=[Column("QUERY PLAN", ColumnType("text"))],
                  command=f"EXPLAIN {len(lines)}", rowcount=len(lines),
                  _arrow=pa.table({"QUERY PLAN": lines}))
