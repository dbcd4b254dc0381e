"""Bulk writes in two phases: many workers write fragments, one commit publishes them all.

Distributed writers (``tarndb.ray.write_table``) cannot hand their rows to one process: each
worker turns its rows into stored rows and writes them as Lance fragments next to the table's
data, and the driver publishes every worker's fragments in **one** Lance commit. Until then
no reader sees any of them; if any worker or the driver fails, nothing is published (the
unreferenced files are removed by ``tarndb_cleanup``'s version cleanup).

1. :func:`prepare_rows` (in a worker): the engine's own INSERT conversion of an Arrow batch
   (stored types, defaults, serial values, generated columns, NOT NULL, CHECK, foreign keys,
   row ids), in a transaction that is rolled back: nothing is committed.
2. :func:`write_fragments` (in a worker): those rows as fragment files of the table's
   dataset, uncommitted; returns the fragments' metadata as JSON and the rows' unique keys.
3. :func:`commit_fragments` (in the driver): under the table's lake-wide lock, the keys are
   checked against the key index at the newest version (:meth:`WritePath.check_unique`,
   the check every commit makes), then one ``Append`` commit publishes every fragment.
   Appends change no existing row, so there is nothing else to validate: the other writers'
   conflict checks already treat another server's ``Append`` as touching no row, and key
   indexes catch up by reading the appended fragments.

A new table (``write_table(mode="create")``) appears with all of its rows or not at all:
the driver runs ``CREATE TABLE`` in a transaction that it keeps open (the table's empty
dataset is made, its catalog entry is not published), the workers prepare and write rows
against that definition (``prepare_rows(..., new=True)``), and :func:`commit_new_table`
commits the fragments into the still unlisted dataset, then commits the transaction: one
catalog commit publishes the table with every row. A driver killed before that commit
leaves no table (an unlisted dataset directory, garbage, is all that remains); a failure
it sees removes the dataset as ROLLBACK of ``CREATE TABLE`` does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import lance
import pyarrow as pa

from .. import errors as E
from .. import metrics
from ..storage.lakelock import lake_lock
from ..storage.tables import RID, conform_rows
from .catalog import TableInfo
from .commit import unique_keys

if TYPE_CHECKING:
    from .database import Database
    from .session import Session


@dataclass
class Fragments:
    """What one worker wrote: uncommitted fragments and the unique keys of their rows."""

    #: ``FragmentMetadata.to_json()`` of each fragment, as JSON text
    fragments: list[str]
    rows: int
    #: the rows' unique-key columns and ``__rid`` (None when the table has no unique key)
    keys: pa.Table | None
    #: the dataset schema the fragments were written with
    schema: pa.Schema


def _qualified(info: TableInfo) -> str:
    return '"{}"."{}"'.format(info.workspace.replace('"', '""'), info.name.replace('"', '""'))


def prepare_rows(db: Database, info: TableInfo, batch: pa.Table, *,
                 new: bool = False) -> pa.Table:
    """Rows of ``batch`` (columns named as the table's) as the table stores them, with row
    ids, checked as INSERT checks them; nothing is committed.

    ``new``: ``info`` is a table being created whose catalog entry is not published yet
    (:func:`commit_new_table`); this worker's session sees it as its own uncommitted DDL."""
    # A statement's early key check reads the newest version this process has seen; a
    # worker that last looked before another server's delete would refuse a freed key.
    db.store(info).dataset()
    s = db.session(workspace=info.workspace)
    try:
        s.begin()
        if new:
            s.catalog_create(info)  # undone by the rollback below, like the rows
        s.insert_arrow(_qualified(info), batch)
        found = s.find_table(info.workspace, info.name)
        change = s.pending_change(found) if found is not None else None
        rows = change.added if change is not None else None
        s.rollback()
    finally:
        s.close()
    if rows is None:
        return pa.table({})
    return rows


def write_fragments(db: Database, info: TableInfo, rows: pa.Table,
                    max_rows_per_file: int = 1 << 20) -> Fragments:
    """Write stored ``rows`` (from :func:`prepare_rows`) as uncommitted fragments."""
    store = db.store(info)
    schema = store.dataset().schema
    if rows.num_rows == 0:
        return Fragments([], 0, None, schema)
    rows = conform_rows(rows, schema)
    frags = lance.fragment.write_fragments(
        rows, store.uri, schema=schema, storage_options=db.lake.storage_options,
        max_rows_per_file=max_rows_per_file)
    cols: list[str] = []
    for key in unique_keys(info):
        cols.extend(c for c in key.columns if c not in cols)
    keys = rows.select(cols + [RID]) if cols else None
    return Fragments([json.dumps(f.to_json()) for f in frags], rows.num_rows, keys, schema)


def commit_fragments(db: Database, info: TableInfo, parts: list[Fragments], *,
                     maintain: bool = True) -> int:
    """Publish every part's fragments in one commit; returns the new table version.

    Raises 23505 when a key is taken (by another row of ``parts`` or by a committed row),
    40001 when the table's columns changed after the fragments were written; either way
    nothing is published. ``maintain=False`` leaves the table's upkeep (compaction, key
    index) to the caller."""
    store = db.store(info)
    frags = [lance.fragment.FragmentMetadata.from_json(f) for p in parts for f in p.fragments]
    if not frags:
        return store.dataset().version
    key_parts = [p.keys for p in parts if p.keys is not None and p.keys.num_rows]
    rows = sum(p.rows for p in parts)
    with store.lock, lake_lock(db.lake, "table:" + info.path):
        ds = store.dataset()
        latest = ds.version
        for p in parts:
            if p.fragments and not p.schema.equals(ds.schema):
                raise E.SerializationFailure(
                    "could not serialize access due to a concurrent change of the table's "
                    "columns", table=info.name)
        if key_parts:
            keys = pa.concat_tables(key_parts)
            db.writes.check_unique(info, keys, latest, set())
        try:
            lance.LanceDataset.commit(store.uri, lance.LanceOperation.Append(frags),
                                      read_version=latest,
                                      storage_options=db.lake.storage_options)
        except OSError as e:
            if "conflict" in str(e).lower() or "retry" in str(e).lower():
                raise E.SerializationFailure(
                    "could not serialize access due to a concurrent update") from e
            raise
        version = store.dataset().version
    metrics.COMMITS.inc()
    metrics.COMMITTED_TRANSACTIONS.inc()
    metrics.ROWS_WRITTEN.inc(rows)
    if maintain:
        db._maintain(info)  # compaction, key column index, search index folding
    return version


def commit_new_table(db: Database, session: Session, info: TableInfo,
                     parts: list[Fragments]) -> int:
    """Publish a new table with every part's rows in one catalog step; returns its version.

    ``session`` holds the open transaction whose ``CREATE TABLE`` made ``info`` (its dataset
    exists, no catalog entry lists it). The fragments are committed into that dataset first,
    which no reader can find yet, then the transaction's commit publishes the catalog entry:
    the table appears with all of its rows at once. On any error the dataset is removed and
    nothing is published (42P07 if another server created the name meanwhile)."""
    try:
        version = commit_fragments(db, info, parts, maintain=False)
        session.commit()  # the catalog entry: the only step readers can see
    except BaseException:
        if session.in_transaction:
            session.rollback()  # ROLLBACK of CREATE TABLE removes the dataset
        else:  # the catalog step itself failed (42P07: the name was taken meanwhile)
            listed = db.catalog.find_table(info.workspace, info.name)
            if listed is None or listed.path != info.path:
                db.forget_store(info)  # unlisted: nobody else can be using it
        raise
    created = db.catalog.find_table(info.workspace, info.name)
    if created is not None:
        db._maintain(created)  # compaction, key column index, search index folding
    return version
