"""Rewrite rule: pgvector's operators -> its distance functions, which DuckDB runs as macros.

- ``a <-> b``  L2 distance                 -> ``l2_distance(a, b)``
- ``a <=> b``  cosine distance (1 - cos)    -> ``cosine_distance(a, b)``
- ``a <+> b``  L1 distance                 -> ``l1_distance(a, b)``
- ``a <#> b``  negative inner product      -> ``(- inner_product(a, b))``, only when a side is a
  ``vector``: on ``float4[]`` ``<#>`` keeps pg_deeplake's similarity meaning
  (:mod:`.similarity`).

It runs before the ranking planner, which recognises ``ORDER BY cosine_distance(col, $1)
LIMIT k`` and answers it from the column's vector index (engine/planner.py). The functions
(``l2_distance``, ``cosine_distance``, ``inner_product``, ``l1_distance``, ``vector_dims``,
``vector_norm``, ``l2_normalize``) are DuckDB macros over ``FLOAT[]`` with pgvector's
results: double precision, NaN cosine distance for a zero vector, an error naming both
dimensions when they differ.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import duckdb
from postgast import pg_query_pb2 as pb

from ...engine.types import VECTOR, ColumnType
from .. import ast

if TYPE_CHECKING:
    from ...engine.scan import Scope

_SAME_DIMS = ("CASE WHEN a IS NULL OR b IS NULL THEN NULL "
              "WHEN len(CAST(a AS FLOAT[])) <> len(CAST(b AS FLOAT[])) THEN "
              "error('different vector dimensions ' || len(CAST(a AS FLOAT[])) || ' and ' || "
              "len(CAST(b AS FLOAT[]))) ")

MACROS = [
    f"""CREATE OR REPLACE MACRO l2_distance(a, b) AS ({_SAME_DIMS}
        ELSE CAST(list_distance(CAST(a AS FLOAT[]), CAST(b AS FLOAT[])) AS DOUBLE) END)""",
    f"""CREATE OR REPLACE MACRO cosine_distance(a, b) AS ({_SAME_DIMS}
        ELSE CAST(list_cosine_distance(CAST(a AS FLOAT[]), CAST(b AS FLOAT[])) AS DOUBLE)
        END)""",
    f"""CREATE OR REPLACE MACRO inner_product(a, b) AS ({_SAME_DIMS}
        ELSE CAST(list_inner_product(CAST(a AS FLOAT[]), CAST(b AS FLOAT[])) AS DOUBLE) END)""",
    f"""CREATE OR REPLACE MACRO l1_distance(a, b) AS ({_SAME_DIMS}
        ELSE CAST(list_sum(list_transform(list_zip(CAST(a AS FLOAT[]), CAST(b AS FLOAT[])),
                                          lambda p: abs(p[1] - p[2]))) AS DOUBLE) END)""",
    # vector_out: pgvector's text form ('[1,2.5]'), for ``vector::text``
    r"""CREATE OR REPLACE MACRO vector_out(a) AS ('[' || array_to_string(list_transform(
        CAST(a AS FLOAT[]), lambda x: regexp_replace(CAST(x AS VARCHAR), '\.0$', '')), ',')
        || ']')""",
    # sum / avg of vectors (pgvector's aggregates): element-wise, NULLs skipped, NULL when
    # no row has a vector
    """CREATE OR REPLACE MACRO vector_sum(a) AS (CASE WHEN count(a) = 0 THEN NULL ELSE
        list_reduce(list_filter(list(CAST(a AS FLOAT[])), lambda v: v IS NOT NULL),
                    lambda x, y: CAST(list_transform(list_zip(x, y), lambda p: p[1] + p[2])
                                      AS FLOAT[])) END)""",
    """CREATE OR REPLACE MACRO vector_avg(a) AS (CASE WHEN count(a) = 0 THEN NULL ELSE
        CAST(list_transform(vector_sum(a), lambda s: s / count(a)) AS FLOAT[]) END)""",
    "CREATE OR REPLACE MACRO vector_dims(a) AS CAST(len(CAST(a AS FLOAT[])) AS INTEGER)",
    """CREATE OR REPLACE MACRO vector_norm(a) AS
        CAST(sqrt(list_inner_product(CAST(a AS FLOAT[]), CAST(a AS FLOAT[]))) AS DOUBLE)""",
    """CREATE OR REPLACE MACRO l2_normalize(a) AS (
        CASE WHEN list_inner_product(CAST(a AS FLOAT[]), CAST(a AS FLOAT[])) = 0
        THEN CAST(a AS FLOAT[])
        ELSE CAST(list_transform(CAST(a AS FLOAT[]), lambda x: x / sqrt(list_inner_product(
            CAST(a AS FLOAT[]), CAST(a AS FLOAT[])))) AS FLOAT[]) END)""",
]

OPERATORS = {"<->": "l2_distance", "<=>": "cosine_distance", "<+>": "l1_distance"}


def install(cur: duckdb.DuckDBPyConnection) -> None:
    for m in MACROS:
        cur.execute(m)


def _vector_dim(node: pb.Node, scope: Scope) -> int | None:
    """The declared dimension of a vector column operand (None when unknown)."""
    if ast.kind(node) != "column_ref":
        return None
    from .similarity import _Resolver

    col = _Resolver(scope).column(node.column_ref)
    return col[2].dim if col is not None else None


def _aggregate(node: pb.Node, scope: Scope) -> pb.Node | None:
    """``avg(v)`` / ``sum(v)`` of a vector: the element-wise macros, typed vector(n)."""
    fc = node.func_call
    name = ast.func_name(fc)
    if name not in ("avg", "sum") or len(fc.args) != 1 or fc.agg_star or fc.agg_distinct \
            or fc.HasField("over") or not _is_vector(fc.args[0], scope):
        return None
    call = pb.Node()
    call.CopyFrom(node)
    del call.func_call.funcname[:]
    call.func_call.funcname.add().string.sval = f"vector_{name}"
    out = pb.Node()
    out.type_cast.arg.CopyFrom(call)
    out.type_cast.type_name.names.add().string.sval = "vector"
    dim = _vector_dim(fc.args[0], scope)
    if dim is not None:
        out.type_cast.type_name.typmods.add().CopyFrom(ast.int_const(dim))
    out.type_cast.type_name.typemod = -1
    return out


def _is_vector(node: pb.Node, scope: Scope) -> bool:
    """Whether an operand is of type ``vector``: a vector column or a ``::vector`` cast."""
    k = ast.kind(node)
    if k == "type_cast":
        names = [n.lower() for n in ast.names(node.type_cast.type_name.names)]
        return bool(names) and names[-1] == "vector" and \
            not node.type_cast.type_name.array_bounds
    if k == "column_ref":
        from .similarity import _Resolver

        col = _Resolver(scope).column(node.column_ref)
        return col is not None and col[2].is_vector
    return False


def result_types(stmt: pb.Node, scope: Scope) -> dict[int, ColumnType]:
    """Result columns that are a ``vector`` without a dimension, by position.

    DuckDB computes on those as ``FLOAT[]``, which reads back as ``real[]``; a select-list
    entry that is such a column (or a ``::vector`` cast) is reported as ``vector`` instead, so
    drivers decode it as pgvector's type. Call after binding, before the rewrites.
    """
    if ast.kind(stmt) != "select_stmt" or stmt.select_stmt.op != pb.SETOP_NONE:
        return {}
    from .similarity import _Resolver

    resolver = _Resolver(scope)
    out: dict[int, ColumnType] = {}
    i = 0
    for t in stmt.select_stmt.target_list:
        val = t.res_target.val
        k = ast.kind(val)
        if k == "column_ref" and ast.kind(val.column_ref.fields[-1]) == "a_star":
            parts = ast.names(val.column_ref.fields)
            infos = [scope.tables[parts[-2]]] if len(parts) >= 2 and \
                parts[-2] in scope.tables else list(scope.tables.values())
            if len(infos) != 1:
                return out  # positions past a multi-table * are not known
            for c in infos[0].columns:
                if c.type.is_vector and c.type.dim is None:
                    out[i] = c.type
                i += 1
            continue
        if k == "column_ref":
            col = resolver.column(val.column_ref)
            if col is not None and col[2].is_vector and col[2].dim is None:
                out[i] = col[2]
        elif k == "type_cast" and _is_vector(val, scope) and \
                not val.type_cast.type_name.typmods:
            out[i] = ColumnType("float4", 1, VECTOR)
        i += 1
    return out


def apply(stmt: pb.Node, scope: Scope) -> None:
    """Rewrite pgvector's operators in ``stmt`` (already bound) into function calls."""
    nodes = [m for m in ast.walk(stmt) if isinstance(m, pb.Node)]
    for node in reversed(nodes):  # children first
        if ast.kind(node) == "func_call":
            agg = _aggregate(node, scope)
            if agg is not None:
                node.CopyFrom(agg)
            continue
        if ast.kind(node) == "type_cast" and _is_vector(node.type_cast.arg, scope):
            names = [n.lower() for n in ast.names(node.type_cast.type_name.names)]
            if names and names[-1] in ("text", "varchar") and \
                    not node.type_cast.type_name.array_bounds:
                node.CopyFrom(ast.func_call("vector_out", [node.type_cast.arg]))
            continue
        if ast.kind(node) != "a_expr" or node.a_expr.kind != pb.AEXPR_OP:
            continue
        op = ast.op_name(node.a_expr)
        left, right = node.a_expr.lexpr, node.a_expr.rexpr
        if op in OPERATORS:
            node.CopyFrom(ast.func_call(OPERATORS[op], [left, right]))
        elif op == "<#>" and (_is_vector(left, scope) or _is_vector(right, scope)):
            neg = pb.Node()
            neg.a_expr.kind = pb.AEXPR_OP
            neg.a_expr.name.add().string.sval = "-"
            neg.a_expr.rexpr.CopyFrom(ast.func_call("inner_product", [left, right]))
            node.CopyFrom(neg)
