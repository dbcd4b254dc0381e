"""Per-session memory and temp limits in the engine (engine/limits.py): sizes, engines that
carry every global definition of the shared DuckDB instance, the server-wide memory budget,
and engines going back to the pool clean. (tests/security/test_session_limits.py runs the
same limits against a real server, with psycopg and the HTTP API.)"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import tarndb
from tarndb import errors as E
from tarndb.engine import limits

SORT = "SELECT count(*) FROM (SELECT range::varchar AS s FROM range({n}) ORDER BY s DESC) q"


def _setting(s: tarndb.Session, name: str) -> str:
    """A DuckDB setting of the instance the session's statements run on."""
    rows = s.cursor.execute("SELECT value FROM duckdb_settings() WHERE name = ?",
                            [name]).fetchall()
    assert len(rows) == 1
    return str(rows[0][0])


@pytest.fixture
def db(tmp_path: Path) -> Iterator[tarndb.Database]:
    d = tarndb.open(str(tmp_path / "lake"), memory_limit="128MiB", temp_limit="128MiB",
                    session_memory_limit="64MiB", session_temp_limit="16MiB")
    try:
        yield d
    finally:
        d.close()


def test_sizes_parse_and_print_as_postgres_does() -> None:
    assert limits.parse_size("64MB") == 64 << 20
    assert limits.parse_size("1.5GiB") == 3 << 29
    assert limits.parse_size("2048", 1024) == 2 << 20  # a bare number: kB
    assert limits.parse_size("-1") is None
    assert limits.parse_size("50%") > 0  # type: ignore[operator]
    with pytest.raises(E.InvalidParameterValue):
        limits.parse_size("lots")
    with pytest.raises(E.InvalidParameterValue):
        limits.parse_size("12 parsecs")
    assert [limits.format_size(n) for n in (None, 64 << 20, 1 << 30, 1536 << 10, 1000)] == \
        ["-1", "64MB", "1GB", "1536kB", "1000B"]


def test_server_limits_that_cannot_hold_are_refused(tmp_path: Path) -> None:
    with pytest.raises(E.InvalidParameterValue, match="exceeds memory_limit"):
        tarndb.open(str(tmp_path / "a"), memory_limit="64MB", session_memory_limit="128MB")
    with pytest.raises(E.InvalidParameterValue, match="at least"):
        tarndb.open(str(tmp_path / "b"), memory_limit="64MB", session_memory_limit="1MB")


def test_a_session_engine_has_the_shared_instances_definitions_and_locks(
        db: tarndb.Database) -> None:
    s = db.session()
    try:
        # Its own instance: DuckDB reports the session's limits, not the server's.
        assert _setting(s, "memory_limit") == "64.0 MiB"
        assert _setting(s, "max_temp_directory_size") == "16.0 MiB"
        with pytest.raises(E.InsufficientPrivilege):  # enable_external_access = false
            s.execute("SELECT * FROM read_csv('/etc/passwd')")
        with pytest.raises(E.DivisionByZero):  # pg_catalog's SET GLOBAL, replayed
            s.execute("SELECT 1 / 0")
        import duckdb

        with pytest.raises(duckdb.Error, match="locked"):  # lock_configuration = true
            s.cursor.execute("SET memory_limit = '10GB'")
        # Functions the shared connection gets later (nextval on first use) reach it too.
        s.execute("CREATE TABLE t (id serial PRIMARY KEY, v text)")
        s.execute("INSERT INTO t (v) VALUES ('a'), ('b')")
        assert s.execute("SELECT nextval('t_id_seq')").rows == [(3,)]
        assert s.execute("SELECT to_regclass('t') IS NOT NULL").rows == [(True,)]
    finally:
        s.close()


def test_temp_limit_is_per_session_and_53400(db: tarndb.Database) -> None:
    a, b = db.session(), db.session()
    try:
        with pytest.raises(E.ConfigurationLimitExceeded,
                           match=r"temporary file size exceeds temp_file_limit \(16384kB\)"):
            a.execute(SORT.format(n=5_000_000))
        assert b.execute(SORT.format(n=1_000_000)).rows == [(1_000_000,)]
        a.execute("SET temp_file_limit = '100MB'")  # the embedded owner is a superuser
        assert a.execute(SORT.format(n=5_000_000)).rows == [(5_000_000,)]
        assert a.execute("SHOW temp_file_limit").rows == [("100MB",)]
        with pytest.raises(E.InvalidParameterValue):  # past the server's temp_limit
            a.execute("SET temp_file_limit = '1GB'")
        with pytest.raises(E.InvalidParameterValue):  # too little for DuckDB to run
            a.execute("SET tarndb.memory_limit = '1MB'")
    finally:
        a.close()
        b.close()


def test_statements_wait_for_the_servers_memory_budget(db: tarndb.Database) -> None:
    """128 MB for all sessions, 64 MB each: two statements hold it all; a third waits until
    one ends, and gives up at its statement_timeout with 57014."""
    a, b, c = db.session(), db.session(), db.session()
    try:
        db.engines.enter(a)  # as a running statement of a and of b would
        db.engines.enter(b)
        c.execute("SET statement_timeout = '300ms'")
        t = time.monotonic()
        with pytest.raises(E.QueryCanceled, match="statement timeout"):
            c.execute("SELECT 1")
        assert time.monotonic() - t >= 0.25
        c.execute("SET statement_timeout = 0")
        threading.Timer(0.3, db.engines.exit, args=(a,)).start()
        t = time.monotonic()
        assert c.execute("SELECT 2").rows == [(2,)]
        assert time.monotonic() - t >= 0.2
        db.engines.exit(b)
    finally:
        for s in (a, b, c):
            s.close()


def test_an_engine_goes_back_to_the_pool_without_the_sessions_state(
        db: tarndb.Database) -> None:
    s = db.session(workspace="ws1", allowed_workspaces={"ws1"})
    cursor_engine = _setting(s, "temp_directory")
    s.close()
    for _ in range(20):  # the pool holds it (and the spares the filler makes)
        t = db.session()
        try:
            if _setting(t, "temp_directory") == cursor_engine:
                # The same instance, a new connection: none of the old session's variables.
                assert t.cursor.execute(
                    "SELECT getvariable('tarndb_allowed_workspaces'), "
                    "getvariable('tarndb_workspace')").fetchall() == [(None, "public")]
                return
        finally:
            t.close()
    pytest.fail("the engine of a closed session was not reused")


def test_a_lowered_limit_moves_the_session_with_its_variables(db: tarndb.Database) -> None:
    s = db.session(workspace="ws1", allowed_workspaces={"ws1"})
    try:
        s.execute("SET tarndb.memory_limit = '16MB'")
        assert s.execute("SELECT 1").rows == [(1,)]
        assert _setting(s, "memory_limit") == "16.0 MiB"
        assert s.cursor.execute("SELECT getvariable('tarndb_workspace'), "
                                "getvariable('tarndb_allowed_workspaces')").fetchall() == \
            [("ws1", "ws1")]
        s.execute("RESET ALL")
        s.execute("SELECT 1")
        assert _setting(s, "memory_limit") == "64.0 MiB"
    finally:
        s.close()


def test_without_session_limits_sessions_share_the_instance_until_they_lower_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TARNDB_SESSION_MEMORY_LIMIT", raising=False)
    monkeypatch.delenv("TARNDB_SESSION_TEMP_LIMIT", raising=False)
    d = tarndb.open(str(tmp_path / "lake"), memory_limit="256MiB", temp_limit="256MiB")
    try:
        s = d.session()
        assert "tarndb-duckdb-" in _setting(s, "temp_directory")  # the shared instance
        s.execute("SET temp_file_limit = '1MB'")
        s.execute("SET tarndb.memory_limit = '16MB'")
        with pytest.raises(E.ConfigurationLimitExceeded, match=r"\(1024kB\)"):
            s.execute(SORT.format(n=2_000_000))
        assert "tarndb-session-" in _setting(s, "temp_directory")
        s.execute("RESET ALL")
        assert s.execute(SORT.format(n=2_000_000)).rows == [(2_000_000,)]
        assert "tarndb-duckdb-" in _setting(s, "temp_directory")
        s.close()
    finally:
        d.close()


def test_a_burst_of_sessions_starts_without_waiting_for_engines(db: tarndb.Database) -> None:
    """Past the engines made ahead, a new session starts on the shared instance and moves to
    an engine of its own at its first statement, still held to its limits."""
    sessions = [db.session() for _ in range(6)]
    try:
        for s in sessions:
            with pytest.raises(E.ConfigurationLimitExceeded, match=r"\(16384kB\)"):
                s.execute(SORT.format(n=4_000_000))
            assert "tarndb-session-" in _setting(s, "temp_directory")
            assert _setting(s, "memory_limit") == "64.0 MiB"
    finally:
        for s in sessions:
            s.close()
