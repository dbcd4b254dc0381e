"""``tarndb.ray`` reads against a real ``tarndb serve`` on the same lake, with a local Ray
cluster: a pinned version's rows equal SQL's, with the table's columns only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("ray.data")

import pyarrow as pa  # noqa: E402

import tarndb  # noqa: E402
import tarndb.ray as tray  # noqa: E402

from .conftest import Serve  # noqa: E402


def test_read_table_at_a_pinned_version_equals_sql(ray_cluster: str, served: Serve) -> None:
    with served.connect() as c:
        c.execute("CREATE SCHEMA ws")
        c.execute("CREATE TABLE ws.docs (id BIGSERIAL PRIMARY KEY, body TEXT, "
                  "meta JSONB, emb FLOAT4[])")
        c.execute("INSERT INTO ws.docs (body, meta, emb) SELECT 'doc ' || i, "
                  "json_object('i', i)::jsonb, ARRAY[i, 1.0, 0.5]::float4[] "
                  "FROM generate_series(0, 299) t(i)")
        version = c.execute("SELECT max(version) FROM tarndb_versions('ws.docs')").fetchone()
        assert version is not None
        pinned = int(version[0])
        c.execute("DELETE FROM ws.docs WHERE id % 3 = 0")
        c.execute("INSERT INTO ws.docs (body) VALUES ('after the pin')")
        sql_pinned = c.execute(f'SELECT id, body, meta::text, emb FROM ws."docs@{pinned}" '
                               "ORDER BY id").fetchall()
        sql_now = c.execute("SELECT id, body FROM ws.docs WHERE id < 100 ORDER BY id"
                            ).fetchall()
    assert len(sql_pinned) == 300

    ds = tray.read_table(served.lake, "ws.docs", version=pinned)
    assert ds.schema().names == ["id", "body", "meta", "emb"]  # no __rid
    rows = sorted(ds.take_all(), key=lambda r: r["id"])
    got = [(r["id"], r["body"], r["meta"], [float(x) for x in r["emb"]]) for r in rows]
    want = [(i, b, m, [float(x) for x in e]) for i, b, m, e in sql_pinned]
    assert [g[:2] for g in got] == [w[:2] for w in want]
    assert [g[3] for g in got] == [w[3] for w in want]
    assert [json.loads(g[2]) for g in got] == [json.loads(w[2]) for w in want]

    # Newest version, a column subset and a pushed-down filter: exactly SQL's rows.
    cur_ds = tray.read_table(str(served.lake), "ws.docs", columns=["id", "body"],
                             filter="id < 100")
    assert cur_ds.schema().names == ["id", "body"]
    assert cur_ds.count() == len(sql_now)
    assert sorted((r["id"], r["body"]) for r in cur_ds.take_all()) == sql_now

    with pytest.raises(tarndb.errors.UndefinedColumn):
        tray.read_table(served.lake, "ws.docs", columns=["__rid"])
    with pytest.raises(tarndb.errors.UndefinedTable):
        tray.read_table(served.lake, "ws.nope")


def test_training_set_as_a_ray_dataset(ray_cluster: str, tmp_path: Path) -> None:
    db = tarndb.open(str(tmp_path / "lake"))
    try:
        db.execute("CREATE TABLE ws.items (id INT PRIMARY KEY, label TEXT, emb FLOAT4[])")
        db.execute("INSERT INTO ws.items SELECT i, 'l' || (i % 3), ARRAY[i, 1]::float4[] "
                   "FROM range(50) t(i)")
        from tarndb.train import TrainingSet

        ts = TrainingSet.from_query("SELECT id, label FROM ws.items WHERE id < 20", db=db)
        spec = ts.save(tmp_path / "trainset.json")
        ds = tray.read_training_set(spec, db)
        assert sorted(r["id"] for r in ds.take_all()) == list(range(20))
        assert tray.read_training_set(ts).count() == 20
        assert isinstance(ds.to_arrow_refs(), list)
        assert pa.types.is_integer(ds.schema().types[0])
    finally:
        db.close()
