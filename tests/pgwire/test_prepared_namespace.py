"""One namespace per session for the protocol's prepared statements (Parse with a name) and
SQL ``PREPARE``'s, as PostgreSQL has it (engine/prepared.py): ``DEALLOCATE name`` sent as
SQL frees a statement that Parse made, ``DEALLOCATE ALL`` and ``DISCARD ALL`` free both
kinds (asyncpg and connection poolers send them, then prepare the same names again), Close
frees a ``PREPARE``'d one, neither kind may take a name the other has, and each kind runs
the other's statements (``EXECUTE`` a Parse'd one, Bind a ``PREPARE``'d one). Through
psycopg's libpq connection against a real server."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from .conftest import Server

OK = psycopg.pq.ExecStatus.COMMAND_OK
TUPLES = psycopg.pq.ExecStatus.TUPLES_OK


def _prepare(c: Any, name: bytes, sql: bytes) -> Any:
    return c.pgconn.prepare(name, sql)


def _run(c: Any, name: bytes) -> list[bytes | None]:
    r = c.pgconn.exec_prepared(name, [])
    assert r.status == TUPLES, r.error_message
    return [r.get_value(i, 0) for i in range(r.ntuples)]


def test_deallocate_frees_a_protocol_statement(pg_server: Server) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        assert _prepare(c, b"ns_a", b"SELECT 1").status == OK
        again = _prepare(c, b"ns_a", b"SELECT 2")
        assert again.status != OK
        assert again.error_field(psycopg.pq.DiagnosticField.SQLSTATE) == b"42P05"
        assert c.execute("DEALLOCATE ns_a").statusmessage == "DEALLOCATE"
        # the name is free again, and it is the new statement that runs
        assert _prepare(c, b"ns_a", b"SELECT 2").status == OK
        assert _run(c, b"ns_a") == [b"2"]
        c.execute("DEALLOCATE PREPARE ns_a")
        # a name that neither kind has: 26000, as PostgreSQL
        with pytest.raises(psycopg.errors.InvalidSqlStatementName,
                           match='prepared statement "ns_a" does not exist'):
            c.execute("DEALLOCATE ns_a")


@pytest.mark.parametrize("sql", ["DEALLOCATE ALL", "DISCARD ALL"])
def test_deallocate_all_and_discard_all_free_both_kinds(pg_server: Server, sql: str) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        assert _prepare(c, b"all_p1", b"SELECT 1").status == OK
        assert _prepare(c, b"all_p2", b"SELECT 2").status == OK
        c.execute("PREPARE all_s1 AS SELECT 3")
        assert c.execute(sql).statusmessage == sql
        for name in (b"all_p1", b"all_p2", b"all_s1"):
            r = c.pgconn.exec_prepared(name, [])
            assert r.error_field(psycopg.pq.DiagnosticField.SQLSTATE) == b"26000"
        # ... so that a pooler's next client prepares the same names again
        assert _prepare(c, b"all_p1", b"SELECT 10").status == OK
        assert _prepare(c, b"all_s1", b"SELECT 30").status == OK
        c.execute("PREPARE all_p2 AS SELECT 20")
        assert _run(c, b"all_p1") == [b"10"]
        assert _run(c, b"all_s1") == [b"30"]
        assert c.execute("EXECUTE all_p2").fetchall() == [(20,)]
        c.execute(sql)


def test_discard_tags(pg_server: Server) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        for sql in ("DISCARD PLANS", "DISCARD SEQUENCES", "DISCARD TEMP"):
            assert c.execute(sql).statusmessage == sql
        # DISCARD ALL is refused in a transaction block, as in PostgreSQL
        c.execute("BEGIN")
        with pytest.raises(psycopg.errors.ActiveSqlTransaction,
                           match="DISCARD ALL cannot run inside a transaction block"):
            c.execute("DISCARD ALL")
        c.execute("ROLLBACK")
        assert c.execute("DISCARD ALL").statusmessage == "DISCARD ALL"


def test_one_name_for_both_kinds(pg_server: Server) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute("PREPARE both_s AS SELECT 1")
        r = _prepare(c, b"both_s", b"SELECT 2")
        assert r.error_field(psycopg.pq.DiagnosticField.SQLSTATE) == b"42P05"
        assert r.error_field(psycopg.pq.DiagnosticField.MESSAGE_PRIMARY) == \
            b'prepared statement "both_s" already exists'
        assert _prepare(c, b"both_p", b"SELECT 3").status == OK
        with pytest.raises(psycopg.errors.DuplicatePreparedStatement,
                           match='prepared statement "both_p" already exists'):
            c.execute("PREPARE both_p AS SELECT 4")
        # the protocol's Close frees a PREPARE'd statement too
        assert c.pgconn.close_prepared(b"both_s").status == OK
        c.execute("PREPARE both_s AS SELECT 5")
        assert c.execute("EXECUTE both_s").fetchall() == [(5,)]
        c.execute("DEALLOCATE ALL")


def test_psycopg_prepares_again_after_deallocate_all(pg_server: Server) -> None:
    """psycopg forgets its prepared statements when it sees DEALLOCATE ALL / DISCARD ALL
    and prepares them again under the same names: the server must have freed them."""
    with psycopg.connect(pg_server.dsn(), autocommit=True, prepare_threshold=0) as c:
        for sql in ("DEALLOCATE ALL", "DISCARD ALL", "DEALLOCATE ALL"):
            assert c.execute("SELECT %s::int + 1", [1]).fetchone() == (2,)
            assert c.execute("SELECT %s::text || 'x'", ["a"]).fetchone() == ("ax",)
            c.execute(sql)
        assert c.execute("SELECT %s::int + 1", [41]).fetchone() == (42,)


def test_each_kind_runs_the_others(pg_server: Server) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        # EXECUTE of a statement Parse named: typed by Parse where it gave OIDs
        assert c.pgconn.prepare(b"run_p", b"SELECT $1::int + 1").status == OK
        assert c.execute("EXECUTE run_p(41)").fetchall() == [(42,)]
        assert c.pgconn.prepare(b"run_t", b"SELECT $1 || 'x'", [25]).status == OK
        assert c.execute("EXECUTE run_t('a')").fetchall() == [("ax",)]
        with pytest.raises(psycopg.errors.SyntaxErrorOrAccessRuleViolation,
                           match="wrong number of parameters"):
            c.execute("EXECUTE run_p")
        # Bind (and Describe) of a statement PREPARE named, with its declared types
        c.execute("PREPARE run_s(int, text) AS SELECT $1 * 2 AS twice, $2 AS label")
        d = c.pgconn.describe_prepared(b"run_s")
        assert [d.param_type(i) for i in range(d.nparams)] == [23, 25]
        assert [d.fname(i) for i in range(d.nfields)] == [b"twice", b"label"]
        r = c.pgconn.exec_prepared(b"run_s", [b"21", b"z"])
        assert r.status == TUPLES, r.error_message
        assert (r.get_value(0, 0), r.get_value(0, 1)) == (b"42", b"z")
        c.execute("DEALLOCATE ALL")
