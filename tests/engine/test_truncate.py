"""TRUNCATE as PostgreSQL has it: every row goes, in the statement's transaction; foreign
keys refuse it (0A000) unless the referencing tables are named too or CASCADE takes them;
RESTART IDENTITY starts the tables' sequences again."""

from __future__ import annotations

import pytest

import tarndb
from tarndb import errors as E


def _count(s: tarndb.Session, table: str) -> int:
    return int(s.execute(f"SELECT count(*) FROM {table}").rows[0][0])


def test_truncate_empties_tables_in_its_transaction(session: tarndb.Session) -> None:
    s = session
    s.execute("CREATE TABLE tr_a (id SERIAL PRIMARY KEY, v TEXT)")
    s.execute("CREATE TABLE tr_b (id INT, v TEXT)")
    s.execute("INSERT INTO tr_a (v) VALUES ('x'), ('y')")
    s.execute("INSERT INTO tr_b VALUES (1, 'z')")
    s.execute("BEGIN")
    assert s.execute("TRUNCATE TABLE ONLY tr_a, ws.tr_b").command == "TRUNCATE TABLE"
    assert _count(s, "tr_a") == _count(s, "tr_b") == 0
    s.execute("ROLLBACK")
    assert (_count(s, "tr_a"), _count(s, "tr_b")) == (2, 1)
    s.execute("TRUNCATE tr_a")  # CONTINUE IDENTITY, the default
    assert s.execute("INSERT INTO tr_a (v) VALUES ('n') RETURNING id").rows == [(3,)]
    s.execute("TRUNCATE tr_a RESTART IDENTITY")
    assert s.execute("INSERT INTO tr_a (v) VALUES ('n') RETURNING id").rows == [(1,)]
    # a table created in the transaction (pg_restore -j truncates before its COPY)
    s.execute("BEGIN")
    s.execute("CREATE TABLE tr_c (id INT)")
    s.execute("INSERT INTO tr_c VALUES (1)")
    s.execute("TRUNCATE TABLE ONLY tr_c")
    s.execute("INSERT INTO tr_c VALUES (2)")
    s.execute("COMMIT")
    assert s.execute("SELECT id FROM tr_c").rows == [(2,)]


def test_truncate_restart_identity_waits_for_commit(session: tarndb.Session) -> None:
    s = session
    s.execute("CREATE TABLE tr_i (id INT GENERATED ALWAYS AS IDENTITY, v TEXT)")
    s.execute("CREATE SEQUENCE tr_owned START 5 OWNED BY tr_i.v")
    s.execute("INSERT INTO tr_i (v) VALUES ('a'), ('b')")
    s.execute("SELECT nextval('tr_owned')")
    s.execute("BEGIN")
    s.execute("TRUNCATE tr_i RESTART IDENTITY")
    s.execute("ROLLBACK")
    assert s.execute("INSERT INTO tr_i (v) VALUES ('c') RETURNING id").rows == [(3,)]
    s.execute("TRUNCATE tr_i RESTART IDENTITY")
    assert s.execute("INSERT INTO tr_i (v) VALUES ('d') RETURNING id").rows == [(1,)]
    assert s.execute("SELECT nextval('tr_owned')").rows == [(5,)]


def test_truncate_and_foreign_keys(session: tarndb.Session) -> None:
    s = session
    s.execute("CREATE TABLE tr_p (id INT PRIMARY KEY)")
    s.execute("CREATE TABLE tr_ch (id INT, p INT REFERENCES tr_p(id))")
    s.execute("INSERT INTO tr_p VALUES (1), (2)")
    s.execute("INSERT INTO tr_ch VALUES (10, 1)")
    with pytest.raises(E.FeatureNotSupported,
                       match="cannot truncate a table referenced in a foreign key") as e:
        s.execute("TRUNCATE tr_p")
    assert e.value.detail == 'Table "tr_ch" references "tr_p".'
    assert (_count(s, "tr_p"), _count(s, "tr_ch")) == (2, 1)
    s.execute("TRUNCATE tr_p, tr_ch")  # the referencing table named too: emptied first
    assert (_count(s, "tr_p"), _count(s, "tr_ch")) == (0, 0)
    s.execute("INSERT INTO tr_p VALUES (1)")
    s.execute("INSERT INTO tr_ch VALUES (10, 1)")
    r = s.execute("TRUNCATE tr_p CASCADE")
    assert 'truncate cascades to table "tr_ch"' in r.notices
    assert (_count(s, "tr_p"), _count(s, "tr_ch")) == (0, 0)
    s.execute("TRUNCATE tr_ch")  # a referencing table alone is fine


def test_truncate_errors(session: tarndb.Session) -> None:
    s = session
    with pytest.raises(E.UndefinedTable, match='relation "tr_nope" does not exist'):
        s.execute("TRUNCATE tr_nope")
    s.execute("CREATE TABLE tr_base (id INT)")
    s.execute("CREATE VIEW tr_view AS SELECT id FROM tr_base")
    with pytest.raises(E.WrongObjectType, match='"tr_view" is not a table'):
        s.execute("TRUNCATE tr_view")
