"""Rewrite rule: ``*`` over ``JOIN ... USING (...)`` or ``NATURAL JOIN`` in PostgreSQL's
column order.

PostgreSQL's join of T1 and T2 ``USING (a, b)`` has the columns a, b (in the listed order;
for NATURAL, the common columns in T1's order), then T1's other columns, then T2's
(``transformFromClauseItem`` in ``parse_clause.c``; "Joined Tables" in the manual). DuckDB
keeps a USING column where T1 has it: ``SELECT * FROM a JOIN b USING (k)`` with ``a(x, k)``
gives ``x, k, ...`` there, ``k, x, ...`` in PostgreSQL, and a client that reads rows by
position (or pandas, or a tool that shows the RowDescription) sees the difference.

So the ``*`` of a SELECT whose FROM is one such join is written out here: the join columns
by bare name (DuckDB then takes T1's value, T2's for a RIGHT join, COALESCE of both for a
FULL one, as PostgreSQL does), then each side's other columns qualified by its alias. Only
where both sides are lake tables that this statement's scope bound and whose every column
its views show: their columns are then known exactly. Anything else (a subquery, a CTE, a
catalog relation, a nested join, a join with an alias of its own, several FROM items) keeps
DuckDB's order rather than risk a wrong column list.

A view's query is left as it is, where the view is made and where it is read: a view keeps
the output columns it was made with (engine/views.py) and lines its query's columns up with
them by position, so a view made before this rule existed must still see DuckDB's order.
(Such a view's ``*`` over USING is therefore still in DuckDB's order.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from postgast import pg_query_pb2 as pb

from .. import ast

if TYPE_CHECKING:
    from ...engine.scan import Scope


#: the alias engine/views.py gives a view's query, where it is read and where it is made
VIEW_BODY = "__view"


def apply(stmt: Any, scope: Scope) -> None:
    selects: list[pb.SelectStmt] = []
    stack = [stmt]
    while stack:
        m = stack.pop()
        if isinstance(m, pb.RangeSubselect) and m.alias.aliasname == VIEW_BODY:
            continue  # a view's columns are the ones it was made with (see the module)
        if isinstance(m, pb.SelectStmt) and len(m.from_clause) == 1 \
                and ast.kind(m.from_clause[0]) == "join_expr":
            selects.append(m)
        stack.extend(ast.children(m))
    for sel in selects:
        _expand(sel, scope)


def _is_star(target: pb.Node) -> bool:
    if ast.kind(target) != "res_target":
        return False
    val = target.res_target.val
    return ast.kind(val) == "column_ref" and len(val.column_ref.fields) == 1 \
        and ast.kind(val.column_ref.fields[0]) == "a_star"


def _expand(sel: pb.SelectStmt, scope: Scope) -> None:
    j = sel.from_clause[0].join_expr
    if not (j.using_clause or j.is_natural) or j.HasField("alias") \
            or not any(_is_star(t) for t in sel.target_list):
        return
    left, right = _columns(j.larg, scope), _columns(j.rarg, scope)
    if left is None or right is None:
        return
    (lalias, lcols), (ralias, rcols) = left, right
    lnames, rnames = [c.lower() for c in lcols], [c.lower() for c in rcols]
    if len(set(lnames)) != len(lnames) or len(set(rnames)) != len(rnames):
        return  # names DuckDB would not tell apart: its own order, its own error
    if j.is_natural:
        using = [c for c in lcols if c.lower() in rnames]
    else:
        using = ast.names(j.using_clause)
        if any(u.lower() not in lnames or u.lower() not in rnames for u in using) \
                or len({u.lower() for u in using}) != len(using):
            return  # DuckDB's error (a column USING names that a side lacks)
    joined = {u.lower() for u in using}
    columns = [_ref([u]) for u in using]
    columns += [_ref([lalias, c]) for c in lcols if c.lower() not in joined]
    columns += [_ref([ralias, c]) for c in rcols if c.lower() not in joined]
    targets = list(sel.target_list)
    del sel.target_list[:]
    for t in targets:
        sel.target_list.extend(columns if _is_star(t) else [t])


def _ref(fields: list[str]) -> pb.Node:
    node = pb.Node()
    rt = node.res_target
    rt.location = -1
    for f in fields:
        rt.val.column_ref.fields.add().string.sval = f
    rt.val.column_ref.location = -1
    return node


def _columns(side: pb.Node, scope: Scope) -> tuple[str, list[str]] | None:
    """(alias, column names) of a join side that is a lake table this scope bound, when
    its view shows every column; else None."""
    if ast.kind(side) != "range_var":
        return None
    found = scope.bound_table(side.range_var)
    if found is None:
        return None
    alias, info = found
    mask = scope.masks.get(alias)
    names = [c.name for c in info.columns]
    if mask is not None and any(n not in mask for n in names):
        return None
    return alias, names
