"""Rewrite rule: Postgres type names in casts -> the DuckDB types tarndb computes with.

``'x'::jsonb`` -> JSON, ``::float4[][]`` -> FLOAT[][], ``::embedding`` -> FLOAT[],
``::file_id`` -> UUID, unconstrained ``numeric`` -> DECIMAL(38,10) (DuckDB's default scale of 3
would silently round).
"""

from __future__ import annotations

from typing import Any

from postgast import pg_query_pb2 as pb

from ...engine.types import DOMAINS, resolve_type
from ...errors import UndefinedObject
from .. import arraytext, ast

# Types DuckDB does not know but the catalog views define for pg_catalog queries.
_PASS_THROUGH = {"regclass", "regtype", "regproc", "regnamespace", "oid", "name", "char",
                 "text", "int2vector", "oidvector", "regprocedure", "regoper", "regrole"}


def duckdb_type_names(type_name: Any) -> tuple[list[str], list[int], int] | None:
    """DuckDB spelling for a TypeName: (names, typmods, array dims), or None to leave it."""
    names = [n.lower() for n in ast.names(type_name.names)]
    plain = [n for n in names if n != "pg_catalog"]
    if not plain:
        return None
    ndim = len(type_name.array_bounds)
    typmods = [ast.const_value(m) for m in type_name.typmods
               if ast.kind(m) == "a_const"]
    name = " ".join(plain)
    if name in _PASS_THROUGH and ndim == 0:
        return None
    try:
        ct = resolve_type(plain, ndim, tuple(int(t) for t in typmods if isinstance(t, int)))
    except UndefinedObject:
        if name in DOMAINS:
            raise
        return None
    duck = ct.duckdb
    dims = 0
    while duck.endswith("[]"):
        duck, dims = duck[:-2], dims + 1
    if duck.startswith("DECIMAL("):
        p, s = duck[len("DECIMAL("):-1].split(",")
        return ["decimal"], [int(p), int(s)], dims
    return [duck.lower()], [], dims


def _vector_dim(type_name: Any) -> int | None:
    """-1 for ``vector``, n for ``vector(n)``, None for other types."""
    names = [n.lower() for n in ast.names(type_name.names)
             if n.lower() not in ("pg_catalog", "public")]
    if names != ["vector"] or type_name.array_bounds:
        return None
    mods = [ast.const_value(m) for m in type_name.typmods if ast.kind(m) == "a_const"]
    ct = resolve_type(names, 0, tuple(int(m) for m in mods if isinstance(m, int)))
    return ct.dim if ct.dim is not None else -1


def rewrite_type_name(type_name: Any) -> None:
    vdim = _vector_dim(type_name)
    if vdim is not None:  # vector(n) -> FLOAT[n] (fixed size), vector -> FLOAT[]
        del type_name.names[:]
        type_name.names.add().string.sval = "float"
        del type_name.typmods[:]
        del type_name.array_bounds[:]
        type_name.array_bounds.add().integer.ival = vdim
        return
    mapped = duckdb_type_names(type_name)
    if mapped is None:
        return
    names, typmods, dims = mapped
    del type_name.names[:]
    for n in names:
        type_name.names.add().string.sval = n
    del type_name.typmods[:]
    for m in typmods:
        type_name.typmods.add().CopyFrom(ast.int_const(m))
    del type_name.array_bounds[:]
    for _ in range(dims):
        type_name.array_bounds.add().integer.ival = -1


def _bytea_literal(node: pb.Node) -> None:
    """``'\\x00ff'::bytea`` is hex in Postgres; DuckDB would read the escapes as text."""
    tc = node.type_cast
    if ast.kind(tc.arg) != "a_const":
        return
    value = ast.const_value(tc.arg)
    if isinstance(value, str) and value.startswith("\\x"):
        node.CopyFrom(ast.func_call("unhex", [ast.string_const(value[2:])]))


def _array_literal(node: pb.Node) -> None:
    """``'{1,2}'::float4[]``: Postgres array text, in the syntax DuckDB's cast reads."""
    arg = node.type_cast.arg
    if ast.kind(arg) == "a_const" and arg.a_const.WhichOneof("val") == "sval":
        arg.a_const.sval.sval = arraytext.to_duckdb_text(arg.a_const.sval.sval)


def _any_literal(expr: Any) -> None:
    """``x = ANY('{r,p}')``: Postgres reads the untyped literal as an array of x's type; here
    it becomes a ``VARCHAR[]`` (DuckDB compares it with text, and asks for a cast
    otherwise)."""
    r = expr.rexpr
    if ast.kind(r) == "a_const" and r.a_const.WhichOneof("val") == "sval" \
            and r.a_const.sval.sval.lstrip().startswith("{"):
        text = arraytext.to_duckdb_text(r.a_const.sval.sval)
        expr.rexpr.CopyFrom(ast.type_cast(ast.string_const(text), ["varchar"], 1))


def apply(stmt: pb.Node) -> None:
    """Rewrite every cast's type in place."""
    for m in list(ast.walk(stmt)):
        if isinstance(m, pb.A_Expr) and m.kind in (pb.AEXPR_OP_ANY, pb.AEXPR_OP_ALL):
            _any_literal(m)
    for node in list(ast.walk_nodes(stmt)):
        if ast.kind(node) != "type_cast" or not node.type_cast.HasField("type_name"):
            continue
        if node.type_cast.type_name.array_bounds:
            _array_literal(node)
        names = [n.lower() for n in ast.names(node.type_cast.type_name.names)]
        if names and names[-1] == "bytea" and not node.type_cast.type_name.array_bounds:
            _bytea_literal(node)
            if ast.kind(node) != "type_cast":
                continue
        rewrite_type_name(node.type_cast.type_name)
