"""``tarndb.ray.write_table`` against a real ``tarndb serve`` on the same lake, with a local
Ray cluster: every worker's fragments are published in one commit, and a failed or killed
write publishes nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("ray.data")

import ray  # noqa: E402

import tarndb  # noqa: E402
import tarndb.ray as tray  # noqa: E402

from .conftest import Serve, lake_data_files  # noqa: E402


def test_write_table_creates_and_appends_in_one_commit(ray_cluster: str, served: Serve) -> None:
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


def test_failed_worker_publishes_nothing(ray_cluster: str, served: Serve) -> None:
    with served.connect() as c:
        c.execute("CREATE SCHEMA ws")
        c.execute("CREATE TABLE ws.t (id BIGINT, body TEXT NOT NULL)")
        c.execute("INSERT INTO ws.t VALUES (-1, 'before')")
    before = len(lake_data_files(served.lake, "t"))
    # Block 3 of 4 has a NULL in a NOT NULL column: its worker fails after the others
    # wrote their fragments.
    items: list[dict[str, Any]] = [{"id": i, "body": None if i == 3500 else f"r{i}"}
                                   for i in range(4000)]
    ds = ray.data.from_items(items, override_num_blocks=4)
    with pytest.raises(Exception, match="not-null"):
        tray.write_table(ds, "ws.t", served.lake, batch_size=1000)
    with served.connect() as c:
        assert c.execute("SELECT count(*) FROM ws.t").fetchone() == (1,)
    assert len(lake_data_files(served.lake, "t")) > before  # fragments were written, unpublished
    # mode="create" publishes no table, and removes the dataset it made.
    with pytest.raises(Exception, match="not-null|null"):
        tray.write_table(ds.map_batches(lambda b: b, batch_format="pyarrow"), "ws.t2",
                         served.lake, mode="create", batch_size=1000,
                         primary_key=["body"])
    with served.connect() as c:
        assert c.execute("SELECT count(*) FROM pg_tables WHERE tablename = 't2'"
                         ).fetchone() == (0,)
    assert not list(served.lake.glob("ws/t2*.lance"))


def test_killed_driver_publishes_nothing(ray_cluster: str, served: Serve, tmp_path: Path) -> None:
    with served.connect() as c:
        c.execute("CREATE SCHEMA ws")
        c.execute("CREATE TABLE ws.k (id BIGINT, body TEXT)")
        c.execute("INSERT INTO ws.k VALUES (-1, 'before')")
    before = len(lake_data_files(served.lake, "k"))
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(f"""
        import time, ray, tarndb.ray
        ray.init(address={ray_cluster!r}, log_to_driver=False, configure_logging=False)
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
    while len(lake_data_files(served.lake, "k")) < before + 2:
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
    assert len(lake_data_files(served.lake, "k")) > before + 1


