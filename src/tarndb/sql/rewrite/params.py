"""Rewrite rule: bind ``$n`` parameters for DuckDB.

DuckDB numbers parameters like Postgres, but takes exactly as many values as the highest
``$n`` in the text, and knows nothing of jsonb: a Python dict or list bound where the SQL casts
to json/jsonb is sent as JSON text, everything else as DuckDB's Python binding expects.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from postgast import pg_query_pb2 as pb

from ...engine.values import adapt_param, json_text
from ...errors import InvalidParameterValue
from .. import arraytext, ast


def json_params(stmt: pb.Node) -> set[int]:
    """Numbers of parameters that the statement casts to json/jsonb."""
    return _json_params(ast.walk(stmt))


def _json_params(nodes: Iterable[Any]) -> set[int]:
    out = set()
    for m in nodes:
        if isinstance(m, pb.TypeCast) and ast.kind(m.arg) == "param_ref":
            names = [n.lower() for n in ast.names(m.type_name.names)]
            if names and names[-1] in ("json", "jsonb") and not m.type_name.array_bounds:
                out.add(m.arg.param_ref.number)
    return out


def _array_operands(nodes: list[Any], params: list[Any]) -> set[int]:
    """Numbers of parameters sent as Postgres array text (``'{r,p}'``, type unknown) where the
    statement needs an array: ``x = ANY($1)`` / ``ALL($1)`` (Postgres infers x's array type;
    psycopg sends a list of str so) and ``$1::t[]``. Such a parameter is bound as the list of
    its elements' text, which an ANY/ALL operand casts to ``VARCHAR[]``."""
    def text_array(ref: Any) -> bool:
        n = ref.number
        return 0 < n <= len(params) and isinstance(params[n - 1], str) \
            and params[n - 1].lstrip().startswith("{")

    out = set()
    for m in nodes:
        if isinstance(m, pb.A_Expr) and m.kind in (pb.AEXPR_OP_ANY, pb.AEXPR_OP_ALL) \
                and ast.kind(m.rexpr) == "param_ref" and text_array(m.rexpr.param_ref):
            out.add(m.rexpr.param_ref.number)
            m.rexpr.CopyFrom(ast.type_cast(m.rexpr, ["varchar"], 1))
        elif isinstance(m, pb.TypeCast) and ast.kind(m.arg) == "param_ref" \
                and m.type_name.array_bounds and text_array(m.arg.param_ref):
            out.add(m.arg.param_ref.number)
    return out


def max_param(stmt: pb.Node) -> int:
    return max((m.number for m in ast.walk(stmt) if isinstance(m, pb.ParamRef)), default=0)


def apply(stmt: pb.Node, params: list[Any]) -> tuple[str, list[Any]]:
    nodes = list(ast.walk(stmt))
    as_json = _json_params(nodes)
    as_array = _array_operands(nodes, params)
    if as_array:
        nodes = list(ast.walk(stmt))
    refs = [m for m in nodes if isinstance(m, pb.ParamRef)]
    n = max((r.number for r in refs), default=0)
    if n > len(params):
        raise InvalidParameterValue(
            f"statement uses ${n} but {len(params)} parameter(s) were given")
    used = sorted({r.number for r in refs})
    if used != list(range(1, len(used) + 1)):
        # DuckDB wants exactly the values the text uses: renumber densely when rewrites
        # (or the client) left gaps, e.g. $1 folded into a constant.
        dense = {old: i + 1 for i, old in enumerate(used)}
        for r in refs:
            r.number = dense[r.number]
    values = [json_text(params[i - 1]) if i in as_json
              else arraytext.parse_array_text(params[i - 1], str) if i in as_array
              else adapt_param(params[i - 1])
              for i in used]
    return ast.deparse_node(stmt), values
