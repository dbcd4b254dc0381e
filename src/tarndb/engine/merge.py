"""``MERGE INTO target USING source ON ... WHEN [NOT] MATCHED [BY SOURCE | BY TARGET] ...
[RETURNING ...]`` (PostgreSQL 15, and 17's ``NOT MATCHED BY SOURCE`` and ``RETURNING``).

One query joins the source to the target (``source LEFT JOIN target``, the target read with
its row ids, as UPDATE and DELETE read it; a ``FULL JOIN`` when a clause acts on target rows
that no source row matches) and picks, for every row of the join, the first WHEN clause
whose condition holds, computing the values that clause writes. The rows then go
through the ordinary write path: deletions and updates lock and re-check their target rows
like DELETE and UPDATE do (READ COMMITTED: a row changed by a commit after the statement read
it makes the statement run again on the newest version; 40001 under REPEATABLE READ), check
constraints (23505, 23503, 23514, 23502) and foreign-key actions, and insertions are an
INSERT of the computed rows (defaults, serials, generated columns, unique keys).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from postgast import pg_query_pb2 as pb

from .. import errors as E
from ..sql import ast
from ..storage.tables import RID
from .catalog import TableInfo
from .result import Result
from .scan import Scope, quote_ident

if TYPE_CHECKING:
    from .session import Session

_RECHECK_RUNS = 100
_ACT = "__merge_act"
_TRID = "__merge_rid"
_SRC = "__merge_src"  # true on the rows of the join that have a source row
_KEY = "__merge_key"  # RETURNING: a target row's place beside its source row
_ACTION = "__merge_action"  # RETURNING: merge_action()


def _int(v: int) -> pb.Node:
    return ast.int_const(v)


def _case(whens: list[tuple[pb.Node, pb.Node]], default: pb.Node) -> pb.Node:
    if not whens:
        return default
    n = pb.Node()
    ce = n.case_expr
    for cond, result in whens:
        w = ce.args.add().case_when
        w.expr.CopyFrom(cond)
        w.result.CopyFrom(result)
    ce.defresult.CopyFrom(default)
    return n


def _is_null(expr: pb.Node, negate: bool) -> pb.Node:
    n = pb.Node()
    n.null_test.arg.CopyFrom(expr)
    n.null_test.nulltesttype = pb.IS_NOT_NULL if negate else pb.IS_NULL
    return n


def _true() -> pb.Node:
    n = pb.Node()
    n.a_const.boolval.boolval = True
    return n


class _Clause:
    """One WHEN clause: what it does and the output columns holding its values."""

    def __init__(self, index: int, matched: bool, command: str) -> None:
        self.index = index
        #: acts on a target row (WHEN MATCHED, WHEN NOT MATCHED BY SOURCE)
        self.matched = matched
        self.command = command  # "update" | "delete" | "insert" | "nothing"
        #: (column name, output column) for UPDATE SET and INSERT values
        self.values: list[tuple[str, str]] = []


def merge(session: Session, node: pb.MergeStmt, params: list[Any]) -> Result:
    info = session.table_for(node.relation)
    if info.read_only:
        raise E.InsufficientPrivilege(f'table "{info.name}" is read-only')
    if node.HasField("with_clause"):
        raise E.FeatureNotSupported("WITH ... MERGE is not supported by tarndb")
    alias = node.relation.alias.aliasname if node.relation.HasField("alias") else info.name
    returning = list(node.returning_clause.exprs)
    for t in returning:
        val = t.res_target.val
        if ast.kind(val) == "column_ref" and len(val.column_ref.fields) == 1 and \
                ast.kind(val.column_ref.fields[0]) == "a_star":
            raise E.FeatureNotSupported(
                "MERGE ... RETURNING * is not supported by tarndb; name the relations "
                "(RETURNING target.*, source.*)")
        if ast.kind(val) == "merge_support_func" and not t.res_target.name:
            t.res_target.name = "merge_action"
    by_source = any(w.merge_when_clause.match_kind == pb.MERGE_WHEN_NOT_MATCHED_BY_SOURCE
                    for w in node.merge_when_clauses)
    source = pb.Node()
    source.CopyFrom(node.source_relation)
    src_alias = _source_alias(source) if returning or by_source else None
    if by_source:
        source = _marked(source, str(src_alias))

    sel = pb.Node()
    s = sel.select_stmt
    rid_ref = ast.column_ref(alias, RID)
    rid_out = s.target_list.add().res_target
    rid_out.name = _TRID
    rid_out.val.CopyFrom(rid_ref)
    clauses: list[_Clause] = []
    matched_whens: list[tuple[pb.Node, pb.Node]] = []
    unmatched_whens: list[tuple[pb.Node, pb.Node]] = []
    by_source_whens: list[tuple[pb.Node, pb.Node]] = []
    for i, w in enumerate(node.merge_when_clauses):
        wc = w.merge_when_clause
        matched = wc.match_kind in (pb.MERGE_WHEN_MATCHED, pb.MERGE_WHEN_NOT_MATCHED_BY_SOURCE)
        command = {pb.CMD_UPDATE: "update", pb.CMD_DELETE: "delete", pb.CMD_INSERT: "insert",
                   pb.CMD_NOTHING: "nothing"}[wc.command_type]
        clause = _Clause(i + 1, matched, command)
        cond = wc.condition if wc.HasField("condition") else _true()
        whens = (by_source_whens if wc.match_kind == pb.MERGE_WHEN_NOT_MATCHED_BY_SOURCE
                 else matched_whens if matched else unmatched_whens)
        whens.append((cond, _int(i + 1)))
        if command == "update":
            for t in wc.target_list:
                rt = t.res_target
                col = info.column(rt.name)
                if col is None:
                    raise E.UndefinedColumn(
                        f'column "{rt.name}" of relation "{info.name}" does not exist',
                        column=rt.name)
                if rt.indirection:
                    raise E.FeatureNotSupported(
                        "MERGE ... UPDATE SET on a subfield or element is not supported by "
                        "tarndb")
                if ast.kind(rt.val) == "multi_assign_ref":
                    raise E.FeatureNotSupported(
                        "MERGE ... UPDATE SET (a, b) = (...) is not supported by tarndb; "
                        "write one assignment per column")
                val = pb.Node()
                if ast.kind(rt.val) == "set_to_default":
                    from .dml import _default_node

                    val.CopyFrom(_default_node(col))
                else:
                    if col.generated_sql:
                        raise E.GeneratedAlways(
                            f'column "{rt.name}" can only be updated to DEFAULT',
                            detail=f'Column "{rt.name}" is a generated column.',
                            column=rt.name)
                    val.CopyFrom(rt.val)
                if any(c == col.name for c, _ in clause.values):
                    raise E.SyntaxError_(f'multiple assignments to same column "{col.name}"')
                name = f"__merge_{i + 1}_{len(clause.values)}"
                clause.values.append((col.name, name))
                o = s.target_list.add().res_target
                o.name = name
                o.val.CopyFrom(val)
        elif command == "insert":
            # Without a column list the values fill the table's first columns, in order.
            names = [t.res_target.name for t in wc.target_list] or \
                info.column_names[:len(wc.values)]
            if len(names) != len(set(names)):
                raise E.DuplicateColumn("column specified more than once")
            if len(wc.values) > len(names):
                raise E.SyntaxError_("INSERT has more expressions than target columns")
            if len(wc.values) < len(names):
                raise E.SyntaxError_("INSERT has more target columns than expressions")
            for j, (cname, v) in enumerate(zip(names, wc.values, strict=True)):
                col = info.column(cname)
                if col is None:
                    raise E.UndefinedColumn(
                        f'column "{cname}" of relation "{info.name}" does not exist',
                        column=cname)
                if ast.kind(v) == "set_to_default":
                    continue  # left out: the INSERT gives it its default
                if col.generated_sql:
                    raise E.GeneratedAlways(
                        f'cannot insert a non-DEFAULT value into column "{cname}"',
                        detail=f'Column "{cname}" is a generated column.', column=cname)
                name = f"__merge_{i + 1}_{j}"
                clause.values.append((col.name, name))
                o = s.target_list.add().res_target
                o.name = name
                o.val.CopyFrom(v)
        clauses.append(clause)
    act = s.target_list.add().res_target
    act.name = _ACT
    if by_source:  # a FULL JOIN: a target row without a source row has no marker
        act.val.CopyFrom(_case(
            [(_is_null(rid_ref, negate=False), _case(unmatched_whens, _int(0))),
             (_is_null(ast.column_ref(str(src_alias), _SRC), negate=False),
              _case(by_source_whens, _int(0)))],
            _case(matched_whens, _int(0))))
    else:
        act.val.CopyFrom(_case(
            [(_is_null(rid_ref, negate=True), _case(matched_whens, _int(0)))],
            _case(unmatched_whens, _int(0))))
    first_source = len(s.target_list)
    if returning:  # the source's columns, for RETURNING s.x
        star = s.target_list.add().res_target.val.column_ref
        star.fields.add().string.sval = str(src_alias)
        star.fields.add().a_star.SetInParent()
    join = s.from_clause.add().join_expr
    join.jointype = pb.JOIN_FULL if by_source else pb.JOIN_LEFT
    join.larg.CopyFrom(source)
    join.rarg.range_var.CopyFrom(node.relation)
    join.quals.CopyFrom(node.join_condition)

    by_index = {c.index: c for c in clauses}
    for _ in range(_RECHECK_RUNS):
        table, types = _run(session, sel, params)
        acts = table.column(_ACT).to_pylist()
        rids = table.column(_TRID).to_pylist()
        touched = [r for r, a in zip(rids, acts, strict=True)
                   if a and by_index[a].matched and by_index[a].command != "nothing"]
        if len(set(touched)) != len(touched):
            raise E.CardinalityViolation(
                "MERGE command cannot affect row a second time",
                hint="Ensure that not more than one source row matches any one target row.")
        from .dml import lock_and_verify

        if lock_and_verify(session, info, touched):
            break
    else:
        raise E.SerializationFailure("could not serialize access due to concurrent update")

    count = 0
    #: for RETURNING: (rows of the join, the target rows they left, the action)
    out: list[tuple[np.ndarray, pa.Table, str]] = []
    deleting = np.array([bool(a) and by_index[a].command == "delete" for a in acts], bool)
    deleted = [r for r, d in zip(rids, deleting, strict=True) if d]
    from .dml import _old_rows

    if deleted:
        if returning:  # the rows as they were
            out.append((np.flatnonzero(deleting), _old_rows(session, info, deleted), "DELETE"))
        count += _delete(session, info, deleted)
    act_arr = table.column(_ACT)
    for clause in clauses:
        if clause.command not in ("update", "insert"):
            continue
        mask = pc.fill_null(pc.equal(act_arr, clause.index), False)
        rows = table.filter(mask)
        if not rows.num_rows:
            continue
        at = np.flatnonzero(mask.to_numpy(zero_copy_only=False))
        if clause.command == "update":
            n, new_rows, new_rids = _update(session, info, rows, clause, types)
            count += n
            if returning:
                pos = {r: i for i, r in enumerate(new_rids)}
                order = [pos[r] for r in rows.column(_TRID).to_pylist()]
                out.append((at, new_rows.take(pa.array(order, pa.int64())), "UPDATE"))
        else:
            n, new_rows = _insert(session, info, rows, clause, bool(returning))
            count += n
            if new_rows is not None:
                out.append((at, new_rows, "INSERT"))
    if returning:
        names = table.column_names[first_source:]
        sources = table.select([i for i, n in enumerate(names, first_source) if n != _SRC])
        return _returning(session, info, alias, str(src_alias), sources, out, returning,
                          params, f"MERGE {count}", count)
    return Result(command=f"MERGE {count}", rowcount=count)


def _source_alias(source: pb.Node) -> str:
    """The name the statement gives its source (RETURNING and WHEN NOT MATCHED BY SOURCE
    need one)."""
    k = ast.kind(source)
    if k == "range_var":
        rv = source.range_var
        return rv.alias.aliasname if rv.HasField("alias") else rv.relname
    if k in ("range_subselect", "range_function"):
        alias = getattr(source, k).alias
        if alias.aliasname:
            return str(alias.aliasname)
    raise E.FeatureNotSupported(
        "MERGE ... RETURNING or WHEN NOT MATCHED BY SOURCE with a join as its source is not "
        "supported by tarndb; use a subquery with an alias")


def _marked(source: pb.Node, alias: str) -> pb.Node:
    """``(SELECT *, true AS __merge_src FROM source) AS alias``: which rows of a FULL JOIN
    have a source row."""
    sub = pb.Node()
    sel = sub.range_subselect.subquery.select_stmt
    star = sel.target_list.add().res_target.val.column_ref
    star.fields.add().a_star.SetInParent()
    mark = sel.target_list.add().res_target
    mark.name = _SRC
    mark.val.CopyFrom(_true())
    sel.from_clause.add().CopyFrom(source)
    sub.range_subselect.alias.aliasname = alias
    return sub


def _returning(session: Session, info: TableInfo, alias: str, src_alias: str,
               sources: pa.Table, out: list[tuple[np.ndarray, pa.Table, str]],
               returning: list[pb.Node], params: list[Any], command: str, count: int
               ) -> Result:
    """RETURNING over the target rows the actions left (new contents for INSERT and UPDATE,
    old ones for DELETE) beside their source rows, in the order of the join."""
    from .dml import _old_rows
    from .scan import select_expr, strip_schema_qualifiers

    empty = _old_rows(session, info, [])
    at = np.concatenate([o[0] for o in out]) if out else np.zeros(0, np.int64)
    order = np.argsort(at, kind="stable")
    targets = pa.concat_tables([o[1].select(info.column_names) for o in out] or [empty],
                               promote_options="permissive").take(pa.array(order, pa.int64()))
    actions = [a for o in out for a in [o[2]] * len(o[0])]
    key = pa.array(range(targets.num_rows), pa.int64())
    targets = targets.append_column(_KEY, key).append_column(
        _ACTION, pa.array([actions[i] for i in order], pa.string()))
    srcs = sources.take(pa.array(at[order], pa.int64())).append_column(_KEY, key)
    scope = Scope(session)
    try:
        t_raw = scope.register(targets, "__mrt")
        cols = ", ".join([select_expr(c) for c in info.columns] + [_KEY, _ACTION])
        t_view = f"__mrv{t_raw[5:]}"
        session.cursor.execute(f"CREATE OR REPLACE TEMP VIEW {t_view} AS SELECT {cols} "
                               f"FROM {t_raw}")
        scope._views.append(t_view)
        s_raw = scope.register(srcs, "__mrs")
        sel = pb.Node()
        s = sel.select_stmt
        src_names = [n for n in sources.column_names]
        for t in returning:
            rt = t.res_target
            if ast.kind(rt.val) == "column_ref" and ast.kind(rt.val.column_ref.fields[-1]) \
                    == "a_star":
                parts = ast.names(rt.val.column_ref.fields)[:-1]
                names = (info.column_names if parts[-1] == alias else src_names
                         if parts[-1] == src_alias else None)
                if names is None:
                    raise E.UndefinedTable(
                        f'missing FROM-clause entry for table "{parts[-1]}"')
                for n in names:
                    s.target_list.add().res_target.val.CopyFrom(ast.column_ref(parts[-1], n))
                continue
            s.target_list.add().CopyFrom(t)
        for m in list(ast.walk_nodes(sel)):
            if ast.kind(m) == "merge_support_func":
                m.CopyFrom(ast.column_ref(alias, _ACTION))
        j = s.from_clause.add().join_expr
        j.jointype = pb.JOIN_INNER
        for side, name, a in ((j.larg, t_view, alias), (j.rarg, s_raw, src_alias)):
            rv = side.range_var
            rv.relname = name
            rv.inh = True
            rv.relpersistence = "p"
            rv.alias.aliasname = a
        q = j.quals.a_expr
        q.kind = pb.AEXPR_OP
        q.name.add().string.sval = "="
        q.lexpr.CopyFrom(ast.column_ref(alias, _KEY))
        q.rexpr.CopyFrom(ast.column_ref(src_alias, _KEY))
        s.sort_clause.add().sort_by.node.CopyFrom(ast.column_ref(alias, _KEY))
        scope.tables[alias] = info
        strip_schema_qualifiers(list(ast.walk(sel)), scope.tables)
        result = session.result_from(session.query_arrow(sel, params, scope))
    finally:
        scope.close()
    result.command = command
    result.rowcount = count
    return result


def _run(session: Session, sel: pb.Node, params: list[Any]) -> tuple[pa.Table, dict[str, str]]:
    """The join, on a copy of ``sel`` (a READ COMMITTED re-run starts from the statement),
    and the DuckDB type of each of its columns."""
    copy = pb.Node()
    copy.CopyFrom(sel)
    target_rv = copy.select_stmt.from_clause[0].join_expr.rarg.range_var
    scope = Scope(session)
    try:
        scope.bind_range_var(target_rv, with_rid=True)
        scope.bind(copy, skip_first_target=target_rv, params=params)
        table, description = session.query_arrow(copy, params, scope)
    finally:
        scope.close()
    names = [d[0] for d in description]
    if table.column_names != names:
        table = table.rename_columns(names)
    return table, {str(d[0]): str(d[1]) for d in description}


def _delete(session: Session, info: TableInfo, rids: list[int]) -> int:
    from . import fkeys
    from .dml import _old_rows

    old = _old_rows(session, info, rids) if fkeys.referencing(session, info) else None
    session.change_for(info).remove(rids)
    if old is not None:
        fkeys.on_parent_delete(session, info, old)
    return len(rids)


def _update(session: Session, info: TableInfo, rows: pa.Table, clause: _Clause,
            types: dict[str, str]) -> tuple[int, pa.Table, list[int]]:
    """Write the clause's new versions of ``rows``: (count, the new rows, their row ids in
    that order)."""
    from . import fkeys
    from .dml import (
        _old_rows,
        check_constraints,
        compute_generated,
        storage_expr,
        to_storage,
    )

    rids = rows.column(_TRID).to_pylist()
    old = _old_rows(session, info, rids)
    set_cols = {c: name for c, name in clause.values}
    scope = Scope(session)
    try:
        raw = scope.register(old.append_column(RID, pa.array(rids, pa.int64())), "__mold")
        new = scope.register(rows.select([_TRID] + list(set_cols.values())), "__mnew")
        exprs = []
        for col in info.columns:
            if col.name in set_cols:
                src = set_cols[col.name]
                exprs.append(storage_expr(f"n.{quote_ident(src)}", col, str(types[src]))
                             + f" AS {quote_ident(col.name)}")
            else:
                exprs.append(f"o.{quote_ident(col.name)}")
        out, _ = session.run_duckdb(
            f"SELECT {', '.join(exprs)} FROM {raw} o JOIN {new} n ON o.{RID} = n.{_TRID} "
            f"ORDER BY n.{_TRID}", [])
    finally:
        scope.close()
    rids = sorted(rids)
    new_rows = compute_generated(session, info, to_storage(out, info, info.column_names))
    check_constraints(session, info, new_rows, replacing=rids)
    children = fkeys.referencing(session, info)
    if any(set(fk["ref_columns"]) & set(set_cols) for _, fk in children):
        fkeys.on_parent_delete(session, info, _old_rows(session, info, rids), new_rows)
    change = session.change_for(info)
    change.remove(rids)
    change.add_rows(new_rows.append_column(RID, pa.array(rids, pa.int64())))
    return int(new_rows.num_rows), new_rows, rids


def _insert(session: Session, info: TableInfo, rows: pa.Table, clause: _Clause,
            want_rows: bool) -> tuple[int, pa.Table | None]:
    """Insert the clause's rows: (count, with ``want_rows`` the rows as stored, defaults and
    serials filled)."""
    n = _insert_values(session, info, rows, clause)
    if not want_rows:
        return n, None
    change = session.pending_change(info)
    added = change.added if change is not None else None
    if added is None or added.num_rows < n:
        raise E.InternalError("MERGE: the inserted rows are missing from the transaction")
    return n, added.slice(added.num_rows - n).select(info.column_names)


def _insert_values(session: Session, info: TableInfo, rows: pa.Table, clause: _Clause
                   ) -> int:
    from .dml import insert_arrow

    if clause.values:
        data = rows.select([name for _, name in clause.values])
        result = insert_arrow(session, info, data, [c for c, _ in clause.values])
        return int(result.rowcount or 0)
    # INSERT DEFAULT VALUES (or only DEFAULTs): every column takes its default.
    cols = [c for c in info.columns if not c.serial and not c.generated_sql]
    if not cols:
        raise E.FeatureNotSupported(
            "MERGE ... INSERT DEFAULT VALUES into a table of only serial and generated "
            "columns is not supported by tarndb")
    from .dml import _default_sql

    scope = Scope(session)
    try:
        raw = scope.register(pa.table({"__n": pa.array(range(rows.num_rows), pa.int64())}),
                             "__mdef")
        exprs = [f"CAST({_default_sql(c)} AS {c.type.duckdb}) AS {quote_ident(c.name)}"
                 for c in cols]
        data, _ = session.run_duckdb(f"SELECT {', '.join(exprs)} FROM {raw}", [])
    finally:
        scope.close()
    result = insert_arrow(session, info, data, [c.name for c in cols])
    return int(result.rowcount or 0)
