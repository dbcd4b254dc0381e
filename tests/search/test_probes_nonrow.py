"""Probe calibration for queries that are not rows, through a real server.

Rows in tight clusters (300 clusters of ~20 rows, 38 lists), queries midway between two
clusters: a row's neighbours share its list, so the rows-only calibration
(``tuning["groups"]["rows"]``) probes too few lists for such queries (recall ~0.8). The
midpoints of random row pairs (``between``) make the calibrated count hold for them. Queries
farther still from every row (mixtures of four cluster centres) are measured from the
workload itself, in the background, which sets the count they need.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest

from ._probes import D, K, N, connect, lit, served_tables


def _unit(a: np.ndarray) -> np.ndarray:
    return (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[int, Path, dict[str, tuple[np.ndarray, np.ndarray]]]]:
    tmp = tmp_path_factory.mktemp("nonrow")
    rng = np.random.default_rng(5)
    data = {}
    for name, count, noise in (("tight", 300, 0.05), ("loose", 150, 0.1)):
        centres = rng.standard_normal((count, D)).astype(np.float32)
        vecs = _unit(centres[rng.integers(0, count, N)]
                     + noise * rng.standard_normal((N, D)).astype(np.float32))
        data[name] = (vecs, centres)
    with served_tables(tmp, {name: vecs for name, (vecs, _) in data.items()}) as port:
        yield port, tmp / "lake", data


def _tuning(lake: Path, index: str) -> dict:
    (state,) = lake.rglob(f"_tarn_indexes/{index}/state.json")
    return dict(json.loads(state.read_text())["tuning"])


def _run(c: psycopg.Connection, table: str, vecs: np.ndarray, queries: np.ndarray
         ) -> tuple[float, int]:
    """(recall@10, lists probed as EXPLAIN says: those the ANN probes, or, when the count
    reads 30% of the rows or more, those the exact scan stands in for)."""
    recalls = []
    for q in queries:
        sql = f"SELECT id FROM {table} ORDER BY emb <#> {lit(q)} DESC LIMIT {K}"
        got = [r[0] for r in c.execute(sql).fetchall()]
        want = set(np.argsort(-(vecs @ q))[:K].tolist())
        recalls.append(len(want & set(got)) / K)
    plan = "\n".join(str(r[0]) for r in c.execute("EXPLAIN " + sql).fetchall())
    m = re.search(r"(\d+) probed", plan) or re.search(r"needs (\d+) of \d+ lists", plan)
    assert m, plan
    return float(np.mean(recalls)), int(m.group(1))


def _mixtures(centres: np.ndarray, parts: int, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return _unit(np.stack([centres[rng.integers(0, len(centres), count)]
                           for _ in range(parts)]).sum(axis=0))


#: The 0.95 target as 50 queries not used to calibrate can check it: their recall@10 (500
#: neighbours, which share lists) varies by about 0.01 from one sample or k-means run to
#: the next, so three of that to spare (CI once saw 0.938 and 0.94 on a busy machine).
SAMPLED_TARGET = 0.92


def test_queries_between_clusters_reach_the_target(
        server: tuple[int, Path, dict[str, tuple[np.ndarray, np.ndarray]]]) -> None:
    port, lake, data = server
    vecs, centres = data["tight"]
    queries = _mixtures(centres, 2, 50, seed=1)  # midway between two clusters: near no row
    tuned = _tuning(lake, "tight_emb")
    rows_only = int(tuned["groups"]["rows"]["10"])  # what calibrating on rows alone gives
    with connect(port) as c:
        recall, probed = _run(c, "tight", vecs, queries)
        assert recall >= SAMPLED_TARGET and probed == tuned["nprobes"] > rows_only, \
            (recall, tuned)
        c.execute(f"SET tarndb.probes = {rows_only}")
        old_recall, _ = _run(c, "tight", vecs, queries)
        assert old_recall < 0.95, (old_recall, tuned)


def test_the_workload_sets_the_probe_count(
        server: tuple[int, Path, dict[str, tuple[np.ndarray, np.ndarray]]]) -> None:
    port, lake, data = server
    vecs, centres = data["loose"]
    with connect(port) as c:
        # 100 queries farther from every row than the midpoints (mixtures of four centres);
        # the measurement starts at the 64th and runs in the background.
        _run(c, "loose", vecs, _mixtures(centres, 4, 100, seed=2))
        deadline = time.monotonic() + 20
        while "workload" not in _tuning(lake, "loose_emb").get("groups", {}):
            assert time.monotonic() < deadline, "no workload measurement"
            time.sleep(0.1)
        after = _tuning(lake, "loose_emb")
        groups = after["groups"]
        assert after["workload_queries"] >= 64
        # The measurement replaces the midpoints' guess, never going below the rows' count.
        assert after["nprobes"] == max(groups["rows"]["10"], groups["workload"]["10"]), after
        fresh = _mixtures(centres, 4, 50, seed=3)  # more queries like those
        recall, _ = _run(c, "loose", vecs, fresh)
        assert recall >= SAMPLED_TARGET, (recall, after)
        c.execute(f"SET tarndb.probes = {groups['rows']['10']}")
        rows_recall, _ = _run(c, "loose", vecs, fresh)
        assert rows_recall < 0.95, (rows_recall, after)
        assert rows_recall < recall, (rows_recall, recall, after)
