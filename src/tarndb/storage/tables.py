"""Lance datasets that hold table rows.

Each row carries a hidden ``__rid`` (int64, unique within the table, kept across UPDATE) so
that UPDATE and DELETE can name rows independently of Lance's physical row addresses, which
change under compaction.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, cast

import lance
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import SerializationFailure
from .lake import Lake
from .lakelock import lake_lock
from .latest import LatestVersion
from .wal import FOLD_PROPERTY, WAL_DIR, TableWal, WalFile, WalRecord

RID = "__rid"
log = logging.getLogger(__name__)

# Lance file format of new tables. 2.0 over the default 2.2, measured on this machine with
# 384-d float4[] (list<float32>) rows, 100k rows, same run: writes 2.7x, full scans of the
# vector column 2.3x, 100-row takes 3x and filtered scans 3x faster (2.1+ encodes variable
# lists as "mini-blocks", costly for long lists of floats). Existing tables keep their format.
DATA_STORAGE_VERSION: Literal["2.0"] = "2.0"
#: Changes that replace or delete at most this many rows are committed fragment by fragment
#: (TableStore._rewrite); bigger ones by one merge on ``__rid``.
REWRITE_MAX_ROWS = 4096
# Compact when a table has this many fragments; single-row inserts each add one.
COMPACT_AT_FRAGMENTS = 64
# With a retention set, old versions are dropped at most this often per table and process
# (listing versions costs a read per manifest) and after every compaction.
RETENTION_EVERY_S = 3600.0


class TableStore:
    """Read and commit rows of one table's Lance dataset."""

    def __init__(self, lake: Lake, path: str, wal: bool = True) -> None:
        self.lake = lake
        self.path = path
        self.uri = lake.uri_for(path)
        self.lock = threading.RLock()  # serialises this process's commits to the table
        self._ds: lance.LanceDataset | None = None
        #: per thread: ``.ds``, the dataset object of that thread's last overlay() read
        #: (see _read_dataset)
        self._reads = threading.local()
        #: committed rows not yet in Lance (storage/wal.py); local lakes only
        self.wal: TableWal | None = None
        local = None
        if lake.is_local:
            local = self.uri[len("file://"):] if self.uri.startswith("file://") else self.uri
        if wal and local is not None:
            self.wal = TableWal(os.path.join(local, WAL_DIR))
        #: the latest Lance version without listing every version each time (local disks)
        self._latest = LatestVersion(os.path.join(local, "_versions") if local else None)
        #: called after a fold, under the table's locks, with (version before, version
        #: after, the rows folded, the rids removed): the write path brings its key indexes
        #: and its record of changed rows along
        #: (version before, after, rows added, rids removed, rids whose later log records
        #: the key indexes already hold): a fold published the log's changes
        self.on_fold: Callable[[int, int, pa.Table, set[int], set[int]], None] | None = None
        #: called after a read folded the log (the engine's after-commit maintenance)
        self.after_fold: Callable[[], None] | None = None
        #: when this server's oldest unfolded append was made (monotonic), or None
        self.pending_since: float | None = None
        #: this server's unfolded log records, collapsed: the rows they add (the newest
        #: version of each rid) and the rids whose Lance rows they hide (see overlay())
        self._overlay_rows: pa.Table | None = None
        self._overlay_hidden: set[int] = set()
        #: rids removed by this server's unfolded records (bounds a fold's deletions)
        self.pending_removed = 0
        #: numbers this server's log records in order (never reset): a read of the overlay
        #: saw every record up to the number it took (engine/commit.py's change checks)
        self.wal_seq = 0
        #: rid -> number of the newest unfolded record of this server that removed it
        self._pending_touch: dict[int, int] = {}
        #: folds this process made (the write path notices one made during validation)
        self.folds = 0
        #: one fold at a time per table and process (see fold())
        self._folding = threading.Lock()
        #: rids this server's records touched since its log file was rotated for a fold
        self._since_rotation: set[int] | None = None
        #: Drop untagged versions older than this after commits (None: keep them all).
        self.retention: timedelta | None = None
        #: commits this process made to the table (paces maintenance)
        self.commits = 0
        self._retained_at = float("-inf")

    @property
    def _opts(self) -> dict[str, str]:
        return self.lake.storage_options

    def create(self, schema: pa.Schema) -> None:
        empty = pa.table({f.name: pa.array([], f.type) for f in schema}, schema=schema)
        # Stable row ids give every row its last-updated version, which the commit protocol
        # reads to find rows another server changed (engine/commit.py).
        self._ds = lance.write_dataset(empty, self.uri, mode="overwrite",
                                       storage_options=self._opts, enable_stable_row_ids=True,
                                       data_storage_version=DATA_STORAGE_VERSION)

    def dataset(self, version: int | None = None, fold: bool = True) -> lance.LanceDataset:
        """The dataset at ``version``, or the latest committed one: with every row of the
        write-ahead log folded in first, unless ``fold`` is False (the write path's own
        reads, which account for the log themselves).

        Every call returns its own dataset object (a checkout is microseconds and shares the
        open session's caches): Lance objects must not be used from two threads at once.
        """
        if version is None and fold and self.wal_pending() and \
                self.fold() is not None and self.after_fold is not None:
            self.after_fold()
        with self.lock:
            ds = self._ds
            if ds is None:
                ds = self._ds = lance.dataset(self.uri, storage_options=self._opts)
            target = version if version is not None else self._latest_of(ds)
            if version is None and target != ds.version:
                ds = self._ds = ds.checkout_version(target)
            return ds.checkout_version(target)

    def lance_version(self, fresh: bool = True) -> int:
        """The latest Lance version, without folding the write-ahead log. ``fresh=False``:
        the newest this process has seen, without listing the lake (for a statement's early
        checks, which COMMIT repeats at the newest version)."""
        with self.lock:
            ds = self._ds
            if ds is None:
                ds = self._ds = lance.dataset(self.uri, storage_options=self._opts)
            elif not fresh:
                return int(ds.version)
            return self._latest_of(ds)

    def _latest_of(self, ds: lance.LanceDataset) -> int:
        return self._latest.latest(lambda: int(ds.latest_version))

    def wal_pending(self) -> bool:
        return self.wal is not None and bool(self.wal.files())

    def append_wal(self, rows: pa.Table, version: int, removed: list[int] | None = None
                   ) -> None:
        """Log one validated commit's rows, in the table's columns, validated at Lance
        ``version`` (the caller holds the table's lock and lake lock): the rids it
        ``removed`` (deleted rows, and the old versions of updated ones) and the rows it
        adds. Durable when this returns, visible to every read from now on."""
        assert self.wal is not None
        gone = np.asarray(removed or [], dtype=np.int64)
        if self._overlay_rows is not None and not self.wal.own_alive():
            self._drop_overlay()  # another server folded our records into Lance
        self.wal.append(rows, version, gone)
        self.wal_seq += 1
        for r in gone.tolist():
            self._pending_touch[r] = self.wal_seq
        if self.pending_since is None:
            self.pending_since = time.monotonic()
        self.pending_removed += int(gone.size)
        # The overlay: later records win, rows a record removes go.
        ov = self._overlay_rows
        if ov is not None and gone.size:
            ov = _without_rids(ov, gone)
        if rows.num_rows:
            ov = rows if ov is None or not ov.num_rows else pa.concat_tables([ov, rows])
            if ov.column(0).num_chunks > 32:  # filters cost per chunk
                ov = ov.combine_chunks()
        self._overlay_rows = ov if ov is not None else rows.slice(0, 0)
        self._overlay_hidden.update(gone.tolist())
        self._overlay_hidden.update(rows.column(RID).to_pylist())
        if self._since_rotation is not None:
            self._since_rotation.update(gone.tolist())
            self._since_rotation.update(rows.column(RID).to_pylist())

    def _drop_overlay(self) -> None:
        self._overlay_rows = None
        self._overlay_hidden = set()
        self.pending_removed = 0
        self._pending_touch = {}

    def pending_touches(self) -> dict[int, int]:
        """rid -> record number of the rows this server's unfolded log records removed or
        replaced (empty once another server folded them: then they are Lance versions)."""
        touch = self._pending_touch
        if touch and self.wal is not None and not self.wal.own_alive():
            with self.lock:
                if self._pending_touch is touch and not self.wal.own_alive():
                    self._drop_overlay()
            return {}
        return touch

    def overlay(self) -> tuple[lance.LanceDataset, pa.Table | None, set[int], int] | None:
        """The newest rows without a fold: the latest Lance dataset, this server's unfolded
        logged rows, the rids whose Lance rows those records replace or delete, and the
        number of the last record (:attr:`wal_seq`). A read
        of the Lance rows minus the hidden rids, plus the logged rows, is the table as of
        now (a merge on read). None when another server has records in the log (or folded
        ours away): then only a fold gives every acknowledged row.

        A key lookup of a row that many writers update (a counter) then costs no Lance
        commit; everything else folds (:meth:`dataset`)."""
        wal = self.wal
        if wal is None:
            return None
        with self.lock:
            # The version first: a server that folds our records removes our file before
            # it commits anything else, so a file still there now means the rows of
            # ``ds`` are at most that fold (which holds the same rows as the overlay).
            ds = self._read_dataset()
            names = wal.files()
            if names and not all(wal.is_own(n) for n in names):
                return None
            if self._overlay_rows is not None and not wal.own_alive():
                self._drop_overlay()  # another server folded our records into Lance:
                ds = self.dataset(fold=False)  # read the version that holds them
            if self._overlay_rows is None or not names:
                return ds, None, set(), self.wal_seq
            return ds, self._overlay_rows, set(self._overlay_hidden), self.wal_seq

    def _read_dataset(self) -> lance.LanceDataset:
        """What ``dataset(fold=False)`` gives (the caller holds :attr:`lock`): the latest
        committed version, found again on every call (the manifest probe that shows another
        server's commit), but as the same object as this thread's last read while that is
        still the version. A checkout made a new Lance dataset object per key lookup, and
        making and dropping it cost about a sixth of the lookup. Only :meth:`overlay`'s
        readers (key lookups, scans) get it, and they only read it; a thread's own object
        is never used by another thread (which is why :meth:`dataset` gives every call its
        own)."""
        ds = self._ds
        if ds is None:
            return self.dataset(fold=False)
        target = self._latest_of(ds)
        kept = getattr(self._reads, "ds", None)
        if kept is not None and kept.version == target:
            return kept
        if target != ds.version:
            ds = self._ds = ds.checkout_version(target)
        mine = self._reads.ds = ds.checkout_version(target)
        return mine

    def fold(self, complete: bool = True) -> int | None:
        """Move every server's logged rows into the Lance dataset; returns the new version
        (None when there was nothing to fold). ``complete``: every row logged before the
        call is in Lance on return (a read's fold); else rows logged while this fold wrote
        may wait for the next one (the background fold)."""
        wal = self.wal
        if wal is None:
            return None
        if self._lock_is_mine():
            # Under the table's lock (a commit, an ALTER, a key index built afresh): fold at
            # once. A fold writing its rows on another thread finds its file folded when it
            # comes back, and drops its work. (Waiting for it here would deadlock: it needs
            # this lock to finish.)
            return self._fold_all()
        with self._folding:
            # The files are decoded before any lock is taken; each step below reads only
            # what was appended since.
            ahead = self._read_ahead()
            done = self._fold_own(ahead)
            if done is None:
                return self._fold_all(ahead)
            if complete and wal.files():  # logged while the rows were written
                return self._fold_all() or (done if done >= 0 else None)
            return done if done >= 0 else None

    def _lock_is_mine(self) -> bool:
        owned = getattr(self.lock, "_is_owned", None)
        return bool(owned()) if owned is not None else True

    def _fold_own(self, ahead: dict[str, WalFile]) -> int | None:
        """The common fold, in three steps, so that writers (a hot row's above all) are not
        held up by the data write: when the log is this server's own file, rotate the file
        under the table's locks (later commits append to a new one); without the locks,
        write its rows as Lance fragments and its removals as deletion files; then, under
        the locks again, commit them unless another server folded the file meanwhile or,
        for a file with removals, the table got a version meanwhile (then the careful fold
        does it all). Returns the new version, -1 when there was nothing to fold, None when
        the log is not of that kind (fold it all at once)."""
        wal = self.wal
        assert wal is not None
        with self.lock, lake_lock(self.lake, "table:" + self.path):
            names = wal.files()
            if not names:
                self.pending_since = None
                return -1
            if wal.own_name is None or names != [wal.own_name]:
                return None
            ds = self.dataset(fold=False)
            f = wal.read(names[0], ahead.get(names[0]))
            if f is None or not f.records:
                return None
            done = self._folded_offset(ds, f.name, f.base)
            if done is None or done > 0:
                return None  # an earlier fold was cut short: the careful way
            wal.rotate()
            self._since_rotation = set()
            rotated_at, rotated_seq = time.monotonic(), self.wal_seq
            rotated_removed = self.pending_removed
        try:
            parts, removed = _collapse(f.records, ds.schema)
            rows = pa.concat_tables(parts) if parts else None
            if rows is not None and rows.num_rows:
                rows = rows.take(pa.array(range(rows.num_rows), pa.int64()))  # see _fold_all
            else:
                rows = None
            # Past REWRITE_MAX_ROWS the careful fold deletes by filter and appends instead.
            staged = self._stage_rewrite(ds, rows, removed, set()) \
                if len(removed) <= REWRITE_MAX_ROWS else None
        except BaseException:
            with self.lock:
                self._since_rotation = None
            raise
        with self.lock, lake_lock(self.lake, "table:" + self.path):
            since, self._since_rotation = self._since_rotation or set(), None
            if not os.path.exists(os.path.join(wal.dir, f.name)):
                # Folded meanwhile: by this process (under the table's lock), or by another
                # server, with every file of ours it found. Then the overlay is stale unless
                # a file of ours was started since (the append that started it dropped the
                # stale overlay: own_alive() was False).
                if wal.forget(f.name) and not wal.current_alive():
                    self._drop_overlay()
                return -1
            latest = self.dataset(fold=False)
            if staged is None or not latest.schema.equals(ds.schema) or (
                    removed and latest.version != ds.version):
                staged = None  # rows located in ``ds`` may have moved: fold it all below
            else:
                before = latest.version
                props = {FOLD_PROPERTY: json.dumps({f.name: f.records[-1].end})}
                self._ds = self._publish_rewrite(latest, staged, props)
                after = self._ds.version
                self.folds += 1
                if self.on_fold is not None:
                    empty = rows if rows is not None else ds.schema.empty_table()
                    self.on_fold(before, after, empty, removed, since)
                wal.remove([f.name])
                self._after_rotated_fold(rows, removed, since, rotated_seq, rotated_removed)
                if wal.own_name is None:
                    self._drop_overlay()
                    self.pending_since = None
                else:
                    self.pending_since = rotated_at
                return after
        return self._fold_all({f.name: f})

    def _after_rotated_fold(self, rows: pa.Table | None, removed: set[int], since: set[int],
                            rotated_seq: int, rotated_removed: int) -> None:
        """The overlay keeps what records logged after the rotation wrote; what the folded
        file wrote is in Lance now. A rid touched since (``since``) keeps its overlay row
        and stays hidden: its Lance row is the folded, older version."""
        folded = set(rows.column(RID).to_pylist()) if rows is not None else set()
        folded = (folded | removed) - since
        ov = self._overlay_rows
        if ov is not None and folded:
            ov = _without_rids(ov, np.fromiter(folded, np.int64, len(folded)))
            self._overlay_rows = ov  # (the caller drops it when no file of ours is left)
        self._overlay_hidden -= folded
        self._pending_touch = {r: q for r, q in self._pending_touch.items() if q > rotated_seq}
        self.pending_removed = max(0, self.pending_removed - rotated_removed)

    def _read_ahead(self) -> dict[str, WalFile]:
        """The log files' records decoded without the table's locks (writers of a hot row
        wait for them while a fold holds them): the fold then decodes only what was
        appended since. A record being appended meanwhile is a torn tail here, read then."""
        wal = self.wal
        assert wal is not None
        out: dict[str, WalFile] = {}
        for name in wal.files():
            f = wal.read(name)
            if f is not None:
                out[name] = f
        return out

    def _fold_all(self, ahead: dict[str, WalFile] | None = None) -> int | None:
        wal = self.wal
        assert wal is not None
        ahead = ahead or {}
        with self.lock, lake_lock(self.lake, "table:" + self.path):
            names = wal.files()
            if not names:
                self.pending_since = None
                return None
            ds = self.dataset(fold=False)
            before = ds.version
            records: list[WalRecord] = []
            folded: dict[str, int] = {}
            for name in names:
                f = wal.read(name, ahead.get(name))
                if f is None or not f.records:
                    folded[name] = 0
                    continue
                done = self._folded_offset(ds, name, f.base)
                if done is None:  # the record of earlier folds is gone: ask the rows
                    # Insert records whose first row is in Lance were folded. Records that
                    # remove rows are applied again: removing a row's new version and
                    # adding it again leaves the same rows (nothing else wrote the table in
                    # between: every writer and reader folds first).
                    present = self._present_rids(ds, [r.rows.column(RID)[0].as_py()
                                                      for r in f.records if r.rows.num_rows
                                                      and not r.removed.size])
                    recs = [r for r in f.records if r.removed.size or (
                        r.rows.num_rows and r.rows.column(RID)[0].as_py() not in present)]
                else:
                    recs = [r for r in f.records if r.end > done]
                records.extend(recs)
                folded[name] = f.records[-1].end
            # In order: a record's removals apply to the rows earlier records added.
            parts, removed = _collapse(records, ds.schema)
            after = before
            rows = pa.concat_tables(parts) if parts else None
            if rows is not None and rows.num_rows:
                # A copy into buffers of Arrow's own allocator: buffers read from the log
                # are only 8-byte aligned, and Lance (arrow-rs) panics on a 128-bit column
                # that is not 16-byte aligned.
                rows = rows.take(pa.array(range(rows.num_rows), pa.int64()))
            else:
                rows = None
            props = {FOLD_PROPERTY: json.dumps(folded)}
            if removed:
                self._ds = self._fold_changes(ds, rows, removed, props)
            elif rows is not None:
                self._ds = lance.write_dataset(
                    rows, ds, mode="append", storage_options=self._opts,
                    transaction_properties=props)
            if removed or rows is not None:
                assert self._ds is not None
                after = self._ds.version
                self.folds += 1
                if self.on_fold is not None:
                    empty = pa.table({f.name: pa.array([], f.type) for f in ds.schema},
                                     schema=ds.schema)
                    self.on_fold(before, after, rows if rows is not None else empty, removed,
                                 set())
            wal.remove(names)
            self.pending_since = None
            self._drop_overlay()
            return after if after != before else None

    def _fold_changes(self, ds: lance.LanceDataset, rows: pa.Table | None, removed: set[int],
                      props: dict[str, str]) -> lance.LanceDataset:
        """Publish a fold that removes rows: the live Lance rows with the removed rids (and
        with the rids of ``rows``, the new versions of updated rows) go, ``rows`` come."""
        # An updated row's record removed its rid before adding it again: ``removed`` names
        # every Lance row that goes.
        if len(removed) <= REWRITE_MAX_ROWS:
            done = self._rewrite(ds, rows, removed, set(), props)
            if done is not None:
                return done
        # Two commits; a crash between them leaves the log to be folded again, which
        # removes nothing more and adds the rows (see fold()).
        ds.delete(_rid_filter(sorted(removed)))
        ds = lance.dataset(self.uri, storage_options=self._opts)
        if rows is None:
            rows = pa.table({f.name: pa.array([], f.type) for f in ds.schema},
                            schema=ds.schema)
        return lance.write_dataset(rows, ds, mode="append", storage_options=self._opts,
                                   transaction_properties=props)

    @staticmethod
    def _folded_offset(ds: lance.LanceDataset, name: str, base: int) -> int | None:
        """How far earlier folds (versions after ``base``) folded log file ``name``; None
        when a version's record cannot be read (removed by retention)."""
        done = 0
        for v in range(base + 1, ds.version + 1):
            try:
                tx = ds.read_transaction(v)
            except Exception:  # noqa: BLE001 - cleaned up
                return None
            props = getattr(tx, "transaction_properties", None) or {}
            if FOLD_PROPERTY in props:
                done = max(done, int(json.loads(props[FOLD_PROPERTY]).get(name, 0)))
        return done

    @staticmethod
    def _present_rids(ds: lance.LanceDataset, rids: list[int]) -> set[int]:
        if not rids:
            return set()
        t = ds.to_table(columns=[RID], filter=_rid_filter(rids))
        return set(pc.unique(t.column(RID)).to_pylist())

    def commit(self, added: pa.Table | None, removed: list[int] | None) -> int:
        """Publish one transaction's changes to this table in one Lance commit.

        ``added`` rows (with ``__rid``) replace rows of the same rid and insert the rest;
        ``removed`` rids that are not in ``added`` are deleted. Returns the published version.
        Only the write path (engine/commit.py) calls this, after validating the changes.
        """
        with self.lock:
            ds = self.dataset(fold=False)
            added_rids: set[int] = set()
            if added is not None and added.num_rows:
                added = conform_rows(added, ds.schema)
                added_rids = set(added.column(RID).to_pylist()) if removed else set()
            deletes = [r for r in (removed or []) if r not in added_rids]
            try:
                if added is not None and added.num_rows and not removed:
                    ds = lance.write_dataset(added, ds, mode="append",
                                             storage_options=self._opts)
                    self._ds = ds  # the dataset at the version just written
                    return ds.version
                if len(added_rids) + len(removed or []) <= REWRITE_MAX_ROWS:
                    done = self._rewrite(ds, added, set(removed or []), added_rids)
                    if done is not None:
                        self._ds = done
                        return done.version
                if added is not None and added.num_rows:
                    builder = (ds.merge_insert(RID).when_matched_update_all()
                               .when_not_matched_insert_all())
                    if deletes:
                        builder = builder.when_not_matched_by_source_delete(_rid_filter(deletes))
                    builder.execute(added)
                elif deletes:
                    ds.delete(_rid_filter(deletes))
            except OSError as e:
                if "conflict" in str(e).lower() or "retry" in str(e).lower():
                    raise SerializationFailure(
                        "could not serialize access due to a concurrent update") from e
                raise
            self._ds = None
            return self.lance_version()

    def _rewrite(self, ds: lance.LanceDataset, added: pa.Table | None, removed: set[int],
                 added_rids: set[int], properties: dict[str, str] | None = None
                 ) -> lance.LanceDataset | None:
        """Delete the rows ``removed`` and add ``added`` (which replace live rows of the same
        rid) in one Lance Update: a deletion in each fragment that holds one of the rows
        that go, by Lance row id, and the new rows as new fragments. A merge on ``__rid``
        reads the ``__rid`` of every row instead (30-60 ms at 1M rows, against ~3 ms).

        None when the rows cannot be located exactly (the caller merges instead): the
        deletion count of each fragment must grow by exactly the rows asked, or nothing is
        committed."""
        staged = self._stage_rewrite(ds, added, removed, added_rids)
        return None if staged is None else self._publish_rewrite(ds, staged, properties)

    def _stage_rewrite(self, ds: lance.LanceDataset, added: pa.Table | None, removed: set[int],
                       added_rids: set[int]) -> _Staged | None:
        """:meth:`_rewrite`'s files, written but not committed: the fragments' new deletion
        files and the new rows' fragments (a fold writes them without the table's locks)."""
        from lance import LanceOperation
        from lance.fragment import write_fragments

        from . import rowmap

        # Rids that are not live are rows the transaction added and removed itself (a merge
        # leaves them alone too). The row map mirrors each fragment exactly: it is read
        # from Lance per fragment state, and carried over only for this process's own
        # deletions, whose counts are checked below.
        where = rowmap.locate(ds, sorted(removed | added_rids), partial=True)
        assert where is not None
        updated, removed_ids, carried = [], [], []
        for fid, (rids, ids) in where.items():
            frag = ds.get_fragment(fid)
            if frag is None:
                return None
            dfile = frag.metadata.deletion_file
            before = int(dfile.num_deleted_rows) if dfile else 0
            meta = frag.delete("_rowid IN (" + ",".join(str(int(i)) for i in ids) + ")")
            if meta is None:  # every row of it went
                if frag.count_rows() != ids.size:
                    return None
                removed_ids.append(fid)
                continue
            after = int(meta.deletion_file.num_deleted_rows) if meta.deletion_file else 0
            if after - before != ids.size:
                return None
            updated.append(meta)
            carried.append((fid, before, after, rids))
        new: list[Any] = []
        if added is not None and added.num_rows:
            new = write_fragments(added, ds.uri, schema=ds.schema,
                                  data_storage_version=ds.data_storage_version,
                                  storage_options=self._opts)
        if not updated and not removed_ids:
            # Rows added only: an Append, which commits on top of any version after ``ds``
            # (the folding of inserts relies on it).
            return _Staged(LanceOperation.Append(new), [], added)
        op = LanceOperation.Update(removed_fragment_ids=removed_ids,
                                   updated_fragments=updated, new_fragments=new)
        return _Staged(op, carried, added)

    def _publish_rewrite(self, ds: lance.LanceDataset, staged: _Staged,
                         properties: dict[str, str] | None = None) -> lance.LanceDataset:
        """Commit a staged rewrite on top of ``ds`` (the version its rows were located in,
        unless it only appends) and keep the row map in step."""
        from . import rowmap

        out = lance.LanceDataset.commit(
            ds.uri, lance.Transaction(ds.version, staged.op,
                                      transaction_properties=properties or {}),
            read_version=ds.version, storage_options=self._opts)
        for fid, before, after, rids in staged.carried:
            rowmap.note_deleted(ds.uri, fid, before, after, rids)
        added = staged.added
        if added is not None and added.num_rows:
            # The new fragments' ids are assigned by the commit: those ``ds`` did not have.
            before_ids = {int(f.fragment_id) for f in ds.get_fragments()}
            new_ids = sorted(int(f.fragment_id) for f in out.get_fragments()
                             if int(f.fragment_id) not in before_ids)
            rowmap.note_written(out, new_ids, added.column(RID).to_numpy().astype("int64"))
        return out

    def retention_due(self) -> bool:
        return self.retention is not None and \
            time.monotonic() - self._retained_at >= RETENTION_EVERY_S

    def needs_compaction(self) -> bool:
        return len(self.dataset().get_fragments()) >= COMPACT_AT_FRAGMENTS

    def maintain(self) -> list[int]:
        """Compaction and retention after commits; returns the versions it made (they keep
        every row)."""
        made: list[int] = []
        # Under the table's lake lock, as every commit: the versions between before and
        # after are then ours alone, and are reported as keeping every row. (Without it a
        # delete another server committed meanwhile was taken for one of them, and an
        # update of the deleted row then wrote it back.)
        with self.lock, lake_lock(self.lake, "table:" + self.path):
            before = self.dataset().version
            compacted = self.needs_compaction()
            if compacted:
                self.compact()
            if self.retention is not None and (
                    compacted or time.monotonic() - self._retained_at >= RETENTION_EVERY_S):
                self.apply_retention()
            after = self.dataset().version
            made.extend(range(before + 1, after + 1))
        return made

    def apply_retention(self) -> int:
        """Drop untagged versions older than the retention; returns how many went."""
        if self.retention is None:
            return 0
        with self.lock:
            self._retained_at = time.monotonic()
            try:
                stats = self.dataset().cleanup_old_versions(
                    older_than=self.retention, error_if_tagged_old_versions=False)
            except Exception:  # cleanup frees space; never fail a commit for it
                log.exception("version cleanup of %s failed", self.uri)
                return 0
            return int(getattr(stats, "old_versions", 0))

    def compact(self) -> None:
        with self.lock:
            try:
                ds = self.dataset()
                ds.optimize.compact_files()
                if self._scalar_indexed(ds):
                    self.dataset().optimize.optimize_indices()
            except Exception:  # compaction is an optimisation; never fail a commit for it
                log.exception("compaction of %s failed", self.uri)
            self._ds = None

    @staticmethod
    def _scalar_indexed(ds: lance.LanceDataset) -> set[str]:
        out: set[str] = set()
        for ix in ds.describe_indices():
            if getattr(ix, "index_type", "").upper() in ("BTREE", "BITMAP", "INVERTED") or \
                    "btree" in str(getattr(ix, "type_url", "")).lower():
                out.update(getattr(ix, "field_names", []) or [])
        return out

    def ensure_scalar_index(self, column: str) -> list[int]:
        """A BTREE index on a key column, so point lookups read a few pages, not the table.
        Rows appended later are found by scanning until compaction folds them in. Returns
        the versions it made (measured under the table's lock: they keep every row)."""
        with self.lock, lake_lock(self.lake, "table:" + self.path):  # see maintain()
            ds = self.dataset()
            before = ds.version
            try:
                indexed = self._scalar_indexed(ds)
                if column in indexed:
                    unindexed = ds.stats.index_stats(f"{column}_idx")["num_unindexed_rows"]
                    if unindexed > 50_000:
                        ds.optimize.optimize_indices()
                        self._ds = None
                elif ds.count_rows() > 0:
                    ds.create_scalar_index(column, "BTREE", name=f"{column}_idx")
                    self._ds = None
            except Exception:  # an index is an optimisation; never fail a commit for it
                log.exception("scalar index on %s.%s failed", self.uri, column)
            return list(range(before + 1, self.dataset().version + 1))

    def add_column(self, field: pa.Field) -> None:
        with self.lock:  # dataset() folds the log first: logged rows have the old columns
            self.dataset().add_columns(field)
            self._ds = None

    def add_computed_column(self, udf: Any, read_columns: list[str]) -> None:
        """A column whose values a Lance batch UDF computes from ``read_columns``."""
        with self.lock:  # dataset() folds the log first: logged rows have the old columns
            self.dataset().add_columns(udf, read_columns=read_columns)
            self._ds = None

    def drop_column(self, name: str) -> None:
        with self.lock:  # dataset() folds the log first: logged rows have the old columns
            self.dataset().drop_columns([name])
            self._ds = None

    def rename_column(self, old: str, new: str) -> None:
        with self.lock:  # dataset() folds the log first: logged rows have the old columns
            self.dataset().alter_columns(cast(Any, {"path": old, "name": new}))
            self._ds = None

    def drop(self) -> None:
        if self.wal is not None:
            self.wal.close()
        fs, base = self.lake.fs
        path = base + self.uri[len(self.lake.uri):]
        try:
            fs.delete_dir(path)
        except (FileNotFoundError, OSError):
            log.warning("could not remove %s", path)

    def info(self) -> dict[str, Any]:
        ds = self.dataset()
        return {"version": ds.version, "rows": ds.count_rows(),
                "fragments": len(ds.get_fragments())}


@dataclass
class _Staged:
    """A rewrite's files, written, waiting for their commit (TableStore._stage_rewrite)."""

    op: Any
    #: (fragment id, deleted rows before, after, the rids deleted) per fragment it deletes in
    carried: list[tuple[int, int, int, Any]]
    added: pa.Table | None


def _collapse(records: list[WalRecord], schema: pa.Schema) -> tuple[list[pa.Table], set[int]]:
    """Log records applied in order: the rows still live at the end (each rid's newest
    version, none of those a later record removed) and every rid the records removed."""
    last_removed: dict[int, int] = {}
    for i, r in enumerate(records):
        for rid in r.removed.tolist():
            last_removed[rid] = i
    parts: list[pa.Table] = []
    for i, r in enumerate(records):
        if not r.rows.num_rows:
            continue
        rows = r.rows
        if last_removed:
            rids = rows.column(RID).to_numpy()
            keep = np.fromiter((last_removed.get(int(x), -1) <= i for x in rids), bool,
                               rids.size)
            if not keep.all():
                rows = rows.filter(pa.array(keep))
        if rows.num_rows:
            parts.append(rows)
    if parts and all(p.schema.equals(parts[0].schema) for p in parts):
        parts = [pa.concat_tables(parts)]  # one conversion, not one per record
    return [conform_rows(p, schema) for p in parts], set(last_removed)


def _without_rids(rows: pa.Table, rids: np.ndarray) -> pa.Table:
    """``rows`` less those whose ``__rid`` is in ``rids``; with numpy, not Arrow's compute
    wrappers (tens of microseconds a call, and every update of a hot row comes here)."""
    if not rows.num_rows:
        return rows
    have = rows.column(RID).to_numpy()
    drop = have == rids[0] if rids.size == 1 else np.isin(have, rids)
    if drop.all():
        return rows.slice(0, 0)
    return rows.take(np.flatnonzero(~drop)) if drop.any() else rows


def conform_rows(added: pa.Table, schema: pa.Schema) -> pa.Table:
    """Rows in the dataset's column order and types; columns the writer did not know of
    (added by a transaction it did not see) are NULL."""
    if added.schema.equals(schema):
        return added  # the common case: the writer's rows as they are
    cols = []
    names = set(added.column_names)
    for f in schema:
        if f.name in names:
            col = added.column(f.name)
            cols.append(col if col.type == f.type else col.cast(f.type))
        else:
            cols.append(pa.nulls(added.num_rows, f.type))
    return pa.Table.from_arrays(cols, schema=schema)


def _rid_filter(rids: list[int]) -> str:
    return f"{RID} IN ({','.join(str(int(r)) for r in rids)})"
