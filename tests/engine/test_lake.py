"""The lake is the database: a second process sees the same tables, S3 works, commits survive
``kill -9``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import tarndb


def _run_py(code: str, timeout: float = 120) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_second_process_sees_tables_and_rows(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    db = tarndb.open(lake)
    db.execute('CREATE TABLE "ws"."t" (id BIGSERIAL PRIMARY KEY, v TEXT)')
    db.execute('INSERT INTO "ws"."t" (v) VALUES (\'a\'), (\'b\')')
    out = _run_py(f"""
        import tarndb
        db = tarndb.open({lake!r})
        print(db.execute('SELECT id, v FROM "ws"."t" ORDER BY id').rows)
        db.execute('INSERT INTO "ws"."t" (v) VALUES (\\'from child\\')')
    """)
    assert out.strip() == "[(1, 'a'), (2, 'b')]"
    time.sleep(0.3)  # catalog refresh is rate-limited
    got = db.execute('SELECT v FROM "ws"."t" ORDER BY v').rows
    assert ("from child",) in got and len(got) == 3
    ids = [r[0] for r in db.execute('SELECT id FROM "ws"."t"').rows]
    assert len(set(ids)) == 3  # the two processes drew distinct sequence values


def test_kill_9_during_commits_keeps_every_acknowledged_row(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    tarndb.open(lake).execute("CREATE TABLE t (id BIGINT PRIMARY KEY, payload TEXT)")
    ack = tmp_path / "acks"
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import tarndb, os
        db = tarndb.open({lake!r})
        with open({str(ack)!r}, "a") as f:
            for i in range(100000):
                db.execute("INSERT INTO t VALUES ($1, $2)", [i, "x" * 100])
                f.write(f"{{i}}\\n"); f.flush(); os.fsync(f.fileno())
    """)])
    deadline = time.time() + 60
    while time.time() < deadline:
        if ack.exists() and len(ack.read_text().split()) >= 40:
            break
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    acked = {int(x) for x in ack.read_text().split()}
    assert len(acked) >= 40
    db = tarndb.open(lake)
    stored = {r[0] for r in db.execute("SELECT id FROM t").rows}
    assert acked <= stored
    assert len(stored) <= len(acked) + 1  # at most the one in flight
    db.execute("INSERT INTO t VALUES (-1, 'after restart')")  # still writable
    assert db.execute("SELECT count(*) FROM t").scalar() == len(stored) + 1


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, str]]:
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing"
                 ).create_bucket(Bucket="lake")
    yield {"aws_endpoint": endpoint, "aws_access_key_id": "testing",
           "aws_secret_access_key": "testing", "aws_region": "us-east-1",
           "allow_http": "true"}
    server.stop()


def test_s3_lake(s3: dict[str, str]) -> None:
    db = tarndb.open("s3://lake/tests", storage_options=s3)
    db.execute("CREATE TABLE t (id SERIAL PRIMARY KEY, v TEXT, e FLOAT4[], j JSONB)")
    db.execute("INSERT INTO t (v, e, j) VALUES ('a', ARRAY[1,0], '{\"k\": 1}'), "
               "('b', ARRAY[0,1], '{\"k\": 2}')")
    db.execute("UPDATE t SET v = 'bb' WHERE id = 2")
    db.execute("DELETE FROM t WHERE id = 1")
    other = tarndb.open("s3://lake/tests", storage_options=s3)
    assert other.execute("SELECT id, v, e, j FROM t").rows == [(2, "bb", [0.0, 1.0], {"k": 2})]
    assert other.execute(
        "SELECT v, e <#> ARRAY[0,1]::float4[] AS s FROM t ORDER BY s DESC").rows == [("bb", 1.0)]
    db.execute("DROP TABLE t")
    with pytest.raises(tarndb.errors.UndefinedTable):
        tarndb.open("s3://lake/tests", storage_options=s3).execute("SELECT * FROM t")
