"""A transaction's added rows past SPILL_BYTES wait in a memory-mapped file (engine/spill.py):
the transaction still reads them, checks keys against them, deletes among them, and commits or
rolls back all of them."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pytest

import tarndb
from tarndb import errors as E
from tarndb.engine import commit


@pytest.fixture
def small_spills(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commit, "SPILL_BYTES", 200_000)


@pytest.fixture
def db(tmp_path: os.PathLike[str], small_spills: None) -> Iterator[tarndb.Database]:
    database = tarndb.open(str(tmp_path) + "/lake")
    yield database
    database.close()


def _batch(start: int, n: int) -> pa.Table:
    vecs = np.random.default_rng(start).standard_normal((n, 64)).astype(np.float32)
    return pa.table({"id": pa.array(range(start, start + n), pa.int64()),
                     "v": pa.array(list(vecs), pa.list_(pa.float32()))})


def _change(s: tarndb.Session, table: str) -> commit.TableChange:
    info = s.resolve_table(None, table)
    assert info is not None
    ch = s.pending_change(info)
    assert ch is not None
    return ch


def test_spilled_rows_are_read_checked_and_committed(db: tarndb.Database) -> None:
    s = db.session()
    s.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v FLOAT4[])")
    s.execute("BEGIN")
    for k in range(5):  # 5 x ~260 kB: every batch past the (small) spill threshold
        s.insert_arrow("t", _batch(k * 1000, 1000))
    ch = _change(s, "t")
    assert ch.spilled and ch.num_added == 5000
    assert ch._in_memory == 0  # nothing of them left in the heap
    # The transaction reads its spilled rows ...
    assert s.execute("SELECT count(*), sum(id) FROM t").rows == [(5000, sum(range(5000)))]
    assert s.execute("SELECT v[1] FROM t WHERE id = 4321").rows == \
        [(pytest.approx(float(_batch(4000, 1000).column("v")[321][0].as_py())),)]
    # ... checks new keys against them ...
    with pytest.raises(E.UniqueViolation):
        s.insert_arrow("t", _batch(2500, 1))
    s.execute("ROLLBACK")
    assert s.execute("SELECT count(*) FROM t").rows == [(0,)]

    s.execute("BEGIN")
    for k in range(5):
        s.insert_arrow("t", _batch(k * 1000, 1000))
    s.execute("DELETE FROM t WHERE id % 10 = 0")  # ... deletes among them ...
    s.execute("INSERT INTO t VALUES (1000000, '{1,2}')")
    s.execute("COMMIT")  # ... and commits all of them
    other = db.session()
    assert other.execute("SELECT count(*), sum(id) FROM t").rows == \
        [(4501, sum(i for i in range(5000) if i % 10) + 1000000)]
    with pytest.raises(E.UniqueViolation):
        other.execute("INSERT INTO t VALUES (4999, NULL)")


def test_rollback_of_spilled_rows_leaves_nothing(db: tarndb.Database) -> None:
    s = db.session()
    s.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v FLOAT4[])")
    spill_dir = db.spill_dir
    s.execute("BEGIN")
    for k in range(3):
        s.insert_arrow("t", _batch(k * 1000, 1000))
    assert _change(s, "t").spilled
    # The mapped files were unlinked at once: a crash or a forgotten session leaves no file.
    assert not os.listdir(spill_dir)
    s.execute("ROLLBACK")
    assert s.execute("SELECT count(*) FROM t").rows == [(0,)]
    s.execute("INSERT INTO t VALUES (1, NULL)")  # the keys went with them
    assert s.execute("SELECT count(*) FROM t").rows == [(1,)]
