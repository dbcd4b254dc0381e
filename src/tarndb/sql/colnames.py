"""Result column names as Postgres gives them to expressions without an alias.

DuckDB names ``count(*)`` ``count_star()`` and ``a + 1`` ``(a + 1)``; Postgres says ``count``
and ``?column?``. Clients that read rows by name (``RealDictCursor``, pandas, SQLAlchemy's
``row.count``) see the names, so every unaliased output column gets the alias Postgres would
have chosen, following ``FigureColnameInternal`` in Postgres' ``parse_target.c``.

A ``VALUES`` list's columns are ``column1``, ``column2`` ... in Postgres (``transformValuesClause``
in ``parse_clause.c``), ``col0``, ``col1`` ... in DuckDB. So each VALUES list whose names
can be seen (the statement itself, an arm of a set operation, a CTE, a subquery in FROM)
becomes ``SELECT * FROM (VALUES ...) AS "*VALUES*"(column1, ...)``: the names are then
Postgres' in the RowDescription, for ``SELECT column1 FROM (VALUES ...) AS v`` and for
``ORDER BY column1``, and an alias list (``AS v(a, b)``) still renames them, as there. An
INSERT's VALUES rows go to the table's columns by position and are left as they are.
"""

from __future__ import annotations

from typing import Any

from postgast import pg_query_pb2 as pb

from . import ast

UNKNOWN = "?column?"

#: Postgres' name for a VALUES list's range table entry (``"*VALUES*".column1``)
VALUES_ALIAS = "*VALUES*"

_MINMAX = {pb.IS_GREATEST: "greatest", pb.IS_LEAST: "least"}
_SQL_VALUE_FUNCTIONS = {
    pb.SVFOP_CURRENT_DATE: "current_date",
    pb.SVFOP_CURRENT_TIME: "current_time",
    pb.SVFOP_CURRENT_TIME_N: "current_time",
    pb.SVFOP_CURRENT_TIMESTAMP: "current_timestamp",
    pb.SVFOP_CURRENT_TIMESTAMP_N: "current_timestamp",
    pb.SVFOP_LOCALTIME: "localtime",
    pb.SVFOP_LOCALTIME_N: "localtime",
    pb.SVFOP_LOCALTIMESTAMP: "localtimestamp",
    pb.SVFOP_LOCALTIMESTAMP_N: "localtimestamp",
    pb.SVFOP_CURRENT_ROLE: "current_role",
    pb.SVFOP_CURRENT_USER: "current_user",
    pb.SVFOP_USER: "user",
    pb.SVFOP_SESSION_USER: "session_user",
    pb.SVFOP_CURRENT_CATALOG: "current_catalog",
    pb.SVFOP_CURRENT_SCHEMA: "current_schema",
}


def apply(stmt: pb.Node) -> None:
    """Name the unaliased output columns of a SELECT (and of each arm of a UNION, and of
    subqueries in FROM, whose names the outer query may refer to), and the columns of
    VALUES lists."""
    values = False
    for m in ast.walk(stmt):
        if isinstance(m, pb.SelectStmt):
            values = values or bool(m.values_lists)
            for t in m.target_list:
                rt = t.res_target
                # DuckDB already names a plain column and CURRENT_DATE & co. as Postgres does;
                # an alias "current_date" would even shadow the function in DuckDB's binder.
                if not rt.name and ast.kind(rt.val) not in ("column_ref", "sqlvalue_function"):
                    rt.name = figure(rt.val)
    if values:  # (a second walk only then: most statements have no VALUES list)
        for sel in _values_lists(stmt):
            _name_values(sel)


def _values_lists(stmt: pb.Node) -> list[pb.SelectStmt]:
    """The VALUES lists in ``stmt``, but not an INSERT's rows (found first, then changed:
    :func:`_name_values` puts each one a level down, where a walk would find it again)."""
    found: list[pb.SelectStmt] = []
    stack: list[Any] = [stmt]
    while stack:
        m = stack.pop()
        if isinstance(m, pb.InsertStmt):
            continue  # its rows go to the table's columns by position: no names to give
        if isinstance(m, pb.SelectStmt) and m.values_lists:
            found.append(m)
        stack.extend(ast.children(m))
    return found


def _name_values(sel: pb.SelectStmt) -> None:
    """``VALUES (...), (...) [ORDER BY ...] [LIMIT ...]`` in place becomes ``SELECT * FROM
    (VALUES (...), (...)) AS "*VALUES*"(column1, ...) [ORDER BY ...] [LIMIT ...]``."""
    inner = pb.Node()
    inner.select_stmt.values_lists.extend(sel.values_lists)
    del sel.values_lists[:]
    rs = pb.Node()
    rs.range_subselect.subquery.CopyFrom(inner)
    rs.range_subselect.alias.aliasname = VALUES_ALIAS
    width = len(inner.select_stmt.values_lists[0].list.items)
    for i in range(width):
        rs.range_subselect.alias.colnames.add().string.sval = f"column{i + 1}"
    sel.from_clause.append(rs)
    star = sel.target_list.add().res_target
    star.val.column_ref.fields.add().a_star.SetInParent()
    star.location = -1


def figure(node: pb.Node) -> str:
    """The name Postgres gives an output column computed by ``node``."""
    name, _ = _figure(node)
    return name or UNKNOWN


def _figure(node: pb.Node) -> tuple[str | None, int]:
    """(name, strength): 2 for a name from a column or function, 1 for a type's or "case",
    0 for none (Postgres' own scale, so a cast of a column keeps the column's name)."""
    k = ast.kind(node)
    if k == "column_ref":
        return _last_string(node.column_ref.fields)
    if k == "a_indirection":
        name, strength = _last_string(node.a_indirection.indirection)
        return (name, strength) if name else _figure(node.a_indirection.arg)
    if k == "func_call":
        names = ast.names(node.func_call.funcname)
        return (names[-1], 2) if names else (None, 0)
    if k == "a_expr" and node.a_expr.kind == pb.AEXPR_NULLIF:
        return "nullif", 2
    if k == "type_cast":
        name, strength = _figure(node.type_cast.arg)
        if strength <= 1:
            names = ast.names(node.type_cast.type_name.names)
            if names:
                return names[-1], 1
        return name, strength
    if k == "collate_clause":
        return _figure(node.collate_clause.arg)
    if k == "grouping_func":
        return "grouping", 2
    if k == "sub_link":
        return _sub_link(node.sub_link)
    if k == "case_expr":
        name, strength = _figure(node.case_expr.defresult) \
            if node.case_expr.HasField("defresult") else (None, 0)
        return (name, strength) if strength > 1 else ("case", 1)
    if k == "a_array_expr":
        return "array", 2
    if k == "row_expr":
        return "row", 2
    if k == "coalesce_expr":
        return "coalesce", 2
    if k == "min_max_expr":
        return _MINMAX.get(node.min_max_expr.op), 2
    if k == "sqlvalue_function":
        name = _SQL_VALUE_FUNCTIONS.get(node.sqlvalue_function.op)
        return (name, 2) if name else (None, 0)
    return None, 0


def _last_string(fields: Any) -> tuple[str | None, int]:
    name = None
    for f in fields:
        if ast.kind(f) == "string":
            name = f.string.sval
    return (name, 2) if name else (None, 0)


def _sub_link(link: Any) -> tuple[str | None, int]:
    if link.sub_link_type == pb.EXISTS_SUBLINK:
        return "exists", 2
    if link.sub_link_type == pb.ARRAY_SUBLINK:
        return "array", 2
    if link.sub_link_type == pb.EXPR_SUBLINK and ast.kind(link.subselect) == "select_stmt":
        targets = link.subselect.select_stmt.target_list
        if targets:
            rt = targets[0].res_target
            return (rt.name, 2) if rt.name else _figure(rt.val)
    return None, 0
