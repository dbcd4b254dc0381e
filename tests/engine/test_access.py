"""Sessions limited to some workspaces or to reading: enforced by the engine itself, so every
front end (Postgres protocol, HTTP) gets the same rules."""

from __future__ import annotations

import pytest

import tarndb
from tarndb import errors as E


@pytest.fixture
def lake(db: tarndb.Database) -> tarndb.Database:
    db.execute('CREATE TABLE "a"."t" (x INT)')
    db.execute('INSERT INTO "a"."t" VALUES (1)')
    db.execute('CREATE TABLE "b"."t" (x INT)')
    db.execute('INSERT INTO "b"."t" VALUES (2)')
    return db


def test_workspace_limits(lake: tarndb.Database) -> None:
    s = lake.session(workspace="a", allowed_workspaces={"a"})
    assert s.execute("SELECT x FROM t").rows == [(1,)]
    assert s.execute('SELECT x FROM "a"."t"').rows == [(1,)]
    for sql in ['SELECT x FROM "b"."t"', "SELECT x FROM b.t JOIN a.t USING (x)",
                'INSERT INTO "b"."t" VALUES (3)', "SET search_path TO b", "CREATE SCHEMA b2",
                'CREATE TABLE "b"."u" (x INT)', 'SELECT * FROM "b"."_files"']:
        with pytest.raises(E.InsufficientPrivilege) as info:
            s.execute(sql)
        assert info.value.sqlstate == "42501"
    assert lake.execute('SELECT count(*) FROM "b"."t"').scalar() == 1


def test_read_only_sessions(lake: tarndb.Database) -> None:
    s = lake.session(workspace="a", read_only=True)
    assert s.execute("SELECT x FROM t").rows == [(1,)]
    s.execute("BEGIN")
    s.execute("SHOW search_path")
    s.execute("COMMIT")
    for sql in ["INSERT INTO t VALUES (5)", "UPDATE t SET x = 0", "DELETE FROM t",
                "CREATE TABLE z (x INT)", "DROP TABLE t", "SELECT tarndb_tag('t', 'x')",
                "CREATE INDEX i ON t USING deeplake_index (x)"]:
        with pytest.raises(E.InsufficientPrivilege):
            s.execute(sql)
    assert lake.execute('SELECT x FROM "a"."t"').rows == [(1,)]
