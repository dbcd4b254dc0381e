"""Unlisted table datasets left by creates that died are swept away (engine/vacuum.py), and
nothing else is: a ``CREATE TABLE`` whose server is killed before COMMIT leaves its dataset
directory with no catalog entry; while the create is in progress neither ``tarndb vacuum`` nor
the servers' background sweep touch it (its create lease), once its server is dead another
server's sweep removes it, and every listed table keeps its directory and rows. The same
for ``tarndb.ray.write_table(mode="create")`` whose driver is killed after its workers wrote
fragments (on a local Ray cluster), swept by ``tarndb vacuum``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from .conftest import Serve, lake_data_files

# Sweep every half second, anything unlisted older than one second.
_ENV = {"TARNDB_ORPHAN_SWEEP_S": "0.5", "TARNDB_ORPHAN_GRACE": "1", "TARNDB_DEMO": "false"}


def _dirs(lake: Path) -> set[str]:
    return {f"{p.parent.name}/{p.name}" for p in lake.glob("*/*.lance")}


def _vacuum(lake: Path, *flags: str) -> list[dict[str, Any]]:
    out = subprocess.run([sys.executable, "-m", "tarndb", "vacuum", "--data", str(lake),
                          "--json", *flags], capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, HF_HUB_OFFLINE="1"))
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def test_a_killed_create_is_swept_and_nothing_else(servers: Any) -> None:
    a, b = servers(2, _ENV)
    lake = a.lake
    with a.connect() as c:
        c.execute("CREATE SCHEMA ws")
        c.execute("CREATE TABLE ws.live (id INT PRIMARY KEY, v TEXT)")
        c.execute("INSERT INTO ws.live SELECT i, 'v' || i FROM generate_series(1, 50) i")
        c.execute("UPDATE ws.live SET v = 'changed' WHERE id <= 5")
    with b.connect() as c:
        c.execute("CREATE TABLE ws.kept (id INT)")  # made on the server that will die
        c.execute("INSERT INTO ws.kept VALUES (1), (2)")
    listed = _dirs(lake)

    # A create in progress on b: its dataset exists, no catalog entry lists it.
    conn = b.connect(autocommit=False)
    conn.execute("CREATE TABLE ws.doomed (id INT PRIMARY KEY, body TEXT)")
    conn.execute("INSERT INTO ws.doomed VALUES (1, 'never committed')")
    doomed = _dirs(lake) - listed
    assert len(doomed) == 1 and next(iter(doomed)).startswith("ws/doomed-")
    time.sleep(1.5)  # past the grace period: only the create's lease keeps it
    found = _vacuum(lake, "--orphan-grace", "0")
    assert [(o["path"], o["status"]) for o in found] == [(next(iter(doomed)), "in progress")]
    assert _dirs(lake) == listed | doomed

    b.kill9()
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    deadline = time.monotonic() + 30
    while _dirs(lake) != listed:  # a's background sweep
        assert time.monotonic() < deadline, (a.log.read_text(), _dirs(lake))
        time.sleep(0.2)
    assert "removed the unlisted dataset ws/doomed-" in a.log.read_text()

    with a.connect() as c:
        assert c.execute("SELECT count(*), count(*) FILTER (WHERE v = 'changed') "
                         "FROM ws.live").fetchone() == (50, 5)
        assert c.execute("SELECT sum(id) FROM ws.kept").fetchone() == (3,)
        c.execute("CREATE TABLE ws.doomed (id INT)")  # the name was never taken
        c.execute("INSERT INTO ws.doomed VALUES (7)")
        assert c.execute("SELECT * FROM ws.doomed").fetchall() == [(7,)]
    assert _vacuum(lake, "--orphan-grace", "0") == []


def test_a_create_whose_dataset_was_swept_fails_at_commit(served: Serve) -> None:
    """A creator that comes back after its dataset was removed (on an object store, where its
    lease lapses, past the grace period) gets 55000 at COMMIT, never a table without data."""
    with served.connect() as c:
        c.execute("CREATE SCHEMA ws")
    before = _dirs(served.lake)
    with served.connect(autocommit=False) as conn:
        conn.execute("CREATE TABLE ws.late (id INT)")
        (new,) = _dirs(served.lake) - before
        shutil.rmtree(served.lake / new / "_versions")  # what the sweep takes away first
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState,
                           match='dataset of new table "late" was removed'):
            conn.commit()
    with served.connect() as c:
        assert c.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'late'"
                         ).fetchone() == (0,)
        c.execute("CREATE TABLE ws.late (id INT)")
        c.execute("INSERT INTO ws.late VALUES (1)")
        assert c.execute("SELECT count(*) FROM ws.late").fetchone() == (1,)


def test_killed_create_leaves_a_dataset_that_vacuum_removes(ray_cluster: str, served: Serve,
                                                            tmp_path: Path) -> None:
    """``write_table(mode="create")`` killed after its workers wrote fragments: no table, an
    unlisted dataset directory; ``tarndb vacuum`` removes it once its driver is dead, and
    leaves the listed tables alone (engine/vacuum.py)."""
    with served.connect() as c:
        c.execute("CREATE SCHEMA ws")
        c.execute("CREATE TABLE ws.live (id BIGINT PRIMARY KEY, body TEXT)")
        c.execute("INSERT INTO ws.live SELECT i, 'b' || i FROM generate_series(1, 30) i")
    listed = sorted(served.lake.glob("*/*.lance"))
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(f"""
        import time, ray, tarndb.ray
        ray.init(address={ray_cluster!r}, log_to_driver=False, configure_logging=False)
        def slow(b):
            time.sleep(0.4)
            return b
        ds = ray.data.range(40_000, override_num_blocks=40).map_batches(slow)
        tarndb.ray.write_table(ds, "ws.fresh", {str(served.lake)!r}, mode="create",
                               batch_size=1000)
        print("COMMITTED", flush=True)
    """))
    log = open(tmp_path / "driver.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, str(script)], stdout=log, stderr=subprocess.STDOUT,
                            env=dict(os.environ, HF_HUB_OFFLINE="1"))
    deadline = time.monotonic() + 45
    while len(lake_data_files(served.lake, "fresh")) < 2:
        assert proc.poll() is None, (tmp_path / "driver.log").read_text()
        assert time.monotonic() < deadline, (tmp_path / "driver.log").read_text()
        time.sleep(0.1)
    vacuum = [sys.executable, "-m", "tarndb", "vacuum", "--data", str(served.lake),
              "--orphan-grace", "0"]
    busy = subprocess.run(vacuum, capture_output=True, text=True, timeout=60)
    assert busy.returncode == 0 and "in progress" in busy.stdout, busy.stdout + busy.stderr
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    log.close()
    assert "COMMITTED" not in (tmp_path / "driver.log").read_text()
    time.sleep(1.0)  # workers the dead driver left behind may still be writing files
    assert len(list(served.lake.glob("ws/fresh-*.lance"))) == 1
    done = subprocess.run(vacuum, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "removed 1 of 1" in done.stdout, done.stdout + done.stderr
    assert not list(served.lake.glob("ws/fresh-*.lance"))
    assert sorted(served.lake.glob("*/*.lance")) == listed
    with served.connect() as c:
        assert c.execute("SELECT count(*), sum(id) FROM ws.live").fetchone() == (30, 465)
        assert c.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'fresh'"
                         ).fetchone() == (0,)
