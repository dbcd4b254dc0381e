"""INSERT, UPDATE and DELETE.

The new rows are computed by DuckDB (so every SQL expression, cast and parameter works as in
a SELECT), converted to the table's Arrow schema, checked against the table's constraints, and
added to the session's transaction; they reach Lance at COMMIT (or at once outside a
transaction). A statement that fails changes nothing.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from postgast import pg_query_pb2 as pb

from .. import errors as E
from ..sql import arraytext, ast
from ..storage.tables import RID
from .catalog import ColumnInfo, TableInfo
from .commit import KEY_LOCK_MAX_ROWS, unique_keys
from .result import Result
from .scan import Scope, quote_ident
from .values import matrices_array, strict_json

if TYPE_CHECKING:
    from .session import Session
    from .types import ColumnType


def storage_expr(expr: str, col: ColumnInfo, source_type: str | None = None) -> str:
    """``expr`` converted to what Lance stores for ``col``, validated by DuckDB's casts."""
    t = col.type
    if t.ndim == 0 and t.base == "bytea" and str(source_type).upper() == "VARCHAR":
        # Postgres' text form of bytea is hex: '\x0102'.
        return (f"CASE WHEN starts_with({expr}, '\\x') THEN unhex(substr({expr}, 3)) "
                f"ELSE CAST({expr} AS BLOB) END")
    if t.ndim == 0 and t.base in ("json", "jsonb"):
        return f"CAST(CAST({expr} AS JSON) AS VARCHAR)"
    if t.ndim == 0 and t.base == "uuid":
        return f"CAST(CAST({expr} AS UUID) AS VARCHAR)"
    if t.is_sparse:
        # pgvector's sparse text, a sparse value (a parameter, a row read back) or a vector /
        # real[] (its non-zeros); pgvector's checks run on the stored rows (check_constraints)
        src = str(source_type).upper()
        if src == "VARCHAR":
            return f"sparsevec_in({expr})"
        if src.endswith("]") and not src.startswith("STRUCT"):
            return f"sparsevec_from_vector(CAST({expr} AS FLOAT[]))"
        return f"sparsevec_param({expr})"
    if t.is_vector:
        # '[1,2,3]' (pgvector's text form, also DuckDB's list text) or a list; the dimension
        # is checked on the stored rows (check_constraints), in pgvector's words. A sparsevec
        # reads pgvector's sparse text ('{1:0.5}/3'); a halfvec rounds to half precision.
        # A sparsevec column of the dense layout (made before sparse storage) densifies
        # sparse text and sparse values.
        if str(source_type).upper() == "VARCHAR":
            out = f"sparsevec_dense_in({expr})" if t.domain == "SPARSEVEC" else \
                f"CAST({arraytext.to_duckdb_sql(expr)} AS FLOAT[])"
        elif t.domain == "SPARSEVEC" and str(source_type).upper().startswith("STRUCT"):
            out = f"sparsevec_to_dense(sparsevec_param({expr}))"
        else:
            out = f"CAST({expr} AS FLOAT[])"
        return f"halfvec_round({out})" if t.domain == "HALFVEC" else out
    if t.ndim == 0 and t.base in ("bit", "varbit"):
        # bit(n) text: only 0 and 1 (DuckDB's BIT cast checks), exactly n of them (bit varying:
        # at most n), PostgreSQL's 22026 otherwise
        bits = f"CAST(CAST(CAST({expr} AS VARCHAR) AS BIT) AS VARCHAR)"
        if not t.typmods:
            return bits
        n = t.typmods[0]
        if t.base == "varbit":
            return (f"CASE WHEN length({bits}) > {n} THEN error('bit string too long for "
                    f"type bit varying({n})') ELSE {bits} END")
        return (f"CASE WHEN length({bits}) <> {n} THEN error('bit string length ' || "
                f"length({bits}) || ' does not match type bit({n})') ELSE {bits} END")
    if t.ndim and str(source_type).upper() == "VARCHAR":
        # '{1,2}' into a float4[] column, as psql scripts write arrays.
        return f"CAST({arraytext.to_duckdb_sql(expr)} AS {t.duckdb})"
    return f"CAST({expr} AS {t.duckdb})"


def _default_sql(col: ColumnInfo) -> str:
    return col.default_sql if col.default_sql else "NULL"


def to_storage(table: pa.Table, info: TableInfo, names: list[str]) -> pa.Table:
    """Rows computed by DuckDB (columns ``names``) as the table's storage schema."""
    if _in_storage_schema(table, info, names):
        return table  # what the loop below would build again, column for column
    arrays = []
    fields = []
    for col in info.columns:
        t = col.type.arrow
        if col.name in names:
            arr = table.column(col.name)
            try:
                if arr.type != t:  # (a cast call costs even when there is nothing to do)
                    arr = arr.cast(t)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise E.InvalidTextRepresentation(
                    f'invalid value for column "{col.name}" of type {col.type.pg_name}: {e}',
                    column=col.name) from e
        else:
            arr = pa.nulls(table.num_rows, t)
        if col.type.is_sparse:
            from .sparsevec import storable

            arr = storable(arr)
        arrays.append(arr)
        fields.append(pa.field(col.name, t))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _in_storage_schema(table: pa.Table, info: TableInfo, names: list[str]) -> bool:
    """Whether ``table`` already is every column of ``info`` in order, each in its stored
    type (VALUES rows built typed, see :func:`_typed_column`)."""
    schema = table.schema
    if schema.metadata or len(schema) != len(info.columns) or len(names) != len(schema):
        return False
    given = set(names)
    for f, col in zip(schema, info.columns, strict=True):
        t = col.type.arrow
        if f.name != col.name or col.name not in given or col.type.is_sparse or \
                not f.nullable or f.metadata or f.type != t:
            return False
        # Arrow's type equality ignores a list's item name, which Lance does not (DuckDB
        # names it "l", the stored schema "item"): the rebuild below renames it.
        if t.num_fields and str(f.type) != str(t):
            return False
    return True


def check_constraints(session: Session, info: TableInfo, rows: pa.Table,
                      replacing: list[int] | None = None, unique: bool = True) -> None:
    """NOT NULL, CHECK and unique keys of rows a statement writes (with ``__rid`` when the
    caller has allocated them). Unique keys are locked for the transaction first, so a second
    writer of the same key waits for this one (engine/commit.py); ``unique=False`` checks
    only NOT NULL and CHECK."""
    for col in info.columns:
        if (col.not_null or col.name in info.primary_key) and rows.column(col.name).null_count:
            raise E.NotNullViolation(
                f'null value in column "{col.name}" of relation "{info.name}" violates '
                f"not-null constraint", column=col.name, table=info.name)
        if col.type.ndim >= 2:
            _check_rectangular(rows.column(col.name), col)
        if col.type.is_sparse:
            from .sparsevec import check_stored

            check_stored(rows.column(col.name), col.type.dim)
        elif col.type.is_vector:
            check_vector_dims(rows.column(col.name), col.type.dim)
        if col.type.typmods and col.type.base in ("varchar", "bpchar") and not col.type.ndim:
            _check_length(rows.column(col.name), col)
    if rows.num_rows:
        _check_checks(session, info, rows)
    if unique and rows.num_rows and unique_keys(info):
        writes = session.db.writes
        if rows.num_rows <= KEY_LOCK_MAX_ROWS and session.txn_id:
            session.lock(writes.key_lock_names(info, rows))
        change = session.pending_change(info)
        excluded = set(replacing or [])
        if change is not None:
            excluded |= change.removed
        # The version this server saw last (no listing of the lake), the log unfolded: the
        # key index holds the logged keys. A key found taken is looked up again at the
        # newest version, with the log folded: another server's delete of it may be in
        # either.
        store = session.db.store(info)
        try:
            writes.check_unique(info, rows, store.lance_version(fresh=False), excluded, change)
        except E.UniqueViolation:
            writes.check_unique(info, rows, store.dataset().version, excluded, change)
    if rows.num_rows and any(c.get("type") == "foreign" for c in info.constraints):
        from .fkeys import check_child

        check_child(session, info, rows)


def _check_length(column: pa.ChunkedArray, col: ColumnInfo) -> None:
    """varchar(n) / char(n): at most n characters, not counting trailing spaces (PostgreSQL
    drops those; other excess is 22001)."""
    n = col.type.typmods[0]
    lengths = pc.utf8_length(column)
    if not pc.any(pc.greater(lengths, n)).as_py():
        return
    trimmed = pc.utf8_length(pc.utf8_rtrim(column, characters=" "))
    if pc.any(pc.greater(trimmed, n)).as_py():
        name = "character varying" if col.type.base == "varchar" else "character"
        raise E.StringDataRightTruncation(f"value too long for type {name}({n})",
                                          column=col.name)


def _check_checks(session: Session, info: TableInfo, rows: pa.Table) -> None:
    checks = [c for c in info.constraints if c.get("type") == "check"]
    if not checks:
        return
    from .scan import select_expr

    scope = Scope(session)
    try:
        raw = scope.register(rows, "__chk")
        base = ", ".join(select_expr(c) for c in info.columns)
        exprs = ", ".join(f"coalesce(({c['expr']}), true) AS c{i}" for i, c in enumerate(checks))
        out, _ = session.run_duckdb(
            f"SELECT {exprs} FROM (SELECT {base} FROM {raw}) AS {quote_ident(info.name)}", [])
    finally:
        scope.close()
    for i, c in enumerate(checks):
        col = out.column(f"c{i}")
        if pc.any(pc.invert(col.cast(pa.bool_()))).as_py():
            raise E.CheckViolation(
                f'new row for relation "{info.name}" violates check constraint "{c["name"]}"',
                table=info.name)


def lock_and_verify(session: Session, info: TableInfo, rids: list[int],
                    exclusive: bool = True) -> bool:
    """Lock the rows a statement is about to change; False when one of them was changed by
    another transaction after the statement read it (READ COMMITTED: run the statement
    again on the newest version). REPEATABLE READ and SERIALIZABLE raise 40001 instead."""
    if not rids:
        return True
    change = session.pending_change(info)
    own: set[int] = set()  # rows this transaction inserted: nobody else can see them
    if change is not None and change.added is not None and change.added.num_rows:
        own = set(change.added.column(RID).to_pylist())
    committed = [r for r in rids if r not in own]
    session.lock([(info.path, r) for r in committed], exclusive=exclusive)
    read_version = session.read_versions.get(info.path)
    seen = session.read_seqs.get(info.path)
    if read_version is None:
        read_version = session.snapshot_version(info)
        seen = None
    store = session.db.store(info)
    # Every log record that changed these rows was made before we got their locks: the
    # record number now covers them all.
    seq = store.wal_seq
    changed, latest = session.db.writes.changes_and_latest(info, read_version, committed,
                                                          seen=seen)
    if changed:
        if session.serializable:
            raise E.SerializationFailure(
                "could not serialize access due to concurrent update", table=info.name)
        return False
    change = session.change_for(info)
    for r in committed:
        change.verified[r] = latest  # unchanged from the statement's read up to here
        change.verified_seq[r] = seq
    return True


def _lock_keyed_row(session: Session, info: TableInfo, node: Any, params: list[Any]) -> None:
    """``UPDATE/DELETE ... WHERE pk = value``: lock the row the key index names before the
    statement reads it. Writers of one row then queue on its lock and each reads the row
    once, after the previous one committed; reading first, each would read it again after
    the wait (a READ COMMITTED re-run), doubling the work per write of a hot row. Only an
    optimisation: the statement still locks and verifies the rows it read."""
    if not session.txn_id or session.pending_change(info) is not None:
        return
    from .lookup import key_filter

    found = key_filter(session, node, info, params)
    keys = unique_keys(info)
    if found is None or not keys or list(keys[0].columns) != [found[1].name]:
        return
    store = session.db.store(info)
    try:
        ix = session.db.writes.key_index(info, keys[0], store.lance_version(fresh=False))
        rid = ix.get(found[2])
    except (E.TarnError, TypeError, ValueError):
        return
    if rid is not None:
        session.lock([(info.path, int(rid))])


# A READ COMMITTED statement whose rows keep changing under it gives up after this many runs.
_RECHECK_RUNS = 100


def select_locking(session: Session, stmt: pb.Node, params: list[Any]) -> Result:
    """``SELECT ... FOR UPDATE | NO KEY UPDATE | SHARE | KEY SHARE [NOWAIT | SKIP LOCKED]``
    on one table: the rows it returns are locked for the transaction (FOR SHARE: shared,
    so readers that share do not wait for each other), re-read under READ COMMITTED when a
    commit changed them meanwhile, 40001 under REPEATABLE READ."""
    sel = stmt.select_stmt
    if session.read_only:
        raise E.InsufficientPrivilege("permission denied: this session is read-only")
    if len(sel.from_clause) != 1 or ast.kind(sel.from_clause[0]) != "range_var" or \
            sel.op != pb.SETOP_NONE:
        raise E.FeatureNotSupported(
            "SELECT ... FOR UPDATE/SHARE is supported on a single table")
    if sel.group_clause or sel.distinct_clause or sel.HasField("having_clause"):
        raise E.FeatureNotSupported(
            "FOR UPDATE is not allowed with GROUP BY, DISTINCT or HAVING clause")
    clause = sel.locking_clause[0].locking_clause
    exclusive = clause.strength in (pb.LCS_FORUPDATE, pb.LCS_FORNOKEYUPDATE)
    rv = sel.from_clause[0].range_var
    info = session.table_for(rv)
    alias = rv.alias.aliasname if rv.HasField("alias") else info.name
    for _ in range(_RECHECK_RUNS):
        q = _rid_query(stmt, alias)
        table, _ = _target_rows(session, q, params)
        rids = list(dict.fromkeys(table.column(0).to_pylist())) if table is not None else []
        if clause.wait_policy == pb.LockWaitError:
            _lock_now(session, info, rids, exclusive)
        elif clause.wait_policy == pb.LockWaitSkip:
            return _select_skip_locked(session, stmt, params, info, alias, exclusive)
        if lock_and_verify(session, info, rids, exclusive=exclusive):
            break
    else:
        raise E.SerializationFailure("could not serialize access due to concurrent update")
    plain = pb.Node()
    plain.CopyFrom(stmt)
    del plain.select_stmt.locking_clause[:]
    return session.run_select(plain, params)


def _select_skip_locked(session: Session, stmt: pb.Node, params: list[Any], info: TableInfo,
                        alias: str, exclusive: bool) -> Result:
    """``FOR UPDATE SKIP LOCKED`` (the job-queue idiom: each worker claims rows no other
    worker holds): walk the matching rows in the query's order, lock those that are free,
    stop at the LIMIT, and return just those rows."""
    sel = stmt.select_stmt
    limit: int | None = None
    if sel.HasField("limit_count"):
        value = ast.const_value(sel.limit_count) if ast.kind(sel.limit_count) == "a_const" \
            else None
        if not isinstance(value, int):
            raise E.FeatureNotSupported("SKIP LOCKED needs a constant LIMIT")
        limit = value
    if sel.HasField("limit_offset"):
        raise E.FeatureNotSupported("SKIP LOCKED with OFFSET is not supported")
    for _ in range(_RECHECK_RUNS):
        q = _rid_query(stmt, alias)
        q.select_stmt.ClearField("limit_count")
        table, _ = _target_rows(session, q, params)
        claimed: list[int] = []
        for rid in dict.fromkeys(table.column(0).to_pylist() if table is not None else []):
            if limit is not None and len(claimed) >= limit:
                break
            try:
                session.db.locks.acquire(session.txn_id, [(info.path, rid)],
                                         exclusive=exclusive, timeout=0.0)
            except E.LockNotAvailable:
                continue
            claimed.append(rid)
        if lock_and_verify(session, info, claimed, exclusive=exclusive):
            break
    else:
        raise E.SerializationFailure("could not serialize access due to concurrent update")
    final = pb.Node()
    final.CopyFrom(stmt)
    fs = final.select_stmt
    del fs.locking_clause[:]
    fs.ClearField("limit_count")
    ids = ",".join(str(int(r)) for r in claimed) or "NULL"
    cond = ast.parse(f'SELECT 1 WHERE "{alias}".{RID} IN ({ids})').stmts[0].stmt \
        .select_stmt.where_clause
    if fs.HasField("where_clause"):
        both = pb.Node()
        both.bool_expr.boolop = pb.AND_EXPR
        both.bool_expr.args.add().CopyFrom(fs.where_clause)
        both.bool_expr.args.add().CopyFrom(cond)
        fs.where_clause.CopyFrom(both)
    else:
        fs.where_clause.CopyFrom(cond)
    target_rv = fs.from_clause[0].range_var
    scope = Scope(session)
    try:
        scope.bind_range_var(target_rv, with_rid=True)
        res = session.run_select(final, params, scope)
    finally:
        scope.close()
    keep = [i for i, c in enumerate(res.columns) if c.name != RID]  # `*` saw the row id
    if len(keep) != len(res.columns) and res._arrow is not None:
        res._arrow = res._arrow.select(keep)
        res.columns = [res.columns[i] for i in keep]
    return res


def _rid_query(stmt: pb.Node, alias: str) -> pb.Node:
    """``stmt`` (a row-locking SELECT) selecting only the target's ``__rid``."""
    q = pb.Node()
    q.CopyFrom(stmt)
    del q.select_stmt.locking_clause[:]
    del q.select_stmt.target_list[:]
    q.select_stmt.target_list.add().res_target.val.CopyFrom(ast.column_ref(alias, RID))
    return q


def _lock_now(session: Session, info: TableInfo, rids: list[int], exclusive: bool) -> None:
    """NOWAIT: take the row locks at once or fail with 55P03, as PostgreSQL words it."""
    try:
        session.db.locks.acquire(session.txn_id, [(info.path, r) for r in rids],
                                 exclusive=exclusive, timeout=0.0)
    except E.LockNotAvailable:
        raise E.LockNotAvailable(
            f'could not obtain lock on row in relation "{info.name}"') from None


def check_vector_dims(column: pa.ChunkedArray, dim: int | None) -> None:
    """pgvector's rules for stored vectors: the declared dimension (22000), at least one
    dimension, finite values."""
    arr = column.combine_chunks()
    if len(arr) == 0 or arr.null_count == len(arr):
        return
    lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    lengths = lengths[valid]
    if dim is not None and np.any(lengths != dim):
        bad = int(lengths[lengths != dim][0])
        raise E.DataError(f"expected {dim} dimensions, not {bad}")
    if np.any(lengths == 0):
        raise E.DataError("vector must have at least 1 dimension")
    values = arr.flatten().to_numpy(zero_copy_only=False)
    if values.size and not np.isfinite(values).all():
        if np.isnan(values).any():
            raise E.DataError("NaN not allowed in vector")
        raise E.DataError("infinite value not allowed in vector")


def _check_rectangular(column: pa.ChunkedArray, col: ColumnInfo) -> None:
    """Postgres arrays are rectangular: the vectors of one row must share a length."""
    arr = column.combine_chunks()
    if arr.null_count == len(arr) or len(arr) == 0:
        return
    inner = arr.flatten()
    if len(inner) == 0:
        return
    lengths = pc.list_value_length(inner).to_numpy(zero_copy_only=False)
    offsets = arr.offsets.to_numpy()
    for i in range(len(arr)):
        a, b = offsets[i], offsets[i + 1]
        if b - a > 1 and np.any(lengths[a:b] != lengths[a]):
            raise E.DataError(
                f'multidimensional arrays must have sub-arrays with matching dimensions '
                f'(column "{col.name}")', column=col.name)


def _returning(session: Session, info: TableInfo, alias: str, rows: pa.Table,
               returning: Any, params: list[Any], command: str) -> Result:
    """Evaluate a RETURNING list over the rows a statement wrote."""
    scope = Scope(session)
    try:
        raw = scope.register(rows, "__ret")
        from .scan import select_expr

        cols = ", ".join(select_expr(c) for c in info.columns)
        view = f"__rv{raw[5:]}"
        session.cursor.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT {cols} FROM {raw}")
        scope._views.append(view)
        sel = pb.Node()
        for t in returning:
            sel.select_stmt.target_list.add().CopyFrom(t)
        rv = sel.select_stmt.from_clause.add().range_var
        rv.relname = view
        rv.inh = True
        rv.relpersistence = "p"
        rv.alias.aliasname = alias
        scope.tables[alias] = info
        from .scan import strip_schema_qualifiers

        strip_schema_qualifiers(list(ast.walk(sel)), scope.tables)
        result = session.result_from(session.query_arrow(sel, params, scope))
    finally:
        scope.close()
    result.command = command
    result.rowcount = rows.num_rows
    return result


# -- INSERT -----------------------------------------------------------------------------------

def batchable_insert(node: pb.InsertStmt) -> bool:
    """Whether running this INSERT once per parameter set equals one INSERT of all their
    rows: one VALUES row of constants and parameters, no RETURNING, no ON CONFLICT (which
    may not affect a row twice in one statement), no WITH."""
    if node.returning_clause.exprs or node.HasField("on_conflict_clause") or \
            node.HasField("with_clause") or not node.HasField("select_stmt"):
        return False
    sel = node.select_stmt.select_stmt
    if len(sel.values_lists) != 1:
        return False
    for item in sel.values_lists[0].list.items:
        while ast.kind(item) == "type_cast":
            item = item.type_cast.arg
        if ast.kind(item) not in ("param_ref", "a_const"):
            return False
    return True


def insert(session: Session, node: pb.InsertStmt, params: list[Any],
           batch: list[list[Any]] | None = None) -> Result:
    """INSERT. ``batch`` (for a :func:`batchable_insert`) gives one parameter set per row:
    the rows of a pipeline or ``executemany`` go in as one statement."""
    info = session.table_for(node.relation)
    if info.read_only:
        raise E.InsufficientPrivilege(f'table "{info.name}" is read-only')
    alias = node.relation.alias.aliasname if node.relation.HasField("alias") else info.name
    if node.cols:
        names = [c.res_target.name for c in node.cols]
        for n in names:
            if info.column(n) is None:
                raise E.UndefinedColumn(
                    f'column "{n}" of relation "{info.name}" does not exist', column=n)
        if len(set(names)) != len(names):
            raise E.DuplicateColumn("column specified more than once")
    else:
        names = info.column_names
    arbiters = None
    if node.HasField("on_conflict_clause"):
        from . import upsert

        arbiters = upsert.arbiters(session, info, node.on_conflict_clause)
    _refuse_generated(info, node, names)
    rows = _source_rows(session, info, node, names, params, batch)
    rows = _fill_serials(session, info, rows, set(names))
    rows = compute_generated(session, info, rows)
    if arbiters is not None:
        return upsert.upsert(session, info, node, alias, rows, params, arbiters)
    check_constraints(session, info, rows)
    rids = session.db.allocate_rids(info, rows.num_rows)
    stored = rows.append_column(RID, pa.array(rids, pa.int64()))
    session.change_for(info, reads=False).add_rows(stored)
    tag = f"INSERT 0 {rows.num_rows}"
    if node.returning_clause.exprs:
        return _returning(session, info, alias, rows, node.returning_clause.exprs, params, tag)
    return Result(command=tag, rowcount=rows.num_rows)


def insert_arrow(session: Session, info: TableInfo, data: pa.Table,
                 columns: list[str] | None = None) -> Result:
    """Insert the rows of an Arrow table whose columns are (a subset of) the table's."""
    names = columns or data.column_names
    for n in names:
        if info.column(n) is None:
            raise E.UndefinedColumn(f'column "{n}" of relation "{info.name}" does not exist',
                                    column=n)
    data = data.rename_columns(names) if columns else data
    omitted = [c for c in info.columns if c.name not in names and not c.serial]
    native = _arrow_native(data, info, names) and not any(c.default_sql for c in omitted)
    if native:
        # Already the stored Arrow types (a bulk load of numbers, text and vectors): no SQL
        # cast is needed, and Arrow's own cast is several times cheaper than a DuckDB pass.
        rows = to_storage(data, info, names)
        return _insert_rows(session, info, rows, names)
    scope = Scope(session)
    try:
        raw = scope.register(data, "__copy")
        exprs = []
        for n in names:
            col = info.column(n)
            assert col is not None
            exprs.append(storage_expr(f"{raw}.{quote_ident(n)}", col,
                                      _duck_type(data.schema.field(n).type))
                         + f" AS {quote_ident(n)}")
        omitted = [c for c in info.columns if c.name not in names and not c.serial]
        for col in omitted:
            exprs.append(storage_expr(_default_sql(col), col) + f" AS {quote_ident(col.name)}")
        out, _ = session.run_duckdb(f"SELECT {', '.join(exprs)} FROM {raw}", [])
    finally:
        scope.close()
    rows = to_storage(out, info, names + [c.name for c in omitted])
    return _insert_rows(session, info, rows, names)


def _insert_rows(session: Session, info: TableInfo, rows: pa.Table, names: list[str]
                 ) -> Result:
    rows = _fill_serials(session, info, rows, set(names))
    rows = compute_generated(session, info, rows)
    check_constraints(session, info, rows)
    rids = session.db.allocate_rids(info, rows.num_rows)
    session.change_for(info, reads=False).add_rows(
        rows.append_column(RID, pa.array(rids, pa.int64())))
    return Result(command=f"INSERT 0 {rows.num_rows}", rowcount=rows.num_rows)


def _arrow_native(data: pa.Table, info: TableInfo, names: list[str]) -> bool:
    """True when every column can be cast to its stored type by Arrow with SQL semantics."""
    for n in names:
        col = info.column(n)
        assert col is not None
        src, dst = data.schema.field(n).type, col.type.arrow
        if src == dst:
            continue
        if col.type.base in ("json", "jsonb", "uuid", "bytea", "numeric", "timestamptz",
                             "timestamp", "date", "bool"):
            return False
        base_src = src
        for _ in range(col.type.ndim):
            if not (pa.types.is_list(base_src) or pa.types.is_large_list(base_src)
                    or pa.types.is_fixed_size_list(base_src)):
                return False
            base_src = base_src.value_type
        numeric = pa.types.is_integer(base_src) or pa.types.is_floating(base_src)
        texty = pa.types.is_string(base_src) or pa.types.is_large_string(base_src)
        if col.type.base in ("text", "varchar", "bpchar") and not texty:
            return False
        if col.type.base not in ("text", "varchar", "bpchar") and not numeric:
            return False
        if col.type.base in ("int2", "int4", "int8") and pa.types.is_floating(base_src):
            return False  # SQL rounds, Arrow refuses or truncates
    return True


def _native_rows(table: pa.Table, info: TableInfo, names: list[str],
                 omitted: list[ColumnInfo]) -> pa.Table | None:
    """VALUES rows already in their stored types (numbers, text, vectors, JSON text) in
    storage form without a DuckDB pass (a third of a single-row INSERT's cost); None when
    DuckDB must convert them, or should word the error."""
    if any(c.default_sql and not c.serial for c in omitted):
        return None
    plain = []
    for n in names:
        col = info.column(n)
        assert col is not None
        if col.type.ndim == 0 and col.type.base in ("json", "jsonb"):
            arr = table.column(n)
            if not (pa.types.is_string(arr.type) or pa.types.is_null(arr.type)):
                return None
            for value in arr.to_pylist():
                if value is not None and not _valid_json(value):
                    return None
        elif col.type.base in _NATIVE_BASES:
            plain.append(n)
        else:
            return None
    if plain and not _arrow_native(table, info, plain):
        return None
    try:
        return to_storage(table, info, names)
    except E.InvalidTextRepresentation:
        return None  # out of range and the like: DuckDB words it as PostgreSQL does


# Types whose SQL cast from a parameter of the same Arrow type is the Arrow cast.
_NATIVE_BASES = ("int2", "int4", "int8", "float4", "float8", "text", "varchar")


def _valid_json(text: str) -> bool:
    """Whether ``text`` is JSON as DuckDB's JSON type takes it (stored as written)."""
    try:
        strict_json(text)
    except ValueError:
        return False
    return True


def _duck_type(t: pa.DataType) -> str:
    return "VARCHAR" if pa.types.is_string(t) or pa.types.is_large_string(t) else str(t)


def _source_rows(session: Session, info: TableInfo, node: pb.InsertStmt, names: list[str],
                 params: list[Any], batch: list[list[Any]] | None = None) -> pa.Table:
    """The inserted rows in storage form (all table columns; omitted ones default/NULL).
    With ``batch``, the one VALUES row once per parameter set."""
    omitted = [c for c in info.columns if c.name not in names]
    if not node.HasField("select_stmt"):  # DEFAULT VALUES
        src = pb.Node()
        src.select_stmt.target_list.add().res_target.val.CopyFrom(ast.null_const())
        names_in: list[str] = []
        select = src
    else:
        select = node.select_stmt
        names_in = names
        values = select.select_stmt.values_lists
        if values:
            for row in values:
                items = list(row.list.items)
                if len(items) > len(names):
                    raise E.SyntaxError_("INSERT has more expressions than target columns")
                if len(items) < len(names):
                    raise E.SyntaxError_("INSERT has more target columns than expressions")
                for i, item in enumerate(items):
                    if ast.kind(item) == "set_to_default":
                        col = info.column(names[i])
                        assert col is not None
                        item.CopyFrom(_default_node(col))
                    elif ast.kind(item) == "a_const" and isinstance(ast.const_value(item), str):
                        col = info.column(names[i])
                        if col is not None and col.type.is_sparse:
                            # sparse text read as sparsevec here: DuckDB gives a VALUES
                            # column one type, and a struct parameter in another row
                            # would make it cast the text to a struct
                            item.CopyFrom(ast.type_cast(item, ["sparsevec"]))
    fast = _values_to_arrow(select, info, names_in, params, batch) if names_in else None
    if fast is None and batch is not None:
        # Values Arrow cannot hold as one column (mixed types): each set on its own, as
        # separate statements would convert them.
        return pa.concat_tables([_source_rows(session, info, node, names, p)
                                 for p in batch]) if batch else \
            _source_rows(session, info, node, names, params)
    if fast is not None:
        native = _native_rows(fast[0], info, names_in, omitted)
        if native is not None:
            return native
    scope = Scope(session)
    try:
        if fast is not None:
            inner_table, description = fast
        elif select.select_stmt.values_lists:
            # VALUES rows become a derived table with the target columns' names.
            sub = pb.Node()
            rs = sub.select_stmt.from_clause.add().range_subselect
            rs.subquery.CopyFrom(select)
            rs.alias.aliasname = "__v"
            for n in names_in:
                rs.alias.colnames.add().string.sval = n
            star = sub.select_stmt.target_list.add().res_target.val.column_ref
            star.fields.add().a_star.SetInParent()
            select = sub
        if fast is None:
            scope.bind(select)
            inner_table, description = session.query_arrow(select, params, scope)
    finally:
        scope.close()
    if names_in and len(description) != len(names_in):
        raise E.SyntaxError_(
            f"INSERT has {len(names_in)} target columns but the query gives {len(description)}")
    # Convert (and validate) to storage types in DuckDB, where casts behave like SQL's.
    scope = Scope(session)
    try:
        raw = scope.register(inner_table, "__ins")
        exprs = []
        for i, n in enumerate(names_in):
            col = info.column(n)
            assert col is not None
            exprs.append(storage_expr(f"{raw}.{quote_ident(description[i][0])}", col,
                                      str(description[i][1])) +
                         f" AS {quote_ident(n)}")
        for col in omitted:
            if col.serial:
                continue
            exprs.append(storage_expr(_default_sql(col), col) + f" AS {quote_ident(col.name)}")
        if not exprs:
            exprs.append("NULL AS __none")
        out, _ = session.run_duckdb(f"SELECT {', '.join(exprs)} FROM {raw}", [])
    finally:
        scope.close()
    present = [n for n in names_in] + [c.name for c in omitted if not c.serial]
    return to_storage(out, info, present)


def _simple_value(item: pb.Node, params: list[Any]) -> tuple[bool, Any]:
    """The Python value of a VALUES item that is a constant or a parameter (maybe cast)."""
    while ast.kind(item) == "type_cast":
        item = item.type_cast.arg
    k = ast.kind(item)
    if k == "param_ref":
        n = item.param_ref.number
        return (True, params[n - 1]) if n <= len(params) else (False, None)
    if k == "a_const":
        return True, ast.const_value(item)
    return False, None


def _arrow_column(values: list[Any]) -> pa.Array | None:
    present = [v for v in values if v is not None]
    if not present:
        return pa.nulls(len(values), pa.string())
    if all(isinstance(v, np.ndarray) for v in present):
        # Embeddings bound as numpy (lifted literals): build list arrays without Python floats.
        ndims = {v.ndim for v in present}
        if len(ndims) != 1 or ndims == {0} or max(ndims) > 2:
            return None
        # float8[] values stay float8 (a float4 column's cast happens later, in to_storage).
        dtype = np.float64 if any(v.dtype == np.float64 for v in present) else np.float32
        if max(ndims) == 1:
            # Arrow takes the arrays as they are (4x cheaper than concatenating them first).
            item = pa.float64() if dtype is np.float64 else pa.float32()
            return pa.array([v if v is None or v.dtype == dtype else v.astype(dtype)
                             for v in values], type=pa.list_(item))
        return matrices_array(values, dtype)
    if any(isinstance(v, np.ndarray) for v in present):
        return None
    out = [json.dumps(v) if isinstance(v, dict) else
           (str(v) if isinstance(v, uuid.UUID) else v) for v in values]
    try:
        return pa.array(out)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        return None


def _typed_column(values: list[Any], t: ColumnType) -> pa.Array | None:
    """``values`` as an array of the column's stored Arrow type when each already is what
    that type holds (ints for an integer column, str for text and JSON, 1-d numpy arrays of
    the element type for a float4[] or float8[] column); else None (then :func:`_arrow_column`
    infers a type and :func:`to_storage` casts). The array equals the inferred one cast to
    the stored type, without the inference and the cast: a single-row INSERT builds one
    such column per value. Out-of-range integers give None, and the cast path words
    the error as before."""
    if t.domain is not None or not values:
        return None
    if t.ndim == 0:
        if t.base in ("int2", "int4", "int8"):
            ok = all(type(v) is int for v in values)
        elif t.base in ("text", "varchar", "json", "jsonb"):
            ok = all(type(v) is str for v in values)
        else:
            return None
    elif t.ndim == 1 and t.base in ("float4", "float8"):
        dtype = np.float32 if t.base == "float4" else np.float64
        ok = all(type(v) is np.ndarray and v.ndim == 1 and v.dtype == dtype for v in values)
    else:
        return None
    if not ok:
        return None
    try:
        return pa.array(values, type=t.arrow)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
        return None


def _values_to_arrow(select: pb.Node, info: TableInfo, names: list[str], params: list[Any],
                     batch: list[list[Any]] | None = None
                     ) -> tuple[pa.Table, list[tuple[str, str]]] | None:
    """VALUES rows made only of constants and parameters, built straight into Arrow (with
    ``batch``: the rows once per parameter set).

    This skips DuckDB's row-at-a-time VALUES evaluation, which dominates the cost of an insert
    carrying a large embedding; the casts to the column types still run in DuckDB.
    """
    rows = select.select_stmt.values_lists
    if not rows:
        return None
    columns: list[list[Any]] = [[] for _ in names]
    types = [info.column(n).type for n in names]  # type: ignore[union-attr]
    sets = batch if batch is not None else [params]
    for row, params in ((r, p) for p in sets for r in rows):
        for i, item in enumerate(row.list.items):
            ok, value = _simple_value(item, params)
            if not ok:
                return None
            t = types[i]
            if t.base in ("json", "jsonb") and t.ndim == 0 and value is not None \
                    and not isinstance(value, str):
                value = json.dumps(value, default=str)
            elif isinstance(value, list) and value and t.ndim and \
                    t.base in ("float4", "float8") and isinstance(value[0], (list, float, int)):
                try:
                    value = np.asarray(value, dtype=np.float64 if t.base == "float8"
                                       else np.float32)
                except (ValueError, TypeError):
                    return None
            columns[i].append(value)
    arrays = []
    for values, t in zip(columns, types, strict=True):
        arr = _typed_column(values, t)
        if arr is None:
            arr = _arrow_column(values)
        if arr is None:
            return None
        arrays.append(arr)
    table = pa.Table.from_arrays(arrays, names=names)
    return table, [(n, _duck_type(a.type)) for n, a in zip(names, arrays, strict=True)]


def _default_node(col: ColumnInfo) -> pb.Node:
    if col.serial:
        return ast.null_const()
    if not col.default_sql:
        return ast.null_const()
    tree = ast.parse(f"SELECT {col.default_sql}")
    return tree.stmts[0].stmt.select_stmt.target_list[0].res_target.val


def _refuse_generated(info: TableInfo, node: pb.InsertStmt, names: list[str]) -> None:
    """Generated columns, and GENERATED ALWAYS identity columns (unless OVERRIDING SYSTEM
    VALUE), take only DEFAULT, as in PostgreSQL (428C9)."""
    generated = {c.name for c in info.columns if c.generated_sql}
    always = {c.name for c in info.columns if c.identity == "a"} \
        if node.override != pb.OVERRIDING_SYSTEM_VALUE else set()
    if not (generated or always) or not node.HasField("select_stmt"):
        return
    rows = node.select_stmt.select_stmt.values_lists
    for i, n in enumerate(names):
        if n not in generated and n not in always:
            continue
        if rows and all(ast.kind(r.list.items[i]) == "set_to_default" for r in rows):
            continue
        if n in generated:
            raise E.GeneratedAlways(f'cannot insert a non-DEFAULT value into column "{n}"',
                                    detail=f'Column "{n}" is a generated column.', column=n)
        raise E.GeneratedAlways(
            f'cannot insert a non-DEFAULT value into column "{n}"',
            detail=f'Column "{n}" is an identity column defined as GENERATED ALWAYS.',
            hint="Use OVERRIDING SYSTEM VALUE to override.", column=n)


def compute_generated(session: Session, info: TableInfo, rows: pa.Table) -> pa.Table:
    """Fill ``GENERATED ALWAYS AS (expr) STORED`` columns from each row's other values."""
    generated = [c for c in info.columns if c.generated_sql]
    if not generated or rows.num_rows == 0:
        return rows
    from ..sql.rewrite import casts
    from .scan import select_expr

    scope = Scope(session)
    try:
        raw = scope.register(rows, "__gen")
        base = ", ".join(select_expr(c) for c in info.columns if not c.generated_sql)
        exprs = []
        for col in generated:
            tree = ast.parse(f"SELECT {col.generated_sql}")
            stmt = tree.stmts[0].stmt
            casts.apply(stmt)
            expr = ast.deparse_node(stmt)[len("SELECT "):]
            exprs.append(storage_expr(f"({expr})", col) + f" AS {quote_ident(col.name)}")
        sql = (f"SELECT {', '.join(exprs)} FROM (SELECT {base} FROM {raw}) AS "
               f"{quote_ident(info.name)}")
        out, _ = session.run_duckdb(sql, [])
    finally:
        scope.close()
    for col in generated:
        arr = out.column(col.name).cast(col.type.arrow)
        rows = rows.set_column(rows.schema.get_field_index(col.name), col.name, arr)
    return rows


def _fill_serials(session: Session, info: TableInfo, rows: pa.Table, given: set[str]
                    ) -> pa.Table:
    """Serial columns the statement did not set get the next values of their sequence."""
    for col in info.columns:
        if not col.serial:
            continue
        idx = rows.schema.get_field_index(col.name)
        current = rows.column(idx)
        if col.name in given and current.null_count == 0:
            continue
        missing = current.null_count if col.name in given else rows.num_rows
        values = session.db.next_values(info, col.name, missing)
        if values:  # currval('t_id_seq') and lastval() see it, as after nextval()
            from .sequences import _remember

            _remember(session, f"seq:{info.path}:{col.name}", int(values[-1]))
        if col.name in given:
            filled = current.to_pylist()
            it = iter(values)
            arr = pa.array([v if v is not None else next(it) for v in filled], col.type.arrow)
        else:
            arr = pa.array(values, col.type.arrow)
        rows = rows.set_column(idx, col.name, arr)
    return rows


# -- UPDATE -----------------------------------------------------------------------------------

def update(session: Session, node: pb.UpdateStmt, params: list[Any]) -> Result:
    info = session.table_for(node.relation)
    if info.read_only:
        raise E.InsufficientPrivilege(f'table "{info.name}" is read-only')
    alias = node.relation.alias.aliasname if node.relation.HasField("alias") else info.name
    targets: dict[str, pb.Node] = {}
    for t in node.target_list:
        name = t.res_target.name
        if info.column(name) is None:
            raise E.UndefinedColumn(
                f'column "{name}" of relation "{info.name}" does not exist', column=name)
        val = t.res_target.val
        if info.column(name).generated_sql and ast.kind(val) != "set_to_default":  # type: ignore[union-attr]
            raise E.GeneratedAlways(f'column "{name}" can only be updated to DEFAULT',
                                    detail=f'Column "{name}" is a generated column.',
                                    column=name)
        if info.column(name).identity == "a" and ast.kind(val) != "set_to_default":  # type: ignore[union-attr]
            raise E.GeneratedAlways(
                f'column "{name}" can only be updated to DEFAULT',
                detail=f'Column "{name}" is an identity column defined as GENERATED ALWAYS.',
                column=name)
        if ast.kind(val) == "set_to_default":
            col = info.column(name)
            assert col is not None
            val = _default_node(col)
        targets[name] = val
    sel = pb.Node()
    s = sel.select_stmt
    s.target_list.add().res_target.val.CopyFrom(ast.column_ref(alias, RID))
    for col in info.columns:
        rt = s.target_list.add().res_target
        rt.name = col.name
        rt.val.CopyFrom(targets.get(col.name, ast.column_ref(alias, col.name)))
    target_rv = s.from_clause.add().range_var
    target_rv.CopyFrom(node.relation)
    for f in node.from_clause:
        s.from_clause.add().CopyFrom(f)
    if node.HasField("where_clause"):
        s.where_clause.CopyFrom(node.where_clause)
    if not node.from_clause:
        _lock_keyed_row(session, info, node, params)
    from . import setexpr

    for _ in range(_RECHECK_RUNS):
        # ``SET n = n + 1 WHERE pk = value`` and the like: evaluated without DuckDB.
        simple = setexpr.updated_rows(session, info, node, targets, params) \
            if session.fast_paths else None
        rows, rids_all = simple if simple is not None else \
            _updated_rows(session, info, sel, target_rv, params)
        if lock_and_verify(session, info, rids_all):
            break
    else:
        raise E.SerializationFailure("could not serialize access due to concurrent update")
    check_constraints(session, info, rows, replacing=rids_all)
    if rids_all:
        from . import fkeys

        children = fkeys.referencing(session, info)
        if any(set(fk["ref_columns"]) & set(targets) for _, fk in children):
            fkeys.on_parent_delete(session, info, _old_rows(session, info, rids_all), rows)
    change = session.change_for(info)
    change.remove(rids_all)
    change.add_rows(rows.append_column(RID, pa.array(rids_all, pa.int64())))
    tag = f"UPDATE {rows.num_rows}"
    if node.returning_clause.exprs:
        return _returning(session, info, alias, rows, node.returning_clause.exprs, params, tag)
    return Result(command=tag, rowcount=rows.num_rows)


def _old_rows(session: Session, info: TableInfo, rids: list[int]) -> pa.Table:
    """The rows ``rids`` as the statement found them, in storage form and in that order."""
    scope = Scope(session)
    try:
        view = scope.view(info, with_rid=True)
        wanted = scope.register(pa.table({RID: pa.array(rids, pa.int64()),
                                          "__pos": pa.array(range(len(rids)), pa.int64())}),
                                "__old")
        exprs = [storage_expr(f"v.{quote_ident(c.name)}", c) + f" AS {quote_ident(c.name)}"
                 for c in info.columns]
        out, _ = session.run_duckdb(
            f"SELECT {', '.join(exprs)} FROM {view} v JOIN {wanted} w ON v.{RID} = w.{RID} "
            f"ORDER BY w.__pos", [])
    finally:
        scope.close()
    return to_storage(out, info, info.column_names)


def _updated_rows(session: Session, info: TableInfo, sel: pb.Node, target_rv: pb.RangeVar,
                  params: list[Any]) -> tuple[pa.Table, list[int]]:
    """The new versions of the rows an UPDATE changes, read at the newest version."""
    table, description = _target_rows(session, sel, params)
    if _already_stored(table, info):
        # Every value already has its stored type (``SET n = n + 1`` on an int column, the
        # other columns as read): nothing to cast or validate, no second DuckDB pass.
        out = table.rename_columns([RID, *info.column_names])
    else:
        # Convert to storage types (validating casts) in DuckDB.
        scope = Scope(session)
        try:
            raw = scope.register(table, "__upd")
            exprs = [f"{raw}.{quote_ident(description[0][0])} AS {RID}"]
            for i, col in enumerate(info.columns):
                exprs.append(storage_expr(f"{raw}.{quote_ident(description[i + 1][0])}",
                                          col, str(description[i + 1][1]))
                             + f" AS {quote_ident(col.name)}")
            out, _ = session.run_duckdb(f"SELECT {', '.join(exprs)} FROM {raw}", [])
        finally:
            scope.close()
    rids_all = out.column(RID).to_pylist()
    if len(set(rids_all)) != len(rids_all):  # UPDATE ... FROM matched a row twice
        keep, seen = [], set()
        for i, r in enumerate(rids_all):
            if r not in seen:
                seen.add(r)
                keep.append(i)
        out = out.take(pa.array(keep))
        rids_all = out.column(RID).to_pylist()
    rows = to_storage(out, info, info.column_names)
    rows = compute_generated(session, info, rows)
    return rows, rids_all


#: Stored types whose values need no conversion beyond having the type (storage_expr casts
#: them with a plain CAST): numbers, booleans, text, dates and times.
_PLAIN_BASES = frozenset({"int2", "int4", "int8", "float4", "float8", "bool", "text",
                          "varchar", "bpchar", "name", "date", "timestamp", "timestamptz"})


def _already_stored(table: pa.Table, info: TableInfo) -> bool:
    """Whether an UPDATE's new rows (``__rid`` then every column, in order) already have the
    stored Arrow types of plain columns."""
    if table.num_columns != len(info.columns) + 1 or \
            table.schema.field(0).type != pa.int64():
        return False
    for field, col in zip(list(table.schema)[1:], info.columns, strict=True):
        t = col.type
        if t.ndim or t.is_vector or t.base not in _PLAIN_BASES or t.typmods or \
                field.type != t.arrow:
            return False
    return True


# -- DELETE -----------------------------------------------------------------------------------

def delete(session: Session, node: pb.DeleteStmt, params: list[Any]) -> Result:
    info = session.table_for(node.relation)
    if info.read_only:
        raise E.InsufficientPrivilege(f'table "{info.name}" is read-only')
    alias = node.relation.alias.aliasname if node.relation.HasField("alias") else info.name
    sel = pb.Node()
    s = sel.select_stmt
    s.target_list.add().res_target.val.CopyFrom(ast.column_ref(alias, RID))
    for col in info.columns:
        rt = s.target_list.add().res_target
        rt.name = col.name
        rt.val.CopyFrom(ast.column_ref(alias, col.name))
    target_rv = s.from_clause.add().range_var
    target_rv.CopyFrom(node.relation)
    for u in node.using_clause:
        s.from_clause.add().CopyFrom(u)
    if node.HasField("where_clause"):
        s.where_clause.CopyFrom(node.where_clause)
    if not node.using_clause:
        _lock_keyed_row(session, info, node, params)
    for _ in range(_RECHECK_RUNS):
        table = _deleted_rows(session, sel, params)
        rids = list(dict.fromkeys(table.column(0).to_pylist()))
        if lock_and_verify(session, info, rids):
            break
    else:
        raise E.SerializationFailure("could not serialize access due to concurrent update")
    old = None
    if rids:
        from . import fkeys

        if fkeys.referencing(session, info):  # ON DELETE actions of referencing tables
            old = _old_rows(session, info, rids)
    session.change_for(info).remove(rids)
    if old is not None:
        fkeys.on_parent_delete(session, info, old)
    tag = f"DELETE {len(rids)}"
    if node.returning_clause.exprs:
        scope = Scope(session)
        try:
            raw = scope.register(table, "__del")
            exprs = [storage_expr(f"{raw}.{quote_ident(table.column_names[i + 1])}", c)
                     + f" AS {quote_ident(c.name)}" for i, c in enumerate(info.columns)]
            out, _ = session.run_duckdb(
                f"SELECT DISTINCT ON ({raw}.{quote_ident(table.column_names[0])}) "
                f"{', '.join(exprs)} FROM {raw}", [])
        finally:
            scope.close()
        rows = to_storage(out, info, info.column_names)
        return _returning(session, info, alias, rows, node.returning_clause.exprs, params, tag)
    return Result(command=tag, rowcount=len(rids))


def _deleted_rows(session: Session, sel: pb.Node, params: list[Any]) -> pa.Table:
    """``__rid`` and the columns of the rows a DELETE removes, read at the newest version."""
    return _target_rows(session, sel, params)[0]


def _target_rows(session: Session, sel: pb.Node, params: list[Any]) -> tuple[Any, Any]:
    """Run ``sel`` (its first FROM item is the written table, read with ``__rid``) on a
    copy, so a READ COMMITTED re-run starts from the statement as written."""
    copy = pb.Node()
    copy.CopyFrom(sel)
    target_rv = copy.select_stmt.from_clause[0].range_var
    scope = Scope(session)
    try:
        scope.bind_range_var(target_rv, with_rid=True, target_of=copy.select_stmt,
                             params=params)
        scope.bind(copy, skip_first_target=target_rv)
        return session.query_arrow(copy, params, scope)
    finally:
        scope.close()
