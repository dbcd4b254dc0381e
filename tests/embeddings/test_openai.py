"""The OpenAI-compatible client against a real HTTP server speaking that API."""

from __future__ import annotations

import numpy as np
import pytest

import tarndb
from tarndb.embeddings import (
    EmbeddingError,
    OpenAIEmbedder,
    default_model_name,
    embed_column,
    get_model,
    install,
    register_model,
    set_default_model,
)

from .openai_server import hashed_embedding, serve


def test_batches_order_and_auth() -> None:
    with serve(api_key="sk-1", dim=32) as (url, state):
        m = OpenAIEmbedder("remote", "text-embedding-3-small", base_url=url, api_key="sk-1",
                           batch_size=4)
        texts = [f"document number {i} about {w}" for i, w in
                 enumerate(["cats", "dogs", "cars", "boats", "planes", "trains", "bikes"])]
        out = m.embed(texts)
    assert out.shape == (7, 32) and out.dtype == np.float32
    # The server answers data[] reversed; the client must put rows back by "index".
    for row, text in zip(out, texts, strict=True):
        np.testing.assert_allclose(row, hashed_embedding(text, 32), rtol=1e-6)
    assert [len(r["body"]["input"]) for r in state.requests] == [4, 3]
    assert all(r["auth"] == "Bearer sk-1" for r in state.requests)
    assert state.requests[0]["body"]["model"] == "text-embedding-3-small"
    assert m.dim == 32


def test_retries_rate_limits_then_succeeds() -> None:
    with serve() as (url, state):
        state.fail_next = [429, 503]
        m = OpenAIEmbedder("r", "m", base_url=url, api_key="sk-test", backoff_s=0.01)
        out = m.embed(["hello there"])
    assert out.shape == (1, 64)
    assert len(state.requests) == 3


def test_client_errors_are_not_retried() -> None:
    with serve() as (url, state):
        state.fail_next = [400]
        m = OpenAIEmbedder("r", "m", base_url=url, api_key="sk-test", backoff_s=0.01)
        with pytest.raises(EmbeddingError, match="HTTP 400"):
            m.embed(["x"])
        assert len(state.requests) == 1
        bad = OpenAIEmbedder("r", "m", base_url=url, api_key="wrong", backoff_s=0.01)
        with pytest.raises(EmbeddingError, match="401"):
            bad.embed(["x"])


def test_gives_up_after_max_retries() -> None:
    with serve() as (url, state):
        state.fail_next = [503] * 10
        m = OpenAIEmbedder("r", "m", base_url=url, api_key="sk-test", max_retries=2,
                           backoff_s=0.01)
        with pytest.raises(EmbeddingError, match="503"):
            m.embed(["x"])
        assert len(state.requests) == 3


def test_registered_on_lake_and_used_from_sql(db: tarndb.Database, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    with serve(api_key="sk-lake", dim=48) as (url, state):
        monkeypatch.setenv("REMOTE_EMBED_KEY", "sk-lake")
        monkeypatch.delenv("TARNDB_EMBEDDING_MODEL", raising=False)
        register_model(db, "remote48", {"kind": "openai", "base_url": url, "model": "m48",
                                        "api_key_env": "REMOTE_EMBED_KEY"})
        install(db)
        res = db.execute("SELECT embed('remote48', 'robot arm picks a screw') AS v")
        v = np.asarray(res.rows[0][0], np.float32)
        np.testing.assert_allclose(v, hashed_embedding("robot arm picks a screw", 48), rtol=1e-6)
        assert res.columns[0].type.ndim == 1
        # A workspace's default model, then the lake-wide one, then MiniLM.
        set_default_model(db, "remote48", workspace="wsA")
        assert default_model_name(db, "wsA") == "remote48"
        assert default_model_name(db, "wsB") == "all-minilm-l6-v2-int8"
        assert len(embed_column(db, ["robot arm"], workspace="wsA").to_pylist()[0]) == 48
        set_default_model(db, "remote48")
        assert default_model_name(db, "wsB") == "remote48"
        res = db.execute("SELECT embed('robot arm') AS v", workspace="ws")
        assert len(res.rows[0][0]) == 48
        # A second session and a second lookup reuse the loaded client.
        assert get_model("remote48", db=db) is get_model("remote48", db=db)
        # One request per DuckDB batch, not per row.
        s = db.session(workspace="ws")
        s.execute('CREATE TABLE "ws"."docs" (id BIGSERIAL PRIMARY KEY, body TEXT, '
                  'emb FLOAT4[])')
        s.insert_arrow("ws.docs", __import__("pyarrow").table(
            {"body": [f"text {i} about topic {i % 7}" for i in range(300)]}))
        before = len(state.requests)
        s.execute("UPDATE \"ws\".\"docs\" SET emb = embed('remote48', body)")
        assert 1 <= len(state.requests) - before <= 5
        got = s.execute('SELECT body, emb FROM "ws"."docs" WHERE id = 7').rows[0]
        np.testing.assert_allclose(got[1], hashed_embedding(got[0], 48), rtol=1e-6)
        s.close()
