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
