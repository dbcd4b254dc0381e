"""The Database: one lake, one catalog, and the sessions that run SQL over them.

``tarndb.open(path)`` returns one; ``tarndb serve`` puts the Postgres protocol, the HTTP API and
the web UI in front of the same object.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import duckdb
import pyarrow as pa

from .. import errors as E
from ..storage.lake import Lake
from ..storage.leases import lease_or_skip
from ..storage.tables import RID, TableStore
from . import limits
from .catalog import PLAIN_INDEX_METHODS, SCALAR_INDEX_TYPES, Catalog, IndexInfo, TableInfo
from .commit import WritePath
from .filtercache import FilterCache
from .locks import LockManager
from .result import Result
from .types import ColumnType

if TYPE_CHECKING:
    from .commit import TableChange
    from .session import Session

log = logging.getLogger(__name__)

DuckConnection = duckdb.DuckDBPyConnection

# Sequence values and row ids are reserved in blocks so that single-row inserts do not write
# the catalog each time (gaps after a restart are allowed, as with Postgres sequences).
_BLOCK = 1000
# Compaction, retention and the key column's scalar index are looked at once per this many
# commits of a table (and at its first).
_MAINTAIN_EVERY = 16
# Rows in a table's write-ahead log (storage/wal.py) are folded into Lance this long after
# the first of them was logged, or at once past _FOLD_ROWS rows; reads fold at once.
_FOLD_AFTER_S = 1.0
_FOLD_ROWS = 20_000


#: Column types a Lance BTREE index takes.
_LANCE_SCALAR_BASES = ("int2", "int4", "int8", "float4", "float8", "text", "varchar", "bpchar",
                       "date", "timestamp", "timestamptz", "bool")


class Database:
    def __init__(self, uri: str, storage_options: dict[str, str] | None = None, *,
                 version_retention: str | dt.timedelta | None = None,
                 memory_limit: str | None = None, temp_limit: str | None = None,
                 max_result_bytes: int | None = None,
                 session_memory_limit: str | None = None,
                 session_temp_limit: str | None = None) -> None:
        self.lake = Lake(uri, storage_options)
        #: Untagged table versions older than this are dropped as tables are written (None:
        #: every version is kept until ``tarndb_cleanup``).
        self.version_retention: dt.timedelta | None = None
        if isinstance(version_retention, dt.timedelta):
            self.version_retention = version_retention
        elif version_retention:
            from .versions import parse_interval

            self.version_retention = parse_interval(version_retention)
        self.catalog = Catalog(self.lake)
        #: Largest result (Arrow bytes) one statement may return (None: no limit).
        self.max_result_bytes = max_result_bytes
        #: Log every statement (kind, latency, outcome) to ``tarndb.statements``.
        self.log_statements = False
        # DuckDB's own defaults are 80% of RAM and a ".tmp" in the working directory with
        # 90% of its disk: a server bounds both, and spills to a directory of its own.
        import tempfile

        self._temp_dir = tempfile.mkdtemp(prefix="tarndb-duckdb-")
        #: where transactions' added rows past engine/spill.py's SPILL_BYTES go
        self.spill_dir = os.path.join(self._temp_dir, "rows")
        config: dict[str, Any] = {"threads": 2, "temp_directory": self._temp_dir}
        if memory_limit:
            config["memory_limit"] = memory_limit
        if temp_limit:
            config["max_temp_directory_size"] = temp_limit
        try:
            shared = duckdb.connect(config=config)
        except duckdb.Error as e:
            raise E.InvalidParameterValue(f"invalid memory_limit or temp_limit: {e}") from e
        # Definitions made on the shared connection are made on every session engine too
        # (engine/limits.py): sessions held to limits of their own run on one of those.
        recorder = limits.Recorder(shared)
        self._duck = cast(DuckConnection, recorder)

        def total(given: str | None, setting: str) -> int:
            # The server's limits in bytes as DuckDB reads them (its MB is 10^6 bytes).
            n = limits.parse_size(given, decimal=True) if given else None
            if n is None:
                row = shared.execute(f"SELECT current_setting('{setting}')").fetchone()
                text = str(row[0]) if row else "0"
                disk = re.fullmatch(r"\s*([\d.]+)% of available disk space\s*", text)
                if disk:  # DuckDB's default temp limit (a library Database, no --temp-limit)
                    import shutil

                    free = shutil.disk_usage(self._temp_dir).free
                    return int(free * float(disk.group(1)) / 100)
                n = limits.parse_size(text)
            return n or 0

        #: DuckDB instances of sessions with memory and temp limits of their own.
        self.engines = limits.Engines(
            recorder,
            session_memory=limits.parse_size(session_memory_limit, decimal=True)
            if session_memory_limit else None,
            session_temp=limits.parse_size(session_temp_limit, decimal=True)
            if session_temp_limit else None,
            total_memory=total(memory_limit, "memory_limit"),
            total_temp=total(temp_limit, "max_temp_directory_size"))
        self._lock = threading.RLock()
        self._stores: dict[str, TableStore] = {}
        self._store_infos: dict[str, TableInfo] = {}
        self._folder: _Folder | None = None
        self._blocks: dict[str, list[int]] = {}  # key -> [next, end)
        #: table path -> the row-id floor read once from the table (see allocate_rids)
        self._rid_floors: dict[str, int] = {}
        #: Row and key locks of the transactions running in this process.
        self.locks = LockManager()
        #: The one path by which rows reach the lake (validation, key indexes, publication).
        self.writes = WritePath(self)
        #: Row ids allowed by the WHERE clauses of filtered rankings, per table version.
        self.filter_cache = FilterCache()
        #: Statement kinds handled outside the engine (``create_role_stmt`` by pgwire).
        self.statement_hooks: dict[str, Callable[[Session, Any, list[Any]], Result]] = {}
        #: Called with each new DuckDB cursor (one per session) to define SQL functions
        #: implemented in Python, e.g. ``embed()`` from ``tarndb.embeddings``.
        self.cursor_installers: list[Callable[[duckdb.DuckDBPyConnection, Database], None]] = []
        self._closed = False
        self._install_globals()
        # SQL reaches DuckDB from any client: it must not read or write the server's files
        # (read_csv('/etc/passwd'), COPY ... TO, ATTACH, INSTALL), nor turn that back on.
        self._duck.execute("SET TimeZone = 'UTC'")
        self._duck.execute("SET enable_external_access = false")
        self._duck.execute("SET lock_configuration = true")

    # -- sessions ---------------------------------------------------------------------------

    def session(self, workspace: str = "public", user: str = "postgres", *,
                allowed_workspaces: set[str] | None = None, read_only: bool = False
                ) -> Session:
        """A session for one client. ``allowed_workspaces`` (None: all) and ``read_only``
        are enforced by the engine, whichever front end the client came through."""
        from .session import Session

        return Session(self, workspace=workspace, user=user,
                       allowed_workspaces=allowed_workspaces, read_only=read_only)

    def execute(self, sql: str, params: list[Any] | tuple[Any, ...] | None = None,
                workspace: str | None = None) -> Result:
        """Run SQL in a fresh session (autocommit) and return the last statement's result."""
        s = self.session(workspace=workspace or "public")
        try:
            return s.execute(sql, params)
        finally:
            s.close()

    @property
    def duckdb(self) -> DuckConnection:
        """The connection every session's cursor comes from. Python UDFs that several
        sessions share must be registered here, once (a UDF registered on one session's
        cursor must not outlive it)."""
        return self._duck

    def _install_globals(self) -> None:
        """Macros and types live in DuckDB's shared catalog: define them once, up front
        (defining them per session races: DuckDB reports a write-write conflict)."""
        from ..sql.rewrite import jsonb, pgvector, similarity

        similarity.install(self._duck)
        pgvector.install(self._duck)
        jsonb.install(self._duck)
        from . import advisory, jsonpath

        advisory.install(self._duck)
        from . import setconfig

        setconfig.install(self._duck)
        jsonpath.install(self._duck)
        from . import sequences

        sequences.install(self)  # a column's DEFAULT nextval('s') runs in DuckDB
        try:
            from ..sql import pgcatalog
        except ImportError:
            return
        install = getattr(pgcatalog, "install_functions", None)
        if install is not None:
            try:
                install(self._duck)
            except duckdb.Error:  # catalog emulation is for clients' introspection only
                log.exception("installing pg_catalog functions failed")

    def new_cursor(self, session: Session | None = None) -> DuckConnection:
        """A DuckDB cursor for a new session: of an engine of its own when the server holds
        sessions to limits of their own (engine/limits.py), else of the shared instance."""
        cur = self.engines.cursor(session) or self._duck.cursor()
        with self._lock:  # installers may define catalog objects
            for installer in self.cursor_installers:
                installer(cur, self)
        if session is not None:
            from . import sequences

            sequences.attach(cur, session)
        return cur

    def system_relation(self, schema: str | None, name: str, session: Session) -> Any:
        """pg_catalog / information_schema relations as Arrow tables (None if unknown)."""
        try:
            from ..sql import pgcatalog
        except ImportError:
            return None
        relation = getattr(pgcatalog, "relation", None)
        return relation(schema, name, self, session) if relation is not None else None

    # -- tables -----------------------------------------------------------------------------

    def system_table(self, workspace: str, name: str) -> TableInfo | None:
        """Read-only tables tarndb keeps itself: ``"ws"."_files"`` (the file store's metadata)."""
        if name != "_files":
            return None
        from ..files import FILES_SCHEMA
        from .catalog import ColumnInfo
        from .types import from_arrow

        cols = []
        for f in FILES_SCHEMA:
            ctype = from_arrow(f.type)
            if f.name == "id":
                ctype = ColumnType("uuid")
            cols.append(ColumnInfo(f.name, ctype))
        return TableInfo(workspace, "_files", cols, f"{workspace}/_files.lance",
                         primary_key=["id"], read_only=True)

    def store(self, info: TableInfo) -> TableStore:
        with self._lock:
            st = self._stores.get(info.path)
            if st is None:
                st = self._stores[info.path] = TableStore(self.lake, info.path)
                st.retention = self.version_retention
                path = info.path
                st.on_fold = lambda before, after, rows, removed, relogged: self.writes.folded(
                    self._store_infos[path], before, after, rows, removed, relogged)
                st.after_fold = lambda: self._maintain(self._store_infos[path])
            self._store_infos[info.path] = info
            return st

    def forget_store(self, info: TableInfo) -> None:
        with self._lock:
            st = self._stores.pop(info.path, None) or TableStore(self.lake, info.path)
            self._store_infos.pop(info.path, None)
        self.writes.forget(info)
        st.drop()

    def _reserve(self, key: str, n: int, floor: Callable[[], int]) -> list[int]:
        with self._lock:
            block = self._blocks.get(key)
            if block is None or block[1] - block[0] < n:
                size = max(n, _BLOCK)
                start = self.catalog.reserve(key, size, floor())
                if block is not None and block[0] < block[1] and block[1] == start:
                    block = [block[0], start + size]
                else:
                    block = [start, start + size]
            out = list(range(block[0], block[0] + n))
            block[0] += n
            self._blocks[key] = block
            return out

    def allocate_rids(self, info: TableInfo, n: int) -> list[int]:
        if n == 0:
            return []

        def floor() -> int:
            # Above every row of the table. Once the lake's counter has been moved past it,
            # every row id comes from the counter: read the table once per process, not at
            # every block (a reservation at 1M rows scanned every __rid, ~20 ms).
            known = self._rid_floors.get(info.path)
            if known is not None:
                return known
            ds = self.store(info).dataset()
            if ds.count_rows() == 0:
                value = 1
            else:
                import pyarrow.compute as pc

                t = ds.to_table(columns=[RID])
                value = int(pc.max(t.column(RID)).as_py() or 0) + 1
            self._rid_floors[info.path] = value
            return value
        return self._reserve(f"rid:{info.path}", n, floor)

    def next_values(self, info: TableInfo, column: str, n: int) -> list[int]:
        """Next ``n`` values of a serial column's sequence."""
        return self._reserve(f"seq:{info.path}:{column}", n, lambda: 1)

    def commit_changes(self, changes: list[TableChange]) -> None:
        """Publish a transaction's changes through the write path (engine/commit.py)."""
        published = self.writes.commit(changes)
        for info, version in published:
            if version is None:  # logged: folded into Lance by the folder thread
                folder = self._folding()
                wal = self.store(info).wal
                if wal is not None and wal.pending_rows >= _FOLD_ROWS:
                    folder.kick()
            else:
                self._maintain(info)

    def _folding(self) -> _Folder:
        with self._lock:
            if self._folder is None:
                self._folder = _Folder(self)
                self._folder.start()
            return self._folder

    def fold_logs(self, older_than: float = 0.0) -> None:
        """Fold every table's write-ahead log that has rows waiting longer than
        ``older_than`` seconds (or more than ``_FOLD_ROWS``) into its Lance dataset."""
        import time

        with self._lock:
            stores = list(self._stores.items())
        now = time.monotonic()
        for path, store in stores:
            since = store.pending_since
            if since is None or store.wal is None:
                continue
            if now - since < older_than and store.wal.pending_rows < _FOLD_ROWS:
                continue
            try:
                if store.fold(complete=older_than == 0) is not None:
                    info = self._store_infos.get(path)
                    if info is not None:
                        self._maintain(info)
            except Exception:  # the rows stay logged; the next read or fold retries
                log.exception("folding the write-ahead log of %s failed", path)

    def _maintain(self, info: TableInfo) -> None:
        """Work after a commit that keeps every row: compaction, retention, key indexes.
        Checked every ``_MAINTAIN_EVERY`` commits of a table (each check lists fragments and
        index statistics: ~2 ms, more than a small commit itself)."""
        store = self.store(info)
        store.commits += 1
        if store.commits % _MAINTAIN_EVERY != 1 and not store.retention_due():
            self._after_write(info)
            return
        # Once across the servers of the lake: a server that finds another one maintaining
        # the table skips it (storage/leases.py; a dead holder's lease frees itself).
        with lease_or_skip(self.lake, "maintain:" + info.path) as mine:
            if mine:
                for v in store.maintain():
                    self.writes.note_row_preserving(info, v)
                if len(info.primary_key) == 1:
                    for v in store.ensure_scalar_index(info.primary_key[0]):
                        self.writes.note_row_preserving(info, v)
                for ix in info.indexes:
                    if ix.index_type in PLAIN_INDEX_METHODS:
                        self._scalar_index(info, ix)
        self._after_write(info)

    # -- indexes ------------------------------------------------------------------------------

    def _index_manager(self, info: TableInfo) -> Any:
        from ..search import IndexManager

        return IndexManager.open(self.store(info).uri)

    def create_index(self, info: TableInfo, ix: IndexInfo, unique: bool = False,
                     publish: Callable[[TableInfo], None] | None = None) -> None:
        """Build ``ix`` on the lake and add it to ``info``; ``publish`` writes the catalog
        (a session's transaction defers that to COMMIT)."""
        col = info.column(ix.column)
        assert col is not None
        index_type = ix.index_type.lower()
        if unique or index_type == "unique":
            ix.index_type = "unique"
        elif index_type in PLAIN_INDEX_METHODS:
            ix.index_type = index_type
            self._scalar_index(info, ix)
        elif index_type in ("exact_text",) or (index_type == "inverted_index" and (
                col.type.base not in ("text", "varchar", "bpchar") or col.type.ndim)):
            ix.index_type = index_type  # scalar lookups: answered by DuckDB scans
        else:
            mgr = self._index_manager(info)
            ds = self.store(info).dataset()
            created = mgr.create_index(ds, ix.name, ix.column, index_type=index_type or None,
                                       options=ix.options)
            ix.index_type = getattr(created, "index_type", index_type) or index_type
        info.indexes.append(ix)
        (publish or self.catalog.update_table)(info)

    def _scalar_index(self, info: TableInfo, ix: IndexInfo) -> None:
        """A Lance BTREE index under a plain index of one scalar column (an optimisation
        for point lookups; the rows are found by scanning without it)."""
        col = info.column(ix.column)
        if ix.options.get("columns") or ix.options.get("expression") or col is None or \
                col.type.ndim or col.type.is_vector or \
                col.type.base not in _LANCE_SCALAR_BASES:
            return
        for v in self.store(info).ensure_scalar_index(ix.column):
            self.writes.note_row_preserving(info, v)

    def has_search_state(self, ix: IndexInfo) -> bool:
        return ix.index_type not in SCALAR_INDEX_TYPES

    def drop_index_state(self, info: TableInfo, ix: IndexInfo) -> None:
        """Remove what a search index keeps on the lake (nothing for scalar kinds)."""
        if not self.has_search_state(ix):
            return
        try:
            self._index_manager(info).drop_index(ix.name, if_exists=True)
        except E.TarnError:
            log.warning("index %s had no search state", ix.name)

    def drop_index(self, info: TableInfo, ix: IndexInfo) -> None:
        self.drop_index_state(info, ix)
        info.indexes = [i for i in info.indexes if i.name != ix.name]
        self.catalog.update_table(info)

    def _after_write(self, info: TableInfo) -> None:
        fresh = self.catalog.find_table(info.workspace, info.name)
        if fresh is None or not any(i.index_type not in SCALAR_INDEX_TYPES
                                    for i in fresh.indexes):
            return
        with lease_or_skip(self.lake, "index:" + info.path) as mine:
            if not mine:  # another server folds the index now; fresh rows stay exact
                return
            try:
                self._index_manager(fresh).after_write(self.store(fresh).dataset())
            except Exception:  # an index that lags is searched exactly; never fail the commit
                log.exception("index maintenance on %s failed", info.name)

    # -- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._folder is not None:
            self._folder.stop()
        try:
            from . import sequences

            sequences.release(self)  # unused sequence values back, if still the newest
        except Exception:  # a gap, never a value handed out twice
            log.exception("giving back sequence values at close failed")
        try:
            self.fold_logs()
        except Exception:  # the log stays on the lake: the next open folds it
            log.exception("folding write-ahead logs at close failed")
        self.engines.close()
        try:
            self._duck.close()
        except duckdb.Error:
            pass
        import shutil

        shutil.rmtree(self._temp_dir, ignore_errors=True)

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<tarndb.Database {self.lake.uri!r}>"


def arrow_rows(result: Result) -> pa.Table:
    return result.arrow()


class _Folder(threading.Thread):
    """Folds tables' write-ahead logs into Lance in the background (see storage/wal.py)."""

    def __init__(self, db: Database) -> None:
        super().__init__(name="tarndb-wal-folder", daemon=True)
        self.db = db
        self._wake = threading.Event()
        self._stopped = False

    def kick(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()
        self.join(timeout=30)

    def run(self) -> None:
        while not self._stopped:
            self._wake.wait(_FOLD_AFTER_S)
            self._wake.clear()
            if self._stopped:
                return
            try:
                self.db.fold_logs(older_than=_FOLD_AFTER_S)
            except Exception:  # noqa: BLE001 - never let the thread die
                log.exception("write-ahead log folder")
