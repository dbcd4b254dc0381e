"""Postgres array text ('{1,2}') in SQL: inserted into array columns and cast to arrays."""

from __future__ import annotations

from pathlib import Path

import pytest

import tarndb
from tarndb import errors
from tarndb.sql import arraytext


@pytest.fixture
def db(tmp_path: Path) -> tarndb.Database:
    d = tarndb.open(str(tmp_path))
    d.execute("CREATE TABLE t (id INT, v FLOAT4[], m FLOAT4[][], tags TEXT[])")
    return d


def test_insert_and_update_take_array_text(db: tarndb.Database) -> None:
    db.execute("""INSERT INTO t VALUES (1, '{0.5,-2e3}', '{{1,2},{3,4}}', '{a,"b c",NULL}')""")
    db.execute("INSERT INTO t (id, v) VALUES (2, '{}')")
    db.execute("UPDATE t SET v = '{9, 9}' WHERE id = 2")
    assert db.execute("SELECT * FROM t ORDER BY id").rows == [
        (1, [0.5, -2000.0], [[1.0, 2.0], [3.0, 4.0]], ["a", "b c", None]),
        (2, [9.0, 9.0], None, None),
    ]


def test_casts_read_array_text(db: tarndb.Database) -> None:
    row = db.execute("""SELECT '{1,2}'::float4[], '{{1},{2}}'::int[][], '{"x,y",z}'::text[],
                               '[3,4]'::int[]""").rows[0]
    assert row == ([1.0, 2.0], [[1], [2]], ["x,y", "z"], [3, 4])


def test_bad_array_text_is_refused_and_nothing_is_written(db: tarndb.Database) -> None:
    with pytest.raises(errors.InvalidTextRepresentation):
        db.execute("INSERT INTO t (id, v) VALUES (1, '{1,x}')")
    with pytest.raises(errors.TarnError, match="brace inside a quoted element"):
        db.execute("""INSERT INTO t (id, tags) VALUES (1, '{"a}"}')""")
    with pytest.raises(errors.FeatureNotSupported):
        db.execute("""SELECT '{"a{"}'::text[]""")
    assert db.execute("SELECT count(*) FROM t").rows == [(0,)]


@pytest.mark.parametrize(("text", "duck"), [
    ("{1,2}", "[1,2]"),
    (" {{1,2},{3,4}}", " [[1,2],[3,4]]"),
    ('{"a b",NULL}', '["a b",NULL]'),
    ("[1,2]", "[1,2]"),
])
def test_to_duckdb_text(text: str, duck: str) -> None:
    assert arraytext.to_duckdb_text(text) == duck
