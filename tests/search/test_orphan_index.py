"""An index build interrupted half-way (kill -9, a full disk) leaves a directory without
``state.json``: the name must stay usable."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import tarndb


def test_create_index_over_the_leftovers_of_an_interrupted_build(tmp_path: Path) -> None:
    db = tarndb.open(str(tmp_path / "lake"))
    try:
        db.execute("CREATE TABLE docs (id INT PRIMARY KEY, emb FLOAT4[], body TEXT)")
        rng = np.random.default_rng(0)
        vecs = rng.standard_normal((50, 8)).astype(np.float32)
        s = db.session()
        for i in range(50):
            s.execute("INSERT INTO docs VALUES ($1, $2, $3)", [i, vecs[i].tolist(), f"doc {i}"])
        info = db.catalog.find_table("public", "docs")
        assert info is not None
        table_dir = tmp_path / "lake" / info.path
        for name in ("docs_emb_ix", "docs_body_ix"):
            orphan = table_dir / "_tarn_indexes" / name
            (orphan / "side.lance" / "data").mkdir(parents=True)
            (orphan / "side.lance" / "data" / "junk.lance").write_bytes(b"half written")
        db.execute("CREATE INDEX docs_emb_ix ON docs USING deeplake_index (emb)")
        db.execute("CREATE INDEX docs_body_ix ON docs USING deeplake_index (body) "
                   "WITH (index_type = 'bm25')")
        top = db.execute("SELECT id FROM docs ORDER BY emb <#> $1 LIMIT 1",
                         [vecs[7].tolist()]).rows
        assert top == [(7,)]
        hit = db.execute("SELECT id FROM docs ORDER BY body <#> 'doc 12' LIMIT 1").rows
        assert hit == [(12,)]
        assert not (table_dir / "_tarn_indexes" / "docs_emb_ix" / "side.lance" / "data" /
                    "junk.lance").exists()
    finally:
        db.close()
