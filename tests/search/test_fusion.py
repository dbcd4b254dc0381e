from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from tarndb.errors import InvalidParameterValue
from tarndb.search import DEFAULT_FUSION, FUSION_METHODS, hybrid_fuse, leg_confidence
from tarndb.search._fusion import leg_coverage

VEC = ([1, 2, 3], [0.9, 0.7, 0.5])
TXT = ([3, 4], [12.0, 2.0])


def test_minmax() -> None:
    keys, scores = hybrid_fuse(VEC, TXT, 0.5, 0.5, "minmax")
    want = {1: 0.5 * 1.0, 2: 0.5 * 0.5, 3: 0.5 * 0.0 + 0.5 * 1.0, 4: 0.0}
    assert dict(zip(keys.tolist(), scores.tolist(), strict=True)) == pytest.approx(want)
    # Ties (1 and 3 both 0.5) go to the lower row key.
    assert keys.tolist() == [1, 3, 2, 4]


def test_rrf_weighted() -> None:
    keys, scores = hybrid_fuse(VEC, TXT, 0.7, 0.3, "rrf", k=2)
    want = {1: 0.7 / 61, 2: 0.7 / 62, 3: 0.7 / 63 + 0.3 / 61, 4: 0.3 / 62}
    best = sorted(want, key=lambda x: -want[x])[:2]
    assert keys.tolist() == best
    assert scores.tolist() == pytest.approx([want[b] for b in best])


def test_rrf_sorts_unsorted_legs() -> None:
    a = hybrid_fuse(([3, 1, 2], [0.5, 0.9, 0.7]), TXT, method="rrf")
    b = hybrid_fuse(VEC, TXT, method="rrf")
    assert a[0].tolist() == b[0].tolist()


def test_softmax() -> None:
    keys, scores = hybrid_fuse(VEC, TXT, 0.5, 0.5, "softmax")
    ev = np.exp(np.array(VEC[1]) - 0.9)
    ev /= ev.sum()
    et = np.exp(np.array(TXT[1]) - 12.0)
    et /= et.sum()
    want = {1: 0.5 * ev[0], 2: 0.5 * ev[1], 3: 0.5 * ev[2] + 0.5 * et[0], 4: 0.5 * et[1]}
    assert dict(zip(keys.tolist(), scores.tolist(), strict=True)) == pytest.approx(want)
    assert math.isclose(float(sum(scores)), 1.0)


def test_empty_leg_and_bad_method() -> None:
    keys, scores = hybrid_fuse(([], []), TXT, method="minmax")
    assert keys.tolist() == [3, 4] and scores.tolist() == [0.5, 0.0]
    with pytest.raises(InvalidParameterValue, match="rrf"):
        hybrid_fuse(VEC, TXT, method="borda")


# DBSF on VEC and TXT by hand. VEC: mean 0.7, std 0.2 * sqrt(2/3), so (s - mean) / (6 std)
# is +-sqrt(1.5) / 6 for 0.9 / 0.5. TXT: mean 7, std 5, so 12 -> 2/3 and 2 -> 1/3.
R = math.sqrt(1.5) / 6
V_NORM = {1: 0.5 + R, 2: 0.5, 3: 0.5 - R}
T_NORM = {3: 2 / 3, 4: 1 / 3}


def test_dbsf() -> None:
    keys, scores = hybrid_fuse(VEC, TXT, 0.5, 0.5, "dbsf")
    want = {1: 0.5 * V_NORM[1], 2: 0.5 * V_NORM[2], 3: 0.5 * V_NORM[3] + 0.5 * T_NORM[3],
            4: 0.5 * T_NORM[4]}
    assert dict(zip(keys.tolist(), scores.tolist(), strict=True)) == pytest.approx(want)
    assert keys.tolist() == [3, 1, 2, 4]


def test_dbsf_adaptive_weights() -> None:
    # Confidence (max - mean) / std: VEC (0.9 - 0.7) / (0.2 sqrt(2/3)) = sqrt(1.5), TXT 1.
    assert leg_confidence(VEC[1]) == pytest.approx(math.sqrt(1.5))
    assert leg_confidence(TXT[1]) == pytest.approx(1.0)
    wv = math.sqrt(1.5) / (math.sqrt(1.5) + 1)
    wt = 1 - wv
    keys, scores = hybrid_fuse(VEC, TXT, 0.5, 0.5, "dbsf_adaptive")
    want = {1: wv * V_NORM[1], 2: wv * V_NORM[2], 3: wv * V_NORM[3] + wt * T_NORM[3],
            4: wt * T_NORM[4]}
    assert dict(zip(keys.tolist(), scores.tolist(), strict=True)) == pytest.approx(want)
    # The user's weights still count: confidence scales them, and the sum is kept.
    keys, scores = hybrid_fuse(VEC, TXT, 0.2, 0.6, "dbsf_adaptive")
    cv, ct = 0.2 * math.sqrt(1.5), 0.6 * 1.0
    wv, wt = 0.8 * cv / (cv + ct), 0.8 * ct / (cv + ct)
    got = dict(zip(keys.tolist(), scores.tolist(), strict=True))
    assert got[3] == pytest.approx(wv * V_NORM[3] + wt * T_NORM[3])
    assert got[1] == pytest.approx(wv * V_NORM[1])


def test_dbsf_statistics_of_the_top_100_only() -> None:
    # Rows below a leg's best 100 do not move its scale: the 100 best keep their values.
    best = np.linspace(1.0, 0.5, 100)
    tail = np.full(400, -5.0)
    keys = np.arange(500)
    a = hybrid_fuse((keys[:100], best), ([], []), 1.0, 0.0, "dbsf")
    b = hybrid_fuse((keys, np.concatenate([best, tail])), ([], []), 1.0, 0.0, "dbsf")
    assert b[1][:100].tolist() == pytest.approx(a[1].tolist())
    assert leg_confidence(np.concatenate([best, tail])) == pytest.approx(leg_confidence(best))


def test_dbsf_single_hit_and_ties() -> None:
    # One hit (std 0) counts as the best, as in min-max, and as confidence 1.
    keys, scores = hybrid_fuse(([7], [0.3]), ([7, 8], [2.0, 2.0]), 0.5, 0.5, "dbsf")
    assert dict(zip(keys.tolist(), scores.tolist(), strict=True)) == pytest.approx(
        {7: 1.0, 8: 0.5})
    assert leg_confidence([0.3]) == 1.0 and leg_confidence([]) == 0.0


def test_dbsf_coverage_weights() -> None:
    # Both legs hand over the same three candidates (rescored). The text leg scored only
    # row 3 above 0 (rows 1 and 2 share no term with the query): coverage 1/3; the vector
    # leg scored all three: coverage 1.
    vec = ([1, 2, 3], [0.9, 0.7, 0.5])
    txt = ([1, 2, 3], [0.0, 0.0, 6.0])
    assert leg_coverage(vec[1], 3) == 1.0 and leg_coverage(txt[1], 3) == pytest.approx(1 / 3)
    assert leg_coverage([], 0) == 0.0
    # Text: mean 2, std 2 sqrt(2), confidence (6 - 2) / (2 sqrt(2)) = sqrt(2); DBSF maps
    # 0 -> (0 - 2 + 6 sqrt(2)) / (12 sqrt(2)) and 6 -> (6 - 2 + 6 sqrt(2)) / (12 sqrt(2)).
    sd = 2 * math.sqrt(2)
    t_norm = {1: (3 * sd - 2) / (6 * sd), 2: (3 * sd - 2) / (6 * sd), 3: (3 * sd + 4) / (6 * sd)}
    cv, ct = math.sqrt(1.5) * 1.0, math.sqrt(2) / 3
    wv, wt = cv / (cv + ct), ct / (cv + ct)
    keys, scores = hybrid_fuse(vec, txt, 0.5, 0.5, "dbsf_coverage")
    want = {k: wv * V_NORM[k] + wt * t_norm[k] for k in (1, 2, 3)}
    assert dict(zip(keys.tolist(), scores.tolist(), strict=True)) == pytest.approx(want)
    assert keys.tolist() == [1, 2, 3]
    # dbsf_adaptive gives the one-match text leg its full confidence: its match ties row 1
    _, adaptive = hybrid_fuse(vec, txt, 0.5, 0.5, "dbsf_adaptive")
    assert adaptive[0] == pytest.approx(adaptive[1]) and scores[0] - scores[1] > 0.1
    # a text leg that matches nothing has no say; a vector leg alone ranks as it is
    keys, _ = hybrid_fuse(vec, ([1, 2, 3], [0.0, 0.0, 0.0]), 0.5, 0.5, "dbsf_coverage")
    assert keys.tolist() == [1, 2, 3]
    # where every candidate is scored by both legs it is dbsf_adaptive
    full = ([1, 2, 3], [1.0, 2.0, 6.0])
    assert hybrid_fuse(vec, full, 0.3, 0.7, "dbsf_coverage")[1].tolist() == pytest.approx(
        hybrid_fuse(vec, full, 0.3, 0.7, "dbsf_adaptive")[1].tolist())


def test_default_is_dbsf_coverage() -> None:
    from tarndb.engine.session import DEFAULT_SETTINGS

    assert DEFAULT_FUSION == "dbsf_coverage"
    assert DEFAULT_SETTINGS["tarndb.hybrid_fusion"] == DEFAULT_FUSION


def test_quality_benchmark_runs_every_fusion_through_sql(tmp_path: Path) -> None:
    """benchmarks/search/quality.py on a tiny BEIR folder (random embeddings, no model)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks" / "search"))
    import quality

    words = ["apple", "pear", "plum", "fig", "kiwi", "lime", "date", "grape"]
    root = tmp_path / "set"
    (root / "qrels").mkdir(parents=True)
    docs = [f"{words[i % 8]} {words[(i * 3) % 8]} tree" for i in range(40)]
    (root / "corpus.jsonl").write_text("".join(
        json.dumps({"_id": f"d{i}", "title": "", "text": t}) + "\n" for i, t in enumerate(docs)))
    (root / "queries.jsonl").write_text("".join(
        json.dumps({"_id": str(q), "text": f"{words[q]} tree"}) + "\n" for q in range(8)))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        f"{q}\td{q}\t1\n" for q in range(8)))
    data = quality.load_beir(str(root))
    assert len(data.doc_ids) == 40 and data.query_ids == [str(q) for q in range(8)]
    rng = np.random.default_rng(0)
    doc_emb = rng.normal(size=(40, 8)).astype(np.float32)
    doc_emb /= np.linalg.norm(doc_emb, axis=1, keepdims=True)
    q_emb = doc_emb[:8] + 0.1 * rng.normal(size=(8, 8)).astype(np.float32)
    runs = quality.tarndb_runs(data, doc_emb, q_emb, str(tmp_path / "db"), 20)
    assert set(runs) == {"bm25", "dense", *FUSION_METHODS}
    sims = q_emb @ doc_emb.T
    for i, qid in enumerate(data.query_ids):
        # Dense through SQL is numpy's ranking.
        assert runs["dense"][qid] == [f"d{j}" for j in np.argsort(-sims[i], kind="stable")[:20]]
    ndcg, recall = quality.metrics(runs["dense"], data.qrels)
    assert 0.0 < ndcg <= 1.0 and recall == 1.0
    # Every query's own document is its nearest vector and matches its words: fused first.
    for m in FUSION_METHODS:
        assert all(runs[m][q][0] == f"d{q}" for q in data.query_ids), m
