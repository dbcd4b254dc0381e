"""``tarndb.ray`` against a real ``tarndb serve`` on the same lake, with a local Ray cluster:
reads of a pinned version equal SQL's rows, writes publish every worker's fragments in one
commit (a failed or killed write publishes nothing)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402

import tarndb  # noqa: E402
import tarndb.ray as tray  # noqa: E402

from .conftest import Serve, start_serve  # noqa: E402


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Serve]:
    srv = start_serve(tmp_path / "lake", tmp_path / "serve.log")
    yield srv
    srv.stop()


def _data_files(lake: Path, table: str) -> list[Path]:
    return sorted(lake.glob(f"ws/{table}*.lance/data/*.lance"))


def test_read_table_at_a_pinned_version_equals_sql(cluster: str, served: Serve) -> None:
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
    import json
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


def test_write_table_creates_and_appends_in_one_commit(cluster: str, served: Serve) -> None:
    n = 100_000
    ds = ray.data.range(n, override_num_blocks=4).map_batches(
        lambda b: {"id": b["id"], "body": np.array([f"row {i}" for i in b["id"]]),
                   "emb": np.stack([b["id"].astype("float32"),
                                    np.ones(len(b["id"]), "float32")], axis=1)})
    res = tray.write_table(ds, "ws.big", served.lake, mode="create", primary_key=["id"])
    assert res.rows == n and res.fragments >= 4
    with served.connect() as c:
        assert c.execute("SELECT count(*), count(DISTINCT id), min(id), max(id), "
                         "sum(emb[1]::float8) FROM ws.big").fetchone() == \
            (n, n, 0, n - 1, float(n * (n - 1) // 2))
        types = c.execute("SELECT column_name, data_type FROM information_schema.columns "
                          "WHERE table_schema = 'ws' AND table_name = 'big' "
                          "ORDER BY ordinal_position").fetchall()
        assert types == [("id", "bigint"), ("body", "text"), ("emb", "ARRAY")]
        # The key holds against rows written by Ray: SQL's duplicate is refused.
        with pytest.raises(Exception, match="duplicate key"):
            c.execute("INSERT INTO ws.big (id, body) VALUES (5, 'dup')")
        # One Ray commit = one table version.
        versions = c.execute("SELECT count(*) FROM tarndb_versions('ws.big')").fetchone()
    assert versions is not None and versions[0] <= 3  # create, the append, maybe an index

    # Append with serial ids filled in by the engine, across two workers.
    with served.connect() as c:
        c.execute("CREATE TABLE ws.notes (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL, "
                  "n INT DEFAULT 7)")
        c.execute("INSERT INTO ws.notes (body) VALUES ('from sql')")
    notes = ray.data.from_items([{"body": f"note {i}"} for i in range(1000)],
                                override_num_blocks=2)
    assert tray.write_table(notes, "ws.notes", served.lake).rows == 1000
    with served.connect() as c:
        assert c.execute("SELECT count(*), count(DISTINCT id), sum(n) FROM ws.notes"
                         ).fetchone() == (1001, 1001, 7 * 1001)

    # A duplicate key across workers: nothing is published.
    dup = ray.data.from_items([{"id": i % 600, "body": "x"} for i in range(1200)],
                              override_num_blocks=2)
    with pytest.raises(tarndb.errors.UniqueViolation):
        tray.write_table(dup, "ws.big", served.lake)
    with pytest.raises(tarndb.errors.DuplicateTable):
        tray.write_table(dup, "ws.big", served.lake, mode="create")
    with served.connect() as c:
        assert c.execute("SELECT count(*) FROM ws.big").fetchone() == (n,)


def test_failed_worker_publishes_nothing(cluster: str, served: Serve) -> None:
    with served.connect() as c:
        c.execute("CREATE SCHEMA ws")
        c.execute("CREATE TABLE ws.t (id BIGINT, body TEXT NOT NULL)")
        c.execute("INSERT INTO ws.t VALUES (-1, 'before')")
    before = len(_data_files(served.lake, "t"))
    # Block 3 of 4 has a NULL in a NOT NULL column: its worker fails after the others
    # wrote their fragments.
    items: list[dict[str, Any]] = [{"id": i, "body": None if i == 3500 else f"r{i}"}
                                   for i in range(4000)]
    ds = ray.data.from_items(items, override_num_blocks=4)
    with pytest.raises(Exception, match="not-null"):
        tray.write_table(ds, "ws.t", served.lake, batch_size=1000)
    with served.connect() as c:
        assert c.execute("SELECT count(*) FROM ws.t").fetchone() == (1,)
    assert len(_data_files(served.lake, "t")) > before  # fragments were written, unpublished
    # mode="create" drops the table it made.
    with pytest.raises(Exception, match="not-null|null"):
        tray.write_table(ds.map_batches(lambda b: b, batch_format="pyarrow"), "ws.t2",
                         served.lake, mode="create", batch_size=1000,
                         primary_key=["body"])
    with served.connect() as c:
        assert c.execute("SELECT count(*) FROM pg_tables WHERE tablename = 't2'"
                         ).fetchone() == (0,)


def test_killed_driver_publishes_nothing(cluster: str, served: Serve, tmp_path: Path) -> None:
    with served.connect() as c:
        c.execute("CREATE SCHEMA ws")
        c.execute("CREATE TABLE ws.k (id BIGINT, body TEXT)")
        c.execute("INSERT INTO ws.k VALUES (-1, 'before')")
    before = len(_data_files(served.lake, "k"))
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(f"""
        import time, ray, tarndb.ray
        ray.init(address={cluster!r}, log_to_driver=False, configure_logging=False)
        def slow(b):
            time.sleep(0.4)
            return b
        ds = ray.data.range(40_000, override_num_blocks=40).map_batches(slow)
        tarndb.ray.write_table(ds, "ws.k", {str(served.lake)!r}, batch_size=1000)
        print("COMMITTED", flush=True)
    """))
    log = open(tmp_path / "driver.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, str(script)], stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, HF_HUB_OFFLINE="1"))
    deadline = time.monotonic() + 45
    while len(_data_files(served.lake, "k")) < before + 2:
        assert proc.poll() is None, (tmp_path / "driver.log").read_text()
        assert time.monotonic() < deadline, (tmp_path / "driver.log").read_text()
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    log.close()
    assert "COMMITTED" not in (tmp_path / "driver.log").read_text()
    time.sleep(1.0)  # workers the dead driver left behind may still be writing files
    with served.connect() as c:
        assert c.execute("SELECT count(*) FROM ws.k").fetchone() == (1,)
    assert len(_data_files(served.lake, "k")) > before + 1


def test_training_set_as_a_ray_dataset(cluster: str, tmp_path: Path) -> None:
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
