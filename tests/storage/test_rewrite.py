"""Updates and deletes committed fragment by fragment (TableStore._rewrite): the rows that go
are deleted by Lance row id in the fragments that hold them, the new rows added as new
fragments, in one Lance Update; the table always equals a model of what was written."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import tarndb
from tarndb.storage import tables
from tarndb.storage.tables import TableStore


@pytest.fixture
def rewrites(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each commit or fold that removed rows went through the rewrite (True) or fell
    back to a merge (False). Both stage their files through ``_stage_rewrite`` (a fold
    commits them itself; a fold of inserts only stages an append, not counted)."""
    seen: list[bool] = []
    real = TableStore._stage_rewrite

    def counting(self: TableStore, ds: object, added: object, removed: set[int],
                 added_rids: set[int]) -> object:
        out = real(self, ds, added, removed, added_rids)  # type: ignore[arg-type]
        if removed or added_rids:
            seen.append(out is not None)
        return out

    monkeypatch.setattr(TableStore, "_stage_rewrite", counting)
    return seen


def _rows(s: tarndb.Session) -> dict[int, tuple[int, str]]:
    return {r[0]: (r[1], r[2]) for r in s.execute("SELECT id, n, t FROM r ORDER BY id").rows}


def test_updates_and_deletes_across_fragments_match_a_model(tmp_path: Path,
                                                            rewrites: list[bool]) -> None:
    db = tarndb.open(str(tmp_path / "lake"))
    s = db.session()
    s.execute("CREATE TABLE r (id BIGINT PRIMARY KEY, n INT, t TEXT)")
    model: dict[int, tuple[int, str]] = {}
    for start, size in ((0, 5000), (5000, 300), (5300, 7)):  # three fragments
        ids = np.arange(start, start + size)
        s.insert_arrow("r", pa.table({"id": pa.array(ids), "n": pa.array(np.zeros(size, np.int32)),
                                      "t": pa.array([f"t{i}" for i in ids])}))
        model.update({int(i): (0, f"t{i}") for i in ids})
    rng = random.Random(7)
    for step in range(60):
        i = rng.choice(sorted(model))
        s.execute("UPDATE r SET n = n + 1, t = $2 WHERE id = $1", [i, f"u{step}"])
        model[i] = (model[i][0] + 1, f"u{step}")
        if step % 6 == 0:
            j = rng.choice(sorted(model))
            assert s.execute("DELETE FROM r WHERE id = $1", [j]).rowcount == 1
            del model[j]
    # The smallest fragment goes entirely (a removed fragment, not a deletion file).
    assert s.execute("DELETE FROM r WHERE id >= 5300").rowcount == \
        sum(1 for k in model if k >= 5300)
    model = {k: v for k, v in model.items() if k < 5300}
    # One transaction that inserts, updates its own row and others, and deletes.
    s.execute("BEGIN")
    s.execute("INSERT INTO r VALUES (9000, 1, 'new'), (9001, 1, 'new')")
    s.execute("UPDATE r SET n = n + 10 WHERE id IN (9000, 1, 2, 5001)")
    s.execute("DELETE FROM r WHERE id IN (3, 9001)")
    s.execute("COMMIT")
    model[9000] = (11, "new")
    for k in (1, 2, 5001):
        if k in model:
            model[k] = (model[k][0] + 10, model[k][1])
    model.pop(3, None)
    assert _rows(s) == model
    assert rewrites and all(rewrites), [i for i, ok in enumerate(rewrites) if not ok]
    s.close()
    db.close()
    # A new process (no cached row maps) sees the same rows and goes on rewriting.
    db = tarndb.open(str(tmp_path / "lake"))
    s = db.session()
    assert _rows(s) == model
    s.execute("UPDATE r SET n = -1 WHERE id = 4999")
    assert s.execute("SELECT n FROM r WHERE id = 4999").rows == [(-1,)]
    assert all(rewrites)
    s.close()
    db.close()


def test_a_row_another_server_changed_is_not_deleted_twice(tmp_path: Path,
                                                           rewrites: list[bool]) -> None:
    """Two servers on one lake: each one's cached row map goes stale when the other
    rewrites; the deletion counts catch it and nothing is lost or duplicated."""
    a = tarndb.open(str(tmp_path / "lake"))
    sa = a.session()
    sa.execute("CREATE TABLE c (id INT PRIMARY KEY, n INT)")
    sa.insert_arrow("c", pa.table({"id": pa.array(np.arange(200, dtype=np.int32)),
                                   "n": pa.array(np.zeros(200, np.int32))}))
    b = tarndb.open(str(tmp_path / "lake"))
    sb = b.session()
    for k in range(30):
        (sa if k % 2 else sb).execute("UPDATE c SET n = n + 1 WHERE id = $1", [k % 5])
        (sb if k % 2 else sa).execute("UPDATE c SET n = n + 1 WHERE id = $1", [100 + k % 3])
    for s in (sa, sb):
        assert s.execute("SELECT count(*), sum(n) FROM c").rows == [(200, 60)]
        assert s.execute("SELECT id, n FROM c WHERE n > 0 ORDER BY id").rows == \
            [(0, 6), (1, 6), (2, 6), (3, 6), (4, 6), (100, 10), (101, 10), (102, 10)]
    assert any(rewrites)
    for s, d in ((sa, a), (sb, b)):
        s.close()
        d.close()


@pytest.mark.parametrize("logged", [False, True])
def test_big_changes_still_merge(tmp_path: Path, rewrites: list[bool],
                                 monkeypatch: pytest.MonkeyPatch, logged: bool) -> None:
    """Past REWRITE_MAX_ROWS a change merges on ``__rid``. ``logged``: both updates go to
    the write-ahead log, and its fold (51 rows removed) deletes and appends instead."""
    from tarndb.engine import commit

    monkeypatch.setattr(tables, "REWRITE_MAX_ROWS", 10)
    if not logged:
        monkeypatch.setattr(commit, "WAL_MAX_REMOVED", 10)
    db = tarndb.open(str(tmp_path / "lake"))
    s = db.session()
    s.execute("CREATE TABLE m (id INT PRIMARY KEY, n INT)")
    s.insert_arrow("m", pa.table({"id": pa.array(np.arange(100, dtype=np.int32)),
                                  "n": pa.array(np.zeros(100, np.int32))}))
    assert s.execute("UPDATE m SET n = 1 WHERE id < 50").rowcount == 50
    assert s.execute("UPDATE m SET n = 2 WHERE id = 99").rowcount == 1
    assert s.execute("SELECT n, count(*) FROM m GROUP BY n ORDER BY n").rows == \
        [(0, 49), (1, 50), (2, 1)]
    # Unlogged, the 50-row update merged without trying a rewrite, and the 1-row update
    # was logged and folded by a rewrite; logged, one fold removed 51 rows without one.
    assert rewrites == ([] if logged else [True])
    s.close()
    db.close()


def test_a_hot_row_moves_from_fragment_to_fragment(tmp_path: Path, rewrites: list[bool]) -> None:
    """Each update of one row writes it to a new fragment; the row map knows the new
    fragment's row ids from Lance's metadata (no read of it), and they are right."""
    from tarndb.storage import rowmap

    db = tarndb.open(str(tmp_path / "lake"))
    s = db.session()
    s.execute("CREATE TABLE h (id INT PRIMARY KEY, n INT)")
    s.execute("INSERT INTO h VALUES (1, 0), (2, 0)")
    for _ in range(25):
        s.execute("UPDATE h SET n = n + 1 WHERE id = 1")  # logged
        s.execute("SELECT count(*) FROM h")  # folds the update: a rewrite
    assert s.execute("SELECT id, n FROM h ORDER BY id").rows == [(1, 25), (2, 0)]
    assert len(rewrites) == 25 and all(rewrites)
    info = s.resolve_table(None, "h")
    assert info is not None
    ds = db.store(info).dataset()
    cached = rowmap.locate(ds, [0, 1, 2, 3], partial=True)
    assert cached is not None
    truth = ds.to_table(columns=["__rid"], with_row_id=True)
    want = dict(zip(truth["__rid"].to_pylist(), truth["_rowid"].to_pylist(), strict=True))
    got = {int(r): int(i) for rids, ids in cached.values() for r, i in zip(rids, ids, strict=True)}
    assert got == want
    s.close()
    db.close()
