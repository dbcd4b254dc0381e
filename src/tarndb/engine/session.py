"""A session: one connection's state (workspace, settings, transaction) over the Database.

Statements run in the calling thread. Front ends give each client its own Session; a session
is not shared between threads except for :meth:`Session.cancel`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
from postgast import pg_query_pb2 as pb

from .. import errors as E
from .. import metrics
from ..sql import ast, colnames
from ..sql.literals import lift_arrays
from ..sql.rewrite import casts, jsonb, pgvector, ranking, similarity
from ..sql.rewrite import params as param_rule
from . import advisory, ddl, dml, limits, lookup, planner, retype, udf, versions
from .catalog import TableInfo
from .commit import TableChange, new_txn_id
from .duck_errors import translate
from .result import Column, Result
from .scan import Scope
from .types import ColumnType, from_duckdb

# DuckDB 2's connection runs one statement straight to Arrow (its relation API is built on
# it); older releases only have the relation API.
_SUBMIT = hasattr(duckdb.DuckDBPyConnection, "_submit")
_ARROW_BATCH = 131072
#: rows per batch of a streamed answer (Session.streamed_selects)
_STREAM_BATCH = 8192

if TYPE_CHECKING:
    from .database import Database

DEFAULT_SETTINGS = {
    "server_version": "15.8 (tarndb)",
    "server_version_num": "150008",
    "server_encoding": "UTF8",
    "client_encoding": "UTF8",
    "datestyle": "ISO, MDY",
    "timezone": "UTC",
    "integer_datetimes": "on",
    "standard_conforming_strings": "on",
    "intervalstyle": "postgres",
    "transaction_isolation": "read committed",
    "default_transaction_isolation": "read committed",
    "transaction_read_only": "off",
    "application_name": "",
    "extra_float_digits": "1",
    "max_identifier_length": "63",
    "lc_collate": "C.UTF-8",
    "lc_ctype": "C.UTF-8",
    "is_superuser": "on",
    "tarndb.hybrid_fusion": "dbsf_coverage",
    "tarndb.probes": "auto",
    "statement_timeout": "0",
    "lock_timeout": "0",
    "idle_in_transaction_session_timeout": "0",
    # -1: the server's limits per session (engine/limits.py)
    "temp_file_limit": "-1",
    "tarndb.memory_limit": "-1",
}

_statement_log = logging.getLogger("tarndb.statements")

ISOLATION_LEVELS = ("read uncommitted", "read committed", "repeatable read", "serializable")
# An autocommit statement that lost a race with another server's commit is run again this
# many times under READ COMMITTED (PostgreSQL would have waited for the row instead).
_AUTOCOMMIT_RETRIES = 20

#: a setting that had no value (SET made it): what undoing the SET puts back
_UNSET: Any = object()


def _set_config_parts(name: str, value: str) -> list[str]:
    """set_config()'s value as SET's list would have it: search_path names one schema
    after another, any other setting is one value."""
    return [p.strip() for p in value.split(",")] if name.lower() == "search_path" else [value]


# Statements a read-only session may run (SELECTs are further checked for writes below).
READ_ONLY_KINDS = {"select_stmt", "transaction_stmt", "variable_set_stmt", "variable_show_stmt",
                   "explain_stmt", "discard_stmt", "deallocate_stmt", "listen_stmt",
                   "unlisten_stmt",
                   # the prepared statement is checked as itself when EXECUTE runs it
                   "prepare_stmt", "execute_stmt"}


def _batchable(sql: str) -> pb.Node | None:
    """The parsed statement when ``sql`` is one INSERT that a batch may run (see
    :func:`dml.batchable_insert`), else None."""
    if lift_arrays(sql).arrays:
        return None
    try:
        tree = ast.parse(sql)
    except E.TarnError:
        return None
    if len(tree.stmts) != 1 or ast.kind(tree.stmts[0].stmt) != "insert_stmt":
        return None
    stmt = tree.stmts[0].stmt
    return stmt if dml.batchable_insert(stmt.insert_stmt) else None


class Session:
    def __init__(self, db: Database, workspace: str = "public", user: str = "postgres",
                 allowed_workspaces: set[str] | None = None, read_only: bool = False) -> None:
        self.db = db
        self.user = user
        self.allowed_workspaces = None if allowed_workspaces is None \
            else set(allowed_workspaces)
        self.read_only = read_only
        self.settings: dict[str, str] = dict(DEFAULT_SETTINGS)
        self.settings["search_path"] = f'"{workspace}", public' if workspace != "public" \
            else '"$user", public'
        self.cursor = db.new_cursor(self)
        self._workspace = workspace
        self._announce_workspace()
        if self.allowed_workspaces is not None:
            # deep_memory() and other SQL functions in Python check a scoped session's
            # workspaces with it (names joined by \x1f).
            allowed = "\x1f".join(sorted(self.allowed_workspaces)).replace("'", "''")
            self.cursor.execute(f"SET VARIABLE tarndb_allowed_workspaces = '{allowed}'")
        self._txn: dict[str, TableChange] | None = None
        #: owner of this transaction's row and key locks
        self.txn_id = 0
        #: the transaction's isolation level (lower case, as SHOW prints it)
        self.isolation = "read committed"
        #: versions each table was read at by the running statement (path -> version)
        self.read_versions: dict[str, int] = {}
        #: ... and the write-ahead log record number up to which a read of the log's
        #: overlay saw this server's changes (absent: the read folded the log)
        self.read_seqs: dict[str, int] = {}
        #: REPEATABLE READ / SERIALIZABLE: the version of each table the transaction sees
        self._snapshot: dict[str, int] = {}
        self._deadline: float | None = None
        self._cancelled = False
        #: monotonic time the session last finished a statement (idle-in-transaction reaper)
        self.idle_since = time.monotonic()
        self.terminated: str | None = None
        #: Catalog changes of the running transaction, published at COMMIT (transactional
        #: DDL): tables it created, altered or dropped, by (workspace, name); None: dropped.
        self._overlay: dict[tuple[str, str], TableInfo | None] = {}
        self._catalog_ops: list[tuple[str, TableInfo, str | None]] = []
        self._on_commit: list[Any] = []
        self._on_rollback: list[Any] = []
        #: run at COMMIT before the rows are committed (ALTER COLUMN TYPE's rewrite)
        self._before_commit: list[Any] = []
        self._explicit = False
        #: settings SET in the current transaction: name -> (state before the transaction,
        #: state it leaves when it commits), states as :meth:`_setting_state` has them. A
        #: rollback puts back the first, a commit the second: SET LOCAL changes the value
        #: and not the second, as PostgreSQL's SET LOCAL lasts until the transaction ends.
        self._set_in_txn: dict[str, tuple[Any, Any]] = {}
        #: set_config() calls of the running statement, made once DuckDB has finished it
        #: (SET may itself need the session's DuckDB cursor, which the query holds)
        self._set_configs: list[tuple[str, str | None, bool]] = []
        #: an implicit transaction of the extended protocol, ended by Sync (end_implicit)
        self._implicit = False
        #: inside :meth:`streamed_selects`: what closes the scopes of streamed answers
        self._streams: list[Any] | None = None
        self._savepoints: list[tuple[str, dict[str, TableChange], tuple[Any, ...]]] = []
        self._failed = False
        #: a statement runs (read by cancel() from other threads; a flag, not an Event,
        #: whose set and clear take a lock around every statement)
        self._running = False
        self._closed = False
        #: Notices raised while running the current statement.
        self.notices: list[str] = []
        #: pg_advisory_lock() and friends (engine/advisory.py)
        self.advisory = advisory.Advisory(self)
        advisory.register(self)

    @property
    def workspace(self) -> str:
        """The schema unqualified names resolve in (``SET search_path`` changes it)."""
        return self._workspace

    @workspace.setter
    def workspace(self, value: str) -> None:
        self._workspace = value
        self._announce_workspace()

    def _announce_workspace(self) -> None:
        # SQL functions implemented in Python (embed() and its default model) read it.
        if hasattr(self, "cursor"):
            quoted = self._workspace.replace("'", "''")
            self.cursor.execute(f"SET VARIABLE tarndb_workspace = '{quoted}'")

    # -- public API --------------------------------------------------------------------------

    @property
    def transaction_status(self) -> str:
        if self._failed:
            return "E"
        return "T" if self._txn is not None else "I"

    @property
    def in_transaction(self) -> bool:
        return self._txn is not None

    def execute(self, sql: str, params: list[Any] | tuple[Any, ...] | None = None) -> Result:
        results = self.execute_all(sql, params)
        return results[-1] if results else Result(command="EMPTY")

    def execute_all(self, sql: str, params: list[Any] | tuple[Any, ...] | None = None
                    ) -> list[Result]:
        if self._closed:
            raise E.InvalidTransactionState("session is closed")
        lifted = lift_arrays(sql)
        all_params = list(params or [])
        if not lifted.arrays:
            # A key lookup, catalog query or constant select whose text ran before:
            # answered without parsing it again (the parse tree and the walk from it to
            # the fast path are a fifth of a key lookup's cost, half a SELECT 1's).
            point = lookup.known_point(self, sql)
            if point is not None:
                return [self._statement(lambda: self._point(point, sql, all_params),
                                        kind="select_stmt")]
            if lookup.known_catalog(self, sql):
                return [self._statement(lambda: self._catalog(sql, all_params),
                                        kind="select_stmt")]
            const = lookup.known_constant(self, sql)
            if const is not None:
                return [self._statement(lambda: const, kind="select_stmt")]
        if lifted.arrays:
            while len(all_params) < lifted.first_param - 1:
                all_params.append(None)
            all_params[lifted.first_param - 1:] = lifted.arrays
        try:
            tree = ast.parse(lifted.sql)
        except E.TarnError as e:
            if e.position:
                e.position = lifted.original_position(e.position)
            raise
        results = []
        # One statement, as sent: its text names its parse tree, so what the fast paths
        # decide from the tree is kept by the text (no serialising of the tree to find it).
        text = sql if len(tree.stmts) == 1 and not lifted.arrays else None
        for raw in tree.stmts:
            try:
                results.append(self._run(raw.stmt, all_params, lifted.original_position,
                                         text))
            except E.TarnError as e:
                if e.position is None and e.column:
                    e.position = _find_identifier(
                        sql, e.column, lifted.original_position(raw.stmt_location + 1) - 1)
                raise
        return results

    def execute_many(self, sql: str, params_batch: list[list[Any]]) -> list[Result] | None:
        """Run ``sql`` once per parameter set as ONE statement when that is the same as
        running it once per set: an INSERT of one VALUES row (see
        :func:`dml.batchable_insert`), as a pipeline or ``executemany`` sends it. One
        Result per set; the rows go in together (one constraint check, one commit).

        None when the statement is not such an INSERT, or when the batch failed, which
        leaves the session as it was: the caller then runs the sets one at a time, so that
        each gets its own outcome (the rows before a duplicate key succeed, as in
        PostgreSQL). A cancel or statement timeout is raised as is.
        """
        if self._closed or self._failed or self.terminated or not params_batch:
            return None
        stmt = _batchable(sql)
        if stmt is None:
            return None
        node = stmt.insert_stmt
        failed: list[BaseException] = []

        def run() -> Result:
            try:
                self._authorize("insert_stmt", stmt)
                return dml.insert(self, node, [], [list(p) for p in params_batch])
            except E.QueryCanceled:
                raise
            except E.TarnError as e:
                failed.append(e)  # nothing was added: the caller runs the sets one by one
                return Result(command="INSERT 0 0")

        self._statement(run, kind="insert_stmt")
        if failed:
            return None
        return [Result(command="INSERT 0 1", rowcount=1) for _ in params_batch]

    @staticmethod
    def batchable(sql: str) -> bool:
        """Whether :meth:`execute_many` can run ``sql`` as one statement."""
        return _batchable(sql) is not None

    def describe(self, sql: str, param_types: list[ColumnType | None] | None = None
                 ) -> tuple[list[ColumnType], list[Column]]:
        """Types of the ``$n`` parameters and of the result columns, without side effects."""
        from .describe import describe

        return describe(self, sql, param_types or [])

    def cancel(self) -> None:
        if self._running:
            self._cancelled = True
            self.cursor.interrupt()

    def close(self) -> None:
        if self._closed:
            return
        self._txn = None
        self._end_transaction()
        self.advisory.close()
        self._closed = True
        try:
            self.db.engines.release(self, self.cursor)  # closes the cursor
        except Exception:  # noqa: BLE001
            pass

    # -- transactions ------------------------------------------------------------------------

    def pending_change(self, info: TableInfo) -> TableChange | None:
        return self._txn.get(info.path) if self._txn is not None else None

    def change_for(self, info: TableInfo, reads: bool = True) -> TableChange:
        """This transaction's change to ``info``. ``reads=False`` (a plain INSERT): the
        statement read nothing of the table, so it takes no snapshot (which would fold the
        table's write-ahead log into Lance, see storage/wal.py)."""
        assert self._txn is not None
        ch = self._txn.get(info.path)
        if ch is None:
            # the table's lock, shared: an ALTER COLUMN TYPE holds it exclusively until its
            # transaction ends (engine/retype.py)
            self.lock([("table", info.path)], exclusive=False)
            read = self.read_versions.get(info.path)
            if reads and read is not None and not self.serializable:
                base = read  # the statement's read (which may not have folded the log)
            else:
                base = (self.snapshot_version(info) if reads
                        else self.db.store(info).lance_version(fresh=False))
            ch = self._txn[info.path] = TableChange(info, base_version=base)
            ch.spill_dir = self.db.spill_dir  # a COPY of many GB waits on disk, not in RAM
        return ch

    @property
    def fast_paths(self) -> bool:
        """``SET tarndb.fast_paths = off`` sends statements down the general path (benchmarks
        compare the two in one run; a way out should a fast path misbehave)."""
        return self.settings.get("tarndb.fast_paths", "on").lower() not in ("off", "false",
                                                                              "0")

    @property
    def serializable(self) -> bool:
        """REPEATABLE READ or SERIALIZABLE: one snapshot for the whole transaction, and a
        row another transaction changed since is an error (40001), never re-read."""
        return self.isolation in ("repeatable read", "serializable")

    def snapshot_version(self, info: TableInfo) -> int:
        """The version of ``info`` this statement reads (and records it)."""
        pinned = self._snapshot.get(info.path) if self._txn is not None else None
        if pinned is None:
            pinned = self.db.store(info).dataset().version
            if self._txn is not None and self.serializable:
                self._snapshot[info.path] = pinned
        self.read_versions[info.path] = pinned
        self.read_seqs.pop(info.path, None)
        return pinned

    def overlay_read(self, info: TableInfo) -> tuple[Any, Any, set[int]] | None:
        """A READ COMMITTED statement's read of the newest rows without folding the
        write-ahead log (TableStore.overlay): (Lance dataset, logged rows or None, rids the
        logged rows hide), recorded as the statement's read. None where a read must fold
        (a transaction snapshot, another server's logged rows)."""
        if info.as_of is not None or info.read_only or \
                (self._txn is not None and self.serializable):
            return None
        got = self.db.store(info).overlay()
        if got is None:
            return None
        ds, rows, hidden, seq = got
        self.read_versions[info.path] = int(ds.version)
        self.read_seqs[info.path] = seq
        return ds, rows, hidden

    def lock_timeout(self) -> float | None:
        return ms_setting(self.settings.get("lock_timeout", "0"))

    def lock(self, keys: list[Any], exclusive: bool = True) -> list[Any]:
        """Take row or key locks for this transaction (see engine/locks.py)."""
        if not keys:
            return []
        # lock_timeout bounds the wait (55P03); statement_timeout is seen by the
        # cancellation check (57014).
        return self.db.locks.acquire(self.txn_id, keys, exclusive=exclusive,
                                     timeout=self.lock_timeout(),
                                     cancelled=self._wait_cancelled)

    def _wait_cancelled(self) -> bool:
        if self._deadline is not None and time.monotonic() >= self._deadline:
            raise E.QueryCanceled("canceling statement due to statement timeout")
        return self._cancelled

    def begin(self, isolation: str | None = None, explicit: bool = True) -> None:
        if self._txn is not None:
            self.notices.append("there is already a transaction in progress")
            return
        self._txn = {}
        self._explicit = explicit
        self._snapshot = {}
        self.txn_id = new_txn_id()
        self.isolation = isolation or self.settings.get(
            "default_transaction_isolation", "read committed")
        self.settings["transaction_isolation"] = self.isolation

    def begin_implicit(self) -> None:
        """Statements from here to the extended protocol's Sync run in one implicit
        transaction, as PostgreSQL runs a pipeline (psycopg's ``executemany``): one commit
        for the batch. A BEGIN inside turns it into an ordinary transaction block."""
        if self._txn is None:
            self.begin(explicit=False)
            self._implicit = True

    def abort_transaction(self) -> None:
        """A protocol error (a bad Bind, an unknown portal) happened in this session's
        transaction: it is aborted as if a statement had failed."""
        if self._txn is not None:
            self._failed = True

    def end_implicit(self) -> None:
        """Sync: commit the implicit transaction (roll it back if a statement failed)."""
        if not self._implicit:
            return
        self._implicit = False
        if self._txn is None:
            return
        if self._failed:
            self.rollback()
        else:
            self.commit()

    def commit(self) -> None:
        self._implicit = False
        self._savepoints.clear()
        txn, self._txn = self._txn, None
        failed, self._failed = self._failed, False
        if txn is not None and not txn and not failed and not self._before_commit and \
                not self._catalog_ops and not self._on_commit and not self._overlay and \
                not self._on_rollback:
            # Nothing written, no DDL (an autocommit SELECT): nothing to publish or undo.
            self._end_transaction(committed=True)
            return
        committed = False
        try:
            if txn is None or failed:
                self._undo_ddl()
                return
            try:
                self._check_ddl()  # before any row is committed
                for action in self._before_commit:
                    action()
                changes = list(txn.values())
                for ch in changes:  # a table altered in this transaction: its new shape
                    ch.info = self._overlay.get((ch.info.workspace, ch.info.name)) or ch.info
                self.db.commit_changes(changes)
            except BaseException:
                self._undo_ddl()
                raise
            self._publish_ddl()
            committed = True
        finally:
            self._end_transaction(committed)

    def rollback(self) -> None:
        self._implicit = False
        self._savepoints.clear()
        self._txn = None
        self._failed = False
        self._undo_ddl()
        self._end_transaction()

    # -- transactional DDL ---------------------------------------------------------------------

    def find_table(self, workspace: str, name: str, fresh: bool = True) -> TableInfo | None:
        """A table as this session sees it: its own uncommitted DDL first, then the catalog
        (``fresh``: see :meth:`Catalog.find_table`)."""
        key = (workspace, name)
        if key in self._overlay:
            found = self._overlay[key]
            return _copy_info(found) if found is not None else None
        return self.db.catalog.find_table(workspace, name, fresh)

    def all_tables(self) -> list[TableInfo]:
        out = {(t.workspace, t.name): t for t in self.db.catalog.all_tables()}
        for key, info in self._overlay.items():
            if info is None:
                out.pop(key, None)
            else:
                out[key] = _copy_info(info)
        return list(out.values())

    def catalog_create(self, info: TableInfo) -> None:
        from . import views

        if self.db.catalog.find_table(info.workspace, info.name) is not None and \
                self._overlay.get((info.workspace, info.name), ...) is ... or \
                views.lookup(self.db, self, info.workspace, info.name) is not None:
            raise E.DuplicateTable(f'relation "{info.name}" already exists', table=info.name)
        self.db.catalog.ensure_workspace(info.workspace)
        self._overlay[(info.workspace, info.name)] = _copy_info(info)
        self._catalog_ops.append(("create", _copy_info(info), None))

    def catalog_update(self, info: TableInfo, old_name: str | None = None) -> None:
        if old_name is not None and old_name != info.name:
            self._overlay[(info.workspace, old_name)] = None
        self._overlay[(info.workspace, info.name)] = _copy_info(info)
        self._catalog_ops.append(("update", _copy_info(info), old_name))

    def catalog_drop(self, info: TableInfo) -> None:
        self._overlay[(info.workspace, info.name)] = None
        self._catalog_ops.append(("drop", _copy_info(info), None))

    def on_commit(self, action: Any) -> None:
        """Run ``action`` after the transaction's catalog changes are published."""
        self._on_commit.append(action)

    def before_commit(self, action: Any) -> None:
        """Run ``action`` at COMMIT before the transaction's rows are committed; a failure
        rolls the transaction back."""
        self._before_commit.append(action)

    def overlay_tables(self) -> list[TableInfo]:
        """The tables this transaction's DDL created or altered, as it left them."""
        return [t for t in self._overlay.values() if t is not None]

    def on_rollback(self, action: Any) -> None:
        """Undo a physical change (a created dataset, an added column) at ROLLBACK."""
        self._on_rollback.append(action)

    def refuse_in_transaction_block(self, what: str) -> None:
        if self._txn is not None and self._explicit:
            raise E.ActiveSqlTransaction(f"{what} cannot run inside a transaction block")

    def _altered(self) -> list[tuple[TableInfo, str | None]]:
        """The tables this transaction altered that it did not create, as it first read them
        (each with its name then)."""
        created = {info.path for op, info, _ in self._catalog_ops if op == "create"}
        seen: dict[str, tuple[TableInfo, str | None]] = {}
        for op, info, old_name in self._catalog_ops:
            if op == "update" and info.path not in created and info.path not in seen:
                seen[info.path] = (info, old_name)
        return list(seen.values())

    def _check_ddl(self) -> None:
        """40001 before anything is committed when a table this transaction altered was
        altered by another transaction since it was read (Catalog.check_revs); an
        autocommit statement then runs again on the new definition (_statement)."""
        altered = self._altered()
        if altered:
            self.db.catalog.check_revs(altered)

    def _publish_ddl(self) -> None:
        cat = self.db.catalog
        ops, self._catalog_ops = self._catalog_ops, []
        done = 0
        try:
            for op, info, old_name in ops:
                if op == "create":
                    cat.create_table(info)
                    created = cat.find_table(info.workspace, info.name)
                    if created is not None:  # later ops of this transaction keep its oid
                        for _, later, _ in ops:
                            if later.path == info.path:
                                later.oid = created.oid
                elif op == "update":
                    cat.update_table(info, old_name=old_name)
                    for _, later, _ in ops:  # later changes build on this revision
                        if later.path == info.path:
                            later.rev = info.rev
                else:
                    cat.drop_table(info)
                    self.db.forget_store(info)
                done += 1
        except BaseException:
            # Ops before ``done`` are published: their undo actions must never run (a later
            # ROLLBACK of this session ran them, removing a published table's dataset). The
            # datasets of the creates not published are removed, their create leases freed.
            from . import vacuum

            self._on_rollback.clear()
            self._on_commit.clear()
            self._overlay.clear()
            for op, info, _ in ops[done:]:
                if op == "create":
                    self.db.forget_store(info)
            for op, info, _ in ops:
                if op == "create":
                    vacuum.release_create(self.db.lake, info.path)
            raise
        actions, self._on_commit = self._on_commit, []
        self._overlay.clear()
        self._on_rollback.clear()
        for action in actions:
            try:
                action()
            except Exception:  # noqa: BLE001 - the commit stands; tidy-up can be redone
                import logging

                logging.getLogger(__name__).exception("after-commit action failed")

    def _undo_ddl(self, keep: int = 0) -> None:
        undo, self._on_rollback = self._on_rollback[keep:], self._on_rollback[:keep]
        for action in reversed(undo):
            try:
                action()
            except Exception:  # noqa: BLE001
                import logging

                logging.getLogger(__name__).exception("rollback of a DDL change failed")
        if keep == 0:
            self._overlay.clear()
            self._catalog_ops.clear()
            self._on_commit.clear()

    def _end_transaction(self, committed: bool = False) -> None:
        if self._set_in_txn:
            changed, self._set_in_txn = self._set_in_txn, {}
            for name, (before, after) in changed.items():
                self._restore_setting(name, after if committed else before)
        self._before_commit.clear()
        retype.forget(self)
        if self.txn_id:
            self.db.locks.release_all(self.txn_id)
        self.advisory.end_transaction()
        self.txn_id = 0
        self._snapshot = {}
        self.isolation = self.settings.get("default_transaction_isolation", "read committed")
        self.settings["transaction_isolation"] = self.isolation

    # -- running statements ------------------------------------------------------------------

    def _run(self, stmt: pb.Node, params: list[Any], map_pos: Any, text: str | None = None
             ) -> Result:
        kind = ast.kind(stmt)
        ends_txn = kind == "transaction_stmt" and stmt.transaction_stmt.kind in (
            pb.TRANS_STMT_ROLLBACK, pb.TRANS_STMT_COMMIT, pb.TRANS_STMT_ROLLBACK_TO,
            pb.TRANS_STMT_PREPARE)
        return self._statement(lambda: self._dispatch(kind, stmt, params, text), map_pos,
                               allowed_when_failed=ends_txn,
                               autocommit=kind != "transaction_stmt", kind=kind or "other")

    def _statement(self, run: Any, map_pos: Any = None, allowed_when_failed: bool = False,
                   autocommit: bool = True, kind: str = "other_stmt") -> Result:
        """Run one statement with Postgres' transaction rules: outside a transaction it
        commits on its own; inside one, a failure aborts the transaction."""
        started = time.perf_counter()
        failure: BaseException | None = None
        self.notices = []
        if self.terminated:
            raise E.IdleInTransactionTimeout(self.terminated)
        if self._failed and not allowed_when_failed:
            raise E.InFailedTransaction(
                "current transaction is aborted, commands ignored until end of transaction block")
        autocommit = autocommit and self._txn is None
        timeout = _statement_timeout(self.settings.get("statement_timeout", "0"))
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._cancelled = False
        timer = None
        if timeout is not None:
            timer = threading.Timer(timeout, self._timeout_interrupt)
            timer.daemon = True
            timer.start()
        self._running = True
        try:
            self.db.engines.enter(self, kind)  # this session's memory and temp limits
            for attempt in range(_AUTOCOMMIT_RETRIES + 1):
                if autocommit:
                    self.begin(explicit=False)
                self.read_versions = {}
                self.read_seqs = {}
                self._set_configs = []
                try:
                    result: Result = run()
                    if self._set_configs:
                        calls, self._set_configs = self._set_configs, []
                        for name, value, local in calls:
                            self._set_config_now(name, value, local)
                    if autocommit:
                        self.commit()
                    break
                except E.SerializationFailure:
                    # Another server published a change to a row this autocommit statement
                    # wrote, after the statement read it: under READ COMMITTED the statement
                    # runs again on the newest version, as PostgreSQL re-applies it.
                    if not autocommit or self.serializable or attempt == _AUTOCOMMIT_RETRIES:
                        raise
                    self.rollback()
            result.notices = self.notices + result.notices
            return result
        except BaseException as exc:
            err = translate(exc) if not isinstance(exc, E.TarnError) else exc
            if isinstance(err, E.QueryCanceled) and self._deadline is not None and \
                    time.monotonic() >= self._deadline:
                err = E.QueryCanceled("canceling statement due to statement timeout")
            if err.position and map_pos is not None:
                err.position = map_pos(err.position)
            failure = err
            if autocommit:
                self.rollback()
            elif self._txn is not None:
                self._failed = True
            if err is exc:
                raise
            raise err from exc
        finally:
            if timer is not None:
                timer.cancel()
            self._deadline = None
            self._running = False
            self.idle_since = time.monotonic()
            self.db.engines.exit(self)
            if self._streams is None:  # (a streamed answer's cursor is busy until read)
                udf.end_statement(self.cursor)  # embed() results are memoised per statement
            label = kind.removesuffix("_stmt")
            outcome = metrics.outcome_of(failure)
            counter = _STATEMENT_COUNTERS.get((label, outcome))
            if counter is None:
                counter = _STATEMENT_COUNTERS[(label, outcome)] = \
                    metrics.STATEMENTS.labels(label, outcome)
            counter.inc()
            seconds = _STATEMENT_SECONDS.get(label)
            if seconds is None:
                seconds = _STATEMENT_SECONDS[label] = metrics.STATEMENT_SECONDS.labels(label)
            seconds.observe(time.perf_counter() - started)
            if self.db.log_statements:
                _statement_log.info("statement", extra={
                    "kind": label, "ms": round((time.perf_counter() - started) * 1000, 3),
                    "outcome": metrics.outcome_of(failure), "user": self.user,
                    "workspace": self._workspace})

    def _timeout_interrupt(self) -> None:
        if self._running:
            self.cursor.interrupt()

    def insert_arrow(self, table: str, data: pa.Table, columns: list[str] | None = None
                     ) -> Result:
        """Bulk insert an Arrow table (COPY FROM and ingestion use this)."""
        schema, _, name = table.rpartition(".")
        def run() -> Result:
            info = self.resolve_table(schema.strip('"') or None, name.strip('"'))
            if info is None:
                raise E.UndefinedTable(f'relation "{name}" does not exist', table=name)
            return dml.insert_arrow(self, info, data, columns)
        return self._statement(run, kind="insert_stmt")

    def check_workspace(self, workspace: str) -> None:
        if self.allowed_workspaces is not None and workspace not in self.allowed_workspaces \
                and workspace not in ("pg_catalog", "information_schema"):
            raise E.InsufficientPrivilege(f'permission denied for schema "{workspace}"')

    def _authorize(self, kind: str | None, stmt: pb.Node, grants: bool = True) -> None:
        """Refuse a statement this session may not run (read-only, workspaces, GRANTs;
        ``grants=False``: not the GRANTs)."""
        if self.read_only and kind not in READ_ONLY_KINDS:
            raise E.InsufficientPrivilege(
                f"permission denied: this session is read-only ({kind})")
        if self.allowed_workspaces is not None:
            for m in ast.walk(stmt):
                if isinstance(m, pb.RangeVar) and m.schemaname:
                    self.check_workspace(m.schemaname)
                elif isinstance(m, pb.CreateSchemaStmt):
                    self.check_workspace(m.schemaname)
        check = self.db.statement_hooks.get("check_privileges") if grants else None
        if check is not None:
            check(self, kind, stmt)  # GRANTs of a role that is not a superuser (pgwire/acl.py)

    def check_view_query(self, query: pb.Node, as_owner: bool = False) -> None:
        """A view's query is checked as this session's own SELECT, or with ``as_owner`` (a
        view read with its owner's rights; superusers own every view) for the session's
        workspaces only (engine/views.py)."""
        self._authorize("select_stmt", query, grants=not as_owner)

    def _point(self, point: Any, sql: str, params: list[Any]) -> Result:
        """A statement whose text is a known key lookup (:func:`lookup.known_point`): its
        answer without parsing it again; the general path (parsed, as execute_all runs it)
        when the fast path steps aside."""
        if self.allowed_workspaces is not None and point.schema:
            self.check_workspace(point.schema)  # what _authorize checks of its one table
        found = lookup.point_answer(self, point, params)
        if found is not None:
            return found
        return self._parsed_select(sql, params)

    def _catalog(self, sql: str, params: list[Any]) -> Result:
        """A statement whose text is a known catalog query (:func:`lookup.known_catalog`):
        its kept answer, else the general path (which keeps it)."""
        found = lookup.catalog_answer(self, sql, params)
        if found is not None:
            return found
        return self._parsed_select(sql, params)

    def _parsed_select(self, sql: str, params: list[Any]) -> Result:
        """The one SELECT ``sql``, parsed and run as execute_all runs it."""
        stmt = ast.parse(sql).stmts[0].stmt
        try:
            return self._dispatch("select_stmt", stmt, params, sql)
        except E.TarnError as e:
            if e.position is None and e.column:
                e.position = _find_identifier(sql, e.column)
            raise

    def _dispatch(self, kind: str | None, stmt: pb.Node, params: list[Any],
                  text: str | None = None) -> Result:
        """Run one statement; ``text``: its SQL when that is the whole of what was sent
        (the fast paths key what they keep by it)."""
        node = ast.inner(stmt)
        self._authorize(kind, stmt)
        if kind == "select_stmt":
            if versions.is_version_function(stmt.select_stmt):
                if self.read_only:
                    raise E.InsufficientPrivilege("permission denied: this session is read-only")
                return versions.run_function(self, stmt.select_stmt, params)
            if stmt.select_stmt.locking_clause:
                return dml.select_locking(self, stmt, params)
            fast = lookup.try_lookup(self, stmt, params, text)
            if fast is not None:
                return fast
            return self.run_select(stmt, params)
        if kind == "insert_stmt":
            return dml.insert(self, node, params)
        if kind == "update_stmt":
            return dml.update(self, node, params)
        if kind == "delete_stmt":
            return dml.delete(self, node, params)
        if kind == "transaction_stmt":
            return self._transaction(node)
        if kind == "variable_set_stmt":
            return self._set(node)
        if kind == "variable_show_stmt":
            return self._show(node)
        if kind == "explain_stmt":
            return self._explain(node, params)
        handler = ddl.HANDLERS.get(kind or "")
        if handler is not None:
            return handler(self, node, params)
        hook = self.db.statement_hooks.get(kind or "")
        if hook is not None:
            return hook(self, node, params)
        raise E.FeatureNotSupported(f"statement {kind} is not supported by tarndb")

    def resolve_table(self, schema: str | None, name: str) -> TableInfo | None:
        if schema:
            self.check_workspace(schema)
        if name == "_files":
            return self.db.system_table(schema or self.workspace, name)
        if schema:
            self.check_workspace(schema)
            found = self.find_table(schema, name)
        else:
            # Every schema of the search path from what this process knows first; the
            # catalog is read again (another server may have just created the name) only
            # when none has it, not on each schema that does not.
            usable = [ws for ws in self.search_path()
                      if self.allowed_workspaces is None or ws in self.allowed_workspaces]
            found = next((t for ws in usable
                          if (t := self.find_table(ws, name, fresh=False)) is not None), None)
            if found is None and usable:
                self.db.catalog.refresh(force=True)
                found = next((t for ws in usable
                              if (t := self.find_table(ws, name, fresh=False)) is not None),
                             None)
        if found is None and (parts := versions.split_name(name)) is not None:
            found = self.resolve_table(schema, parts[0])
            if found is not None:
                found.as_of = versions.resolve_version(self, found, parts[1])
                found.read_only = True
        return found

    def search_path(self) -> list[str]:
        out = []
        for part in self.settings.get("search_path", "").split(","):
            p = part.strip().strip('"')
            if p == "$user":
                p = self.user
            if p and p not in out:
                out.append(p)
        if self.workspace not in out:
            out.insert(0, self.workspace)
        return out

    def table_for(self, rv: pb.RangeVar) -> TableInfo:
        info = self.resolve_table(rv.schemaname or None, rv.relname)
        if info is None:
            from . import views

            if views.resolve(self, rv.schemaname or None, rv.relname) is not None:
                raise E.WrongObjectType(f'"{rv.relname}" is a view',
                                        detail="tarndb views are read-only.",
                                        hint="Write to the tables the view reads.")
            raise E.UndefinedTable(f'relation "{rv.relname}" does not exist',
                                   position=rv.location + 1 if rv.location >= 0 else None,
                                   table=rv.relname)
        return info

    # -- SELECT ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def streamed_selects(self) -> Iterator[None]:
        """Within the block, a statement's SELECT answers with a Result that streams its rows
        a batch at a time (:meth:`Result.row_batches`): each table it reads is scanned once,
        as a stream with little read-ahead, and the statement's scope stays open until the
        block ends. For ``COPY table TO`` (pgwire), whose SELECT reads one table once: a
        dump of a big table then holds a few batches, not the table. Nothing else may run
        on the session until its rows are read."""
        self._streams = []
        try:
            yield
        finally:
            closers, self._streams = self._streams, None
            for close in closers:
                close()
            udf.end_statement(self.cursor)

    def run_select(self, stmt: pb.Node, params: list[Any], scope: Scope | None = None
                   ) -> Result:
        own = scope is None
        scope = scope or Scope(self)
        colnames.apply(stmt)
        streams = self._streams if own else None
        scope.streaming = streams is not None
        handed_over = False  # the scope closes when the stream's block ends
        try:
            scope.bind(stmt, params=params)
            vectors = pgvector.result_types(stmt, scope)
            if streams is not None:
                result = self._streamed(*self._duck_sql(stmt, params, scope))
                streams.append(scope.close)
                handed_over = True
            else:
                result = self.result_from(self.query_arrow(stmt, params, scope))
            for i, t in vectors.items():  # vector without a dimension: not real[]
                if i < len(result.columns) and result.columns[i].type.base == "float4":
                    result.columns[i] = Column(result.columns[i].name, t)
            return result
        finally:
            if own and not handed_over:
                scope.close()

    def query_arrow(self, stmt: pb.Node, params: list[Any], scope: Scope) -> tuple[Any, Any]:
        """Rewrite a bound statement for DuckDB, run it, return (arrow table, description)."""
        return self.run_duckdb(*self._duck_sql(stmt, params, scope))

    def _duck_sql(self, stmt: pb.Node, params: list[Any], scope: Scope
                  ) -> tuple[str, list[Any]]:
        """A bound statement rewritten for DuckDB: its text and parameter values."""
        pgvector.apply(stmt, scope)
        jsonb.apply(stmt, scope)
        planner.plan(stmt, scope, params)
        similarity.apply(stmt, scope, params)
        self.notices.extend(ranking.apply(stmt, scope))
        casts.apply(stmt)
        return param_rule.apply(stmt, params)

    def _streamed(self, sql: str, duck_params: list[Any]) -> Result:
        """A query's answer as a stream of Arrow batches (see :meth:`streamed_selects`)."""
        try:
            rel = self.cursor.sql(sql, params=duck_params or None)
            if rel is None:
                return self.result_from((None, []))
            reader = rel.to_arrow_reader(_STREAM_BATCH)
            description = list(zip(rel.columns, rel.types, strict=True))
        except duckdb.Error as e:
            raise translate(e) from e
        columns = [Column(d[0], from_duckdb(str(d[1]))) for d in description]
        return Result(columns=columns, command="SELECT", _reader=reader)

    def run_duckdb(self, sql: str, duck_params: list[Any]) -> tuple[Any, Any]:
        try:
            if _SUBMIT:
                # What a relation's to_arrow_table() runs, minus the relation: it parses and
                # binds the text once more first (0.09 ms of a 0.33 ms SELECT 1).
                res = self.cursor._submit(sql, duck_params or None, "arrow", _ARROW_BATCH)
                if res.return_type != "query_result":
                    return None, []
                return res.arrow_table(), [(d[0], d[1]) for d in res.description]
            # A relation's Arrow result is built once; execute() + to_arrow_table() copies
            # the rows a second time (0.15 ms of a 0.6 ms SELECT 1).
            rel = self.cursor.sql(sql, params=duck_params or None)
            if rel is None:  # not a query
                return None, []
            table = rel.to_arrow_table()
        except duckdb.Error as e:
            raise translate(e) from e
        description = [(name, typ) for name, typ in zip(rel.columns, rel.types, strict=True)]
        return table, description

    def result_from(self, qa: tuple[Any, Any]) -> Result:
        table, description = qa
        limit = self.db.max_result_bytes
        if limit and table is not None and table.nbytes > limit:
            raise E.ProgramLimitExceeded(
                f"result of {table.nbytes} bytes exceeds max_result_bytes ({limit})",
                hint="Add a LIMIT or select fewer columns, or raise --max-result-bytes.")
        columns = [Column(d[0], from_duckdb(str(d[1]))) for d in description]
        n = table.num_rows if table is not None else 0
        return Result(columns=columns, command=f"SELECT {n}", rowcount=n, _arrow=table)

    # -- transaction control, SET, SHOW, EXPLAIN ---------------------------------------------

    def _transaction(self, node: Any) -> Result:
        k = node.kind
        if k in (pb.TRANS_STMT_BEGIN, pb.TRANS_STMT_START):
            if self._implicit:  # BEGIN inside a pipeline: the block goes on to COMMIT
                self._implicit = False
                self._explicit = True
                level = _isolation_option(node.options)
                if level is not None and not self.read_versions:
                    self.isolation = level
                return Result(command="BEGIN")
            self.begin(_isolation_option(node.options))
            return Result(command="BEGIN")
        if k == pb.TRANS_STMT_COMMIT:
            was_failed = self._failed
            if self._txn is None:
                self.notices.append("there is no transaction in progress")
            self.commit()
            return Result(command="ROLLBACK" if was_failed else "COMMIT")
        if k == pb.TRANS_STMT_ROLLBACK_TO:
            return self._savepoint(k, node.savepoint_name)
        if k == pb.TRANS_STMT_ROLLBACK:
            if self._txn is None:
                self.notices.append("there is no transaction in progress")
            self.rollback()
            return Result(command="ROLLBACK")
        if k in (pb.TRANS_STMT_SAVEPOINT, pb.TRANS_STMT_RELEASE):
            return self._savepoint(k, node.savepoint_name)
        raise E.FeatureNotSupported("two-phase commit is not supported")

    def _savepoint(self, kind: int, name: str) -> Result:
        """Savepoints snapshot the transaction's pending changes (cheap: Arrow tables are
        immutable, so a snapshot copies references and the removed-row sets)."""
        if self._txn is None:
            raise E.NoActiveTransaction(
                f"{'SAVEPOINT' if kind == pb.TRANS_STMT_SAVEPOINT else 'ROLLBACK TO SAVEPOINT'}"
                " can only be used in transaction blocks")
        if kind == pb.TRANS_STMT_SAVEPOINT:
            snapshot = {k: c.copy() for k, c in self._txn.items()}
            # (and the settings SET so far, with their values now: ROLLBACK TO puts them back)
            sets = {n: (pair, self._setting_state(n)) for n, pair in self._set_in_txn.items()}
            ddl = (dict(self._overlay), len(self._catalog_ops), len(self._on_commit),
                   len(self._on_rollback), sets)
            self._savepoints.append((name, snapshot, ddl))
            return Result(command="SAVEPOINT")
        names = [n for n, _, _ in self._savepoints]
        if name not in names:
            self._failed = True
            raise E.InvalidSavepointSpecification(f'savepoint "{name}" does not exist')
        i = len(names) - 1 - names[::-1].index(name)
        if kind == pb.TRANS_STMT_RELEASE:
            del self._savepoints[i:]
            return Result(command="RELEASE")
        _, snapshot, ddl = self._savepoints[i]
        del self._savepoints[i + 1:]
        self._txn = {k: c.copy() for k, c in snapshot.items()}
        overlay, n_ops, n_commit, n_rollback, sets = ddl
        # SET and SET LOCAL since the savepoint are undone, as in PostgreSQL
        for n in list(self._set_in_txn):
            if n in sets:
                self._set_in_txn[n], state = sets[n]
            else:
                state = self._set_in_txn.pop(n)[0]
            self._restore_setting(n, state)
        self._undo_ddl(keep=n_rollback)
        self._overlay = dict(overlay)
        del self._catalog_ops[n_ops:]
        del self._on_commit[n_commit:]
        self._failed = False
        return Result(command="ROLLBACK")

    def _set(self, node: Any, warn_local: bool = True) -> Result:
        name = node.name.lower()
        if name in ("role", "session_authorization"):
            # SET ROLE / SESSION AUTHORIZATION are privilege checks (pgwire/roles.py).
            set_role = self.db.statement_hooks.get("set_role")
            if set_role is not None:
                return set_role(self, node, [])
        if node.kind in (pb.VAR_SET_VALUE, pb.VAR_RESET) and \
                name not in ("transaction_isolation", "role", "session_authorization"):
            self._track_setting(name, bool(node.is_local), warn_local)
        if node.kind in (pb.VAR_RESET, pb.VAR_RESET_ALL):
            if node.kind == pb.VAR_RESET_ALL:
                self.settings = dict(DEFAULT_SETTINGS)
            elif name in DEFAULT_SETTINGS:
                self.settings[name] = DEFAULT_SETTINGS[name]
            else:  # a setting without a default here (hnsw.ef_search, ...): unset again
                self.settings.pop(name, None)
            self._set_for_commit(name, bool(node.is_local))
            return Result(command="RESET")
        if node.kind == pb.VAR_SET_MULTI:
            # SET TRANSACTION ISOLATION LEVEL ... / SET SESSION CHARACTERISTICS AS ...
            level = _isolation_option(node.args)
            if level is not None:
                if name == "transaction":
                    if self._txn is not None and self.read_versions:
                        raise E.ActiveSqlTransaction(
                            "SET TRANSACTION ISOLATION LEVEL must be called before any query")
                    if self._txn is not None:
                        self.isolation = level
                        self.settings["transaction_isolation"] = level
                else:
                    self.settings["default_transaction_isolation"] = level
            return Result(command="SET")
        if node.kind != pb.VAR_SET_VALUE:
            return Result(command="SET")  # SET ... TO DEFAULT
        values = []
        for a in node.args:
            if ast.kind(a) == "a_const":
                values.append(str(ast.const_value(a)))
            elif ast.kind(a) == "type_cast":
                values.append(str(ast.const_value(a.type_cast.arg)))
        value = ", ".join(values)
        if name == "search_path":
            first = values[0].strip().strip('"') if values else "public"
            if first and first != "$user":
                self.check_workspace(first)
                self.workspace = first
        if name in ("default_transaction_isolation", "transaction_isolation"):
            level = value.lower().strip("'")
            if level not in ISOLATION_LEVELS:
                raise E.InvalidParameterValue(
                    f'invalid value for parameter "{name}": "{value}"')
            if name == "transaction_isolation":
                if self._txn is None:
                    self.notices.append("SET TRANSACTION can only be used in transaction blocks")
                    return Result(command="SET")
                self.isolation = level
            value = level
        if name in ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"):
            ms_setting(value)  # validates
        if name in ("tarndb.probes", "hnsw.ef_search", "ivfflat.probes"):
            from ..search import ann_params

            ann_params({name: value})  # validates
        if name in limits.NAMES:  # temp_file_limit, tarndb.memory_limit
            value = self.db.engines.check_setting(self, name, value)
        if name == "timezone" and value.upper() not in ("UTC", "GMT", "ETC/UTC", "Z", "0"):
            self.notices.append("tarndb reports timestamps in UTC")
        self.settings[name] = value
        self._set_for_commit(name, bool(node.is_local))
        return Result(command="SET")

    # SET inside a transaction, as PostgreSQL has it: undone when the transaction rolls back,
    # kept when it commits; SET LOCAL undone either way.

    def _setting_state(self, name: str) -> tuple[Any, str]:
        """What SET changes for ``name``: its value (``_UNSET`` when none), and the
        workspace unqualified names resolve in, which search_path moves."""
        return self.settings.get(name, _UNSET), self.workspace

    def _restore_setting(self, name: str, state: tuple[Any, str]) -> None:
        value, workspace = state
        if value is _UNSET:
            self.settings.pop(name, None)
        else:
            self.settings[name] = value
        if name == "search_path":
            self.workspace = workspace

    def _track_setting(self, name: str, local: bool, warn_local: bool) -> None:
        if local and warn_local and not (self._explicit or self._implicit):
            # outside a transaction block it lasts for this statement only: no effect
            self.notices.append("SET LOCAL can only be used in transaction blocks")
        if self._txn is None:
            return
        if name not in self._set_in_txn:
            now = self._setting_state(name)
            self._set_in_txn[name] = (now, now)

    def _set_for_commit(self, name: str, local: bool) -> None:
        """After SET (not LOCAL) changed ``name``: a commit keeps the new value."""
        if not local and name in self._set_in_txn:
            before, _ = self._set_in_txn[name]
            self._set_in_txn[name] = (before, self._setting_state(name))

    def set_config(self, name: str, value: str | None, is_local: bool) -> str:
        """``set_config(name, value, is_local)`` called by the running statement
        (engine/setconfig.py): SET, or SET LOCAL, or RESET for a NULL value, made when
        DuckDB has finished the statement, which fails if the SET does; the new value."""
        self._set_configs.append((name, value, is_local))
        if value is None:
            return str(DEFAULT_SETTINGS.get(name.lower(), ""))
        return ", ".join(_set_config_parts(name, value))

    def _set_config_now(self, name: str, value: str | None, is_local: bool) -> None:
        node = pb.VariableSetStmt(name=name, is_local=is_local)
        if value is None:
            node.kind = pb.VAR_RESET
        else:
            node.kind = pb.VAR_SET_VALUE
            for part in _set_config_parts(name, value):
                node.args.add().a_const.sval.sval = part
        self._set(node, warn_local=False)

    def _show(self, node: Any) -> Result:
        name = node.name.lower()
        if name == "all":
            rows = sorted(self.settings.items())
            t = pa.table({"name": [r[0] for r in rows], "setting": [r[1] for r in rows]})
            cols = [Column("name", ColumnType("text")), Column("setting", ColumnType("text"))]
            return Result(columns=cols, command=f"SHOW {len(rows)}", rowcount=len(rows), _arrow=t)
        if name not in self.settings:
            raise E.UndefinedObject(f'unrecognized configuration parameter "{node.name}"')
        value = self.settings[name]
        return Result(columns=[Column(name, ColumnType("text"))], command="SHOW", rowcount=1,
                      _arrow=pa.table({name: [value]}))

    def _explain(self, node: Any, params: list[Any]) -> Result:
        from .explain import explain

        return explain(self, node, params)


def _find_identifier(sql: str, name: str, start: int = 0) -> int | None:
    """1-based position of ``name`` as a word in ``sql`` (errors DuckDB reports without one;
    the first use of the name is the best guess a person can act on)."""
    import re

    m = re.search(r'(?<![\w"])"?' + re.escape(name) + r'"?(?![\w"])', sql[start:])
    return start + m.start() + 1 if m else None


#: The metric children of each statement kind and outcome (``labels()`` looks them up under
#: a lock on every call).
_STATEMENT_COUNTERS: dict[tuple[str, str], Any] = {}
_STATEMENT_SECONDS: dict[str, Any] = {}


@functools.lru_cache(maxsize=64)
def _statement_timeout(value: str) -> float | None:
    """``statement_timeout`` in seconds (:func:`ms_setting`, parsed once per value)."""
    return ms_setting(value)


@functools.lru_cache(maxsize=256)
def ms_setting(value: str) -> float | None:
    """A Postgres time setting (``'5s'``, ``'250ms'``, ``'1min'``, a bare number of
    milliseconds) in seconds; None for 0 (no limit)."""
    v = str(value).strip().strip("'").lower()
    units = {"ms": 0.001, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0, "us": 1e-6}
    number, unit = v, "ms"
    for u in sorted(units, key=len, reverse=True):
        if v.endswith(u) and u != v:
            number, unit = v[: -len(u)].strip(), u
            break
    try:
        seconds = float(number) * units[unit]
    except ValueError:
        raise E.InvalidParameterValue(
            f'invalid value for parameter: "{value}"',
            hint='Valid units for this parameter are "us", "ms", "s", "min", "h", and "d".'
        ) from None
    if seconds < 0:
        raise E.InvalidParameterValue(f'invalid value for parameter: "{value}"')
    return seconds or None


def _isolation_option(options: Any) -> str | None:
    """The isolation level named in BEGIN / SET TRANSACTION options, if any."""
    for opt in options:
        de = opt.def_elem if hasattr(opt, "def_elem") else None
        if de is None or de.defname != "transaction_isolation":
            continue
        value = ast.const_value(de.arg) if de.HasField("arg") else None
        if isinstance(value, str) and value.lower() in ISOLATION_LEVELS:
            return value.lower()
    return None


def _copy_info(info: TableInfo) -> TableInfo:
    return TableInfo.from_json(info.to_json())
