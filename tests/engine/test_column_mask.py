"""The second line behind column privileges (engine/scan.py): a role reading a table through
column grants gets a view of the table that holds only those columns, so a column the
privilege check (pgwire/acl.py) failed to see in a statement is not there to read. Here the
check is switched off, as if it had missed a name, and the columns stay out of reach; what
a view read with its owner's rights reads, and a write's target rows, stay whole."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import tarndb
from tarndb.pgwire import roles


@pytest.fixture
def role(db: tarndb.Database) -> Iterator[tarndb.Session]:
    roles.install(db)  # GRANTs and their checks, as `tarndb serve` installs them
    db.execute("CREATE TABLE ws.emp (id INT PRIMARY KEY, name TEXT, salary INT, emb FLOAT4[])")
    db.execute(
        "INSERT INTO ws.emp VALUES (1, 'ann', 100, ARRAY[1, 0]::float4[]), "
        "(2, 'bob', 999, ARRAY[0, 1]::float4[])"
    )
    db.execute("CREATE VIEW ws.pay AS SELECT id, salary FROM ws.emp")
    db.execute("CREATE ROLE dave LOGIN PASSWORD 'test-only'")
    db.execute("GRANT USAGE ON SCHEMA ws TO dave")
    db.execute("GRANT SELECT (id, name, emb), UPDATE (name) ON ws.emp TO dave")
    db.execute("GRANT SELECT ON ws.pay TO dave")
    s = db.session(workspace="ws", user="dave", allowed_workspaces={"ws", "public"})
    s.acl_role = "dave"  # what the Postgres front end sets for a role's login
    yield s
    s.close()


def test_the_check_refuses_first(role: tarndb.Session) -> None:
    with pytest.raises(tarndb.TarnError) as e:
        role.execute("SELECT salary FROM emp")
    assert e.value.sqlstate == "42501"


def test_without_the_check_the_columns_are_not_there(
    db: tarndb.Database, role: tarndb.Session
) -> None:
    db.statement_hooks.pop("check_privileges")  # as if the check had missed every name
    for sql in (
        "SELECT salary FROM emp",
        "SELECT salary FROM emp WHERE id = 2",  # the key lookup's view
        "SELECT id FROM emp WHERE salary > 500",
        "SELECT id FROM emp ORDER BY emb <#> ARRAY[0, 1]::float4[] DESC LIMIT 1 OFFSET 0 "
        "+ (SELECT max(salary) FROM emp)",
    ):
        with pytest.raises(tarndb.TarnError) as e:
            role.execute(sql)
        assert e.value.sqlstate == "42703", sql
        assert "999" not in str(e.value)
    # * and whole rows show only the granted columns
    assert role.execute("SELECT * FROM emp ORDER BY id").column_names == ["id", "name", "emb"]
    row = role.execute("SELECT to_json(e)::text FROM emp e WHERE id = 2").rows[0][0]
    assert "999" not in row and "bob" in row
    # a ranking (its rows re-pointed at the ranked ones) keeps the mask
    ranked = role.execute("SELECT * FROM emp ORDER BY emb <#> ARRAY[0, 1]::float4[] DESC LIMIT 1")
    assert ranked.column_names == ["id", "name", "emb"] and ranked.rows[0][:2] == (2, "bob")
    # a plain view reads its table with its owner's rights: whole
    assert role.execute("SELECT salary FROM pay WHERE id = 2").rows == [(999,)]
    # an UPDATE's new rows are made from every column of the old ones
    assert role.execute("UPDATE emp SET name = 'bo' WHERE id = 2").rowcount == 1
    assert db.execute("SELECT name, salary FROM ws.emp WHERE id = 2").rows == [("bo", 999)]
