"""The write-ahead log (storage/wal.py): inserts are durable before they reach Lance, every
read sees them at once, and folding them into Lance is exactly-once across crashes."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

import tarndb
from tarndb import errors as E
from tarndb.storage import wal as walmod


def _setup(db: tarndb.Database) -> tarndb.Session:
    s = db.session(workspace="ws")
    s.execute("CREATE TABLE t (id INT PRIMARY KEY, v TEXT UNIQUE)")
    return s


def _store(db: tarndb.Database, s: tarndb.Session) -> object:
    info = s.find_table("ws", "t")
    assert info is not None
    return db.store(info)


def test_inserts_are_logged_and_every_read_sees_them(db: tarndb.Database) -> None:
    s = _setup(db)
    store = _store(db, s)
    before = store.lance_version()  # type: ignore[attr-defined]
    for i in range(5):
        s.execute("INSERT INTO t VALUES ($1, $2)", [i, f"v{i}"])
    # Acknowledged, durable in the log, not yet a Lance version of their own.
    assert store.lance_version() == before  # type: ignore[attr-defined]
    assert store.wal.files()  # type: ignore[attr-defined]
    other = db.session(workspace="ws")
    assert other.execute("SELECT count(*) FROM t").rows == [(5,)]
    # The read folded the five commits into one Lance append (maintenance may follow it:
    # a key index is built at a table's first commit).
    ds = store.dataset()  # type: ignore[attr-defined]
    ops = [type(ds.read_transaction(v).operation).__name__
           for v in range(before + 1, ds.version + 1)]
    assert ops.count("Append") == 1 and ops[0] == "Append"
    assert not store.wal.files()  # type: ignore[attr-defined]


def test_logged_keys_are_enforced(db: tarndb.Database) -> None:
    s = _setup(db)
    s.execute("INSERT INTO t VALUES (1, 'a')")
    with pytest.raises(E.UniqueViolation):
        s.execute("INSERT INTO t VALUES (1, 'b')")
    with pytest.raises(E.UniqueViolation):
        s.execute("INSERT INTO t VALUES (2, 'a')")
    # A second process on the same lake: its key index is built after folding the log.
    db2 = tarndb.open(str(db.lake.uri))
    try:
        s.execute("INSERT INTO t VALUES (3, 'c')")
        with pytest.raises(E.UniqueViolation):
            db2.session(workspace="ws").execute("INSERT INTO t VALUES (3, 'z')")
        assert db2.session(workspace="ws").execute(
            "SELECT id, v FROM t ORDER BY id").rows == [(1, "a"), (3, "c")]
    finally:
        db2.close()


def test_update_and_delete_after_logged_inserts(db: tarndb.Database) -> None:
    s = _setup(db)
    s.execute("INSERT INTO t VALUES (1, 'a')")
    s.execute("INSERT INTO t VALUES (2, 'b')")
    assert s.execute("UPDATE t SET v = 'A' WHERE id = 1").rowcount == 1
    assert s.execute("DELETE FROM t WHERE id = 2").rowcount == 1
    s.execute("INSERT INTO t VALUES (2, 'b2')")
    assert s.execute("SELECT id, v FROM t ORDER BY id").rows == [(1, "A"), (2, "b2")]


def test_alter_table_folds_the_log_first(db: tarndb.Database) -> None:
    s = _setup(db)
    s.execute("INSERT INTO t VALUES (1, 'a')")
    s.execute("ALTER TABLE t RENAME COLUMN v TO w")
    s.execute("ALTER TABLE t ADD COLUMN x INT")
    assert s.execute("SELECT id, w, x FROM t").rows == [(1, "a", None)]


def _crash_between_fold_and_removal(monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(self: walmod.TableWal, names: list[str]) -> None:
        raise KeyboardInterrupt("simulated crash after the fold's Lance commit")

    monkeypatch.setattr(walmod.TableWal, "remove", crash)


@pytest.mark.parametrize("records_gone", [False, True])
def test_a_fold_interrupted_after_its_commit_is_not_folded_twice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, records_gone: bool) -> None:
    lake = str(tmp_path / "lake")
    db = tarndb.open(lake)
    s = _setup(db)
    for i in range(4):
        s.execute("INSERT INTO t VALUES ($1, $2)", [i, f"v{i}"])
    store = _store(db, s)
    with monkeypatch.context() as m:
        _crash_between_fold_and_removal(m)
        with pytest.raises(KeyboardInterrupt):
            store.fold()  # type: ignore[attr-defined]
    assert store.wal.files()  # type: ignore[attr-defined]  # the log is still there
    if records_gone:
        # Version records removed (retention): the folder asks the rows themselves.
        monkeypatch.setattr(type(store), "_folded_offset",
                            staticmethod(lambda ds, name, base: None))
    db2 = tarndb.open(lake)  # a new process finds the folded log on the lake
    try:
        s2 = db2.session(workspace="ws")
        assert s2.execute("SELECT count(*), count(DISTINCT id) FROM t").rows == [(4, 4)]
        s2.execute("INSERT INTO t VALUES (9, 'v9')")
        with pytest.raises(E.UniqueViolation):
            s2.execute("INSERT INTO t VALUES (2, 'again')")
    finally:
        db2.close()


def test_a_torn_record_is_ignored(db: tarndb.Database) -> None:
    s = _setup(db)
    s.execute("INSERT INTO t VALUES (1, 'a')")
    store = _store(db, s)
    wal = store.wal  # type: ignore[attr-defined]
    (name,) = wal.files()
    import pyarrow as pa

    torn = walmod.encode(pa.table({"id": [7], "v": ["x"], "__rid": pa.array([99], pa.int64())}))
    with open(os.path.join(wal.dir, name), "ab") as f:
        f.write(torn[: len(torn) // 2])  # a crash in the middle of an append
    assert s.execute("SELECT id, v FROM t").rows == [(1, "a")]


def test_close_folds_the_log(tmp_path: Path) -> None:
    lake = str(tmp_path / "lake")
    db = tarndb.open(lake)
    s = _setup(db)
    s.execute("INSERT INTO t VALUES (1, 'a')")
    store = _store(db, s)
    db.close()
    assert not store.wal.files()  # type: ignore[attr-defined]
    db2 = tarndb.open(lake)
    try:
        assert db2.execute("SELECT v FROM t", workspace="ws").rows == [("a",)]
    finally:
        db2.close()


def test_every_column_type_survives_the_log(db: tarndb.Database) -> None:
    """Rows read back from the log are handed to Lance: 128-bit decimals need buffers
    aligned as Arrow's allocator aligns them."""
    s = db.session(workspace="ws")
    s.execute("CREATE TABLE k (id INT PRIMARY KEY, n NUMERIC(12, 2), ts TIMESTAMPTZ, "
              "j JSONB, b BYTEA, v FLOAT4[], ok BOOL, u UUID)")
    for i in range(3):
        s.execute("INSERT INTO k VALUES ($1, $2, '2026-01-02 03:04:05+00', $3, $4, $5, true, "
                  "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11')",
                  [i, f"{i}.25", '{"a": 1}', b"\x00\x01", [0.5, float(i)]])
    rows = db.session(workspace="ws").execute(
        "SELECT id, n::text, j->>'a', octet_length(b), v[2], ok FROM k ORDER BY id").rows
    assert rows == [(0, "0.25", "1", 2, 0.0, True), (1, "1.25", "1", 2, 1.0, True),
                    (2, "2.25", "1", 2, 2.0, True)]


def test_keys_of_folded_rows_go_with_their_rows(db: tarndb.Database) -> None:
    """A logged row's key enters the key index when it is logged and again when it is
    folded; an UPDATE or DELETE of the row must take the key out of both places."""
    s = _setup(db)
    s.execute("BEGIN")
    for i in range(50):
        s.execute("INSERT INTO t VALUES ($1, $2)", [i, f"v{i}"])
    s.execute("COMMIT")
    s.execute("UPDATE t SET v = 'moved' WHERE id = 17")
    assert s.execute("DELETE FROM t WHERE id = 18").rowcount == 1
    s.execute("INSERT INTO t VALUES (18, 'back')")
    s.execute("UPDATE t SET id = 1017 WHERE id = 17")
    s.execute("INSERT INTO t VALUES (17, 'again')")
    with pytest.raises(E.UniqueViolation):
        s.execute("INSERT INTO t VALUES (1017, 'dup')")
    assert s.execute("SELECT id, v FROM t WHERE id IN (17, 18, 1017) ORDER BY id").rows == [
        (17, "again"), (18, "back"), (1017, "moved")]


# -- updates and deletes in the log --------------------------------------------------------

def _counter(db: tarndb.Database) -> tuple[tarndb.Session, object]:
    s = db.session(workspace="ws")
    s.execute("CREATE TABLE c (id INT PRIMARY KEY, n INT, note TEXT)")
    s.execute("INSERT INTO c VALUES (1, 0, 'a'), (2, 0, 'b'), (3, 0, 'c')")
    s.execute("SELECT count(*) FROM c")  # folds the inserts
    info = s.find_table("ws", "c")
    assert info is not None
    return s, db.store(info)


def test_keyed_updates_and_deletes_are_logged_not_lance_versions(
        db: tarndb.Database) -> None:
    """``UPDATE/DELETE ... WHERE pk = value`` reads the row through the log's overlay and
    logs its change: no Lance commit per statement, and every read sees the change."""
    s, store = _counter(db)
    db._folding().stop()  # type: ignore[attr-defined]  # no background fold in this test
    before = store.lance_version()  # type: ignore[attr-defined]
    for i in range(20):
        assert s.execute("UPDATE c SET n = n + 1 WHERE id = 1 RETURNING n").rows == [(i + 1,)]
    assert s.execute("DELETE FROM c WHERE id = 2").rowcount == 1
    assert s.execute("UPDATE c SET note = 'z' WHERE id = 2").rowcount == 0
    assert store.lance_version() == before  # type: ignore[attr-defined]
    (name,) = store.wal.files()  # type: ignore[attr-defined]
    recs = store.wal.read(name).records  # type: ignore[attr-defined]
    assert len(recs) == 21 and all(r.removed.size == 1 for r in recs)
    # A key lookup sees the logged rows without folding them; any other read folds.
    assert s.execute("SELECT n FROM c WHERE id = 1").rows == [(20,)]
    assert store.lance_version() == before  # type: ignore[attr-defined]
    assert db.session(workspace="ws").execute("SELECT id, n, note FROM c ORDER BY id").rows \
        == [(1, 20, "a"), (3, 0, "c")]
    assert store.lance_version() == before + 1  # type: ignore[attr-defined]  # one fold
    assert not store.wal.files()  # type: ignore[attr-defined]


def test_a_read_before_a_logged_update_sees_the_conflict(db: tarndb.Database) -> None:
    """A statement that read a row (folding the log) before another transaction logged a
    change to it re-reads the row under READ COMMITTED: no increment is lost."""
    s, _ = _counter(db)
    s.execute("BEGIN")
    s.execute("UPDATE c SET n = n + 10 WHERE id = 1")  # holds the row
    other = db.session(workspace="ws")
    out: list[object] = []
    # Not a key lookup: reads every row, then waits for the row lock.
    t = threading.Thread(target=lambda: out.append(
        other.execute("UPDATE c SET n = n + 1 WHERE n >= 0 AND id < 2 RETURNING n").rows))
    t.start()
    t.join(1.0)
    assert t.is_alive()  # waiting for the lock
    s.execute("COMMIT")  # logged
    t.join(10)
    assert out == [[(11,)]]
    assert s.execute("SELECT n FROM c WHERE id = 1").rows == [(11,)]


def test_repeatable_read_fails_on_a_logged_update(db: tarndb.Database) -> None:
    s, _ = _counter(db)
    s.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    assert s.execute("SELECT n FROM c WHERE id = 1").rows == [(0,)]
    db.session(workspace="ws").execute("UPDATE c SET n = n + 1 WHERE id = 1")  # logged
    assert s.execute("SELECT n FROM c WHERE id = 1").rows == [(0,)]  # its snapshot
    with pytest.raises(E.SerializationFailure):
        s.execute("UPDATE c SET n = n + 1 WHERE id = 1")
    s.execute("ROLLBACK")
    assert s.execute("SELECT n FROM c WHERE id = 1").rows == [(1,)]


def test_logged_updates_across_two_servers(tmp_path: Path) -> None:
    """Another server folds this one's logged updates before it changes the table; this
    server then reads them from Lance, and its next update starts a new log file."""
    lake = str(tmp_path / "lake")
    db1, db2 = tarndb.open(lake), tarndb.open(lake)
    try:
        s1, _ = _counter(db1)
        s2 = db2.session(workspace="ws")
        for _ in range(3):
            for _ in range(5):
                s1.execute("UPDATE c SET n = n + 1 WHERE id = 1")
                s2.execute("UPDATE c SET n = n + 1 WHERE id = 1")
            s2.execute("DELETE FROM c WHERE id = 3")
            s1.execute("INSERT INTO c VALUES (3, 0, 'c') ON CONFLICT (id) DO NOTHING")
        assert s1.execute("SELECT n FROM c WHERE id = 1").rows == [(30,)]
        assert s2.execute("SELECT n FROM c WHERE id = 1").rows == [(30,)]
        assert s2.execute("SELECT id, n FROM c ORDER BY id").rows == [(1, 30), (2, 0), (3, 0)]
    finally:
        db1.close()
        db2.close()


@pytest.mark.parametrize("records_gone", [False, True])
def test_a_fold_of_logged_updates_interrupted_after_its_commit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, records_gone: bool) -> None:
    lake = str(tmp_path / "lake")
    db = tarndb.open(lake)
    s, store = _counter(db)
    db._folding().stop()  # type: ignore[attr-defined]
    s.execute("INSERT INTO c VALUES (4, 0, 'd')")
    for _ in range(3):
        s.execute("UPDATE c SET n = n + 1 WHERE id = 1")
        s.execute("UPDATE c SET n = n + 1 WHERE id = 4")
    s.execute("DELETE FROM c WHERE id = 2")
    with monkeypatch.context() as m:
        _crash_between_fold_and_removal(m)
        with pytest.raises(KeyboardInterrupt):
            store.fold()  # type: ignore[attr-defined]
    assert store.wal.files()  # type: ignore[attr-defined]
    if records_gone:
        monkeypatch.setattr(type(store), "_folded_offset",
                            staticmethod(lambda ds, name, base: None))
    db2 = tarndb.open(lake)
    try:
        s2 = db2.session(workspace="ws")
        assert s2.execute("SELECT id, n FROM c ORDER BY id").rows == [(1, 3), (3, 0), (4, 3)]
        s2.execute("UPDATE c SET n = n + 1 WHERE id = 4")
        assert s2.execute("SELECT count(*), sum(n) FROM c").rows == [(3, 7)]
    finally:
        db2.close()


def _slow_fold(store: object, monkeypatch: pytest.MonkeyPatch, seconds: float
               ) -> tuple[threading.Thread, list[object]]:
    """Start ``store.fold(complete=False)`` on a thread whose Lance fragment write takes
    ``seconds``; returns once the write has begun (the thread, and a list that gets the
    fold's result)."""
    import time

    import lance.fragment

    real = lance.fragment.write_fragments
    writing = threading.Event()

    def slow(*args: object, **kw: object) -> object:
        writing.set()
        time.sleep(seconds)
        return real(*args, **kw)  # type: ignore[call-overload]

    monkeypatch.setattr(lance.fragment, "write_fragments", slow)
    folded: list[object] = []
    folder = threading.Thread(target=lambda: folded.append(
        store.fold(complete=False)))  # type: ignore[attr-defined]
    folder.start()
    assert writing.wait(10)
    return folder, folded


def test_commits_go_on_while_a_fold_writes(db: tarndb.Database,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A fold of this server's inserts writes its rows without the table's locks: commits
    made meanwhile are neither held up nor lost, nor folded twice; a read folds them."""
    import time

    s = _setup(db)
    db._folding().stop()  # type: ignore[attr-defined]
    store = _store(db, s)
    for i in range(5):
        s.execute("INSERT INTO t VALUES ($1, $2)", [i, f"v{i}"])
    folder, folded = _slow_fold(store, monkeypatch, 0.6)
    t0 = time.monotonic()
    for i in range(5, 10):
        s.execute("INSERT INTO t VALUES ($1, $2)", [i, f"v{i}"])
        s.execute("UPDATE t SET v = 'u' || v WHERE id = $1", [i - 5])
    assert time.monotonic() - t0 < 0.5  # not held up by the fold's write
    folder.join(10)
    assert not folder.is_alive()
    assert isinstance(folded[0], int)  # the fold committed its rows (no commit folded them)
    assert store.wal.files()  # type: ignore[attr-defined]  # the later commits, logged
    # A key lookup of a row the fold wrote and of one logged after it, without a fold.
    version = store.lance_version()  # type: ignore[attr-defined]
    assert s.execute("SELECT v FROM t WHERE id = 2").rows == [("uv2",)]
    assert s.execute("SELECT v FROM t WHERE id = 7").rows == [("v7",)]
    assert store.lance_version() == version  # type: ignore[attr-defined]
    assert db.session(workspace="ws").execute(
        "SELECT count(*), count(DISTINCT id), sum(CASE WHEN v LIKE 'u%' THEN 1 ELSE 0 END) "
        "FROM t").rows == [(10, 10, 5)]
    with pytest.raises(E.UniqueViolation):
        s.execute("INSERT INTO t VALUES (3, 'again')")


def test_a_fold_of_updates_writes_without_the_locks(db: tarndb.Database,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A fold of a log that updates and deletes rows (a hot row's) also writes without the
    table's locks: commits made meanwhile, which change the folded rows again, are neither
    held up nor lost, and the key indexes keep their newer keys (a folded, older version
    of a row must not bring back the key it had)."""
    import time

    s = _setup(db)
    db._folding().stop()  # type: ignore[attr-defined]
    store = _store(db, s)
    for i in range(6):
        s.execute("INSERT INTO t VALUES ($1, $2)", [i, f"v{i}"])
    s.execute("SELECT count(*) FROM t")  # folded: the rows are Lance rows
    for n in range(3):
        s.execute("UPDATE t SET v = $1 WHERE id = 2", [f"hot{n}"])
    s.execute("UPDATE t SET v = 'w3' WHERE id = 3")
    s.execute("DELETE FROM t WHERE id = 5")
    assert store.pending_removed  # type: ignore[attr-defined]
    version = store.lance_version()  # type: ignore[attr-defined]
    folder, folded = _slow_fold(store, monkeypatch, 0.6)
    t0 = time.monotonic()
    s.execute("UPDATE t SET v = 'hot3' WHERE id = 2")
    s.execute("UPDATE t SET id = 30, v = 'x3' WHERE id = 3")  # the key and the unique value
    s.execute("DELETE FROM t WHERE id = 4")
    s.execute("INSERT INTO t VALUES (5, 'v5 again')")
    assert time.monotonic() - t0 < 0.5  # not held up by the fold's write
    folder.join(10)
    assert not folder.is_alive()
    assert isinstance(folded[0], int) and folded[0] > version  # committed by the fold
    assert store.wal.files()  # type: ignore[attr-defined]  # the later commits, logged
    assert store.lance_version() == folded[0]  # type: ignore[attr-defined]
    # Key lookups and scans of the overlay (no fold) and after a fold agree.
    assert s.execute("SELECT v FROM t WHERE id = 2").rows == [("hot3",)]
    assert s.execute("SELECT v FROM t WHERE id = 3").rows == []
    assert s.execute("SELECT v FROM t WHERE id = 30").rows == [("x3",)]
    assert store.lance_version() == folded[0]  # type: ignore[attr-defined]
    # The key indexes hold the newest keys: 3 and 'w3' are free, 30 and 'x3' are taken.
    with pytest.raises(E.UniqueViolation):
        s.execute("INSERT INTO t VALUES (30, 'new')")
    with pytest.raises(E.UniqueViolation):
        s.execute("INSERT INTO t VALUES (31, 'x3')")
    s.execute("INSERT INTO t VALUES (3, 'w3')")
    s.execute("UPDATE t SET v = 'hot4' WHERE id = 2")
    want = [(0, "v0"), (1, "v1"), (2, "hot4"), (3, "w3"), (5, "v5 again"), (30, "x3")]
    assert db.session(workspace="ws").execute("SELECT id, v FROM t ORDER BY id").rows == want
    assert not store.wal.files()  # type: ignore[attr-defined]  # that read folded the rest
    assert s.execute("SELECT id, v FROM t ORDER BY id").rows == want


def test_another_server_folds_a_file_this_one_is_folding(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another server folds (and removes) the log file this server rotated out for its own
    fold: this server drops its fragments, and its key lookups read the other server's fold
    and its own later rows, never a stale copy."""
    lake = str(tmp_path / "lake")
    db1, db2 = tarndb.open(lake), tarndb.open(lake)
    try:
        s1 = _setup(db1)
        db1._folding().stop()  # type: ignore[attr-defined]
        store = _store(db1, s1)
        for i in range(3):
            s1.execute("INSERT INTO t VALUES ($1, $2)", [i, f"v{i}"])
        folder, folded = _slow_fold(store, monkeypatch, 0.8)
        s2 = db2.session(workspace="ws")
        # db2 folds db1's rotated file, then changes a row of it in Lance.
        assert s2.execute("SELECT count(*) FROM t").rows == [(3,)]
        s2.execute("UPDATE t SET v = 'changed' WHERE id = 1")
        s2.execute("SELECT count(*) FROM t")  # db2's update folded into Lance
        folder.join(10)
        assert folded == [None]  # db1 dropped its own fragments
        s1.execute("INSERT INTO t VALUES (3, 'v3')")
        assert s1.execute("SELECT v FROM t WHERE id = 1").rows == [("changed",)]
        assert s1.execute("SELECT v FROM t WHERE id = 3").rows == [("v3",)]
        s1.execute("UPDATE t SET v = v || '!' WHERE id = 1")
        assert s2.execute("SELECT id, v FROM t ORDER BY id").rows == [
            (0, "v0"), (1, "changed!"), (2, "v2"), (3, "v3")]
    finally:
        db1.close()
        db2.close()


def _own_file_with_spare(wal: walmod.TableWal) -> None:
    """Let the background spare be made, then start a new file (which takes it)."""
    assert wal._spare is not None
    wal._spare.result(timeout=30)
    wal.rotate()


def test_log_files_are_preallocated_and_read_up_to_their_last_record(tmp_path: Path) -> None:
    """A new file is a spare of zeros made ahead of time; records overwrite the zeros, readers
    stop at them, and a torn record inside the zeros is ignored like one at the end of a file."""
    import numpy as np
    import pyarrow as pa

    wal = walmod.TableWal(str(tmp_path / "wal"))
    rows = [pa.table({"id": [i], "__rid": pa.array([i], pa.int64())}) for i in range(4)]
    wal.append(rows[0], 1)  # the first file is a plain one; a spare is made meanwhile
    _own_file_with_spare(wal)
    wal.append(rows[1], 1)
    wal.append(rows[2], 1, np.array([0], np.int64))
    name = wal.own_name
    assert name is not None
    path = tmp_path / "wal" / name
    assert path.stat().st_size == walmod.PREALLOCATE  # appended in place, not grown
    got = wal.read(name)
    assert got is not None
    assert [r.rows.column("id").to_pylist() for r in got.records] == [[1], [2]]
    assert got.records[1].removed.tolist() == [0]
    # A crash in the middle of the next append: its half is followed by zeros.
    torn = walmod.encode(rows[3])
    with open(path, "r+b") as f:
        f.seek(got.records[-1].end)
        f.write(torn[: len(torn) // 2])
    again = wal.read(name)
    assert again is not None and len(again.records) == 2
    # Spares are not log files, and closing the log removes the one made for it.
    assert all(n.endswith(".wal") for n in wal.files())
    wal.close()
    fut = walmod._spare_maker().submit(lambda: None)
    fut.result(timeout=30)  # the spare maker has finished what it was making
    assert not [n for n in os.listdir(tmp_path / "wal") if n.startswith(".spare-")]


def test_a_record_past_the_preallocated_end_extends_the_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa

    monkeypatch.setattr(walmod, "PREALLOCATE", 4096)
    wal = walmod.TableWal(str(tmp_path / "wal"))
    small = pa.table({"id": [1], "__rid": pa.array([1], pa.int64())})
    wal.append(small, 1)
    _own_file_with_spare(wal)
    big = pa.table({"id": list(range(2000)), "__rid": pa.array(range(2000), pa.int64())})
    wal.append(small, 1)
    name = wal.own_name
    assert name is not None
    assert (tmp_path / "wal" / name).stat().st_size == 4096
    wal.append(big, 1)
    wal.append(small, 1)
    assert (tmp_path / "wal" / name).stat().st_size > 4096
    got = wal.read(name)
    assert got is not None
    assert [r.rows.num_rows for r in got.records] == [1, 2000, 1]
    wal.close()


def test_a_read_that_starts_from_an_earlier_one_equals_a_full_read(tmp_path: Path) -> None:
    """What a fold decodes before taking the locks, then only the tail under them
    (TableStore._read_ahead): the same records, offsets and removals as one full read."""
    import numpy as np
    import pyarrow as pa

    wal = walmod.TableWal(str(tmp_path / "wal"))

    def row(i: int) -> pa.Table:
        return pa.table({"id": [i], "__rid": pa.array([i], pa.int64())})

    wal.append(row(1), 1)
    wal.append(row(2), 1)
    name = wal.own_name
    assert name is not None
    known = wal.read(name)
    wal.append(row(3), 1, np.array([1], np.int64))
    full, tail = wal.read(name), wal.read(name, known)
    assert full is not None and tail is not None
    assert [(r.end, r.rows.to_pylist(), r.removed.tolist()) for r in tail.records] == \
        [(r.end, r.rows.to_pylist(), r.removed.tolist()) for r in full.records]
    assert len(full.records) == 3
    wal.close()


def test_a_rotated_file_sorts_before_the_next_one(tmp_path: Path) -> None:
    """A fold applies the files in name order. A rotated file and the one opened after it
    have the same Lance version in their names (every commit in between was logged), so
    the rest of the name must order them too: the newer file's version of a row applied
    first, then the older one's, lost the newer (two servers lost an increment so)."""
    import pyarrow as pa

    wal = walmod.TableWal(str(tmp_path / "wal"), sync=False)
    opened = []
    for i in range(40):
        wal.append(pa.table({"id": [i], "__rid": pa.array([i], pa.int64())}), 7)
        opened.append(wal.own_name)
        wal.rotate()
    assert wal.files() == opened
    wal.close()


def test_files_follows_the_directory_appearing_and_going(tmp_path: Path) -> None:
    """files() looks for a missing log directory without listing it (every key lookup asks,
    and most tables never log a row), and still sees another server's file the moment the
    directory and the file appear, and nothing once they are gone again."""
    d = tmp_path / "wal"
    wal = walmod.TableWal(str(d))
    assert wal.files() == [] and wal.files() == []
    d.mkdir()
    assert wal.files() == []
    (d / "b-other.wal").write_bytes(b"")
    (d / "a-other.wal").write_bytes(b"")
    (d / "notes.tmp").write_bytes(b"")
    assert wal.files() == ["a-other.wal", "b-other.wal"]
    for f in d.iterdir():
        f.unlink()
    d.rmdir()
    assert wal.files() == []
    d.mkdir()
    (d / "c-other.wal").write_bytes(b"")
    assert wal.files() == ["c-other.wal"]


def test_asking_whether_the_files_are_alive_while_a_fold_rotates(tmp_path: Path) -> None:
    """Readers ask own_alive() / current_alive() without the table's locks while a fold
    rotates the current file: they must never meet its descriptor closed (an UPDATE failed
    with 'Bad file descriptor', an internal error) nor the rotated set changing under them."""
    import pyarrow as pa

    wal = walmod.TableWal(str(tmp_path / "wal"), sync=False)
    rows = pa.table({"id": pa.array([1], pa.int64()), "__rid": pa.array([1], pa.int64())})
    errors: list[BaseException] = []
    stop = threading.Event()

    def ask() -> None:
        try:
            while not stop.is_set():
                wal.own_alive()
                wal.current_alive()
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    readers = [threading.Thread(target=ask) for _ in range(2)]
    for t in readers:
        t.start()
    try:
        for i in range(600):
            wal.append(rows, i)
            name = wal.rotate()
            if name is not None and i % 2:
                wal.forget(name)
            if errors:
                break
    finally:
        stop.set()
        for t in readers:
            t.join()
        wal.close()
    assert not errors, errors[0]
