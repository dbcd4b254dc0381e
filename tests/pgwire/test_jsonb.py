"""jsonb key operators (?, ?|, ?&, <@), jsonb_exists and jsonb_path_match through psycopg."""

from __future__ import annotations

import uuid

import pytest

from .conftest import Server

psycopg = pytest.importorskip("psycopg")


def test_jsonb_key_operators_and_path_match(pg_server: Server) -> None:
    t = f"j_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"CREATE TABLE {t} (id INT, d JSONB)")
        c.execute(f"""INSERT INTO {t} VALUES (1, '{{"a": 1, "b": {{"c": 2}}, "k": "car"}}'),
                      (2, '["x", "y", 3]'), (3, '{{"x": null, "n": 5}}'), (4, NULL)""")

        def ids(where: str, *params: object) -> list[int]:
            rows = c.execute(f"SELECT id FROM {t} WHERE {where} ORDER BY id", params)
            return [r[0] for r in rows]

        assert ids("d ? 'a'") == [1]
        assert ids("d ? 'x'") == [2, 3]  # an object key, or a string element of an array
        assert ids("NOT (d ? 'a')") == [2, 3]  # NULL stays NULL
        assert ids("d ?| array['a', 'y']") == [1, 2]
        assert ids("d ?& array['x', 'y']") == [2]
        assert ids("""d <@ '{"a": 1, "b": {"c": 2}, "k": "car", "z": 0}'""") == [1]
        assert ids("""d @> '{"a": 1}'""") == [1]
        assert ids("jsonb_exists(d, %s)", "n") == [3]
        assert ids("jsonb_path_match(d, '$.k == $v', %s::jsonb)", '{"v": "car"}') == [1]
        assert ids("jsonb_path_match(d, '$.n >= 5')") == [3]
        assert ids("jsonb_path_exists(d, '$.b.c')") == [1]
        with pytest.raises(psycopg.errors.FeatureNotSupported):
            c.execute(f"SELECT jsonb_path_match(d, '$.k like_regex \"c\"') FROM {t}")


def test_jsonb_path_operators_and_functions(pg_server: Server) -> None:
    t = f"jp_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"CREATE TABLE {t} (id INT, d JSONB)")
        c.execute(f"""INSERT INTO {t} VALUES
                      (1, '{{"a": {{"b": [10, {{"c": "x"}}]}}, "k": "v", "n": null}}'),
                      (2, '{{"a": {{"b": [20]}}, "k": "w/z"}}'), (3, NULL)""")

        def one(expr: str, *params: object) -> object:
            row = c.execute(f"SELECT {expr} FROM {t} WHERE id = 1", params).fetchone()
            assert row is not None
            return row[0]

        assert one("d #> '{a,b,1}'") == {"c": "x"}
        assert one("d #>> '{a,b,1,c}'") == "x"
        assert one("d #>> '{a,b,0}'") == "10"
        assert one("d #>> ARRAY['a', 'b', '0']") == "10"
        assert one("d #> '{a,b}'") == [10, {"c": "x"}]
        assert one("d #> '{}'") == {"a": {"b": [10, {"c": "x"}]}, "k": "v", "n": None}
        assert one("d #> '{nope,b}'") is None
        assert one("d #>> '{n}'") is None  # a JSON null is SQL NULL as text
        assert one("d #> '{n}'") is None  # jsonb 'null', which psycopg reads as None
        assert one("jsonb_extract_path_text(d, 'a', 'b', '1', 'c')") == "x"
        assert one("jsonb_extract_path(d, 'a')") == {"b": [10, {"c": "x"}]}
        assert one("jsonb_set(d, '{a,b,0}', '99')") == \
            {"a": {"b": [99, {"c": "x"}]}, "k": "v", "n": None}
        assert one("d - 'k'") == {"a": {"b": [10, {"c": "x"}]}, "n": None}
        assert one("d #- '{a,b}'") == {"a": {}, "k": "v", "n": None}
        assert one("jsonb_typeof(d)") == "object"
        assert one("jsonb_typeof(d -> 'k')") == "string"
        assert one("jsonb_array_length(d #> '{a,b}')") == 2
        assert one("jsonb_build_object('id', id, 'k', d ->> 'k')") == {"id": 1, "k": "v"}
        rows = c.execute(f"SELECT id FROM {t} WHERE d #>> '{{a,b,0}}' = %s ORDER BY id",
                         ("20",)).fetchall()
        assert rows == [(2,)]
        # A key with a slash is a key, not two path steps.
        assert c.execute(f"SELECT id FROM {t} WHERE d #>> '{{k}}' = 'w/z'").fetchall() == [(2,)]
        assert c.execute(f"SELECT d #> '{{a}}' FROM {t} WHERE id = 3").fetchone() == (None,)
        agg = c.execute(f"SELECT jsonb_agg(id ORDER BY id) FROM {t}").fetchone()
        assert agg is not None and agg[0] == [1, 2, 3]
        # jsonb || jsonb: objects merge their top-level keys, arrays concatenate
        assert one("d || '{\"k\": 1, \"z\": [2]}'") == \
            {"a": {"b": [10, {"c": "x"}]}, "k": 1, "n": None, "z": [2]}
        assert one("(d #> '{a,b}') || '[3]'::jsonb") == [10, {"c": "x"}, 3]
        assert one("'x' || 'y'") == "xy"  # text || text is still text
        c.execute(f"UPDATE {t} SET d = d || %s::jsonb WHERE id = 2", ('{"new": true}',))
        assert c.execute(f"SELECT d FROM {t} WHERE id = 2").fetchone() == (
            {"a": {"b": [20]}, "k": "w/z", "new": True},)


class _BinaryJsonb:
    """Text sent as a binary jsonb parameter as is (psycopg's Jsonb would refuse NaN)."""

    def __init__(self, text: str) -> None:
        self.text = text


def _register_binary_jsonb(conn: psycopg.Connection) -> None:
    from psycopg.adapt import Dumper
    from psycopg.pq import Format

    class D(Dumper):
        format = Format.BINARY
        oid = 3802  # jsonb

        def dump(self, obj: _BinaryJsonb) -> bytes:
            return b"\x01" + obj.text.encode()

    conn.adapters.register_dumper(_BinaryJsonb, D)


def test_json_parameters_keep_long_integers_and_refuse_nan(pg_server: Server) -> None:
    """Bound json/jsonb parameters, text and binary, single and pipelined: integers past 64
    bits stay exact (the fast parser would make them floats), and a binary jsonb parameter
    that is not JSON (NaN, Infinity) is refused with 22P02 as PostgreSQL words it, leaving the
    table unchanged. (Text JSON goes through DuckDB's JSON cast, which still takes NaN.)"""
    from psycopg.types.json import Jsonb

    t = f"jn_{uuid.uuid4().hex[:8]}"
    big = 123456789012345678901234567890
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        _register_binary_jsonb(c)
        c.execute(f"CREATE TABLE {t} (id INT, d JSONB)")
        c.execute(f"INSERT INTO {t} VALUES (1, %s)", [Jsonb({"n": big, "f": 0.1})])
        c.execute(f"INSERT INTO {t} VALUES (2, %s)", [Jsonb([big, "x"])], binary=True)
        with c.cursor() as cur:
            cur.executemany(f"INSERT INTO {t} VALUES (%s, %s)",
                            [(3 + i, Jsonb({"i": i, "n": big})) for i in range(3)])
        rows = c.execute(f"SELECT id, d FROM {t} ORDER BY id").fetchall()
        assert rows == [(1, {"n": big, "f": 0.1}), (2, [big, "x"])] + [
            (3 + i, {"i": i, "n": big}) for i in range(3)]
        for bad in ('{"a": NaN}', "[1, Infinity]", "NaN"):
            with pytest.raises(psycopg.errors.InvalidTextRepresentation,
                               match="invalid input syntax for type json"):
                c.execute(f"INSERT INTO {t} VALUES (9, %s)", [_BinaryJsonb(bad)])
        assert c.execute(f"SELECT count(*) FROM {t}").fetchone() == (5,)
