"""FOREIGN KEY constraints through psycopg: 23503 on a missing parent, ON DELETE actions,
a referenced key that may not change, and a concurrent delete that waits for the child."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest

from .conftest import Server

psycopg = pytest.importorskip("psycopg")


def _names() -> tuple[str, str, str]:
    s = uuid.uuid4().hex[:8]
    return f"p_{s}", f"c_{s}", f"g_{s}"


def test_references_are_enforced_with_postgres_messages(pg_server: Server) -> None:
    p, c, g = _names()
    u1, u2 = uuid.uuid4(), uuid.uuid4()
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {p} (uuid UUID PRIMARY KEY, name TEXT UNIQUE)")
        conn.execute(f"CREATE TABLE {c} (id TEXT PRIMARY KEY, "
                     f"pid UUID REFERENCES {p} (uuid) ON DELETE CASCADE, x INT)")
        conn.execute(f"CREATE TABLE {g} (id INT, cid TEXT, pname TEXT, "
                     f"FOREIGN KEY (cid) REFERENCES {c} ON DELETE SET NULL, "
                     f"CONSTRAINT {g}_name FOREIGN KEY (pname) REFERENCES {p} (name))")
        conn.execute(f"INSERT INTO {p} VALUES (%s, 'one'), (%s, 'two')", (u1, u2))
        conn.execute(f"INSERT INTO {c} VALUES ('a', %s, 1), ('b', %s, 2), ('n', NULL, 3)",
                     (u1, u2))
        missing = uuid.uuid4()
        with pytest.raises(psycopg.errors.ForeignKeyViolation) as e:
            conn.execute(f"INSERT INTO {c} VALUES ('z', %s, 0)", (missing,))
        assert str(e.value).startswith(
            f'insert or update on table "{c}" violates foreign key constraint "{c}_pid_fkey"')
        assert e.value.diag.message_detail == (
            f'Key (pid)=({missing}) is not present in table "{p}".')
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute(f"UPDATE {c} SET pid = %s WHERE id = 'a'", (missing,))
        conn.execute(f"INSERT INTO {g} VALUES (1, 'a', 'two'), (2, 'b', 'two'), "
                     "(3, NULL, NULL)")
        # ON DELETE CASCADE from p to c, then SET NULL from c to g.
        cur = conn.execute(f"DELETE FROM {p} WHERE uuid = %s", (u1,))
        assert cur.rowcount == 1
        assert conn.execute(f"SELECT id FROM {c} ORDER BY id").fetchall() == [("b",), ("n",)]
        assert conn.execute(f"SELECT id, cid FROM {g} ORDER BY id").fetchall() == [
            (1, None), (2, "b"), (3, None)]
        # NO ACTION: g still references 'two' by name.
        with pytest.raises(psycopg.errors.ForeignKeyViolation) as e2:
            conn.execute(f"DELETE FROM {p} WHERE name = 'two'")
        assert str(e2.value).startswith(
            f'update or delete on table "{p}" violates foreign key constraint "{g}_name" '
            f'on table "{g}"')
        assert e2.value.diag.message_detail == (
            f'Key (name)=(two) is still referenced from table "{g}".')
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute(f"UPDATE {p} SET name = 'deux' WHERE name = 'two'")
        conn.execute(f"UPDATE {p} SET name = 'two' WHERE name = 'two'")  # key unchanged
        conn.execute(f"DELETE FROM {g}")
        conn.execute(f"DELETE FROM {p}")
        assert conn.execute(f"SELECT count(*) FROM {c}").fetchone() == (1,)  # 'n' (NULL)
        with pytest.raises(psycopg.errors.InvalidForeignKey):
            conn.execute(f"CREATE TABLE {g}_bad (v INT REFERENCES {c} (x))")
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute(f"CREATE TABLE {g}_bad (v INT REFERENCES no_such_table)")


def test_parent_and_child_in_one_transaction_and_alter_add(pg_server: Server) -> None:
    p, c, _ = _names()
    with psycopg.connect(pg_server.dsn()) as conn:
        conn.execute(f"CREATE TABLE {p} (id INT PRIMARY KEY)")
        conn.execute(f"CREATE TABLE {c} (id INT, pid INT)")
        conn.execute(f"INSERT INTO {p} VALUES (1)")
        conn.execute(f"INSERT INTO {c} VALUES (10, 1)")
        conn.commit()
        conn.execute(f"ALTER TABLE {c} ADD CONSTRAINT {c}_fk FOREIGN KEY (pid) "
                     f"REFERENCES {p} (id)")
        conn.commit()
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute(f"INSERT INTO {c} VALUES (11, 2)")
        conn.rollback()
        conn.execute(f"INSERT INTO {c} VALUES (12, 1)")
        conn.commit()
        conn.execute(f"INSERT INTO {c} VALUES (13, NULL)")
        conn.commit()
        conn.execute(f"CREATE TABLE {c}_2 (pid INT)")
        conn.execute(f"INSERT INTO {c}_2 VALUES (5)")
        conn.commit()
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute(f"ALTER TABLE {c}_2 ADD FOREIGN KEY (pid) REFERENCES {p}")
        conn.rollback()


def test_delete_of_a_referenced_row_waits_for_the_inserting_transaction(
        pg_server: Server) -> None:
    p, c, _ = _names()
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {p} (id INT PRIMARY KEY)")
        conn.execute(f"CREATE TABLE {c} (id INT, pid INT REFERENCES {p})")
        conn.execute(f"INSERT INTO {p} VALUES (1)")
    child = psycopg.connect(pg_server.dsn())
    parent = psycopg.connect(pg_server.dsn(), autocommit=True)
    try:
        child.execute(f"INSERT INTO {c} VALUES (1, 1)")  # holds a share lock on p's row
        out: list[Any] = []

        def delete() -> None:
            try:
                parent.execute(f"DELETE FROM {p} WHERE id = 1")
                out.append("deleted")
            except psycopg.Error as e:
                out.append(e)

        th = threading.Thread(target=delete)
        th.start()
        time.sleep(0.4)
        assert out == []  # waits for the child's transaction
        child.commit()
        th.join(20)
        assert len(out) == 1 and isinstance(out[0], psycopg.errors.ForeignKeyViolation)
    finally:
        child.close()
        parent.close()


def test_self_reference_and_drop_table(pg_server: Server) -> None:
    p, c, _ = _names()
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {p} (id INT PRIMARY KEY, "
                     f"parent INT REFERENCES {p} ON DELETE CASCADE)")
        # Checked at the end of the statement: a row may reference one inserted with it.
        conn.execute(f"INSERT INTO {p} VALUES (1, NULL), (2, 1), (3, 2), (5, 5)")
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute(f"INSERT INTO {p} VALUES (4, 40)")
        assert conn.execute(f"DELETE FROM {p} WHERE id = 1").rowcount == 1
        assert conn.execute(f"SELECT id FROM {p}").fetchall() == [(5,)]
        conn.execute(f"DELETE FROM {p} WHERE id = 5")  # references itself only
        conn.execute(f"CREATE TABLE {c} (pid INT REFERENCES {p})")
        with pytest.raises(psycopg.errors.DependentObjectsStillExist) as e:
            conn.execute(f"DROP TABLE {p}")
        assert e.value.diag.message_detail == (
            f"constraint {c}_pid_fkey on table {c} depends on table {p}")
        conn.execute(f"DROP TABLE {p} CASCADE")  # the constraint goes, the table stays
        conn.execute(f"INSERT INTO {c} VALUES (42)")
        assert conn.execute(f"SELECT pid FROM {c}").fetchall() == [(42,)]


def test_foreign_keys_in_the_catalog(pg_server: Server) -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    p, c, _ = _names()
    with psycopg.connect(pg_server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {p} (id INT PRIMARY KEY)")
        conn.execute(f"CREATE TABLE {c} (x INT, pid INT REFERENCES {p} ON DELETE CASCADE)")
        assert conn.execute(
            "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
            f"WHERE conrelid = '{c}'::regclass AND contype = 'f'").fetchall() == [
            (f"{c}_pid_fkey", "f", f"FOREIGN KEY (pid) REFERENCES {p}(id) ON DELETE CASCADE")]
    engine = sqlalchemy.create_engine(pg_server.url("postgresql+psycopg"))
    try:
        fks = sqlalchemy.inspect(engine).get_foreign_keys(c)
        assert [(f["name"], f["constrained_columns"], f["referred_table"],
                 f["referred_columns"]) for f in fks] == [
            (f"{c}_pid_fkey", ["pid"], p, ["id"])]
    finally:
        engine.dispose()
