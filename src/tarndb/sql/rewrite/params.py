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
from .. import ast


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


def max_param(stmt: pb.Node) -> int:
    return max((m.number for m in ast.walk(stmt) if isinstance(m, pb.ParamRef)), default=0)


def apply(stmt: pb.Node, params: list[Any]) -> tuple[str, list[Any]]:
    nodes = list(ast.walk(stmt))
    as_json = _json_params(nodes)
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
    values = [json_text(params[i - 1]) if i in as_json else adapt_param(params[i - 1])
              for i in used]
    return ast.deparse_node(stmt), values
