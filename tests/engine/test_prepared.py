"""SQL-level PREPARE / EXECUTE / DEALLOCATE (engine/prepared.py), as PostgreSQL runs them:
arguments cast to the declared types, one name per session, errors with PostgreSQL's
SQLSTATEs. (pg_dump 15 prepares its column-privilege query this way.)"""

from __future__ import annotations

import pytest

import tarndb
from tarndb.errors import DuplicatePreparedStatement, InvalidSqlStatementName


def test_prepare_execute_deallocate(db: tarndb.Database) -> None:
    s = db.session(workspace="ws")
    other = db.session(workspace="ws")
    try:
        s.execute("CREATE TABLE t (id INT PRIMARY KEY, name TEXT)")
        s.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        assert (
            s.execute("PREPARE q(int) AS SELECT name FROM t WHERE id > $1 ORDER BY id").command
            == "PREPARE"
        )
        assert s.execute("EXECUTE q(1)").rows == [("b",), ("c",)]
        # the argument takes the declared type: text '2' compares as an integer
        assert s.execute("EXECUTE q('2')").rows == [("c",)]
        s.execute("PREPARE ins(int, text) AS INSERT INTO t VALUES ($1, $2) RETURNING id")
        assert s.execute("EXECUTE ins(4, 'd')").rows == [(4,)]
        assert s.execute("SELECT count(*) FROM t").rows == [(4,)]
        with pytest.raises(DuplicatePreparedStatement) as dup:
            s.execute("PREPARE q AS SELECT 1")
        assert dup.value.sqlstate == "42P05"
        # one session's statements are its own
        with pytest.raises(InvalidSqlStatementName) as missing:
            other.execute("EXECUTE q(1)")
        assert missing.value.sqlstate == "26000"
        with pytest.raises(tarndb.TarnError, match="wrong number of parameters"):
            s.execute("EXECUTE q")
        assert s.execute("DEALLOCATE q").command == "DEALLOCATE"
        with pytest.raises(InvalidSqlStatementName):
            s.execute("EXECUTE q(1)")
        s.execute("PREPARE q AS SELECT 7")
        assert s.execute("EXECUTE q").rows == [(7,)]
        assert s.execute("DEALLOCATE ALL").command == "DEALLOCATE ALL"
        with pytest.raises(InvalidSqlStatementName):
            s.execute("EXECUTE ins(5, 'e')")
        # a name that no statement has: 26000, as PostgreSQL
        with pytest.raises(InvalidSqlStatementName, match='"_pg3_0" does not exist'):
            s.execute("DEALLOCATE _pg3_0")
    finally:
        s.close()
        other.close()


def test_execute_is_checked_as_the_statement(db: tarndb.Database) -> None:
    s = db.session(workspace="ws")
    s.execute("CREATE TABLE t (id INT)")
    s.close()
    ro = db.session(workspace="ws", read_only=True)
    scoped = db.session(workspace="ws", allowed_workspaces={"ws"})
    try:
        ro.execute("PREPARE w AS INSERT INTO t VALUES (1)")
        with pytest.raises(tarndb.TarnError) as e:
            ro.execute("EXECUTE w")
        assert e.value.sqlstate == "42501"
        scoped.execute("PREPARE r AS SELECT count(*) FROM t")
        assert scoped.execute("EXECUTE r").rows == [(0,)]
        with pytest.raises(tarndb.TarnError) as e:
            scoped.execute("PREPARE o AS SELECT * FROM other.t")
        assert e.value.sqlstate == "42501"
    finally:
        ro.close()
        scoped.close()
