"""Rewrite rule: PostgreSQL's jsonb key operators -> functions DuckDB runs as macros.

- ``j ? 'k'``             -> ``jsonb_exists(j, 'k')``: a top-level key of an object, or a
  string element of an array (PostgreSQL's rule)
- ``j ?| array['a','b']`` -> ``jsonb_exists_any(j, ...)``
- ``j ?& array['a','b']`` -> ``jsonb_exists_all(j, ...)``
- ``a <@ b`` with a jsonb side -> ``json_contains(b, a)`` (``b @> a``)

``jsonb_exists`` and friends are also PostgreSQL functions that applications call by name
(langchain-postgres' ``$exists`` filter).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb
from postgast import pg_query_pb2 as pb

from .. import ast

if TYPE_CHECKING:
    from ...engine.scan import Scope

MACROS = [
    """CREATE OR REPLACE MACRO jsonb_exists(j, k) AS (
        CASE WHEN j IS NULL OR k IS NULL THEN NULL ELSE CASE json_type(CAST(j AS JSON))
        WHEN 'OBJECT' THEN list_contains(json_keys(CAST(j AS JSON)), CAST(k AS VARCHAR))
        WHEN 'ARRAY' THEN list_contains(
            list_transform(json_extract(CAST(j AS JSON), '$[*]'),
                           lambda e: CASE WHEN json_type(e) = 'VARCHAR'
                                          THEN json_extract_string(e, '$') END),
            CAST(k AS VARCHAR))
        ELSE false END END)""",
    """CREATE OR REPLACE MACRO jsonb_exists_any(j, ks) AS (
        CASE WHEN j IS NULL OR ks IS NULL THEN NULL ELSE
        len(list_filter(CAST(ks AS VARCHAR[]), lambda k: jsonb_exists(j, k))) > 0 END)""",
    """CREATE OR REPLACE MACRO jsonb_exists_all(j, ks) AS (
        CASE WHEN j IS NULL OR ks IS NULL THEN NULL ELSE
        len(list_filter(CAST(ks AS VARCHAR[]), lambda k: NOT jsonb_exists(j, k))) = 0 END)""",
]

_KEY_OPS = {"?": "jsonb_exists", "?|": "jsonb_exists_any", "?&": "jsonb_exists_all"}


def install(cur: duckdb.DuckDBPyConnection) -> None:
    for m in MACROS:
        cur.execute(m)


def _is_json(node: pb.Node, scope: Scope) -> bool:
    k = ast.kind(node)
    if k == "type_cast":
        names = [n.lower() for n in ast.names(node.type_cast.type_name.names)]
        return bool(names) and names[-1] in ("json", "jsonb") and \
            not node.type_cast.type_name.array_bounds
    if k == "column_ref":
        from .similarity import _Resolver

        col = _Resolver(scope).column(node.column_ref)
        return col is not None and col[2].ndim == 0 and col[2].base in ("json", "jsonb")
    return False


def apply(stmt: pb.Node, scope: Scope) -> None:
    """Rewrite the jsonb key operators of ``stmt`` (already bound)."""
    nodes = [m for m in ast.walk(stmt) if isinstance(m, pb.Node)]
    for node in reversed(nodes):  # children first
        if ast.kind(node) != "a_expr" or node.a_expr.kind != pb.AEXPR_OP:
            continue
        op = ast.op_name(node.a_expr)
        left, right = node.a_expr.lexpr, node.a_expr.rexpr
        if op in _KEY_OPS:
            node.CopyFrom(ast.func_call(_KEY_OPS[op], [left, right]))
        elif op == "<@" and (_is_json(left, scope) or _is_json(right, scope)):
            node.CopyFrom(ast.func_call("json_contains", [
                ast.type_cast(right, ["json"]), ast.type_cast(left, ["json"])]))
