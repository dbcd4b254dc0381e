"""Rewrite rule: pgvector's ``sparsevec`` operators, functions and casts -> the sparse
functions of :mod:`tarndb.engine.sparse_ops`.

A ``sparsevec`` is a DuckDB struct (engine/sparsevec.py), so the dense macros of
:mod:`.pgvector` cannot compute on it; PostgreSQL picks pgvector's sparsevec functions by the
operands' type, and so does this rule, from what it knows before DuckDB runs:

- an operand is sparse when it is a sparsevec column (of the sparse layout), a cast to
  ``sparsevec`` or a call that returns one (``l2_normalize`` of one, the conversions below);
- ``a <-> b``, ``<=>``, ``<#>``, ``<+>`` with a sparse side, and ``l2_distance``,
  ``cosine_distance``, ``inner_product``, ``l1_distance``, ``l2_norm``, ``l2_normalize`` of
  sparse arguments call ``sparsevec_*``; the other side takes the sparse type as
  PostgreSQL's operator resolution gives a literal or parameter the column's type;
- a value becomes sparse by what it is: pgvector's sparse text (``sparsevec_in``), a
  sparsevec parameter (already sparse), a ``vector`` / ``real[]`` (its non-zeros);
- ``::vector`` / ``::halfvec`` of a sparse value densify it (at most 16,000 dimensions, as
  pgvector's vector), ``::text`` prints pgvector's text form, ``::real[]`` is refused as
  pgvector has no such cast.

A column of the layout before sparse storage (dense ``float4[]``, ``ndim`` 1) keeps the dense
rules of :mod:`.pgvector`; a sparse value compared with it is densified.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from postgast import pg_query_pb2 as pb

from ...engine import sparsevec as sv
from .. import ast

if TYPE_CHECKING:
    from ...engine.scan import Scope

MACROS = [
    # a value already of the struct's shape (a parameter DuckDB typed from a dict, a row read
    # back): the exact struct type
    f"CREATE OR REPLACE MACRO sparsevec_param(x) AS CAST(x AS {sv.DUCKDB})",
    # sparsevec(n): the dimension checked as pgvector's typmod is
    """CREATE OR REPLACE MACRO sparsevec_typmod(x, n) AS (
        CASE WHEN x IS NULL THEN x WHEN x.dim <> n THEN error('expected ' || n ||
        ' dimensions, not ' || x.dim) ELSE x END)""",
]

#: calls whose result is a sparsevec
PRODUCERS = frozenset(
    {
        "sparsevec_in",
        "sparsevec_param",
        "sparsevec_typmod",
        "sparsevec_from_vector",
        "sparsevec_l2_normalize",
    }
)

OPERATORS = {
    "<->": "sparsevec_l2_distance",
    "<=>": "sparsevec_cosine_distance",
    "<+>": "sparsevec_l1_distance",
    "<#>": "sparsevec_negative_inner_product",
}
FUNCTIONS = {
    "l2_distance": "sparsevec_l2_distance",
    "cosine_distance": "sparsevec_cosine_distance",
    "inner_product": "sparsevec_inner_product",
    "l1_distance": "sparsevec_l1_distance",
    "l2_norm": "sparsevec_l2_norm",
    "l2_normalize": "sparsevec_l2_normalize",
}


#: pgvector's functions that have no sparsevec version (42883 on one, as in PostgreSQL)
_DENSE_ONLY = frozenset({"vector_dims", "vector_norm", "binary_quantize", "subvector"})


def _column_type(node: pb.Node, scope: Scope) -> Any:
    if ast.kind(node) != "column_ref":
        return None
    from .similarity import _Resolver

    col = _Resolver(scope).column(node.column_ref)
    return col[2] if col is not None else None


def _cast_names(node: pb.Node) -> list[str]:
    if ast.kind(node) != "type_cast":
        return []
    return [n.lower() for n in ast.names(node.type_cast.type_name.names)]


def is_sparse(node: pb.Node, scope: Scope) -> bool:
    """Whether ``node`` (rewritten children first) is a sparse vector."""
    k = ast.kind(node)
    if k == "column_ref":
        t = _column_type(node, scope)
        return t is not None and t.is_sparse
    if k == "func_call":
        return ast.func_name(node.func_call) in PRODUCERS
    if k == "param_ref":  # a parameter the client sent as a sparsevec
        return isinstance(_param_value(node, scope), sv.SparseVec)
    if k == "type_cast":
        names = _cast_names(node)
        return (
            bool(names) and names[-1] == "sparsevec" and not node.type_cast.type_name.array_bounds
        )
    return False


def _param_value(node: pb.Node, scope: Scope) -> Any:
    params = getattr(scope, "_params", None)
    n = node.param_ref.number
    return params[n - 1] if params is not None and 0 < n <= len(params) else None


def _is_text(node: pb.Node, scope: Scope) -> bool:
    k = ast.kind(node)
    if k == "a_const":
        return isinstance(ast.const_value(node), str)
    if k == "param_ref":
        return isinstance(_param_value(node, scope), str)
    if k == "func_call":  # a ``::text`` of a vector already rewritten (pgvector.py)
        return ast.func_name(node.func_call) in (
            "sparsevec_out",
            "sparsevec_dense_out",
            "vector_out",
        )
    if k == "type_cast":
        names = _cast_names(node)
        return (
            bool(names)
            and names[-1] in ("text", "varchar")
            and not node.type_cast.type_name.array_bounds
        )
    t = _column_type(node, scope)
    return t is not None and not t.ndim and t.base in ("text", "varchar", "bpchar")


def to_sparse(node: pb.Node, scope: Scope) -> pb.Node:
    """``node`` as a sparse vector (see the module doc)."""
    if is_sparse(node, scope) and ast.kind(node) != "param_ref":
        return node
    arg = pb.Node()
    arg.CopyFrom(node)
    if _is_text(node, scope):
        return ast.func_call("sparsevec_in", [ast.type_cast(arg, ["varchar"])])
    if ast.kind(node) == "param_ref":
        value = _param_value(node, scope)
        if value is None or isinstance(value, (sv.SparseVec, dict)):
            return ast.func_call("sparsevec_param", [arg])
    return ast.func_call("sparsevec_from_vector", [ast.type_cast(arg, ["float4"], 1)])


def _with_typmod(node: pb.Node, dim: int | None) -> pb.Node:
    if dim is None:
        return node
    return ast.func_call("sparsevec_typmod", [node, ast.int_const(dim)])


def dense_of(node: pb.Node, scope: Scope) -> pb.Node:
    """A sparse value (or sparse text, a parameter) as a dense ``FLOAT[]``, for a column of
    the dense layout."""
    return ast.type_cast(
        ast.func_call("sparsevec_to_dense", [to_sparse(node, scope)]), ["float4"], 1
    )


def rewrite_cast(node: pb.Node, scope: Scope) -> bool:
    """Casts to sparsevec and from a sparse value; True when ``node`` was rewritten."""
    from ...engine.types import resolve_type

    tc = node.type_cast
    names = _cast_names(node)
    if not names:
        return False
    target = names[-1]
    if target == "sparsevec" and not tc.type_name.array_bounds:
        mods = [ast.const_value(m) for m in tc.type_name.typmods if ast.kind(m) == "a_const"]
        t = resolve_type(names, 0, tuple(int(m) for m in mods if isinstance(m, int)))
        node.CopyFrom(_with_typmod(to_sparse(tc.arg, scope), t.dim))
        return True
    if not is_sparse(tc.arg, scope):
        return False
    arg = pb.Node()
    arg.CopyFrom(tc.arg)
    if tc.type_name.array_bounds or target not in ("vector", "halfvec", "text", "varchar"):
        # pgvector casts a sparsevec only to vector, halfvec and text (not to real[])
        from ...errors import CannotCoerce, TarnError

        try:
            shown = resolve_type(names, len(tc.type_name.array_bounds)).pg_name
        except TarnError:
            shown = target
        raise CannotCoerce(f"cannot cast type sparsevec to {shown}")
    if target in ("vector", "halfvec"):
        tc.arg.CopyFrom(ast.func_call("sparsevec_to_vector", [arg]))
        return False  # the cast to vector(n) / halfvec(n) itself is pgvector.py's
    node.CopyFrom(ast.func_call("sparsevec_out", [arg]))  # text / varchar
    return True


def rewrite_operator(node: pb.Node, scope: Scope) -> bool:
    """``a <op> b`` with a sparse side -> ``sparsevec_*(a, b)``."""
    expr = node.a_expr
    op = ast.op_name(expr)
    if op not in OPERATORS or not expr.HasField("lexpr") or not expr.HasField("rexpr"):
        return False
    left, right = expr.lexpr, expr.rexpr
    if not (is_sparse(left, scope) or is_sparse(right, scope)):
        return False
    node.CopyFrom(ast.func_call(OPERATORS[op], [to_sparse(left, scope), to_sparse(right, scope)]))
    return True


def rewrite_function(node: pb.Node, scope: Scope) -> bool:
    """pgvector's functions of sparse arguments -> their sparse versions."""
    fc = node.func_call
    name = ast.func_name(fc)
    if name in _DENSE_ONLY and fc.args and is_sparse(fc.args[0], scope):
        from ...errors import UndefinedFunction

        rest = ", ".join(["integer"] * (len(fc.args) - 1))
        raise UndefinedFunction(
            f"function {name}(sparsevec{', ' + rest if rest else ''}) does not exist"
        )
    if (
        name not in FUNCTIONS
        or not fc.args
        or len(fc.args) != (1 if name.startswith("l2_norm") else 2)
        or not any(is_sparse(a, scope) for a in fc.args)
    ):
        return False
    args = [to_sparse(a, scope) for a in fc.args]
    node.CopyFrom(ast.func_call(FUNCTIONS[name], args))
    return True
