"""PostgreSQL's advisory locks on the engine's lock manager (engine/locks.py).

``pg_advisory_lock(key)`` and friends are DuckDB macros over one Python function shared by
every session. Which session called it comes from a DuckDB variable set on the session's own
cursor (a random token, so no statement can name another session's locks). Locks are named
``("advisory", key)`` (or ``("advisory", k1, k2)`` for the two-int4 forms) and owned by one
owner per session, so a session holding a key at session level may take it again at
transaction level, as in PostgreSQL:

- ``pg_advisory_xact_lock[_shared](key)``, ``pg_try_advisory_xact_lock[_shared](key)``:
  released when the transaction (the statement, outside one) ends;
- ``pg_advisory_lock[_shared](key)``, ``pg_try_advisory_lock[_shared](key)``: held until
  ``pg_advisory_unlock[_shared](key)`` (as many times as taken), ``pg_advisory_unlock_all()``
  or the end of the session.

Waits honour ``lock_timeout`` (55P03) and ``statement_timeout`` / cancel (57014); a wait
cycle between sessions is 40P01. The void functions return NULL.
"""

from __future__ import annotations

import secrets
import threading
import weakref
from collections import Counter
from typing import TYPE_CHECKING, Any, cast

import duckdb

from .. import errors as E
from .commit import new_txn_id

if TYPE_CHECKING:
    from .session import Session

_sessions: weakref.WeakValueDictionary[str, Session] = weakref.WeakValueDictionary()
_guard = threading.Lock()

_VOID = {"pg_advisory_lock": ("lock", True), "pg_advisory_lock_shared": ("lock", False),
         "pg_advisory_xact_lock": ("xact", True),
         "pg_advisory_xact_lock_shared": ("xact", False)}
_BOOL = {"pg_try_advisory_lock": ("try", True), "pg_try_advisory_lock_shared": ("try", False),
         "pg_try_advisory_xact_lock": ("try_xact", True),
         "pg_try_advisory_xact_lock_shared": ("try_xact", False),
         "pg_advisory_unlock": ("unlock", True),
         "pg_advisory_unlock_shared": ("unlock", False)}


def install(con: duckdb.DuckDBPyConnection) -> None:
    """The shared function and the pg_advisory_* macros (once per Database)."""
    cast(Any, con).create_function("__tarn_advisory", _call,
                        [duckdb.sqltype("VARCHAR"), duckdb.sqltype("BOOLEAN"),
                         duckdb.sqltype("BIGINT"), duckdb.sqltype("BIGINT"),
                         duckdb.sqltype("VARCHAR")],
                        duckdb.sqltype("BOOLEAN"), null_handling="special", side_effects=True)
    me = "CAST(getvariable('tarndb_session') AS VARCHAR)"
    for name, (op, excl) in _VOID.items():
        con.execute(f"CREATE OR REPLACE MACRO {name}(k, k2 := NULL) AS CAST(NULLIF("
                    f"__tarn_advisory('{op}', {excl}, CAST(k AS BIGINT), CAST(k2 AS BIGINT), "
                    f"{me}), true) AS VARCHAR)")
    for name, (op, excl) in _BOOL.items():
        con.execute(f"CREATE OR REPLACE MACRO {name}(k, k2 := NULL) AS __tarn_advisory("
                    f"'{op}', {excl}, CAST(k AS BIGINT), CAST(k2 AS BIGINT), {me})")
    con.execute("CREATE OR REPLACE MACRO pg_advisory_unlock_all() AS CAST(NULLIF("
                f"__tarn_advisory('unlock_all', true, 0, NULL, {me}), true) AS VARCHAR)")


def register(session: Session) -> None:
    """Give ``session`` its token (on its own cursor)."""
    token = secrets.token_hex(16)
    with _guard:
        _sessions[token] = session
    session.cursor.execute(f"SET VARIABLE tarndb_session = '{token}'")


def session_for(token: str) -> Session | None:
    """The session whose cursor holds ``token`` (for the other per-session functions DuckDB
    calls, engine/setconfig.py)."""
    with _guard:
        return _sessions.get(token)


class Advisory:
    """One session's advisory locks."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.owner = new_txn_id()
        self.held: Counter[tuple[Any, ...]] = Counter()  # session-level, with their counts
        self.xact: Counter[tuple[Any, ...]] = Counter()  # transaction-level

    def _acquire(self, key: tuple[Any, ...], exclusive: bool, wait: bool) -> bool:
        s = self.session
        try:
            s.db.locks.acquire(self.owner, [key], exclusive=exclusive,
                               timeout=s.lock_timeout() if wait else 0.0,
                               cancelled=s._wait_cancelled)
        except E.LockNotAvailable:
            if wait:
                raise
            return False
        return True

    def call(self, op: str, exclusive: bool, k: int | None, k2: int | None) -> bool:
        if op == "unlock_all":
            self.held.clear()
            self._release_unused()
            return True
        if k is None:
            return False  # strict in PostgreSQL: NULL in, NULL (no lock) out
        key: tuple[Any, ...] = ("advisory", k) if k2 is None else ("advisory", k, k2)
        if op in ("lock", "try"):
            if not self._acquire(key, exclusive, op == "lock"):
                return False
            self.held[key] += 1
            return True
        if op in ("xact", "try_xact"):
            if not self.session.txn_id:
                raise E.NoActiveTransaction("advisory transaction lock outside a transaction")
            if not self._acquire(key, exclusive, op == "xact"):
                return False
            self.xact[key] += 1
            return True
        if op == "unlock":
            if self.held[key] <= 0:
                self.session.notices.append(
                    f"you don't own a lock of type {'ExclusiveLock' if exclusive else 'ShareLock'}")
                return False
            self.held[key] -= 1
            if self.held[key] == 0:
                del self.held[key]
                self._release_unused()
            return True
        raise E.InternalError(f"unknown advisory operation {op}")

    def end_transaction(self) -> None:
        if self.xact:
            self.xact.clear()
            self._release_unused()

    def _release_unused(self) -> None:
        locks = self.session.db.locks
        keep = set(self.held) | set(self.xact)
        for key in list(locks.held_by(self.owner)):
            if key not in keep:
                locks.release(self.owner, key)

    def close(self) -> None:
        self.held.clear()
        self.xact.clear()
        self.session.db.locks.release_all(self.owner)


def _call(op: str | None, exclusive: bool | None, k: int | None, k2: int | None,
          token: str | None) -> bool | None:
    from .udf import remember_error

    try:
        session = _sessions.get(token or "")
        if session is None or op is None:
            raise E.InternalError("advisory lock function called outside a session")
        return session.advisory.call(op, bool(exclusive), k, k2)
    except E.TarnError as e:
        remember_error(e)  # keeps its SQLSTATE through DuckDB (engine/udf.py)
        raise
