"""Rewrite rule: an ORDER BY on a ``<#>`` score is a ranking request.

``<#>`` yields a similarity, so the best matches are the highest scores. pg_deeplake's index
path returns the best matches first whichever direction is written, and the seeds write both
``ORDER BY score DESC`` and ``ORDER BY score ASC``; tarndb does the same, sorts NULL scores
(rows without an embedding) last, and says so in a NOTICE when ASC was written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from postgast import pg_query_pb2 as pb

from .. import ast

if TYPE_CHECKING:
    from ...engine.scan import Scope

SCORE_FUNCTIONS = ("__sim", "tarn_cosine", "tarn_maxsim")

NOTICE = ("ORDER BY on a <#> similarity returns the best matches first; "
          "ASC was treated as DESC")


def is_score(node: pb.Node) -> bool:
    return ast.kind(node) == "func_call" and \
        ast.func_name(node.func_call).startswith(SCORE_FUNCTIONS)


def _sort_target(sel: pb.SelectStmt, expr: pb.Node) -> pb.Node | None:
    """The expression an ORDER BY item sorts on, following output aliases and ordinals."""
    if is_score(expr):
        return expr
    if ast.kind(expr) == "column_ref":
        parts = ast.names(expr.column_ref.fields)
        if len(parts) == 1:
            for t in sel.target_list:
                if t.res_target.name == parts[0]:
                    return t.res_target.val
    if ast.kind(expr) == "a_const" and isinstance(ast.const_value(expr), int):
        i = ast.const_value(expr) - 1
        if 0 <= i < len(sel.target_list):
            return sel.target_list[i].res_target.val
    return None


def apply(stmt: pb.Node, scope: Scope | None = None) -> list[str]:
    notices = []
    for m in ast.walk(stmt):
        if not isinstance(m, pb.SelectStmt):
            continue
        for item in m.sort_clause:
            sb = item.sort_by
            target = _sort_target(m, sb.node)
            if target is None or not is_score(target):
                continue
            if sb.sortby_dir == pb.SORTBY_ASC and NOTICE not in notices:
                notices.append(NOTICE)
            sb.sortby_dir = pb.SORTBY_DESC
            sb.sortby_nulls = pb.SORTBY_NULLS_LAST
    return notices
