"""``INSERT ... ON CONFLICT``: PostgreSQL's upsert on the write path.

The rows an INSERT proposes are split into those whose key is free (inserted) and those
whose key is held by a committed or own row (skipped for ``DO NOTHING``, the holder updated
for ``DO UPDATE``). Concurrency follows PostgreSQL's speculative insertion as a client sees
it: the statement first locks the proposed keys of its arbiter rules (the key locks an
ordinary INSERT takes, engine/commit.py), so a concurrent inserter of the same key waits for
it or it for them; then it looks the keys up in the key index at the newest version, locks
the rows holding them and, when one of them was changed by a commit in between, looks again
(READ COMMITTED re-check, as :func:`~tarndb.engine.dml.lock_and_verify` does). Two sessions
upserting one key therefore never get 23505 and never lose an update: one inserts, the
other updates the row the first committed.
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
from .commit import UniqueKey, _keys, unique_keys
from .result import Result
from .scan import Scope, quote_ident, select_expr

if TYPE_CHECKING:
    from .session import Session

_RECHECK_RUNS = 100
_IDX = "__conflict_idx"
_HOLDER = "__conflict_rid"
_OK = "__conflict_ok"


def arbiters(session: Session, info: TableInfo, occ: pb.OnConflictClause) -> list[UniqueKey]:
    """The unique rules an ON CONFLICT clause names or infers (42P10 when none matches)."""
    keys = unique_keys(info)
    if occ.HasField("infer") and occ.infer.conname:
        found = [k for k in keys if k.name == occ.infer.conname]
        if not found:
            raise E.UndefinedObject(
                f'constraint "{occ.infer.conname}" for table "{info.name}" does not exist')
        return found
    if occ.HasField("infer") and occ.infer.index_elems:
        cols: set[str] = set()
        for elem in occ.infer.index_elems:
            ie = elem.index_elem
            if not ie.name:
                raise E.FeatureNotSupported(
                    "ON CONFLICT on an expression is not supported by tarndb")
            if info.column(ie.name) is None:
                raise E.UndefinedColumn(f'column "{ie.name}" does not exist', column=ie.name)
            cols.add(ie.name)
        found = [k for k in keys if set(k.columns) == cols]
        if not found:
            raise E.InvalidColumnReference(
                "there is no unique or exclusion constraint matching the ON CONFLICT "
                "specification")
        return found
    if occ.action == pb.ONCONFLICT_UPDATE:
        raise E.SyntaxError_("ON CONFLICT DO UPDATE requires inference specification or "
                             "constraint name",
                             hint="For example, ON CONFLICT (column_name).")
    return keys


def upsert(session: Session, info: TableInfo, node: pb.InsertStmt, alias: str,
           rows: pa.Table, params: list[Any], keys: list[UniqueKey]) -> Result:
    """Insert ``rows`` (storage form, every column) under ``node.on_conflict_clause``."""
    from . import dml

    occ = node.on_conflict_clause
    update = occ.action == pb.ONCONFLICT_UPDATE
    # PostgreSQL checks NOT NULL and CHECK of every proposed row before looking for conflicts.
    dml.check_constraints(session, info, rows, unique=False)
    n = rows.num_rows
    proposed = [_keys(rows, k.columns) if n else [] for k in keys]
    writes = session.db.writes
    for _ in range(_RECHECK_RUNS):
        if session.txn_id:
            session.lock([(info.path, k.name, v) for k, vals in zip(keys, proposed, strict=True)
                          for v in vals if v is not None])
        change = session.pending_change(info)
        own_added: set[int] = set()
        if change is not None and change.added is not None and change.added.num_rows:
            own_added = set(change.added.column(RID).to_pylist())
        removed = change.removed if change is not None else set()
        latest = session.db.store(info).dataset().version
        holders: list[int | None] = [None] * n
        for k, vals in zip(keys, proposed, strict=True):
            ix = writes.key_index(info, k, latest)
            pend = change.keys_of(k) if change is not None else {}
            for i, v in enumerate(vals):
                if v is None or holders[i] is not None:
                    continue
                h = pend.get(v)
                if h is None:
                    h = ix.get(v)
                    if h is not None and h in removed:
                        h = None
                holders[i] = h
        committed = sorted({h for h in holders if h is not None and h not in own_added})
        if not committed:
            break
        session.lock([(info.path, r) for r in committed])
        now = session.db.store(info).dataset().version
        if now != latest and writes.changed_since(info, latest, committed, now):
            continue  # a holder changed (or went) under us: look the keys up again
        if session.serializable:
            snap = session.snapshot_version(info)
            if snap != now and writes.changed_since(info, snap, committed, now):
                raise E.SerializationFailure(
                    "could not serialize access due to concurrent update", table=info.name)
        verified = session.change_for(info).verified
        for r in committed:
            verified[r] = now
        break
    else:
        raise E.SerializationFailure("could not serialize access due to concurrent update")

    # Rows of this statement that conflict with an earlier row of the same statement.
    insert_idx: list[int] = []
    update_idx: list[int] = []
    taken: list[dict[Any, int]] = [{} for _ in keys]
    targeted: set[int] = set()
    for i in range(n):
        h = holders[i]
        if h is None:
            for j, vals in enumerate(proposed):
                if vals[i] is not None and vals[i] in taken[j]:
                    h = -1  # an earlier row of this statement inserts the key
                    break
        if h is None:
            insert_idx.append(i)
            for j, vals in enumerate(proposed):
                if vals[i] is not None:
                    taken[j][vals[i]] = i
            continue
        if not update:
            continue
        if h == -1 or h in targeted:
            raise E.CardinalityViolation(
                "ON CONFLICT DO UPDATE command cannot affect row a second time",
                hint="Ensure that no rows proposed for insertion within the same command "
                     "have duplicate constrained values.")
        targeted.add(h)
        update_idx.append(i)

    written: list[pa.Table] = []
    order: list[int] = []
    if insert_idx:
        ins = rows.take(pa.array(insert_idx, pa.int64())) if len(insert_idx) < n else rows
        dml.check_constraints(session, info, ins)
        rids = session.db.allocate_rids(info, ins.num_rows)
        session.change_for(info).add_rows(ins.append_column(RID, pa.array(rids, pa.int64())))
        written.append(ins)
        order.extend(insert_idx)
    if update_idx:
        upd, idx, rids = _updated(session, info, node, alias, rows,
                                  update_idx, [holders[i] for i in update_idx], params)
        if upd.num_rows:
            dml.check_constraints(session, info, upd, replacing=rids)
            ch = session.change_for(info)
            ch.remove(rids)
            ch.add_rows(upd.append_column(RID, pa.array(rids, pa.int64())))
            written.append(upd)
            order.extend(idx)
    count = sum(t.num_rows for t in written)
    tag = f"INSERT 0 {count}"
    if not node.returning_clause.exprs:
        return Result(command=tag, rowcount=count)
    if written:
        out = pa.concat_tables([t.cast(written[0].schema) for t in written])
        out = out.take(pa.array(sorted(range(len(order)), key=order.__getitem__), pa.int64()))
    else:
        out = rows.slice(0, 0)
    return dml._returning(session, info, alias, out, node.returning_clause.exprs, params, tag)


def _updated(session: Session, info: TableInfo, node: pb.InsertStmt, alias: str,
             rows: pa.Table, idx: list[int], holders: list[int | None], params: list[Any]
             ) -> tuple[pa.Table, list[int], list[int]]:
    """New versions of the rows ``DO UPDATE SET ... WHERE ...`` changes: (rows in storage
    form, the proposed-row index of each, their rids)."""
    from . import dml

    occ = node.on_conflict_clause
    cols = set(info.column_names)
    targets: dict[str, pb.Node] = {}
    for t in occ.target_list:
        rt = t.res_target
        if ast.kind(rt.val) == "multi_assign_ref":
            raise E.FeatureNotSupported(
                "ON CONFLICT DO UPDATE SET (a, b) = (...) is not supported by tarndb; "
                "write one assignment per column")
        col = info.column(rt.name)
        if col is None:
            raise E.UndefinedColumn(
                f'column "{rt.name}" of relation "{info.name}" does not exist', column=rt.name)
        if rt.indirection:
            raise E.FeatureNotSupported("ON CONFLICT DO UPDATE SET on a subfield or element "
                                        "is not supported by tarndb")
        val = pb.Node()
        if ast.kind(rt.val) == "set_to_default":
            val.CopyFrom(dml._default_node(col))
        else:
            if col.generated_sql:
                raise E.GeneratedAlways(f'column "{rt.name}" can only be updated to DEFAULT',
                                        detail=f'Column "{rt.name}" is a generated column.',
                                        column=rt.name)
            val.CopyFrom(rt.val)
        _qualify(val, alias, cols)
        targets[col.name] = val
    excluded = rows.take(pa.array(idx, pa.int64())).append_column(
        _IDX, pa.array(idx, pa.int64())).append_column(_HOLDER, pa.array(holders, pa.int64()))

    sel = pb.Node()
    s = sel.select_stmt
    s.target_list.add().res_target.val.CopyFrom(ast.column_ref(alias, RID))
    s.target_list.add().res_target.val.CopyFrom(ast.column_ref("excluded", _IDX))
    for col in info.columns:
        rt = s.target_list.add().res_target
        rt.name = col.name
        rt.val.CopyFrom(targets.get(col.name, ast.column_ref(alias, col.name)))
    ok = s.target_list.add().res_target
    ok.name = _OK
    if occ.HasField("where_clause"):
        cond = pb.Node()
        cond.CopyFrom(occ.where_clause)
        _qualify(cond, alias, cols)
        ok.val.coalesce_expr.args.add().CopyFrom(cond)
        ok.val.coalesce_expr.args.add().CopyFrom(_bool(False))
    else:
        ok.val.CopyFrom(_bool(True))
    target_rv = s.from_clause.add().range_var
    target_rv.CopyFrom(node.relation)
    target_rv.alias.aliasname = alias
    ex_rv = s.from_clause.add().range_var
    join = pb.Node()
    join.a_expr.kind = pb.AEXPR_OP
    join.a_expr.name.add().string.sval = "="
    join.a_expr.lexpr.CopyFrom(ast.column_ref(alias, RID))
    join.a_expr.rexpr.CopyFrom(ast.column_ref("excluded", _HOLDER))
    s.where_clause.CopyFrom(join)

    scope = Scope(session)
    try:
        scope.bind_range_var(target_rv, with_rid=True)
        raw = scope.register(excluded, "__exc")
        view = f"__excv{raw[5:]}"
        listed = ", ".join(select_expr(c) for c in info.columns)
        session.cursor.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT {listed}, "
                               f"{_IDX}, {_HOLDER} FROM {raw}")
        scope._views.append(view)
        ex_rv.relname = view
        ex_rv.inh = True
        ex_rv.relpersistence = "p"
        ex_rv.alias.aliasname = "excluded"
        scope.bind(sel, params=params)
        table, description = session.query_arrow(sel, params, scope)
        if table.num_rows < len(idx) and session.serializable:
            # The conflicting row committed after this transaction's snapshot.
            raise E.SerializationFailure(
                "could not serialize access due to concurrent update", table=info.name)
        table = table.filter(pc.fill_null(table.column(len(description) - 1), False))
        conv = Scope(session)
        try:
            reg = conv.register(table, "__upc")
            exprs = [f"{reg}.{quote_ident(description[0][0])} AS {RID}",
                     f"{reg}.{quote_ident(description[1][0])} AS {_IDX}"]
            for i, col in enumerate(info.columns):
                exprs.append(dml.storage_expr(f"{reg}.{quote_ident(description[i + 2][0])}",
                                              col, str(description[i + 2][1]))
                             + f" AS {quote_ident(col.name)}")
            out, _ = session.run_duckdb(f"SELECT {', '.join(exprs)} FROM {reg}", [])
        finally:
            conv.close()
    finally:
        scope.close()
    rids = out.column(RID).to_pylist()
    order = out.column(_IDX).to_pylist()
    new = dml.to_storage(out, info, info.column_names)
    new = dml.compute_generated(session, info, new)
    return new, order, rids


def _bool(value: bool) -> pb.Node:
    n = pb.Node()
    n.a_const.boolval.boolval = value
    return n


def _qualify(node: pb.Node, alias: str, cols: set[str]) -> None:
    """Unqualified column references in SET and WHERE name the target table, as in
    PostgreSQL (``excluded`` must be written out); sub-selects keep their own scope."""
    def visit(msg: Any) -> None:
        if isinstance(msg, pb.SubLink):
            return
        if isinstance(msg, pb.ColumnRef):
            if len(msg.fields) == 1 and msg.fields[0].HasField("string") and \
                    msg.fields[0].string.sval in cols:
                name = msg.fields[0].string.sval
                del msg.fields[:]
                msg.fields.add().string.sval = alias
                msg.fields.add().string.sval = name
            return
        for fd, value in msg.ListFields():
            if fd.message_type is None:
                continue
            if fd.is_repeated:
                for item in value:
                    visit(item)
            else:
                visit(value)

    visit(node)
