"""The orphan sweep on an S3 lake (moto): a process killed inside ``CREATE TABLE`` leaves an
unlisted dataset under the bucket's prefix; the sweep leaves it alone while the create's
lease is live (renewed by the creating process past its TTL while the transaction sits
idle), removes every object of it once the lease has lapsed, and touches no listed table
(engine/vacuum.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from typing import Any

import boto3
import moto.server as moto_server
import pytest

import tarndb
from tarndb.engine.vacuum import vacuum_orphans


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    srv = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "k",
           "AWS_SECRET_ACCESS_KEY": "s", "AWS_REGION": "us-east-1"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    client.create_bucket(Bucket="orphans")
    yield client
    srv.stop()


def _keys(client: Any, prefix: str) -> list[str]:
    got = client.list_objects_v2(Bucket="orphans", Prefix=prefix)
    return [o["Key"] for o in got.get("Contents", [])]


def test_sweep_on_s3_waits_for_the_lease_then_removes(s3: Any, tmp_path: Any) -> None:
    lake = "s3://orphans/lake"
    db = tarndb.open(lake)
    try:
        db.execute("CREATE SCHEMA ws")
        db.execute("CREATE TABLE ws.live (id INT PRIMARY KEY)")
        db.execute("INSERT INTO ws.live VALUES (1), (2), (3)")
        live = _keys(s3, "lake/ws/live-")
        # A creator with a short lease (2 s unless renewed), killed inside its transaction.
        script = tmp_path / "create.py"
        script.write_text(textwrap.dedent(f"""
            import time, tarndb
            db = tarndb.open({lake!r})
            s = db.session()
            s.execute("BEGIN")
            s.execute("CREATE TABLE ws.doomed (id INT, body TEXT)")
            print("ready", flush=True)
            time.sleep(600)
        """))
        proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE,
                                env=dict(os.environ, TARNDB_LEASE_TTL_S="2"))
        try:
            assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
            found = vacuum_orphans(db, 0)
            assert [(o.path[:10], o.status) for o in found] == [("ws/doomed-", "in progress")]
            # Past the lease's TTL: the idle creator's process renews it, so still in progress.
            time.sleep(3)
            found = vacuum_orphans(db, 0)
            assert [(o.path[:10], o.status) for o in found] == [("ws/doomed-", "in progress")]
        finally:
            proc.kill()
            proc.wait(10)
        assert _keys(s3, "lake/ws/doomed-")
        time.sleep(2.5)  # the dead creator's lease lapses
        found = vacuum_orphans(db, 0)
        assert [(o.path[:10], o.status) for o in found] == [("ws/doomed-", "removed")]
        assert _keys(s3, "lake/ws/doomed-") == []
        assert _keys(s3, "lake/ws/live-") == live
        assert db.execute("SELECT sum(id) FROM ws.live").rows == [(6,)]
        assert vacuum_orphans(db, 0) == []
    finally:
        db.close()
