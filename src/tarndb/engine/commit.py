"""The write path: every change to table rows reaches the lake through this module.

SQL over both protocols, HTTP batches, COPY, ingestion, memory and Deep Memory jobs all write
through a :class:`~tarndb.engine.session.Session`, whose transaction collects one
:class:`TableChange` per table and hands them to :meth:`WritePath.commit` at COMMIT.

The protocol, per table, is PostgreSQL's as far as a client can tell:

1. **Row locks while the transaction runs.** UPDATE, DELETE and ``SELECT ... FOR UPDATE``
   lock the rows they touch (:mod:`.locks`); a second writer of the same row waits for the
   first to end. When it gets the lock it checks whether the row changed after the version its
   statement read (:meth:`WritePath.changed_since`): under READ COMMITTED the statement is run
   again on the newest version (PostgreSQL re-checks the row and re-applies the change, so
   concurrent ``n = n + 1`` never loses an increment and a deleted row stays deleted); under
   REPEATABLE READ and SERIALIZABLE the transaction fails with 40001.
2. **Unique keys** (PRIMARY KEY, UNIQUE constraints and indexes) are checked against a key
   index (:class:`KeyIndex`: key -> ``__rid``, built once per table version and kept up to
   date by every commit of this process), never by scanning the table. An inserted key is
   locked until the inserting transaction ends, so a second inserter of the same key waits,
   then gets 23505 if the first committed.
3. **Validate, then publish, under one lake-wide lock** (:func:`~tarndb.storage.lakelock.
   lake_lock`): at COMMIT the rows the transaction changed are checked against every version
   published since it verified them — by this process (an in-memory log of the rids each
   version touched) or by another server on the same lake (Lance's transaction record for the
   version and the rows' ``_row_last_updated_at_version``) — and the new keys against the
   newest key index; only then is the Lance commit made. Another server's commit in between
   fails this one with 40001 (an autocommit statement under READ COMMITTED is run again).

Sequences (SERIAL, BIGSERIAL, IDENTITY) are blocks reserved in the catalog under the lake lock
``catalog`` (:meth:`~tarndb.engine.catalog.Catalog.reserve`), so servers never share values.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .. import errors as E
from .. import metrics
from ..storage.lakelock import lake_lock
from ..storage.tables import RID, TableStore, conform_rows
from .catalog import TableInfo
from .spill import SPILL_BYTES, spill

if TYPE_CHECKING:
    import lance

    from .database import Database

log = logging.getLogger(__name__)

#: Versions of a table whose touched rids this process remembers.
_LOG_VERSIONS = 4096
#: An update touching more rows than this is logged as "unknown rows".
_LOG_MAX_RIDS = 200_000
#: Statements inserting at most this many rows lock their keys (larger bulk loads are
#: checked at commit only, so a duplicate is reported by COMMIT).
KEY_LOCK_MAX_ROWS = 10_000
#: Commits up to this size go to the table's write-ahead log (storage/wal.py).
WAL_MAX_BYTES = 8 << 20
#: ... and removing (updating or deleting) at most this many rows, while the log's unfolded
#: records of this server remove at most WAL_MAX_PENDING_REMOVED (a fold then rewrites
#: fragment by fragment: storage/tables.py's REWRITE_MAX_ROWS).
WAL_MAX_REMOVED = 1024
WAL_MAX_PENDING_REMOVED = 4096
#: The record number of rows another server removed (never seen by a read of this one).
_FOREIGN = 1 << 62
#: Lance operations that never add, change or remove rows.
_ROW_PRESERVING = {"Rewrite", "CreateIndex", "UpdateConfig", "Project", "ReserveFragments",
                   "DataReplacement", "Clone", "UpdateMemWalState", "UpdateBases"}

_txn_ids = itertools.count(1)


def new_txn_id() -> int:
    return next(_txn_ids)


# -- constraints ----------------------------------------------------------------------------

@dataclass(frozen=True)
class UniqueKey:
    """A uniqueness rule of a table: a primary key, a UNIQUE constraint or a unique index."""

    name: str
    columns: tuple[str, ...]
    primary: bool = False


def unique_keys(info: TableInfo) -> list[UniqueKey]:
    out: list[UniqueKey] = []
    if info.primary_key:
        out.append(UniqueKey(f"{info.name}_pkey", tuple(info.primary_key), primary=True))
    for con in info.constraints:
        if con.get("type") in ("unique", "primary") and con.get("columns"):
            out.append(UniqueKey(con["name"], tuple(con["columns"])))
    for ix in info.indexes:
        if ix.index_type == "unique":
            out.append(UniqueKey(ix.name, tuple(ix.options.get("columns") or [ix.column])))
    return out


def _keys(rows: pa.Table, columns: tuple[str, ...]) -> list[Any]:
    """The key of every row: the value for one column, a tuple for several, None when any
    part is NULL (NULLs never collide, as in PostgreSQL)."""
    if len(columns) == 1:
        col = rows.column(columns[0])
        if pa.types.is_floating(col.type) or pa.types.is_integer(col.type) or \
                pa.types.is_string(col.type):
            return col.to_pylist()
        return [_hashable(v) for v in col.to_pylist()]
    parts = [rows.column(c).to_pylist() for c in columns]
    return [None if any(v is None for v in t) else tuple(_hashable(v) for v in t)
            for t in zip(*parts, strict=True)]


def _hashable(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((k, _hashable(x)) for k, x in v.items()))
    return v


def _fragment_delta(before: lance.LanceDataset, after: lance.LanceDataset, columns: list[str]
                    ) -> tuple[pa.Table | None, list[int]] | None:
    """What one version did to a table's rows, read from its fragments only: the rows (key
    ``columns`` and rids) of the fragments it added, and the rids of rows it removed (the
    rows of fragments it dropped, and of fragments whose deletions it changed). Another
    server's insert, update, delete or fold then costs the fragments it touched, not a scan
    of the table. None when reading the key column afresh is cheaper (one big fragment
    changed), or when a fragment kept its id but changed its data files (a column rewritten
    in place): the caller then builds the index again."""
    old = {f.fragment_id: f for f in before.get_fragments()}
    new = {f.fragment_id: f for f in after.get_fragments()}
    changed: list[tuple[Any, Any]] = []
    cost = 0  # rows to read
    for fid, f in old.items():
        g = new.get(fid)
        if g is None:
            cost += f.metadata.physical_rows
        elif [d.path for d in f.metadata.files] != [d.path for d in g.metadata.files]:
            return None
        elif f.deletion_file() != g.deletion_file():
            changed.append((f, g))
            cost += 2 * f.metadata.physical_rows
    added = [g for fid, g in new.items() if fid not in old]
    cost += sum(g.metadata.physical_rows for g in added)
    if cost > sum(g.metadata.physical_rows for g in new.values()):
        return None
    gone: list[int] = []
    for fid, f in old.items():
        if fid not in new:
            gone.extend(f.to_table(columns=[RID]).column(RID).to_pylist())
    for f, g in changed:
        was = f.to_table(columns=[RID]).column(RID).to_numpy()
        now = g.to_table(columns=[RID]).column(RID).to_numpy()
        gone.extend(_deleted_rids(was, now).tolist())
    rows = after.scanner(columns=columns + [RID], fragments=added).to_table() if added \
        else None
    return rows, gone


def _deleted_rids(was: np.ndarray, now: np.ndarray) -> np.ndarray:
    """The rids of ``was`` (a fragment's rows) missing from ``now`` (the same fragment after
    more deletions: the same rows in the same order, some gone). A few deletions are found by
    comparing the two in place, each a linear pass (a set difference sorts both)."""
    missing = len(was) - len(now)
    if 0 < missing <= 16:
        at: list[int] = []
        for _ in range(missing):
            shift = len(at)
            start = at[-1] + 1 - (shift - 1) if at else 0  # where the two last agreed
            differ = np.flatnonzero(was[start + shift:len(now) + shift] != now[start:])
            at.append(int(differ[0]) + start + shift if differ.size
                      else len(now) + shift)
        if np.array_equal(np.delete(was, at), now):
            return was[at]
    return np.setdiff1d(was, now, assume_unique=True)  # rids are unique


def unique_error(info: TableInfo, key: UniqueKey, value: Any) -> E.UniqueViolation:
    vals = value if isinstance(value, tuple) else (value,)
    return E.UniqueViolation(
        f'duplicate key value violates unique constraint "{key.name}"',
        detail=f"Key ({', '.join(key.columns)})=({', '.join(str(v) for v in vals)}) "
               "already exists.",
        table=info.name)


class KeyIndex:
    """Key -> ``__rid`` of one unique rule at one table version.

    A table's integer keys as they were when the index was built sit in two sorted numpy
    arrays (16 bytes a key; a dict of Python ints costs ~170 bytes a key); keys written since
    are in a dict, and base entries removed since in a set of rids. ``get(k)`` answers from
    both. The dict part is folded into the arrays when it grows large.
    """

    _FOLD_AT = 200_000

    def __init__(self, key: UniqueKey, version: int) -> None:
        self.key = key
        self.version = version
        self._base_keys = np.empty(0, np.int64)
        self._base_rids = np.empty(0, np.int64)
        self._base_gone: set[int] = set()
        self._keys: dict[Any, int] = {}
        self._rids: dict[int, Any] = {}

    def get(self, k: Any, default: Any = None) -> Any:
        rid = self._keys.get(k)
        if rid is not None:
            return rid
        if self._base_keys.size and isinstance(k, int) and not isinstance(k, bool) and \
                -(1 << 63) <= k < (1 << 63):
            i = int(np.searchsorted(self._base_keys, k))
            if i < self._base_keys.size and int(self._base_keys[i]) == k:
                found = int(self._base_rids[i])
                if found not in self._base_gone:
                    return found
        return default

    def load(self, rows: pa.Table) -> None:
        if self._bulk(rows):
            return
        for k, rid in zip(_keys(rows, self.key.columns), rows.column(RID).to_pylist(),
                          strict=True):
            if k is not None:
                self._keys[k] = rid
                self._rids[rid] = k
        if len(self._keys) + len(self._base_gone) > self._FOLD_AT:
            self._fold()

    def _bulk(self, rows: pa.Table) -> bool:
        """The first load of a single integer column goes straight into the arrays."""
        if len(self.key.columns) != 1 or self._base_keys.size or self._keys:
            return False
        col = rows.column(self.key.columns[0])
        if not pa.types.is_integer(col.type) or pa.types.is_uint64(col.type):
            return False
        valid = pc.is_valid(col)
        keys = pc.filter(col, valid).to_numpy().astype(np.int64)
        rids = pc.filter(rows.column(RID), valid).to_numpy().astype(np.int64)
        order = np.argsort(keys, kind="stable")
        self._base_keys, self._base_rids = keys[order], rids[order]
        return True

    def _fold(self) -> None:
        """Merge the dict part into the arrays (integer keys only; others stay in the dict)."""
        if not self._base_keys.size and not all(
                isinstance(k, int) and not isinstance(k, bool) for k in self._keys):
            return
        keep = ~np.isin(self._base_rids, np.fromiter(self._base_gone, np.int64,
                                                      len(self._base_gone)))
        ints = {k: r for k, r in self._keys.items()
                if isinstance(k, int) and not isinstance(k, bool) and -(1 << 63) <= k < (1 << 63)}
        keys = np.concatenate([self._base_keys[keep], np.fromiter(ints, np.int64, len(ints))])
        rids = np.concatenate([self._base_rids[keep],
                               np.fromiter(ints.values(), np.int64, len(ints))])
        order = np.argsort(keys, kind="stable")
        self._base_keys, self._base_rids = keys[order], rids[order]
        self._base_gone = set()
        for k in ints:
            self._rids.pop(self._keys.pop(k), None)

    def remove(self, rids: set[int] | list[int]) -> None:
        for rid in rids:
            k = self._rids.pop(rid, None)
            if k is not None and self._keys.get(k) == rid:
                del self._keys[k]
            # The row may be in the arrays too (loaded again after them: a folded log's rows
            # are loaded when they are logged and when they are folded).
            if self._base_keys.size:
                self._base_gone.add(rid)


# -- a transaction's changes ----------------------------------------------------------------


class TableChange:
    """A transaction's uncommitted changes to one table.

    Inserted rows are kept as the list of tables the statements added and joined only when
    someone reads them whole (``added``): a transaction of many single-row INSERTs (a
    pipeline, ``executemany``) then costs O(1) per statement, not O(rows so far).
    """

    def __init__(self, info: TableInfo, added: pa.Table | None = None,
                 removed: set[int] | None = None, base_version: int = -1,
                 verified: dict[int, int] | None = None) -> None:
        self.info = info
        self._parts: list[pa.Table] = [added] if added is not None else []
        self.num_added = added.num_rows if added is not None else 0
        self.removed: set[int] = removed if removed is not None else set()
        #: table version the transaction first saw (its snapshot under REPEATABLE READ)
        self.base_version = base_version
        #: rid -> the newest version at which the transaction checked that nobody else had
        #: changed the row since its statement read it
        self.verified: dict[int, int] = verified if verified is not None else {}
        #: rid -> the write-ahead log record number up to which that check saw this
        #: server's logged changes (absent: the check folded the log, as reads do)
        self.verified_seq: dict[int, int] = {}
        #: per unique rule: (parts covered, their key -> rid), grown as rows come
        self._key_cache: dict[UniqueKey, tuple[int, dict[Any, int]]] = {}
        #: where added rows past SPILL_BYTES go (engine/spill.py; None: they stay in memory)
        self.spill_dir: str | None = None
        #: the first ``_spilled`` parts are mapped from files; the rest are in memory and
        #: hold ``_in_memory`` bytes
        self._spilled = 0
        self._in_memory = 0
        #: parts are joined without copying (some are mapped from files: a group commit's
        #: merged change holding a spilled transaction's rows)
        self._keep_chunks = False

    @property
    def added(self) -> pa.Table | None:
        if not self._parts:
            return None
        n, first = len(self._parts), self._spilled
        if n - first > 1 and not self._keep_chunks:
            # The parts held in memory become one; spilled parts stay in their mapped files
            # (combining them would copy a COPY of many GB back into memory).
            self._parts[first:] = [pa.concat_tables(self._parts[first:]).combine_chunks()]
            # A cache that covered every part covers the joined ones; one that covered some
            # of the joined parts re-reads them.
            self._key_cache = {k: (covered if covered <= first else
                                   len(self._parts) if covered == n else first, keys)
                               for k, (covered, keys) in self._key_cache.items()}
        if len(self._parts) == 1:
            return self._parts[0]
        return pa.concat_tables(self._parts)  # zero-copy: the mapped chunks as they are

    @added.setter
    def added(self, rows: pa.Table | None) -> None:
        self._parts = [rows] if rows is not None else []
        self.num_added = rows.num_rows if rows is not None else 0
        self._spilled = 0
        self._key_cache.clear()
        self._in_memory = rows.get_total_buffer_size() \
            if rows is not None and self.spill_dir is not None else 0
        if self._in_memory > SPILL_BYTES:
            self._spill()

    @property
    def spilled(self) -> bool:
        """Whether some added rows are mapped from a file (engine/spill.py)."""
        return self._spilled > 0 or self._keep_chunks

    def add_rows(self, rows: pa.Table, mapped: bool = False) -> None:
        """Add inserted rows; ``mapped``: they are (partly) mapped from a file, and are
        never copied together with other parts."""
        if self._parts and not rows.schema.equals(self._parts[0].schema):
            rows = rows.cast(self._parts[0].schema)
        self._keep_chunks = self._keep_chunks or mapped
        self._parts.append(rows)
        n = rows.num_rows
        self.num_added += n
        if self.spill_dir is None:
            return
        # The buffers' sizes, not Table.nbytes (which works out what slices use: ~30 us even
        # for one row, where this is ~0.5 us, and single-row INSERTs are most commits).
        self._in_memory += rows.get_total_buffer_size()
        if self._in_memory > SPILL_BYTES:
            self._spill()

    def _spill(self) -> None:
        """Move the parts held in memory into one mapped file (engine/spill.py)."""
        assert self.spill_dir is not None
        first = self._spilled
        mapped = spill(pa.concat_tables(self._parts[first:]), self.spill_dir)
        self._parts[first:] = [mapped]
        self._spilled = first + 1
        self._in_memory = 0
        # Caches that covered parts now joined into the mapped one re-read them (adding the
        # same key -> rid pairs again is harmless).
        self._key_cache = {k: (min(covered, first), keys)
                           for k, (covered, keys) in self._key_cache.items()}

    def keys_of(self, key: UniqueKey) -> dict[Any, int]:
        """Key -> rid of the rows this transaction added (kept between statements, so a
        transaction of many small inserts does not re-read its own rows each time)."""
        if not self._parts:
            return {}
        covered, keys = self._key_cache.get(key, (0, {}))
        if covered < len(self._parts):
            for new in self._parts[covered:]:
                keys.update(zip(_keys(new, key.columns), new.column(RID).to_pylist(),
                                strict=True))
            keys.pop(None, None)
            self._key_cache[key] = (len(self._parts), keys)
        return keys

    def remove(self, rids: list[int]) -> None:
        if not rids:
            return
        added = self.added
        if added is not None and added.num_rows:
            mask = pc.is_in(added.column(RID), value_set=pa.array(rids, pa.int64()))
            self.added = added.filter(pc.invert(mask))  # clears the key cache
        self.removed.update(rids)

    def copy(self) -> TableChange:
        spilled = self.spilled
        out = TableChange(self.info, self.added, set(self.removed), self.base_version,
                          dict(self.verified))
        out.verified_seq = dict(self.verified_seq)
        out.spill_dir = self.spill_dir
        if spilled:  # the copy shares the mapped rows: they are not in memory twice
            out._spilled, out._in_memory = 1, 0
        return out

    @property
    def empty(self) -> bool:
        return self.num_added == 0 and not self.removed


# -- per-table state ------------------------------------------------------------------------

@dataclass
class _Request:
    """One transaction's change to a table, waiting in the table's group commit."""

    change: TableChange
    done: bool = False
    error: BaseException | None = None
    version: int | None = -1


class _TableState:
    def __init__(self) -> None:
        #: version -> rids it updated or deleted (None: not known)
        self.log: OrderedDict[int, frozenset[int] | None] = OrderedDict()
        #: fold version -> rid -> number of the log record that removed it (_FOREIGN for
        #: another server's records): a read of the overlay up to number n saw those <= n
        self.fold_seqs: dict[int, dict[int, int]] = {}
        self.indexes: dict[UniqueKey, KeyIndex] = {}
        #: versions this process made that keep every row (compaction, index builds)
        self.preserving: set[int] = set()
        self.lock = threading.RLock()
        # Group commit: committers queue here; one of them (the leader) publishes the queue.
        self.queue: list[_Request] = []
        self.leading = False
        self.turn = threading.Condition()
        #: (Lance version, its schema): a commit conforms its rows to the schema, and the
        #: version changes only with a fold or a Lance commit, while a logged commit asking
        #: the dataset for it costs a checkout and a schema conversion every time
        self.schema: tuple[int, pa.Schema] | None = None

    def record(self, version: int, touched: frozenset[int] | None) -> None:
        self.log[version] = touched
        while len(self.log) > _LOG_VERSIONS:
            old, _ = self.log.popitem(last=False)
            self.preserving.discard(old)
            self.fold_seqs.pop(old, None)


class WritePath:
    """Conflict checks, key indexes and publication for every table of one Database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._states: dict[str, _TableState] = {}
        self._lock = threading.Lock()
        self._ops: OrderedDict[tuple[str, int], str] = OrderedDict()

    def _state(self, info: TableInfo) -> _TableState:
        with self._lock:
            st = self._states.get(info.path)
            if st is None:
                st = self._states[info.path] = _TableState()
            return st

    def forget(self, info: TableInfo) -> None:
        with self._lock:
            self._states.pop(info.path, None)

    def drop_key_indexes(self, info: TableInfo) -> None:
        """Forget the table's key indexes (its key columns changed type): built again at
        their next use. The caller holds the table store's lock (the order key_index takes
        the two locks in)."""
        st = self._state(info)
        with st.lock:
            st.indexes.clear()

    def note_row_preserving(self, info: TableInfo, version: int) -> None:
        """A version this process made that keeps every row (compaction, an index build).
        Never overwrites what a commit recorded for the version."""
        st = self._state(info)
        if version not in st.log:
            st.record(version, frozenset())
            st.preserving.add(version)

    # -- change detection -----------------------------------------------------------------

    def _op_kind(self, info: TableInfo, version: int) -> str:
        key = (info.path, version)
        with self._lock:
            kind = self._ops.get(key)
        if kind is not None:
            return kind
        try:
            tx = self.db.store(info).dataset(fold=False).read_transaction(version)
            kind = type(tx.operation).__name__ if tx is not None else "Unknown"
        except Exception:  # noqa: BLE001 - a version whose record is gone: assume the worst
            kind = "Unknown"
        with self._lock:
            self._ops[key] = kind
            while len(self._ops) > 16384:
                self._ops.popitem(last=False)
        return kind

    def changed_since(self, info: TableInfo, version: int, rids: set[int] | list[int],
                      latest: int | None = None, seen: int | None = None) -> set[int]:
        """Which of ``rids`` were updated or deleted after a read at ``version``: by a later
        version up to ``latest``, or by this server's write-ahead log.

        ``seen``: the read was of the log's overlay (TableStore.overlay) up to that record
        number; None: the read folded the log first, as reads do, so every logged change
        that is not yet in a version it read came after it."""
        return self.changes_and_latest(info, version, rids, latest, seen)[0]

    def changes_and_latest(self, info: TableInfo, version: int, rids: set[int] | list[int],
                           latest: int | None = None, seen: int | None = None
                           ) -> tuple[set[int], int]:
        """:meth:`changed_since`, and the newest version it looked at (when the caller
        gives none, the newest read after the log: nothing between the two is missed)."""
        rids = set(rids)
        store = self.db.store(info)
        if not rids:
            return set(), latest if latest is not None else store.lance_version()
        # The log before the version: a fold moves changes from the one to the other, and
        # records them in the version's entry before it forgets them (TableStore.fold).
        touch = store.pending_touches()
        hit = {r for r in rids if touch.get(r, -1) > (seen if seen is not None else -1)} \
            if touch else set()
        if latest is None:
            latest = store.lance_version()
        if latest <= version:
            return hit, latest
        st = self._state(info)
        unknown = False
        for v in range(version + 1, latest + 1):
            touched = st.log.get(v, ...)
            if touched is ...:
                kind = self._op_kind(info, v)
                if kind in _ROW_PRESERVING or kind == "Append":
                    continue
                unknown = True
                continue
            if touched is None:
                unknown = True
            else:
                found = rids & touched
                seqs = st.fold_seqs.get(v)
                if found and seqs is not None and seen is not None:
                    found = {r for r in found if seqs.get(r, _FOREIGN) > seen}
                hit |= found
        if unknown:
            hit |= self._changed_in_lance(info, version, rids - hit, latest)
        return hit, latest

    def _changed_in_lance(self, info: TableInfo, version: int, rids: set[int], latest: int
                          ) -> set[int]:
        """Rows changed after ``version`` by writers this process has no record of."""
        if not rids:
            return set()
        ds = self.db.store(info).dataset(latest)
        flt = f"{RID} IN ({','.join(str(int(r)) for r in rids)})"
        try:
            t = ds.to_table(columns=[RID, "_row_last_updated_at_version"], filter=flt)
        except Exception:  # noqa: BLE001 - no stable row ids (an older table): assume all
            return set(rids)
        present = t.column(RID).to_pylist()
        updated = t.column("_row_last_updated_at_version").to_pylist()
        out = rids - set(present)  # deleted
        out |= {r for r, u in zip(present, updated, strict=True) if u is not None and u > version}
        return out

    # -- unique keys --------------------------------------------------------------------------

    def key_index(self, info: TableInfo, key: UniqueKey, version: int) -> KeyIndex:
        """The key index of ``key`` at table version ``version`` (the newest, normally)."""
        st = self._state(info)
        store = self.db.store(info)
        # Lock order: the table store's lock, then this state's (commits hold the first).
        with store.lock, st.lock:
            ix = st.indexes.get(key)
            if ix is not None and ix.version > version:
                # A commit of this process moved the shared index past the caller's
                # snapshot: never replace it with an older one (later catch-ups would skip
                # the keys that commit added). A newer index is at least as strict for a
                # statement's early check, and COMMIT checks again at the newest version.
                return ix
            if ix is not None and ix.version != version:
                ix = self._catch_up(info, st, ix, version)
            if ix is None:
                if store.wal_pending():
                    # Built from Lance alone, the index would miss the logged rows' keys.
                    store.fold()
                # Built at the newest version: a caller's version may be one this process
                # saw before its own later commits (a statement's early check), and an index
                # built there would hold keys those commits deleted.
                version = max(version, store.lance_version())
                ix = KeyIndex(key, version)
                ds = store.dataset(version)
                cols = list(key.columns)
                present = set(ds.schema.names)
                if all(c in present for c in cols):
                    ix.load(ds.to_table(columns=cols + [RID]))
                st.indexes[key] = ix
            return ix

    def _catch_up(self, info: TableInfo, st: _TableState, ix: KeyIndex, version: int
                  ) -> KeyIndex | None:
        """Bring an index forward through versions it did not see (None: rebuild)."""
        if version < ix.version:
            return None
        store = self.db.store(info)
        for v in range(ix.version + 1, version + 1):
            # Every version is read for what it did (an Append's new fragments), this
            # process's commits included: an index built after one of them never had that
            # commit's delta applied.
            if v in st.preserving:
                continue
            kind = self._op_kind(info, v)
            if kind in _ROW_PRESERVING:
                continue
            try:
                delta = _fragment_delta(store.dataset(v - 1), store.dataset(v),
                                        list(ix.key.columns))
            except Exception:  # noqa: BLE001 - an unreadable version: build afresh
                return None
            if delta is None:
                return None
            rows, gone = delta
            ix.remove(gone)  # first: an updated row may keep its rid in its new version
            if rows is not None:
                ix.load(rows)
        ix.version = version
        return ix

    def check_unique(self, info: TableInfo, rows: pa.Table, version: int,
                     excluded: set[int], pending: TableChange | None = None) -> None:
        """Raise 23505 if a key of ``rows`` is taken at ``version`` by a row other than
        those in ``excluded`` (rows the writer replaces or deleted), or by the writer's own
        pending rows, or twice within ``rows``."""
        own = set(rows.column(RID).to_pylist()) if RID in rows.column_names else set()
        for key in unique_keys(info):
            if any(rows.schema.get_field_index(c) < 0 for c in key.columns):
                continue
            keys = _keys(rows, key.columns)
            seen: set[Any] = set()
            for k in keys:
                if k is None:
                    continue
                if k in seen:
                    raise unique_error(info, key, k)
                seen.add(k)
            ix = self.key_index(info, key, version)
            for k in seen:
                holder = ix.get(k)
                if holder is not None and holder not in excluded and holder not in own:
                    raise unique_error(info, key, k)
            if pending is not None and pending.num_added:
                pend = pending.keys_of(key)
                for k in seen:
                    holder = pend.get(k)
                    if holder is not None and holder not in own and holder not in excluded:
                        raise unique_error(info, key, k)

    def key_lock_names(self, info: TableInfo, rows: pa.Table) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for key in unique_keys(info):
            if any(rows.schema.get_field_index(c) < 0 for c in key.columns):
                continue
            out.extend((info.path, key.name, k) for k in _keys(rows, key.columns)
                       if k is not None)
        return out

    # -- commit ---------------------------------------------------------------------------------

    def commit(self, changes: list[TableChange]) -> list[tuple[TableInfo, int | None]]:
        """Validate and publish each table's changes; returns (table, new version) pairs,
        the version None where the rows went to the table's write-ahead log.

        Raises 40001 when a row the transaction changed was changed by another server after
        the transaction checked it, and 23505 when a key was taken meanwhile.

        Commits to one table are grouped: transactions that reach COMMIT while another one
        is publishing queue up, and the next of them publishes the whole queue in one Lance
        commit, each change validated on its own (a failing one gets its error, the others
        go ahead). Many writers thus share the cost of a commit instead of queueing for it.
        """
        published: list[tuple[TableInfo, int | None]] = []
        for ch in sorted(changes, key=lambda c: c.info.path):
            if ch.empty:
                continue
            published.append((ch.info, self._group_commit(ch)))
        return published

    def _group_commit(self, ch: TableChange) -> int | None:
        st = self._state(ch.info)
        req = _Request(ch)
        with st.turn:
            st.queue.append(req)
            while st.leading and not req.done:
                st.turn.wait()
            if not req.done:
                st.leading = True
                batch, st.queue = st.queue, []
        if not req.done:
            try:
                self._publish(ch.info, st, batch)
            finally:
                with st.turn:
                    for r in batch:
                        r.done = True
                    st.leading = False
                    st.turn.notify_all()
        if req.error is not None:
            raise req.error
        return req.version

    def _publish(self, info: TableInfo, st: _TableState, batch: list[_Request]) -> None:
        store = self.db.store(info)
        try:
            with store.lock, lake_lock(self.db.lake, "table:" + info.path):
                if store.wal is not None and self._fold_first(batch, store):
                    store.fold()
                latest = store.lance_version()
                cached = st.schema
                if cached is not None and cached[0] == latest:
                    schema = cached[1]
                else:
                    ds = store.dataset(fold=False)
                    latest, schema = ds.version, ds.schema
                    st.schema = (latest, schema)
                folds = store.folds
                accepted: list[_Request] = []
                # The accepted changes so far, as one change: what later members are
                # checked against, and then what is published.
                merged = TableChange(info)
                for req in batch:
                    try:
                        self._validate(req.change, latest, merged)
                    except BaseException as e:  # noqa: BLE001 - that transaction's error
                        req.error = e
                        metrics.CONFLICTS.labels(getattr(e, "sqlstate", "XX000")).inc()
                        continue
                    accepted.append(req)
                    if req.change.num_added:
                        added = req.change.added
                        assert added is not None
                        merged.add_rows(conform_rows(added, schema),
                                        mapped=req.change.spilled)
                    merged.removed |= req.change.removed
                if not accepted:
                    return
                # (The buffers' total size bounds nbytes from above and costs a third of
                # it: nbytes is asked only of a table that may be over the limit.)
                logged = store.wal is not None and \
                    (merged.added is None
                     or merged.added.get_total_buffer_size() <= WAL_MAX_BYTES
                     or merged.added.nbytes <= WAL_MAX_BYTES) and \
                    self._loggable_removals(store, len(merged.removed))
                if not logged and merged.removed and store.wal_pending():
                    # Published in Lance: after this server's logged changes (validation
                    # accounted for them).
                    store.fold()
                if store.folds != folds:
                    # Validation folded the log (a key index built afresh must see every
                    # row): what is published goes after that.
                    latest = store.lance_version()
                version: int | None
                if logged:
                    # Small changes: the write-ahead log makes them durable and visible
                    # (storage/wal.py); they reach Lance with the next fold. A bulk load
                    # goes to Lance at once (logging it would write it twice).
                    added = merged.added if merged.added is not None else \
                        pa.table({f.name: pa.array([], f.type) for f in schema}, schema=schema)
                    store.append_wal(added, latest, sorted(merged.removed))
                    version = None
                    self._apply_to_indexes(merged, st, latest, latest)
                    metrics.WAL_COMMITS.inc()
                else:
                    version = store.commit(merged.added, sorted(merged.removed))
                    touched = (frozenset(merged.removed)
                               if len(merged.removed) <= _LOG_MAX_RIDS else None)
                    st.record(version, touched)
                    self._apply_to_indexes(merged, st, latest, version)
                    metrics.COMMITS.inc()
                metrics.COMMITTED_TRANSACTIONS.inc(len(accepted))
                metrics.ROWS_WRITTEN.inc(merged.added.num_rows if merged.added is not None
                                         else 0)
                metrics.ROWS_REMOVED.inc(len(merged.removed))
                for r in accepted:
                    r.version = version
        except BaseException as e:  # noqa: BLE001 - the publication failed for everyone
            for r in batch:
                if r.error is None:
                    r.error = e

    def _fold_first(self, batch: list[_Request], store: TableStore) -> bool:
        """Whether the write-ahead log must reach Lance before this publication: changes
        other servers logged (their keys are in no index of ours, their changed rows in no
        record of ours), or more updates and deletes than the log takes (published in
        Lance, after the changes before them). A key index that has to be built afresh
        folds the log itself (:meth:`key_index`)."""
        assert store.wal is not None
        names = store.wal.files()
        if not names:
            return False
        if not all(store.wal.is_own(n) for n in names):
            return True
        removed = sum(len(r.change.removed) for r in batch)
        return removed > 0 and not self._loggable_removals(store, removed)

    @staticmethod
    def _loggable_removals(store: TableStore, removed: int) -> bool:
        return removed <= WAL_MAX_REMOVED and \
            store.pending_removed + removed <= WAL_MAX_PENDING_REMOVED

    def folded(self, info: TableInfo, before: int, after: int, rows: pa.Table,
               removed: set[int] | None = None, relogged: set[int] | None = None) -> None:
        """The table store folded its write-ahead log into version ``after``: ``rows``
        added, ``removed`` rids gone (or replaced by a row of ``rows``). Key indexes
        current at ``before`` take the rows; the version is recorded as changing the
        removed rows, each with the number of the log record that changed it (a read of
        the overlay that saw the record did not miss the change).

        ``relogged``: rids that records logged after the folded ones changed again (a fold
        of a rotated file). The key indexes took those records when they were logged, so
        the folded, older versions of these rows are neither removed from them nor added
        (either would undo a newer key)."""
        st = self._state(info)
        removed = removed or set()
        if removed:
            own = self.db.store(info).pending_touches()
            st.fold_seqs[after] = {r: own.get(r, _FOREIGN) for r in removed}
        st.record(after, frozenset(removed))
        metrics.WAL_FOLDS.inc()
        # The removals are in the indexes since their records were logged (by this server)
        # or are not (another server's): taking them out again is harmless.
        if relogged:
            keep = pc.invert(pc.is_in(rows.column(RID), value_set=pa.array(
                sorted(relogged), pa.int64())))
            rows, removed = rows.filter(keep), removed - relogged
        self._apply_to_indexes(TableChange(info, added=rows, removed=set(removed)), st,
                               before, after)

    def _validate(self, ch: TableChange, latest: int, earlier: TableChange | None = None
                  ) -> None:
        """Check one change against the newest version and against ``earlier``: the
        changes accepted before it into the same publication."""
        if ch.removed:
            by_read: dict[tuple[int, int | None], list[int]] = {}
            for rid in ch.removed:
                v = ch.verified.get(rid)
                read = (ch.base_version, None) if v is None else (v, ch.verified_seq.get(rid))
                by_read.setdefault(read, []).append(rid)
            for (v, seen), rids in by_read.items():
                if self.changed_since(ch.info, v, rids, latest, seen):
                    raise E.SerializationFailure(
                        "could not serialize access due to concurrent update",
                        table=ch.info.name)
        if ch.added is not None and ch.added.num_rows and unique_keys(ch.info):
            excluded = ch.removed | earlier.removed if earlier is not None else ch.removed
            self.check_unique(ch.info, ch.added, latest, excluded, earlier)

    def _apply_to_indexes(self, ch: TableChange, st: _TableState, before: int, after: int
                          ) -> None:
        with st.lock:
            for key, ix in list(st.indexes.items()):
                if ix.version != before:
                    st.indexes.pop(key)
                    continue
                ix.remove(ch.removed)
                if ch.added is not None and ch.added.num_rows and \
                        all(c in ch.added.column_names for c in key.columns):
                    ix.load(ch.added.select(list(key.columns) + [RID]))
                ix.version = after
