"""The concurrency guarantees with two ``tarndb serve`` processes on one S3 lake (moto):
commits serialise through a conditional-put lease on the bucket, not a file lock."""

from __future__ import annotations

import threading
from typing import Any

from psycopg import errors as pe

from .test_writers import _increments, _run_threads


def test_increments_from_two_servers_on_one_s3_lake(s3_servers: Any) -> None:
    _increments(s3_servers(2), clients=6, each=10)


def test_keys_and_serials_from_two_servers_on_one_s3_lake(s3_servers: Any) -> None:
    srvs = s3_servers(2)
    with srvs[0].connect() as c:
        c.execute("CREATE TABLE k (id BIGSERIAL PRIMARY KEY, key INT UNIQUE)")
    wins: list[int] = []
    ids: list[int] = []
    dups = [0]
    lock = threading.Lock()

    def work(i: int) -> None:
        with srvs[i % 2].connect() as c:
            for key in range(8):
                try:
                    row = c.execute("INSERT INTO k (key) VALUES (%s) RETURNING id",
                                    [key]).fetchone()
                    assert row is not None
                    with lock:
                        wins.append(key)
                        ids.append(row[0])
                except pe.UniqueViolation:
                    with lock:
                        dups[0] += 1

    assert _run_threads(6, work) == []
    with srvs[1].connect() as c:
        stored = c.execute("SELECT key, id FROM k ORDER BY key").fetchall()
    assert sorted(wins) == list(range(8)) and dups[0] == 8 * 5, (wins, stored)
    assert len(set(ids)) == 8
    with srvs[1].connect() as c:
        assert c.execute("SELECT count(*), count(DISTINCT id) FROM k").fetchone() == (8, 8)
