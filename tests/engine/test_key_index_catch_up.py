"""A server's key index follows another server's inserts, deletes, key updates and folds
fragment by fragment (engine/commit.py ``_fragment_delta``), without reading the whole key
column again, and its unique checks stay exact."""

from __future__ import annotations

from pathlib import Path

import pytest

import tarndb
from tarndb import errors as E
from tarndb.engine import commit


def _indexes(db: tarndb.Database, name: str) -> list[commit.KeyIndex]:
    s = db.session()
    info = s.find_table("public", name)
    s.close()
    assert info is not None
    return list(db.writes._state(info).indexes.values())  # type: ignore[attr-defined]


@pytest.mark.parametrize("bulk", [False, True])
def test_another_servers_deletes_and_key_updates(tmp_path: Path, bulk: bool) -> None:
    lake = str(tmp_path / "lake")
    db1, db2 = tarndb.open(lake), tarndb.open(lake)
    try:
        s1, s2 = db1.session(), db2.session()
        s1.execute("CREATE TABLE k (id INT PRIMARY KEY, n INT)")
        for lo in range(1, 3001, 300):  # ten fragments (each read folds the log)
            s1.execute(f"INSERT INTO k SELECT g, 0 FROM generate_series({lo}, {lo + 299}) g")
            s1.execute("SELECT count(*) FROM k")
        s1.execute("INSERT INTO k VALUES (5000, 0)")  # builds server 1's key index
        (ix,) = _indexes(db1, "k")
        if bulk:  # Lance commits of their own (more rows than the log takes)
            s2.execute("DELETE FROM k WHERE id > 1500 AND id <= 2700")
            s2.execute("UPDATE k SET id = id + 10000 WHERE id > 2900 AND id <= 3000")
        else:  # small changes: server 2's log, folded by the reads below
            s2.execute("DELETE FROM k WHERE id = 7")
            s2.execute("UPDATE k SET id = 13000 WHERE id = 3000")
            s2.execute("SELECT count(*) FROM k")
        s2.execute("INSERT INTO k VALUES (6000, 0)")
        s2.execute("SELECT count(*) FROM k")  # folds server 2's log into Lance
        # Keys server 2 freed go in; keys it took or kept are refused.
        for freed in (2000 if bulk else 7, 3000):
            s1.execute("INSERT INTO k VALUES ($1, 1)", [freed])
        for taken in (13000, 6000, 1000):
            with pytest.raises(E.UniqueViolation):
                s1.execute("INSERT INTO k VALUES ($1, 1)", [taken])
        assert _indexes(db1, "k") == [ix]  # caught up, never built again
        expected = 3000 - (1200 if bulk else 1) + 1 + 1 + 2
        assert s1.execute("SELECT count(*), count(DISTINCT id) FROM k").rows == \
            [(expected, expected)]
    finally:
        db1.close()
        db2.close()
