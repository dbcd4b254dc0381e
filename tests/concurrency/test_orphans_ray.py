"""A ``tarndb.ray.write_table(mode="create")`` whose driver is killed after its workers wrote
fragments (on a local Ray cluster) leaves no table and an unlisted dataset directory, which
``tarndb vacuum`` leaves alone while the driver lives and removes once it is dead; listed
tables are untouched (engine/vacuum.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import ray.data  # noqa: F401  (the test extra installs ray[data]: a missing one fails)

import tarndb
from tarndb.engine.vacuum import vacuum_orphans

from .conftest import Serve, lake_data_files  # noqa: E402


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
    db = tarndb.open(str(served.lake))
    try:
        busy = vacuum_orphans(db, 0)
    finally:
        db.close()
    assert [(o.path[:9], o.status) for o in busy] == [("ws/fresh-", "in progress")]
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    log.close()
    assert "COMMITTED" not in (tmp_path / "driver.log").read_text()
    time.sleep(1.0)  # workers the dead driver left behind may still be writing files
    assert len(list(served.lake.glob("ws/fresh-*.lance"))) == 1
    vacuum = [sys.executable, "-m", "tarndb", "vacuum", "--data", str(served.lake),
              "--orphan-grace", "0"]
    done = subprocess.run(vacuum, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "removed 1 of 1" in done.stdout, done.stdout + done.stderr
    assert not list(served.lake.glob("ws/fresh-*.lance"))
    assert sorted(served.lake.glob("*/*.lance")) == listed
    with served.connect() as c:
        assert c.execute("SELECT count(*), sum(id) FROM ws.live").fetchone() == (30, 465)
        assert c.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'fresh'"
                         ).fetchone() == (0,)
