"""Advisory locks (pg_advisory_lock and friends) between real client connections."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from .conftest import Server

psycopg = pytest.importorskip("psycopg")


def _connect(server: Server, autocommit: bool = True) -> Any:
    return psycopg.connect(server.dsn(), autocommit=autocommit)


def _one(conn: Any, sql: str) -> Any:
    row = conn.execute(sql).fetchone()
    assert row is not None
    return row[0]


def test_session_level_locks_stack_and_block_others(pg_server: Server) -> None:
    with _connect(pg_server) as a, _connect(pg_server) as b:
        assert _one(a, "SELECT pg_advisory_lock(1001)") is None  # void
        assert _one(a, "SELECT pg_try_advisory_lock(1001)") is True  # re-entrant, stacks
        assert _one(b, "SELECT pg_try_advisory_lock(1001)") is False
        assert _one(a, "SELECT pg_advisory_unlock(1001)") is True
        assert _one(b, "SELECT pg_try_advisory_lock(1001)") is False  # still held once
        assert _one(a, "SELECT pg_advisory_unlock(1001)") is True
        assert _one(b, "SELECT pg_try_advisory_lock(1001)") is True
        cur = a.execute("SELECT pg_advisory_unlock(1001)")
        assert cur.fetchone() == (False,)  # a does not hold it: false and a warning
        assert _one(b, "SELECT pg_advisory_unlock_all()") is None
        assert _one(a, "SELECT pg_try_advisory_lock(1001)") is True


def test_transaction_level_lock_waits_until_commit(pg_server: Server) -> None:
    a = _connect(pg_server, autocommit=False)
    b = _connect(pg_server)
    try:
        a.execute("SELECT pg_advisory_xact_lock(2002)")
        assert _one(b, "SELECT pg_try_advisory_xact_lock(2002)") is False
        took: list[float] = []

        def wait() -> None:
            t0 = time.monotonic()
            b.execute("SELECT pg_advisory_xact_lock(2002)")
            took.append(time.monotonic() - t0)

        th = threading.Thread(target=wait)
        th.start()
        time.sleep(0.4)
        assert took == []
        a.commit()
        th.join(20)
        assert len(took) == 1 and took[0] >= 0.3
        # b's autocommit statement ended, so its transaction lock is gone too.
        assert _one(a, "SELECT pg_try_advisory_xact_lock(2002)") is True
        a.rollback()
    finally:
        a.close()
        b.close()


def test_lock_timeout_deadlock_and_disconnect(pg_server: Server) -> None:
    a = _connect(pg_server)
    b = _connect(pg_server)
    try:
        a.execute("SELECT pg_advisory_lock(3003)")
        b.execute("SET lock_timeout = '150ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            b.execute("SELECT pg_advisory_lock(3003)")
        b.execute("SET lock_timeout = 0")
        b.execute("SELECT pg_advisory_lock(3004)")
        errors: list[BaseException] = []

        def a_wants_3004() -> None:
            try:
                a.execute("SELECT pg_advisory_lock(3004)")
            except BaseException as e:  # noqa: BLE001 - checked below
                errors.append(e)

        th = threading.Thread(target=a_wants_3004)
        th.start()
        time.sleep(0.3)
        try:
            b.execute("SELECT pg_advisory_lock(3003)")
        except psycopg.errors.DeadlockDetected as e:
            errors.append(e)
        b.close()  # b's locks go with its session, so a gets 3004
        th.join(20)
        assert [type(e) for e in errors] == [psycopg.errors.DeadlockDetected]
        with _connect(pg_server) as c:
            assert _one(c, "SELECT pg_try_advisory_lock(3004)") is False  # a holds it now
        a.close()
        time.sleep(0.2)
        with _connect(pg_server) as c:
            assert _one(c, "SELECT pg_try_advisory_lock(3003)") is True
            assert _one(c, "SELECT pg_try_advisory_lock(3004)") is True
    finally:
        a.close()
        b.close()


def test_langchain_extension_bootstrap(pg_server: Server) -> None:
    """What langchain-postgres sends before creating its tables."""
    with _connect(pg_server, autocommit=False) as c:
        c.execute("SELECT pg_advisory_xact_lock(1573678846307946496);"
                  "CREATE EXTENSION IF NOT EXISTS vector;")
        c.commit()
        assert _one(c, "SELECT count(*) FROM pg_extension WHERE extname = 'vector'") == 1
