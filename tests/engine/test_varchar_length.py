"""varchar(n) and char(n) keep their length: longer values are refused with 22001 (trailing
spaces aside, as in PostgreSQL), and the catalogs show the length to drivers and pg_dump."""

from __future__ import annotations

import pyarrow as pa
import pytest

import tarndb
from tarndb import errors as E


def test_lengths_are_enforced_on_every_write_path(session: tarndb.Session) -> None:
    s = session
    s.execute("CREATE TABLE vl (id INT PRIMARY KEY, a VARCHAR(3), b CHAR(2), c TEXT, "
              "d CHARACTER VARYING)")
    s.execute("INSERT INTO vl VALUES (1, 'abc', 'xy', 'any length at all', 'free')")
    s.execute("INSERT INTO vl VALUES (2, 'ab ', 'x', '', 'x')")
    s.execute("INSERT INTO vl VALUES (3, 'abc  ', 'x', '', 'x')")  # excess spaces only
    with pytest.raises(E.StringDataRightTruncation,
                       match=r"value too long for type character varying\(3\)"):
        s.execute("INSERT INTO vl VALUES (4, 'abcd', 'x', '', 'x')")
    with pytest.raises(E.StringDataRightTruncation,
                       match=r"value too long for type character\(2\)"):
        s.execute("UPDATE vl SET b = 'xyz' WHERE id = 1")
    with pytest.raises(E.StringDataRightTruncation):
        s.execute("INSERT INTO vl (id, a) VALUES ($1, $2)", [5, "wxyz"])
    with pytest.raises(E.StringDataRightTruncation):
        s.insert_arrow("vl", pa.table({"id": pa.array([6], pa.int32()),
                                       "a": pa.array(["toolong"])}))
    assert s.execute("SELECT id, a, b FROM vl ORDER BY id").rows[:2] == \
        [(1, "abc", "xy"), (2, "ab ", "x")]
    assert s.execute("SELECT count(*) FROM vl").rows == [(3,)]


def test_catalogs_show_the_length(session: tarndb.Session) -> None:
    s = session
    s.execute("CREATE TABLE vc (a VARCHAR(10), b CHAR(4), c VARCHAR, d VARCHAR(5)[])")
    assert s.execute("SELECT format_type(atttypid, atttypmod), atttypmod FROM pg_attribute "
                     "WHERE attrelid = 'vc'::regclass AND attnum > 0 ORDER BY attnum").rows \
        == [("character varying(10)", 14), ("character(4)", 8), ("character varying", -1),
            ("character varying(5)[]", 9)]
    assert s.execute("SELECT column_name, character_maximum_length FROM "
                     "information_schema.columns WHERE table_name = 'vc' ORDER BY 1").rows \
        == [("a", 10), ("b", 4), ("c", None), ("d", None)]
    with pytest.raises(E.InvalidParameterValue):
        s.execute("CREATE TABLE bad (a VARCHAR(0))")
