"""The allowed rows of a filtered ranking are kept per table version, and only when nothing
but the table decides them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tarndb
from tarndb.engine.filtercache import FilterCache, cache_key
from tarndb.sql import ast

DIM = 8


def _where(sql: str):  # type: ignore[no-untyped-def]
    return ast.parse(f"SELECT 1 FROM t WHERE {sql}").stmts[0].stmt.select_stmt.where_clause


@pytest.mark.parametrize("clause", [
    "ts > now()", "ts > current_timestamp", "random() < 0.5", "a IN (SELECT a FROM u)",
    "b = current_user", "b = current_setting('x')",
])
def test_clauses_that_may_change_on_their_own_are_not_kept(clause: str) -> None:
    assert cache_key(_where(clause), "t", 1, [], {}) is None


def test_key_holds_only_the_parameters_the_clause_uses() -> None:
    w = _where("cat = $2 AND lower(b) = 'x'")
    vec = np.ones(DIM, np.float32)
    k1 = cache_key(w, "t", 1, [vec, "red"], {})
    assert k1 is not None
    assert k1 == cache_key(w, "t", 1, [vec * 2, "red"], {})  # a new query vector: same key
    assert k1 != cache_key(w, "t", 1, [vec, "blue"], {})
    assert k1 != cache_key(w, "t", 2, [vec, "red"], {})  # another version
    assert k1 != cache_key(w, "t", 1, [vec, "red"], {"timezone": "Asia/Tokyo"})


def test_cache_is_bounded_and_least_recently_used_goes_first() -> None:
    c = FilterCache(max_bytes=4 * 8 * 100, max_entries=3)
    for i in range(3):
        c.put(("k", i), np.arange(100, dtype=np.int64))
    assert c.get(("k", 0)) is not None  # 0 is now the most recent
    c.put(("k", 3), np.arange(100, dtype=np.int64))
    assert len(c) == 3 and c.get(("k", 1)) is None and c.get(("k", 0)) is not None
    c.put(("big",), np.arange(1000, dtype=np.int64))  # over a quarter of the budget: not kept
    assert c.get(("big",)) is None
    kept = c.get(("k", 0))
    assert kept is not None and not kept.flags.writeable


@pytest.fixture
def db(tmp_path: Path) -> tarndb.Database:
    d = tarndb.open(str(tmp_path))
    d.execute(f"CREATE TABLE items (id BIGINT PRIMARY KEY, cat TEXT, emb FLOAT4[{DIM}])")
    rng = np.random.default_rng(0)
    s = d.session()
    for i in range(200):
        s.execute("INSERT INTO items VALUES ($1, $2, $3)",
                  [i, "red" if i % 4 == 0 else "blue", rng.standard_normal(DIM).tolist()])
    return d


def _top(db: tarndb.Database, q: np.ndarray, cat: str) -> list[int]:
    r = db.execute("SELECT id FROM items WHERE cat = $2 ORDER BY emb <#> $1 LIMIT 5",
                   [q.tolist(), cat])
    return [row[0] for row in r.rows]


def _oracle(db: tarndb.Database, q: np.ndarray, cat: str) -> list[int]:
    rows = db.execute("SELECT id, emb FROM items WHERE cat = $1", [cat]).rows
    ids = np.array([r[0] for r in rows])
    m = np.array([r[1] for r in rows], np.float32)
    sims = m @ q / (np.linalg.norm(m, axis=1) * np.linalg.norm(q))
    return ids[np.argsort(-sims, kind="stable")[:5]].tolist()


def test_repeated_filter_is_answered_from_the_cache_and_stays_right(db: tarndb.Database
                                                                     ) -> None:
    cache = db.filter_cache
    rng = np.random.default_rng(1)
    q1, q2 = rng.standard_normal(DIM), rng.standard_normal(DIM)
    assert _top(db, q1, "red") == _oracle(db, q1, "red")
    hits = cache.hits
    assert _top(db, q2, "red") == _oracle(db, q2, "red")
    assert cache.hits == hits + 1
    # a write makes a new version: the new row is found, the deleted one is gone
    best = _oracle(db, q2, "red")[0]
    db.execute("DELETE FROM items WHERE id = $1", [best])
    db.execute("INSERT INTO items VALUES (1000, 'red', $1)", [(q2 * 3).tolist()])
    top = _top(db, q2, "red")
    assert top[0] == 1000 and best not in top
    assert top == _oracle(db, q2, "red")


def test_uncommitted_changes_are_never_cached(db: tarndb.Database) -> None:
    s = db.session()
    q = np.random.default_rng(2).standard_normal(DIM)
    s.execute("BEGIN")
    s.execute("INSERT INTO items VALUES (2000, 'red', $1)", [(q * 5).tolist()])
    n = len(db.filter_cache)
    r = s.execute("SELECT id FROM items WHERE cat = 'red' ORDER BY emb <#> $1 LIMIT 1",
                  [q.tolist()])
    assert r.rows == [(2000,)] and len(db.filter_cache) == n
    s.execute("ROLLBACK")
    assert 2000 not in _top(db, q, "red")
