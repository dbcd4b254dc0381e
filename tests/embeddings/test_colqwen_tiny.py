"""The ColQwen2 path on CPU with a tiny random checkpoint (see ``_tiny_colqwen``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tarndb

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _tiny_colqwen  # noqa: E402

transformers = pytest.importorskip("transformers", reason="needs tarndb[embeddings]")
if not hasattr(transformers, "ColQwen2ForRetrieval"):
    pytest.skip("this transformers has no ColQwen2", allow_module_level=True)


@pytest.fixture(scope="module")
def model_name(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = _tiny_colqwen.build(tmp_path_factory.mktemp("colqwen") / "tiny-colqwen2")
    return f"colqwen2:{path}"


def _image(path: Path, color: tuple[int, int, int], size: tuple[int, int]) -> Path:
    from PIL import Image

    Image.new("RGB", size, color).save(path)
    return path


def _maxsim(q: np.ndarray, d: np.ndarray) -> float:
    qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    dn = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
    return float((qn @ dn.T).max(axis=1).sum())


def test_texts_and_images_become_token_vectors(model_name: str, tmp_path: Path) -> None:
    from tarndb.embeddings import get_model

    m: Any = get_model(model_name)
    assert m.multi and m.supports_images
    texts = m.encode_texts(["robot arm picking up small objects", "a cat"])
    assert all(t.dtype == np.float32 and t.ndim == 2 and t.shape[1] == 16 for t in texts)
    assert all(np.isfinite(t).all() for t in texts)
    again = m.encode_texts(["robot arm picking up small objects"])
    np.testing.assert_allclose(again[0], texts[0], rtol=1e-5, atol=1e-6)
    imgs = m.encode_images([_image(tmp_path / "a.png", (200, 20, 20), (100, 80)),
                            _image(tmp_path / "b.png", (20, 20, 200), (60, 120))])
    assert [i.shape[1] for i in imgs] == [16, 16]
    # Image tokens follow the picture's size (patches), not a fixed count.
    assert imgs[0].shape[0] > 4 and imgs[1].shape[0] > 4


def test_ingest_images_and_rank_by_maxsim_in_sql(model_name: str, tmp_path: Path) -> None:
    from tarndb.embeddings import get_model
    from tarndb.ingest import ingest_images

    folder = tmp_path / "imgs"
    folder.mkdir()
    colors = [(220, 30, 30), (30, 220, 30), (30, 30, 220), (200, 200, 40)]
    for i, c in enumerate(colors):
        _image(folder / f"img{i}.png", c, (84 + 14 * i, 70))
    db = tarndb.open(str(tmp_path / "lake"))
    try:
        rep = ingest_images(db, folder, table="pics", workspace="ws", embed_model=model_name,
                            progress=False)
        assert rep.inserted == 4
        sql = ("SELECT path, embedding, embedding <#> embed_multi($1, $2) AS score "
               "FROM pics ORDER BY score DESC LIMIT 4")
        res = db.execute(sql, [model_name, "robot arm picking up small objects"],
                         workspace="ws")
        rows = res.rows
        assert len(rows) == 4
        q = get_model(model_name).encode_texts(["robot arm picking up small objects"])[0]
        expect = {p: _maxsim(q, np.asarray(e, np.float32)) for p, e, _ in rows}
        got = {p: s for p, _, s in rows}
        for p in expect:
            assert got[p] == pytest.approx(expect[p], rel=1e-4, abs=1e-4)
        scores = [s for _, _, s in rows]
        assert scores == sorted(scores, reverse=True)
    finally:
        db.close()
