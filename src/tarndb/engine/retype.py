"""``ALTER TABLE ... ALTER COLUMN ... TYPE`` as transactional DDL.

PostgreSQL rewrites the table under an ACCESS EXCLUSIVE lock that it holds until the
transaction ends; ROLLBACK throws the rewrite away and no other transaction ever sees it.
Here:

- the statement checks that every value converts (SQL's casts and errors), takes the table's
  exclusive lock (``table_lock``; writers take it shared, see ``Session.change_for``, so they
  wait until this transaction ends) and changes the column's type in the session's catalog
  overlay only. The session then reads the column cast to its new type
  (:func:`view_expr`); the data on the lake is untouched, other sessions see the old type.
- at COMMIT, before the transaction's rows are committed, the column is rewritten on the lake
  (:func:`rewrite`): the converted values go into a new column, the old one is renamed aside
  and dropped once the catalog is published, or renamed back if the commit fails.
- ROLLBACK: nothing was written; the overlay is forgotten.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any, cast

import pyarrow as pa

if TYPE_CHECKING:
    from .catalog import ColumnInfo, TableInfo
    from .session import Session

#: tables (paths) whose column types a session's transaction changed
_retyped: weakref.WeakKeyDictionary[Any, set[str]] = weakref.WeakKeyDictionary()


def table_lock(info: TableInfo) -> tuple[str, str]:
    """The lock key of a whole table (ACCESS EXCLUSIVE for ALTER TYPE; writers share it)."""
    return ("table", info.path)


def retyped(session: Any, path: str) -> bool:
    try:
        paths = _retyped.get(session)
    except TypeError:
        return False
    return bool(paths) and path in cast(set, paths)


def forget(session: Any) -> None:
    """The transaction ended."""
    if not _retyped:  # (no ALTER TYPE in flight anywhere: the common case, no weakref)
        return
    try:
        _retyped.pop(session, None)
    except TypeError:
        pass


def view_expr(quoted: str, col: ColumnInfo, stored: pa.DataType) -> str | None:
    """SQL of the value ``col`` stores after the rewrite, from the stored (old) value
    ``quoted``: what a session that changed the column's type reads until COMMIT, and what
    the rewrite writes; None when the stored type is already the column's."""
    if stored == col.type.arrow:
        return None
    from .dml import storage_expr
    from .types import from_arrow

    return storage_expr(quoted, col, from_arrow(stored).duckdb)


def stage(session: Session, info: TableInfo) -> None:
    """Called by ALTER COLUMN TYPE (after its checks): lock, remember, rewrite at COMMIT."""
    session.lock([table_lock(info)])
    first = not retyped(session, info.path)
    _retyped.setdefault(session, set()).add(info.path)
    if first:
        path = info.path
        session.before_commit(lambda: rewrite(session, path))


def rewrite(session: Session, path: str) -> None:
    """Rewrite every column of the table at ``path`` whose stored type is not the type the
    transaction's catalog gives it (at COMMIT, before the rows are committed)."""
    info = next((t for t in session.overlay_tables() if t.path == path), None)
    if info is None:
        return  # dropped later in the transaction
    db = session.db
    store = db.store(info)
    lock = threading.Lock()
    with store.lock:
        store.fold()  # logged rows have the old type
        ds = store.dataset()
        before = int(ds.version)
        for col in info.columns:
            if col.name not in ds.schema.names:
                continue
            stored = ds.schema.field(col.name).type
            expr = view_expr('"c"', col, stored)
            if expr is None:
                continue
            name, target = col.name, col.type.arrow
            tmp = f"{name}__retype_{session.txn_id}"
            aside = f"{name}__was_{session.txn_id}"
            sql = f"SELECT {expr} AS c FROM __retype_batch"

            def convert(batch: pa.RecordBatch, sql: str = sql, tmp: str = tmp,
                        target: pa.DataType = target) -> pa.RecordBatch:
                # SQL's conversion (the statement checked every value with it), so the
                # stored values are what the session read before COMMIT
                data = pa.table({"c": batch.column(0)})
                with lock:
                    cur = session.cursor
                    cur.register("__retype_batch", data)
                    try:
                        out = cur.sql(sql).to_arrow_table().column(0)
                    finally:
                        cur.unregister("__retype_batch")
                return pa.RecordBatch.from_arrays([out.combine_chunks().cast(target)],
                                                  names=[tmp])

            import lance

            if store.dataset().get_fragments():
                store.add_computed_column(lance.batch_udf()(convert), [name])
                store.rename_column(name, aside)
                store.rename_column(tmp, name)

                def back(name: str = name, aside: str = aside) -> None:
                    with store.lock:
                        store.drop_column(name)
                        store.rename_column(aside, name)

                def done(aside: str = aside) -> None:
                    store.drop_column(aside)

                session.on_rollback(back)
                session.on_commit(done)
            else:  # no rows on the lake: a column of the new type
                store.drop_column(name)
                store.add_column(pa.field(name, target))

                def back_empty(name: str = name, stored: pa.DataType = stored) -> None:
                    with store.lock:
                        store.drop_column(name)
                        store.add_column(pa.field(name, stored))

                session.on_rollback(back_empty)
        after = int(store.dataset().version)
        if after != before:  # the key indexes hold the keys as the old type
            db.writes.drop_key_indexes(info)
    for v in range(before + 1, after + 1):  # schema changes: every row is kept
        db.writes.note_row_preserving(info, v)
