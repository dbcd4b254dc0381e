"""Standalone sequences (``CREATE SEQUENCE``) as PostgreSQL has them: options, nextval,
currval, setval, lastval, bounds and CYCLE, column defaults, transactional DDL, workspace
checks, and values unique across two servers on one lake."""

from __future__ import annotations

from pathlib import Path

import pytest

import tarndb
from tarndb import errors as E


def _one(s: tarndb.Session, sql: str) -> int:
    return int(s.execute(sql).rows[0][0])


def test_options_nextval_currval_setval_lastval(session: tarndb.Session) -> None:
    s = session
    s.execute("CREATE SEQUENCE myseq START 10 INCREMENT 5")
    with pytest.raises(E.ObjectNotInPrerequisiteState,
                       match='currval of sequence "myseq" is not yet defined in this session'):
        s.execute("SELECT currval('myseq')")
    with pytest.raises(E.ObjectNotInPrerequisiteState, match="lastval is not yet defined"):
        s.execute("SELECT lastval()")
    assert [_one(s, "SELECT nextval('myseq')") for _ in range(3)] == [10, 15, 20]
    assert s.execute("SELECT currval('myseq'), lastval()").rows == [(20, 20)]
    assert _one(s, "SELECT setval('myseq', 100)") == 100
    assert _one(s, "SELECT nextval('ws.myseq'::regclass)") == 105
    s.execute("SELECT setval('myseq', 7, false)")
    assert _one(s, "SELECT nextval('myseq')") == 7
    s.execute("ALTER SEQUENCE myseq RESTART WITH 1000 INCREMENT BY 2")
    assert _one(s, "SELECT nextval('myseq')") == 1000
    assert _one(s, "SELECT nextval('myseq')") == 1002
    with pytest.raises(E.DuplicateTable, match='relation "myseq" already exists'):
        s.execute("CREATE SEQUENCE myseq")
    s.execute("CREATE SEQUENCE IF NOT EXISTS myseq")
    with pytest.raises(E.UndefinedTable):
        s.execute("SELECT nextval('nosuch')")
    with pytest.raises(E.NumericValueOutOfRange, match="out of bounds"):
        s.execute("SELECT setval('myseq', 0)")


def test_bounds_negative_increment_and_cycle(session: tarndb.Session) -> None:
    s = session
    s.execute("CREATE SEQUENCE up AS smallint MAXVALUE 2")
    assert [_one(s, "SELECT nextval('up')") for _ in range(2)] == [1, 2]
    with pytest.raises(E.SequenceGeneratorLimitExceeded) as e:
        s.execute("SELECT nextval('up')")
    assert e.value.sqlstate == "2200H"
    assert e.value.message == 'nextval: reached maximum value of sequence "up" (2)'
    s.execute("CREATE SEQUENCE down INCREMENT BY -3 MINVALUE -7")
    assert [_one(s, "SELECT nextval('down')") for _ in range(3)] == [-1, -4, -7]
    with pytest.raises(E.SequenceGeneratorLimitExceeded, match=r"minimum value .*\(-7\)"):
        s.execute("SELECT nextval('down')")
    s.execute("CREATE SEQUENCE c MINVALUE 1 MAXVALUE 3 CYCLE")
    assert [r[0] for r in s.execute("SELECT nextval('c') FROM range(7)").rows] == \
        [1, 2, 3, 1, 2, 3, 1]
    with pytest.raises(E.InvalidParameterValue, match="INCREMENT must not be zero"):
        s.execute("CREATE SEQUENCE z INCREMENT 0")
    with pytest.raises(E.InvalidParameterValue, match="out of range for sequence data type"):
        s.execute("CREATE SEQUENCE z AS smallint MAXVALUE 100000")
    with pytest.raises(E.InvalidParameterValue, match=r"START value \(0\) cannot be less"):
        s.execute("CREATE SEQUENCE z START 0")


def test_default_nextval_and_drop(session: tarndb.Session) -> None:
    s = session
    s.execute("CREATE SEQUENCE ids START 100")
    s.execute("CREATE TABLE a (id BIGINT DEFAULT nextval('ids'), v TEXT)")
    s.execute("CREATE TABLE b (id INT, v TEXT)")
    s.execute("ALTER TABLE b ALTER COLUMN id SET DEFAULT nextval('ids'::regclass)")
    s.execute("INSERT INTO a (v) VALUES ('x'), ('y')")
    s.execute("INSERT INTO b (v) VALUES ('z')")
    assert s.execute("SELECT id FROM a ORDER BY id").rows == [(100,), (101,)]
    assert s.execute("SELECT id FROM b").rows == [(102,)]
    with pytest.raises(E.DependentObjectsStillExist, match="cannot drop sequence ids"):
        s.execute("DROP SEQUENCE ids")
    s.execute("DROP SEQUENCE ids CASCADE")
    s.execute("INSERT INTO a (v) VALUES ('w')")
    assert s.execute("SELECT id FROM a WHERE v = 'w'").rows == [(None,)]
    s.execute("DROP SEQUENCE IF EXISTS ids")
    with pytest.raises(E.UndefinedTable):
        s.execute("DROP SEQUENCE ids")
    s.execute("CREATE TABLE o (id INT)")
    s.execute("CREATE SEQUENCE owned OWNED BY o.id")
    s.execute("ALTER TABLE o RENAME TO o2")
    s.execute("DROP TABLE o2")
    with pytest.raises(E.UndefinedTable):
        s.execute("SELECT nextval('owned')")


def test_transactional_ddl_and_nextval_not_rolled_back(session: tarndb.Session) -> None:
    s = session
    s.execute("BEGIN")
    s.execute("CREATE SEQUENCE tx")
    assert _one(s, "SELECT nextval('tx')") == 1
    s.execute("ROLLBACK")
    with pytest.raises(E.UndefinedTable):
        s.execute("SELECT nextval('tx')")
    s.execute("CREATE SEQUENCE keep")
    s.execute("BEGIN")
    assert _one(s, "SELECT nextval('keep')") == 1
    s.execute("DROP SEQUENCE keep")
    s.execute("ROLLBACK")
    assert _one(s, "SELECT nextval('keep')") == 2  # nextval is never rolled back


def test_workspace_checks(db: tarndb.Database) -> None:
    admin = db.session(workspace="a")
    admin.execute("CREATE SCHEMA b")
    admin.execute("CREATE SEQUENCE b.secret")
    admin.execute("CREATE SEQUENCE a.mine")
    scoped = db.session(workspace="a", allowed_workspaces={"a"})
    try:
        assert _one(scoped, "SELECT nextval('mine')") == 1
        for sql in ("SELECT nextval('b.secret')", "SELECT setval('b.secret', 5)",
                    "SELECT currval('b.secret')", "DROP SEQUENCE b.secret",
                    "ALTER SEQUENCE b.secret RESTART", "CREATE SEQUENCE b.other"):
            with pytest.raises(E.InsufficientPrivilege):
                scoped.execute(sql)
        with pytest.raises(E.UndefinedTable):  # b is not on its path
            scoped.execute("SELECT nextval('secret')")
        reader = db.session(workspace="a", allowed_workspaces={"a"}, read_only=True)
        try:
            for sql in ("SELECT nextval('mine')", "SELECT setval('mine', 5)"):
                with pytest.raises(E.InsufficientPrivilege, match="read-only"):
                    reader.execute(sql)
        finally:
            reader.close()
    finally:
        scoped.close()
        admin.close()


def test_two_servers_one_lake_hand_out_distinct_values(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    one, two = tarndb.open(lake), tarndb.open(lake)
    try:
        one.execute("CREATE SEQUENCE shared")
        s1, s2 = one.session(), two.session()
        got = []
        for _ in range(200):
            got.append(_one(s1, "SELECT nextval('shared')"))
            got.append(_one(s2, "SELECT nextval('shared')"))
        assert len(got) == 400 and len(set(got)) == 400
        s1.close()
        s2.close()
    finally:
        one.close()
        two.close()
    # a value handed out is never handed out again after a restart
    again = tarndb.open(lake)
    try:
        assert _one(again.session(), "SELECT nextval('shared')") > max(got)
    finally:
        again.close()


def test_rename_keeps_value_and_defaults(session: tarndb.Session) -> None:
    s = session
    s.execute("CREATE SEQUENCE r START 5")
    s.execute("CREATE TABLE rt (id BIGINT DEFAULT nextval('r'), v TEXT)")
    s.execute("INSERT INTO rt (v) VALUES ('a')")
    s.execute("ALTER SEQUENCE r RENAME TO r2")
    with pytest.raises(E.UndefinedTable):
        s.execute("SELECT nextval('r')")
    s.execute("INSERT INTO rt (v) VALUES ('b')")
    assert _one(s, "SELECT nextval('r2')") == 7
    assert s.execute("SELECT id FROM rt ORDER BY id").rows == [(5,), (6,)]
    with pytest.raises(E.DuplicateTable):
        s.execute("ALTER SEQUENCE r2 RENAME TO rt")


def test_drop_schema_with_sequences(session: tarndb.Session) -> None:
    s = session
    s.execute("CREATE SEQUENCE gone.q")
    with pytest.raises(E.DependentObjectsStillExist):
        s.execute("DROP SCHEMA gone")
    assert _one(s, "SELECT nextval('gone.q')") == 1
    s.execute("DROP SCHEMA gone CASCADE")
    with pytest.raises(E.UndefinedTable):
        s.execute("SELECT nextval('gone.q')")


def test_alter_sequence_owner_to(session: tarndb.Session) -> None:
    """pg_dump 16 writes ALTER SEQUENCE ... OWNER TO (15 wrote ALTER TABLE) for standalone
    and serial columns' sequences alike; objects are the superusers', so only they fit."""
    s = session
    s.execute("CREATE SEQUENCE own_s")
    s.execute("CREATE TABLE own_t (id SERIAL PRIMARY KEY, v TEXT)")
    assert s.execute("ALTER SEQUENCE own_s OWNER TO postgres").command == "ALTER SEQUENCE"
    s.execute("ALTER SEQUENCE ws.own_t_id_seq OWNER TO CURRENT_USER")
    with pytest.raises(E.FeatureNotSupported, match="owned by the superusers"):
        s.execute("ALTER SEQUENCE own_s OWNER TO someone")
    with pytest.raises(E.WrongObjectType, match='"own_t" is not a sequence'):
        s.execute("ALTER SEQUENCE own_t OWNER TO postgres")
    with pytest.raises(E.UndefinedTable, match='relation "nosuch" does not exist'):
        s.execute("ALTER SEQUENCE nosuch OWNER TO postgres")
    s.execute("ALTER SEQUENCE IF EXISTS nosuch OWNER TO postgres")
    assert _one(s, "SELECT nextval('own_s')") == 1


def test_serial_sequence_spelled_by_pg_dump_in_one_transaction(session: tarndb.Session) -> None:
    """pg_restore --single-transaction: the table, its ``<table>_<column>_seq`` and the
    nextval default come in one transaction, and the column becomes serial again rather
    than getting a standalone sequence of that name."""
    s = session
    s.execute("BEGIN")
    s.execute("CREATE TABLE st (id integer NOT NULL, v text)")
    s.execute("CREATE SEQUENCE ws.st_id_seq AS integer START WITH 1 INCREMENT BY 1 "
              "NO MINVALUE NO MAXVALUE CACHE 1")
    s.execute("ALTER SEQUENCE ws.st_id_seq OWNER TO postgres")
    s.execute("ALTER SEQUENCE ws.st_id_seq OWNED BY ws.st.id")
    s.execute("ALTER TABLE ONLY ws.st ALTER COLUMN id SET DEFAULT "
              "nextval('ws.st_id_seq'::regclass)")
    s.execute("INSERT INTO st (id, v) VALUES (1, 'a'), (2, 'b')")
    s.execute("SELECT pg_catalog.setval('ws.st_id_seq', 2, true)")
    s.execute("COMMIT")
    assert s.execute("SELECT count(*) FROM pg_sequences WHERE schemaname = 'ws' "
                     "AND sequencename = 'st_id_seq'").rows == [(0,)]
    assert s.execute("INSERT INTO st (v) VALUES ('c') RETURNING id").rows == [(3,)]


def test_setval_of_a_serial_column_goes_back_too(session: tarndb.Session) -> None:
    """As PostgreSQL's setval: lower than the values handed out already (this process had
    a block of them reserved)."""
    s = session
    s.execute("CREATE TABLE sv (id SERIAL PRIMARY KEY, v TEXT)")
    s.execute("INSERT INTO sv (v) VALUES ('a'), ('b'), ('c')")
    s.execute("DELETE FROM sv")
    s.execute("SELECT setval('sv_id_seq', 1, false)")
    assert s.execute("INSERT INTO sv (v) VALUES ('d') RETURNING id").rows == [(1,)]
    s.execute("SELECT setval('sv_id_seq', 7)")
    assert s.execute("INSERT INTO sv (v) VALUES ('e') RETURNING id").rows == [(8,)]
