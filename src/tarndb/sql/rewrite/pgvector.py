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
from . import sparsevec as sparse_rule

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

_SAME_BITS = ("CASE WHEN a IS NULL OR b IS NULL THEN NULL "
              "WHEN length(CAST(a AS VARCHAR)) <> length(CAST(b AS VARCHAR)) THEN "
              "error('different bit lengths ' || length(CAST(a AS VARCHAR)) || ' and ' || "
              "length(CAST(b AS VARCHAR))) ")

MACROS += [
    # bit(n) values are stored as their text ('0101'); DuckDB's BIT computes on them.
    f"""CREATE OR REPLACE MACRO hamming_distance(a, b) AS ({_SAME_BITS}
        ELSE CAST(bit_count(xor(CAST(CAST(a AS VARCHAR) AS BIT), CAST(CAST(b AS VARCHAR) AS BIT)))
                  AS DOUBLE) END)""",
    f"""CREATE OR REPLACE MACRO jaccard_distance(a, b) AS ({_SAME_BITS}
        WHEN bit_count(CAST(CAST(a AS VARCHAR) AS BIT) & CAST(CAST(b AS VARCHAR) AS BIT)) = 0
        THEN CAST(1 AS DOUBLE)
        ELSE 1 - bit_count(CAST(CAST(a AS VARCHAR) AS BIT) & CAST(CAST(b AS VARCHAR) AS BIT))
             / CAST(bit_count(CAST(CAST(a AS VARCHAR) AS BIT) | CAST(CAST(b AS VARCHAR) AS BIT))
                    AS DOUBLE) END)""",
    # binary_quantize(v): bit i is set where v[i] > 0
    """CREATE OR REPLACE MACRO binary_quantize(a) AS array_to_string(list_transform(
        CAST(a AS FLOAT[]), lambda x: CASE WHEN x > 0 THEN '1' ELSE '0' END), '')""",
    """CREATE OR REPLACE MACRO subvector(a, start, count) AS (
        CASE WHEN count < 1 THEN error('vector must have at least 1 dimension')
        ELSE list_slice(CAST(a AS FLOAT[]), greatest(start, 1), start + count - 1) END)""",
    # a sparsevec column stored densely (the layout before sparse storage): values for it
    # come as sparse values (sparsevec.py) and are densified by sparsevec_to_dense
]

OPERATORS = {"<->": "l2_distance", "<=>": "cosine_distance", "<+>": "l1_distance",
             "<~>": "hamming_distance", "<%>": "jaccard_distance"}

#: the pgvector types computed on as FLOAT[] (halfvec and sparsevec are vectors here)
_VECTOR_NAMES = ("vector", "halfvec", "sparsevec")


def install(cur: duckdb.DuckDBPyConnection) -> None:
    from typing import cast as _cast

    from ...engine import vectors
    from ...engine.udf import register_arrow

    floats = duckdb.list_type(duckdb.sqltype("FLOAT"))
    text = duckdb.sqltype("VARCHAR")
    for name, fn, params, returns in (
            ("halfvec_round", vectors.halfvec_round_arrow, [floats], floats),
            ("sparsevec_dense_in", vectors.sparsevec_in_arrow, [text], floats),
            ("sparsevec_dense_out", vectors.sparsevec_out_arrow, [floats], text)):
        try:
            register_arrow(_cast(duckdb.DuckDBPyConnection, cur), name, fn, params, returns)
        except Exception:  # noqa: BLE001 - already registered on this connection
            pass
    from ...engine import sparse_ops

    sparse_ops.install(cur)
    for m in MACROS + sparse_rule.MACROS:
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
    if sparse_rule.is_sparse(fc.args[0], scope):  # pgvector has no sparsevec aggregates
        from ...errors import UndefinedFunction

        raise UndefinedFunction(f"function {name}(sparsevec) does not exist")
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


def _cast_target(node: pb.Node) -> str | None:
    """``vector``, ``halfvec`` or ``sparsevec`` when ``node`` casts to one of them."""
    if ast.kind(node) != "type_cast" or node.type_cast.type_name.array_bounds:
        return None
    names = [n.lower() for n in ast.names(node.type_cast.type_name.names)]
    return names[-1] if names and names[-1] in _VECTOR_NAMES else None


def _cast_type(node: pb.Node) -> ColumnType:
    from ...engine.types import resolve_type

    tn = node.type_cast.type_name
    mods = [ast.const_value(m) for m in tn.typmods if ast.kind(m) == "a_const"]
    return resolve_type([n.lower() for n in ast.names(tn.names)], 0,
                        tuple(int(m) for m in mods if isinstance(m, int)))


def _is_vector(node: pb.Node, scope: Scope) -> bool:
    """Whether an operand is of type ``vector``: a vector column or a ``::vector`` cast."""
    k = ast.kind(node)
    if k == "type_cast":
        return _cast_target(node) is not None
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
                if c.type.is_vector and (c.type.dim is None or c.type.domain != VECTOR):
                    out[i] = c.type
                i += 1
            continue
        if k == "column_ref":
            col = resolver.column(val.column_ref)
            if col is not None and col[2].is_vector and (col[2].dim is None
                                                          or col[2].domain != VECTOR):
                out[i] = col[2]
        elif k == "type_cast" and _cast_target(val) is not None:
            t = _cast_type(val)
            if t.dim is None or t.domain != VECTOR:
                out[i] = t
        i += 1
    return out


def _column_type(node: pb.Node, scope: Scope) -> ColumnType | None:
    if ast.kind(node) == "column_ref":
        from .similarity import _Resolver

        col = _Resolver(scope).column(node.column_ref)
        return col[2] if col is not None else None
    if _cast_target(node) is not None:
        return _cast_type(node)
    return None


def _text_of_vector(node: pb.Node, scope: Scope) -> bool:
    """``v::text`` of a vector, halfvec or sparsevec -> its pgvector text form."""
    from ...engine.types import SPARSEVEC

    if ast.kind(node) != "type_cast":
        return False
    tc = node.type_cast
    names = [n.lower() for n in ast.names(tc.type_name.names)]
    if not names or names[-1] not in ("text", "varchar") or tc.type_name.array_bounds:
        return False
    source = _column_type(tc.arg, scope)
    if source is None or not source.is_vector:
        return False
    if source.is_sparse:
        node.CopyFrom(ast.func_call("sparsevec_out", [tc.arg]))
        return True
    fn = "sparsevec_dense_out" if source.domain == SPARSEVEC else "vector_out"
    node.CopyFrom(ast.func_call(fn, [ast.type_cast(tc.arg, ["float4"], 1)]))
    return True


def _rewrite_cast(node: pb.Node, scope: Scope) -> None:
    """Casts to halfvec / sparsevec (from text, vector or real[])."""
    from ...engine.types import HALFVEC, SPARSEVEC

    tc = node.type_cast
    target = _cast_target(node)
    if target is None or target == "vector":
        return
    t = _cast_type(node)
    if t.domain == SPARSEVEC:
        return  # sparse: sparsevec.rewrite_cast
    arg = pb.Node()
    arg.CopyFrom(tc.arg)
    as_vector = pb.Node()
    as_vector.CopyFrom(node)
    as_vector.type_cast.arg.CopyFrom(arg)
    del as_vector.type_cast.type_name.names[:]
    as_vector.type_cast.type_name.names.add().string.sval = "vector"
    if t.domain == HALFVEC:
        node.CopyFrom(ast.func_call("halfvec_round", [as_vector]))
        if t.dim is not None:  # keep the fixed size (FLOAT[n]) that checks the dimension
            node.CopyFrom(ast.type_cast(node, ["vector"]))
            node.type_cast.type_name.typmods.add().CopyFrom(ast.int_const(t.dim))
    else:
        node.CopyFrom(as_vector)


def _type_operands(expr: pb.A_Expr, scope: Scope) -> None:
    """A literal or parameter compared with a halfvec or sparsevec column takes the column's
    type, as PostgreSQL resolves the operator: ``s <-> '{1:1}/5'`` reads sparse text,
    ``h <-> '[...]'`` rounds to half precision."""
    from ...engine.types import HALFVEC, SPARSEVEC

    for a, b in ((expr.lexpr, expr.rexpr), (expr.rexpr, expr.lexpr)):
        t = _column_type(a, scope)
        if t is None or t.domain not in (HALFVEC, SPARSEVEC) or \
                ast.kind(b) not in ("a_const", "param_ref"):
            continue
        wrapped = pb.Node()
        wrapped.CopyFrom(b)
        if t.domain == SPARSEVEC:  # a column of the dense layout (sparse ones: sparsevec.py)
            b.CopyFrom(sparse_rule.dense_of(wrapped, scope))
        else:
            b.CopyFrom(ast.func_call("halfvec_round", [ast.type_cast(wrapped, ["float4"], 1)]))


def apply(stmt: pb.Node, scope: Scope) -> None:
    """Rewrite pgvector's operators in ``stmt`` (already bound) into function calls."""
    nodes = [m for m in ast.walk(stmt) if isinstance(m, pb.Node)]
    # ``x::halfvec::text``: the text form is chosen by the inner type, so casts to text go
    # first (parents first), while their operands still say what they are.
    if sum(_text_of_vector(n, scope) for n in nodes):  # every one: no short cut
        nodes = [m for m in ast.walk(stmt) if isinstance(m, pb.Node)]
    for node in reversed(nodes):  # children first
        if ast.kind(node) == "func_call":
            if sparse_rule.rewrite_function(node, scope):
                continue
            agg = _aggregate(node, scope)
            if agg is not None:
                node.CopyFrom(agg)
            continue
        if ast.kind(node) == "type_cast":
            if sparse_rule.rewrite_cast(node, scope):
                continue
            if not _text_of_vector(node, scope):  # avg(v)::text: known once rewritten
                _rewrite_cast(node, scope)
            continue
        if ast.kind(node) != "a_expr" or node.a_expr.kind != pb.AEXPR_OP:
            continue
        if sparse_rule.rewrite_operator(node, scope):
            continue
        op = ast.op_name(node.a_expr)
        left, right = node.a_expr.lexpr, node.a_expr.rexpr
        if op in OPERATORS or op == "<#>":
            _type_operands(node.a_expr, scope)
            left, right = node.a_expr.lexpr, node.a_expr.rexpr
        if op in OPERATORS:
            node.CopyFrom(ast.func_call(OPERATORS[op], [left, right]))
        elif op == "<#>" and (_is_vector(left, scope) or _is_vector(right, scope)):
            neg = pb.Node()
            neg.a_expr.kind = pb.AEXPR_OP
            neg.a_expr.name.add().string.sval = "-"
            neg.a_expr.rexpr.CopyFrom(ast.func_call("inner_product", [left, right]))
            node.CopyFrom(neg)
