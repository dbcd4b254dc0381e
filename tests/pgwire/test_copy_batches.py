"""A big COPY FROM through psycopg: its rows reach the engine in batches (copy.BATCH_BYTES)
and wait on disk until COMMIT (engine/spill.py), yet the COPY stays one atomic statement, and
the server's memory does not grow with the data."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest

from tarndb.pgwire.copy import BATCH_BYTES

from .conftest import PASSWORD, Server

DIM = 384


def _payload(ids: np.ndarray) -> bytes:
    """COPY BINARY rows (id int8, v float4[DIM])."""
    vecs = np.random.default_rng(abs(int(ids[0]))).standard_normal((len(ids), DIM)).astype(">f4")
    row = np.dtype([("n", ">i2"), ("idlen", ">i4"), ("id", ">i8"), ("vlen", ">i4"),
                    ("head", ">i4", (5,)), ("v", [("len", ">i4"), ("x", ">f4")], (DIM,))])
    rows = np.zeros(len(ids), dtype=row)
    rows["n"], rows["idlen"], rows["id"] = 2, 8, ids
    rows["vlen"] = 20 + 8 * DIM
    rows["head"] = (1, 0, 700, DIM, 1)
    rows["v"]["len"], rows["v"]["x"] = 4, vecs
    return b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + rows.tobytes() + b"\xff\xff"


def _copy(conn: psycopg.Connection, table: str, payload: bytes) -> int:
    with conn.cursor() as cur:
        with cur.copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as cp:
            for off in range(0, len(payload), 1 << 20):
                cp.write(payload[off:off + (1 << 20)])
        return cur.rowcount


ROWS = 3 * BATCH_BYTES // (8 * DIM) + 500  # three batches and a bit


@pytest.fixture
def table(pg_server: Server) -> Iterator[str]:
    name = f"cb_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"CREATE TABLE {name} (id BIGINT PRIMARY KEY, v FLOAT4[])")
    yield name
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"DROP TABLE IF EXISTS {name}")


def test_a_copy_of_several_batches_stores_every_row_once(pg_server: Server, table: str
                                                          ) -> None:
    ids = np.arange(ROWS, dtype=np.int64)
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        assert _copy(c, table, _payload(ids)) == ROWS
        assert c.execute(f"SELECT count(*), sum(id), count(DISTINCT id) FROM {table}"
                         ).fetchone() == (ROWS, int(ids.sum()), ROWS)
        got = c.execute(f"SELECT v FROM {table} WHERE id = {ROWS - 1}").fetchone()
    want = np.random.default_rng(0).standard_normal((ROWS, DIM)).astype(np.float32)[-1]
    assert got is not None and np.array_equal(np.array(got[0], np.float32), want)


def test_a_bad_row_in_the_last_batch_undoes_the_whole_copy(pg_server: Server, table: str
                                                            ) -> None:
    ids = np.arange(ROWS, dtype=np.int64)
    ids[-1] = 7  # a key already sent in the first batch
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        with pytest.raises(psycopg.errors.UniqueViolation):
            _copy(c, table, _payload(ids))
        assert c.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
        # nothing of it holds a key either
        c.execute(f"INSERT INTO {table} VALUES (7, NULL)")
        assert c.execute(f"SELECT count(*) FROM {table}").fetchone() == (1,)


def test_a_copy_in_a_transaction_is_the_transactions(pg_server: Server, table: str) -> None:
    ids = np.arange(ROWS, dtype=np.int64)
    with psycopg.connect(pg_server.dsn()) as c:  # psycopg opens a transaction block
        assert _copy(c, table, _payload(ids)) == ROWS
        assert c.execute(f"SELECT count(*) FROM {table}").fetchone() == (ROWS,)
        with psycopg.connect(pg_server.dsn(), autocommit=True) as other:
            assert other.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
        c.rollback()
        assert c.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
        c.rollback()
        # A failed COPY aborts the transaction, as in PostgreSQL.
        c.execute(f"INSERT INTO {table} VALUES (-1, NULL)")
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            with c.cursor() as cur, cur.copy(f"COPY {table} FROM STDIN") as cp:
                cp.write(b"1\t{1,2}\nnot a number\t{3}\n")
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            c.execute("SELECT 1")
        c.rollback()
        assert c.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)


def _anon_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no RssAnon")


def test_a_big_copy_does_not_grow_the_servers_memory_with_its_size(tmp_path: Path) -> None:
    """900 MB of COPY BINARY (440 MB of float4) in and out: the server's anonymous memory
    rises by a few batches' worth (~130-200 MB in, ~300 MB out here, the same at twice the
    size), not by the data (before: all of it decoded, 440 MB and more in, 1-1.3x the
    payload out)."""
    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tarndb.pgwire", "--data", str(tmp_path / "lake"), "--port",
         "0", "--port-file", str(port_file)], stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, env=dict(os.environ, TARNDB_PASSWORD=PASSWORD))
    try:
        deadline = time.time() + 60
        while not port_file.exists():
            assert proc.poll() is None and time.time() < deadline, "server did not start"
            time.sleep(0.05)
        server = Server("127.0.0.1", int(port_file.read_text()), PASSWORD, tmp_path, proc)
        n = 300_000
        payload = _payload(np.arange(n, dtype=np.int64))
        with psycopg.connect(server.dsn(), autocommit=True) as c:
            c.execute("CREATE TABLE big (id BIGINT PRIMARY KEY, v FLOAT4[])")
            _copy(c, "big", _payload(np.arange(-1000, 0, dtype=np.int64)))  # warm up
            base = peak = _anon_mb(proc.pid)
            done = threading.Event()

            def watch() -> None:
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, _anon_mb(proc.pid))
                    time.sleep(0.01)

            th = threading.Thread(target=watch)
            th.start()
            try:
                assert _copy(c, "big", payload) == n
            finally:
                done.set()
                th.join()
            assert c.execute("SELECT count(*) FROM big").fetchone() == (n + 1000,)
            floats_mb = n * DIM * 4 / 2**20
            assert peak - base < 0.8 * floats_mb, (base, peak, floats_mb)

            # COPY TO streams the table back a batch at a time (before: the whole answer as
            # Arrow, then as Python values, 1-1.3x the payload).
            base = peak = _anon_mb(proc.pid)
            done.clear()
            th = threading.Thread(target=watch)
            th.start()
            sent = 0
            try:
                with c.cursor() as cur, \
                        cur.copy("COPY big TO STDOUT (FORMAT BINARY)") as cp:
                    for block in cp:
                        sent += len(block)
            finally:
                done.set()
                th.join()
            assert sent > len(payload)  # every row came back (the payload is n of n + 1000)
            assert peak - base < floats_mb, (base, peak, floats_mb)
    finally:
        proc.terminate()
        proc.wait(10)


def test_payload_layout() -> None:
    """The test's own COPY BINARY rows are what PostgreSQL's format says."""
    p = _payload(np.array([5], dtype=np.int64))
    assert p[:11] == b"PGCOPY\n\xff\r\n\x00" and p[-2:] == b"\xff\xff"
    n, idlen, ident, vlen = struct.unpack_from("!hiqi", p, 19)
    assert (n, idlen, ident, vlen) == (2, 8, 5, 20 + 8 * DIM)


def test_copy_to_streams_what_the_transaction_sees(pg_server: Server, table: str) -> None:
    """COPY table TO reads the table as a one-pass stream: rows in the write-ahead log,
    deleted rows and the transaction's own uncommitted changes come out as a SELECT sees
    them."""
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        _copy(c, table, _payload(np.arange(50, dtype=np.int64)))
        for i in range(50, 60):  # single-row commits: the write-ahead log's rows
            c.execute(f"INSERT INTO {table} VALUES ({i}, '{{1,2}}')")
        c.execute(f"DELETE FROM {table} WHERE id % 7 = 0")
        c.execute(f"UPDATE {table} SET v = '{{9}}' WHERE id = 55")
    with psycopg.connect(pg_server.dsn()) as c:  # in a transaction block
        c.execute(f"INSERT INTO {table} VALUES (1000, '{{3}}')")
        c.execute(f"DELETE FROM {table} WHERE id = 1")
        with c.cursor() as cur, cur.copy(f"COPY {table} (id, v) TO STDOUT") as cp:
            got = {int(r[0]): r[1] for r in cp.rows()}
        want = {int(i): v for i, v in c.execute(f"SELECT id, v FROM {table}").fetchall()}
        c.rollback()
    expect = set(range(60)) - {i for i in range(60) if i % 7 == 0} - {1} | {1000}
    assert set(got) == expect == set(want)
    assert got[55] == "{9}" and got[1000] == "{3}" and got[51] == "{1,2}"
