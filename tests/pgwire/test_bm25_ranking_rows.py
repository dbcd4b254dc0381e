"""A BM25 ranking through psycopg returns min(k, rows) rows, with or without an index.

Issue 18: ``ORDER BY task <#> 'fix authentication bug' LIMIT 10`` on a 22-row table with a BM25
index returned the one matching row. SQL's answer does not depend on an index: rows without a
query term score 0 (rows whose text is NULL score NULL and sort last), and the score in the
select list is the BM25 score over the whole table, not over the k rows the search picked.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tarndb.sql.rewrite.similarity import bm25_text_scores

from .conftest import Server

psycopg = pytest.importorskip("psycopg")

TASKS = ["fix authentication bug in login", "write docs", "refactor parser",
         "add tests for auth", "update dependencies", "fix typo", "bug triage meeting"] + [
    f"chore number {i}" for i in range(15)]
QUERY = "fix authentication bug"


@pytest.fixture(scope="module")
def tables(pg_server: Server) -> Iterator[dict[str, str]]:
    """The same 22 rows (and 2 rows without text) twice: with a BM25 index and without."""
    names = {kind: f"tasks_{kind}_{uuid.uuid4().hex[:6]}" for kind in ("indexed", "plain")}
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        for kind, t in names.items():
            c.execute(f"CREATE TABLE {t} (id BIGINT PRIMARY KEY, task TEXT)")
            with c.cursor() as cur:
                cur.executemany(f"INSERT INTO {t} (id, task) VALUES (%s, %s)",
                                [(i + 1, s) for i, s in enumerate(TASKS)])
                cur.executemany(f"INSERT INTO {t} (id, task) VALUES (%s, NULL)",
                                [(100,), (101,)])
            if kind == "indexed":
                c.execute(f"CREATE INDEX {t}_bm25 ON {t} USING deeplake_index (task) "
                          "WITH (index_type = 'bm25')")
    yield names


def _exact() -> dict[str, float]:
    return bm25_text_scores([*TASKS, None, None], QUERY)


@pytest.mark.parametrize("kind", ["indexed", "plain"])
def test_limit_10_returns_10_rows_matching_first(pg_server: Server, tables: dict[str, str],
                                                 kind: str) -> None:
    t = tables[kind]
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        rows = c.execute(f"SELECT id, task, task <#> %s AS s FROM {t} "
                         "ORDER BY task <#> %s LIMIT 10", (QUERY, QUERY)).fetchall()
    assert len(rows) == 10
    exact = _exact()
    matching = sorted((s for s in exact.values() if s > 0), reverse=True)
    got = [r[2] for r in rows]
    assert got[:len(matching)] == pytest.approx(matching, rel=1e-5)
    assert got[len(matching):] == [0.0] * (10 - len(matching))
    for _, task, score in rows:  # each row's score is its own exact BM25 score
        assert score == pytest.approx(exact[task], rel=1e-5, abs=1e-9)
    assert [r[1] for r in rows][0] == "fix authentication bug in login"


@pytest.mark.parametrize("kind", ["indexed", "plain"])
def test_more_than_the_table_returns_every_row_nulls_last(
        pg_server: Server, tables: dict[str, str], kind: str) -> None:
    t = tables[kind]
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        rows = c.execute(f"SELECT id, task <#> %s AS s FROM {t} ORDER BY s DESC LIMIT 50",
                         (QUERY,)).fetchall()
    assert len(rows) == len(TASKS) + 2
    assert {r[0] for r in rows[-2:]} == {100, 101}
    assert [r[1] for r in rows[-2:]] == [None, None]
    assert all(r[1] is not None and r[1] >= 0 for r in rows[:-2])


@pytest.mark.parametrize("kind", ["indexed", "plain"])
def test_filtered_ranking_fills_from_allowed_rows_only(
        pg_server: Server, tables: dict[str, str], kind: str) -> None:
    t = tables[kind]
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        rows = c.execute(f"SELECT id FROM {t} WHERE id BETWEEN 2 AND 12 "
                         "ORDER BY task <#> %s LIMIT 10", (QUERY,)).fetchall()
        few = c.execute(f"SELECT id FROM {t} WHERE id IN (2, 3, 6) "
                        "ORDER BY task <#> %s LIMIT 10", (QUERY,)).fetchall()
    ids = [r[0] for r in rows]
    assert len(ids) == 10 and all(2 <= i <= 12 for i in ids)
    assert ids[:2] == [6, 7]
    assert sorted(r[0] for r in few) == [2, 3, 6] and few[0][0] == 6
