"""``MERGE INTO target USING source ON ... WHEN [NOT] MATCHED ...`` (PostgreSQL 15).

One query joins the source to the target (``source LEFT JOIN target``, the target read with
its row ids, as UPDATE and DELETE read it) and picks, for every source row, the first WHEN
clause whose condition holds, computing the values that clause writes. The rows then go
through the ordinary write path: deletions and updates lock and re-check their target rows
like DELETE and UPDATE do (READ COMMITTED: a row changed by a commit after the statement read
it makes the statement run again on the newest version; 40001 under REPEATABLE READ), check
constraints (23505, 23503, 23514, 23502) and foreign-key actions, and insertions are an
INSERT of the computed rows (defaults, serials, generated columns, unique keys).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
        self.matched = matched
        self.command = command  # "update" | "delete" | "insert" | "nothing"
        #: (column name, output column) for UPDATE SET and INSERT values
        self.values: list[tuple[str, str]] = []


def merge(session: Session, node: pb.MergeStmt, params: list[Any]) -> Result:
    info = session.table_for(node.relation)
    if info.read_only:
        raise E.InsufficientPrivilege(f'table "{info.name}" is read-only')
    if node.HasField("returning_clause") and node.returning_clause.exprs:
        raise E.FeatureNotSupported("MERGE ... RETURNING is not supported by tarndb")
    if node.HasField("with_clause"):
        raise E.FeatureNotSupported("WITH ... MERGE is not supported by tarndb")
    alias = node.relation.alias.aliasname if node.relation.HasField("alias") else info.name

    sel = pb.Node()
    s = sel.select_stmt
    rid_ref = ast.column_ref(alias, RID)
    out = s.target_list.add().res_target
    out.name = _TRID
    out.val.CopyFrom(rid_ref)
    clauses: list[_Clause] = []
    matched_whens: list[tuple[pb.Node, pb.Node]] = []
    unmatched_whens: list[tuple[pb.Node, pb.Node]] = []
    for i, w in enumerate(node.merge_when_clauses):
        wc = w.merge_when_clause
        if wc.match_kind == pb.MERGE_WHEN_NOT_MATCHED_BY_SOURCE:
            raise E.FeatureNotSupported(
                "MERGE ... WHEN NOT MATCHED BY SOURCE is not supported by tarndb")
        matched = wc.match_kind == pb.MERGE_WHEN_MATCHED
        command = {pb.CMD_UPDATE: "update", pb.CMD_DELETE: "delete", pb.CMD_INSERT: "insert",
                   pb.CMD_NOTHING: "nothing"}[wc.command_type]
        clause = _Clause(i + 1, matched, command)
        cond = wc.condition if wc.HasField("condition") else _true()
        (matched_whens if matched else unmatched_whens).append((cond, _int(i + 1)))
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
    act.val.CopyFrom(_case(
        [(_is_null(rid_ref, negate=True), _case(matched_whens, _int(0)))],
        _case(unmatched_whens, _int(0))))
    join = s.from_clause.add().join_expr
    join.jointype = pb.JOIN_LEFT
    join.larg.CopyFrom(node.source_relation)
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
    deleted = [r for r, a in zip(rids, acts, strict=True)
               if a and by_index[a].command == "delete"]
    if deleted:
        count += _delete(session, info, deleted)
    act_arr = table.column(_ACT)
    for clause in clauses:
        if clause.command not in ("update", "insert"):
            continue
        rows = table.filter(pc.fill_null(pc.equal(act_arr, clause.index), False))
        if not rows.num_rows:
            continue
        if clause.command == "update":
            count += _update(session, info, rows, clause, types)
        else:
            count += _insert(session, info, rows, clause)
    return Result(command=f"MERGE {count}", rowcount=count)


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
            types: dict[str, str]) -> int:
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
    return int(new_rows.num_rows)


def _insert(session: Session, info: TableInfo, rows: pa.Table, clause: _Clause) -> int:
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
