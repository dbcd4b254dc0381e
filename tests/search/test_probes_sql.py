"""Calibrated vector indexes and the per-session probe override, through a real server.

A vector index calibrates its IVF probe count on its own rows for recall@10 >= 0.95 (EXPLAIN
says how many lists it probes); ``SET tarndb.probes`` overrides it per session, ``RESET``
goes back to the calibrated count, and a value that is no count is refused (22023). On
isotropic vectors, where the target needs most lists, the index answers by an exact scan.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import numpy as np
import psycopg
import pytest

from ._probes import D, K, N, connect, lit, served_tables


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    rng = np.random.default_rng(5)
    centers = rng.standard_normal((40, D)) * 3
    data = {
        "clustered": (centers[rng.integers(0, 40, N)] + rng.standard_normal((N, D))
                      ).astype(np.float32),
        "isotropic": rng.standard_normal((N, D)).astype(np.float32),
    }
    with served_tables(tmp_path_factory.mktemp("probes"), data) as port:
        yield port, data


def _run(c: psycopg.Connection, table: str, vecs: np.ndarray, queries: np.ndarray,
         ) -> tuple[float, str]:
    norm = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    recalls = []
    for q in queries:
        sql = f"SELECT id FROM {table} ORDER BY emb <#> {lit(q)} DESC LIMIT {K}"
        got = [r[0] for r in c.execute(sql).fetchall()]
        assert len(got) == K
        want = set(np.argsort(-(norm @ q))[:K].tolist())
        recalls.append(len(want & set(got)) / K)
    plan = "\n".join(str(r[0]) for r in c.execute("EXPLAIN " + sql).fetchall()
                     if "Top-" in str(r[0]))
    return float(np.mean(recalls)), plan


def test_calibrated_probes_and_session_override(server: tuple[int, dict[str, np.ndarray]],
                                                ) -> None:
    port, data = server
    vecs = data["clustered"]
    rng = np.random.default_rng(9)
    queries = (vecs[rng.integers(0, N, 20)] + rng.standard_normal((20, D))).astype(np.float32)
    with connect(port) as c:
        assert c.execute("SHOW tarndb.probes").fetchone() == ("auto",)
        recall, plan = _run(c, "clustered", vecs, queries)
        assert recall >= 0.95, (recall, plan)
        m = re.search(r"(\d+) lists, (\d+) probed \(calibrated\)", plan)
        assert m, plan
        lists, calibrated = int(m.group(1)), int(m.group(2))
        assert 1 <= calibrated < lists
        c.execute("SET tarndb.probes = 1")
        assert c.execute("SHOW tarndb.probes").fetchone() == ("1",)
        _, plan1 = _run(c, "clustered", vecs, queries)
        assert f"{lists} lists, 1 probed" in plan1 and "calibrated" not in plan1, plan1
        c.execute(f"SET tarndb.probes = {lists}")
        recall_all, plan_all = _run(c, "clustered", vecs, queries)
        assert recall_all == 1.0 and f"{lists} probed" in plan_all
        c.execute("RESET tarndb.probes")
        assert _run(c, "clustered", vecs, queries)[1] == plan
        for bad in ("'many'", "-3"):
            with pytest.raises(psycopg.errors.InvalidParameterValue, match="tarndb.probes"):
                c.execute(f"SET tarndb.probes = {bad}")
        # Another session keeps its own value.
        c.execute("SET tarndb.probes = 2")
        with connect(port) as other:
            assert other.execute("SHOW tarndb.probes").fetchone() == ("auto",)


def test_isotropic_vectors_are_answered_exactly(server: tuple[int, dict[str, np.ndarray]],
                                                ) -> None:
    port, data = server
    vecs = data["isotropic"]
    queries = np.random.default_rng(4).standard_normal((10, D)).astype(np.float32)
    with connect(port) as c:
        recall, plan = _run(c, "isotropic", vecs, queries)
        # Random directions have no neighbourhoods for IVF lists to capture: the target
        # needs most lists, so the index scans its in-memory copy instead (recall 1).
        assert recall == 1.0, plan
        assert "exact scan of all rows of index isotropic_emb (recall 0.95 needs" in plan, plan
        # The override takes the ANN path (Lance probes at least that many lists), on the
        # statement's path as in EXPLAIN's: the answers are no longer exact.
        c.execute("SET tarndb.probes = 3")
        recall3, plan3 = _run(c, "isotropic", vecs, queries)
        assert "ANN on isotropic_emb (clustered, " in plan3 and "3 probed" in plan3, plan3
        assert recall3 < 1.0, plan3


def test_bm25_without_index_on_a_large_table_names_the_index(
        server: tuple[int, dict[str, np.ndarray]], monkeypatch: pytest.MonkeyPatch) -> None:
    import tarndb.search._manager as manager_mod

    # 300 rows stand in for a table too large to tokenize per query (1M rows: minutes).
    monkeypatch.setattr(manager_mod, "ADHOC_BM25_MAX_ROWS", 100)
    port, _ = server
    words = ["alpha", "beta", "gamma", "delta", "lake", "vector", "search", "bug"]
    rng = np.random.default_rng(2)
    with connect(port) as c:
        c.execute("CREATE TABLE notes (id int8 PRIMARY KEY, body text)")
        values = ",".join(f"({i}, '{' '.join(rng.choice(words, 6))}')" for i in range(300))
        c.execute(f"INSERT INTO notes (id, body) VALUES {values}")
        sql = "SELECT id FROM notes ORDER BY body <#> 'lake search' DESC LIMIT 5"
        with pytest.raises(psycopg.errors.ProgramLimitExceeded) as err:
            c.execute(sql)
        assert "without an index" in str(err.value)
        hint = err.value.diag.message_hint or ""
        statement = hint.split(": ", 1)[1]
        assert statement.startswith('CREATE INDEX ON notes USING deeplake_index ("body")'), hint
        c.execute(statement)  # the hint is a statement that runs as given
        assert len(c.execute(sql).fetchall()) == 5


def test_pgvector_settings_set_the_probe_depth(server: tuple[int, dict[str, np.ndarray]],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """``SET hnsw.ef_search`` / ``SET ivfflat.probes`` move an index made ``USING hnsw`` /
    ``USING ivfflat`` along its recall/cost curve (more lists probed, more recall), each
    only on its own kind of index; ``tarndb.probes`` wins over both; pgvector's ranges.
    Isotropic vectors, where the probe count matters most (unset, the index scans exactly)."""
    import tarndb.search._manager as manager_mod

    monkeypatch.setattr(manager_mod, "MIN_ROWS_FOR_ANN", 2000)  # ANN at test scale
    port, data = server
    vecs = data["isotropic"]
    norm = vecs / np.linalg.norm(vecs, axis=1, keepdims=True)
    queries = np.random.default_rng(21).standard_normal((30, D)).astype(np.float32)

    def vec(v: np.ndarray) -> str:
        return "'[" + ",".join(f"{x:.6f}" for x in v.tolist()) + "]'"

    def run(c: psycopg.Connection, table: str) -> tuple[float, int, str]:
        """(recall@10, lists probed or -1 for an exact scan, plan)."""
        recalls = []
        for q in queries:
            sql = f"SELECT id FROM {table} ORDER BY emb <=> {vec(q)} LIMIT {K}"
            got = [r[0] for r in c.execute(sql).fetchall()]
            assert len(got) == K
            want = set(np.argsort(-(norm @ (q / np.linalg.norm(q))))[:K].tolist())
            recalls.append(len(want & set(got)) / K)
        plan = str(c.execute("EXPLAIN " + sql).fetchone()[0])  # type: ignore[index]
        m = re.search(r"(\d+) lists, (\d+) probed", plan)
        return float(np.mean(recalls)), int(m.group(2)) if m else -1, plan

    with connect(port) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS vector")
        for table, method in (("pgv_hnsw", "hnsw"), ("pgv_ivf", "ivfflat")):
            c.execute(f"CREATE TABLE {table} (id int8 PRIMARY KEY, emb vector({D}))")
            for start in range(0, N, 2000):
                values = ",".join(f"({i}, {vec(vecs[i])})" for i in range(start, start + 2000))
                c.execute(f"INSERT INTO {table} (id, emb) VALUES {values}")
            c.execute(f"CREATE INDEX {table}_emb ON {table} USING {method} "
                      "(emb vector_cosine_ops)")

        recall, probes, plan = run(c, "pgv_hnsw")
        assert probes == -1 and "exact scan of all rows" in plan and recall == 1.0, plan
        curve = []
        for ef in (1, 10, 1000):
            c.execute(f"SET hnsw.ef_search = {ef}")
            r, p, pl = run(c, "pgv_hnsw")
            assert f"(hnsw.ef_search = {ef})" in pl, pl
            curve.append((ef, p, r))
        print("hnsw.ef_search, lists probed, recall@10:", curve)
        (_, p1, r1), (_, p10, r10), (_, p1000, r1000) = curve
        lists = int(re.search(r"(\d+) lists", pl).group(1))  # type: ignore[union-attr]
        # ef_search 10 is the count calibrated for the top 10; 1000 probes every list.
        assert p1 < p10 < p1000 == lists, curve
        assert r1 < 0.6 < r10 <= r1000 == 1.0, curve
        # hnsw.ef_search is not an ivfflat index's knob, and tarndb.probes wins over it.
        assert "exact scan of all rows" in run(c, "pgv_ivf")[2]
        c.execute("SET tarndb.probes = 2")
        _, probes_2, plan_2 = run(c, "pgv_hnsw")
        assert probes_2 == 2 and "ef_search" not in plan_2, plan_2
        c.execute("RESET tarndb.probes")
        c.execute("RESET hnsw.ef_search")
        assert run(c, "pgv_hnsw")[2] == plan

        c.execute("SET ivfflat.probes = 1")
        recall_i1, probes_i1, plan_i1 = run(c, "pgv_ivf")
        assert probes_i1 == 1 and "(ivfflat.probes)" in plan_i1, plan_i1
        c.execute("SET ivfflat.probes = 32768")  # more than there are lists: all of them
        recall_all, probes_all, _ = run(c, "pgv_ivf")
        lists = int(re.search(r"(\d+) lists", plan_i1).group(1))  # type: ignore[union-attr]
        assert probes_all == lists and recall_all == 1.0 and recall_i1 < 0.5

        for name, bad, message in (("hnsw.ef_search", "0", "outside the valid range"),
                                   ("hnsw.ef_search", "1001", "outside the valid range"),
                                   ("ivfflat.probes", "'many'", "invalid value")):
            with pytest.raises(psycopg.errors.InvalidParameterValue, match=message):
                c.execute(f"SET {name} = {bad}")
