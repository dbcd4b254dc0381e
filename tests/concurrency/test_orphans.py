"""Unlisted table datasets left by creates that died are swept away (engine/vacuum.py), and
nothing else is: a ``CREATE TABLE`` whose server is killed before COMMIT leaves its dataset
directory with no catalog entry; while the create is in progress neither ``tarndb vacuum`` nor
the servers' background sweep touch it (its create lease), once its server is dead another
server's sweep removes it, and every listed table keeps its directory and rows. A creator
that comes back after its dataset was swept gets 55000 at COMMIT. (A killed Ray create:
test_orphans_ray.py; an S3 lake: test_orphans_s3.py.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

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
    # a's background sweep (it logs what it removed just after removing it)
    while _dirs(lake) != listed or \
            "removed the unlisted dataset ws/doomed-" not in a.log.read_text():
        assert time.monotonic() < deadline, (a.log.read_text(), _dirs(lake))
        time.sleep(0.2)

    with a.connect() as c:
        assert c.execute("SELECT count(*), count(*) FILTER (WHERE v = 'changed') "
                         "FROM ws.live").fetchone() == (50, 5)
        assert c.execute("SELECT sum(id) FROM ws.kept").fetchone() == (3,)
        c.execute("CREATE TABLE ws.doomed (id INT)")  # the name was never taken
        c.execute("INSERT INTO ws.doomed VALUES (7)")
        assert c.execute("SELECT * FROM ws.doomed").fetchall() == [(7,)]
    assert _vacuum(lake, "--orphan-grace", "0") == []

    # A creator that comes back after its dataset was removed (on an object store, where
    # its lease lapses, past the grace period) gets 55000 at COMMIT, never a table without
    # data. Its manifests are taken away here by hand, as the sweep takes them first.
    before = _dirs(lake)
    with a.connect(autocommit=False) as late:
        late.execute("CREATE TABLE ws.late (id INT)")
        (new,) = _dirs(lake) - before
        shutil.rmtree(lake / new / "_versions")
        with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState,
                           match='dataset of new table "late" was removed'):
            late.commit()
    with a.connect() as c:
        assert c.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'late'"
                         ).fetchone() == (0,)

    # A COMMIT whose second CREATE TABLE fails (42P07: the name was taken meanwhile) leaves
    # no dataset for it; the first one, published, keeps its rows through a later ROLLBACK of
    # the same session (which once ran the failed transaction's undo actions).
    before = _dirs(lake)
    with a.connect(autocommit=False) as t1, a.connect() as t2:
        t1.execute("CREATE TABLE ws.first (id INT)")
        t1.execute("CREATE TABLE ws.taken (id INT)")
        t2.execute("CREATE TABLE ws.taken (id INT)")
        with pytest.raises(psycopg.errors.DuplicateTable):
            t1.commit()
        t2.execute("INSERT INTO ws.first VALUES (1), (2)")
        t1.execute("SELECT 1")
        t1.rollback()
        assert t2.execute("SELECT sum(id) FROM ws.first").fetchone() == (3,)
    assert len(_dirs(lake) - before) == 2  # first and t2's taken, nothing else
    assert _vacuum(lake, "--orphan-grace", "0") == []

