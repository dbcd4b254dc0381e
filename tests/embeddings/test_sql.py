"""embed() and embed_multi() inside SQL statements, with the default model (int8 ONNX MiniLM,
in the default install)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

import tarndb
from tarndb.embeddings import embed_column, install

DOCS = [
    "A robot arm picks up a small screw from the table.",
    "A cat is sleeping on a sofa.",
    "The central bank raised interest rates again.",
    "An industrial gripper grasps tiny metal parts.",
    None,
]


def _setup(db: tarndb.Database) -> tarndb.Session:
    install(db)
    s = db.session(workspace="ws")
    s.execute('CREATE TABLE "ws"."docs" (id BIGSERIAL PRIMARY KEY, body TEXT, emb FLOAT4[], '
              'toks FLOAT4[][]) USING deeplake')
    s.insert_arrow("ws.docs", pa.table({"body": pa.array(DOCS, pa.string())}))
    return s


def test_embed_in_sql(db: tarndb.Database, default_model: Any, default_tokens: Any) -> None:
    s = _setup(db)
    res = s.execute("UPDATE \"ws\".\"docs\" SET emb = embed(body), toks = embed_multi(body)")
    assert res.rowcount == 5
    rows = s.execute('SELECT body, emb, toks FROM "ws"."docs" ORDER BY id').rows
    ref = default_model.embed(DOCS[:4])
    for (body, emb, toks), want in zip(rows[:4], ref, strict=True):
        np.testing.assert_allclose(emb, want, atol=1e-5)
        np.testing.assert_allclose(toks, default_tokens.encode_texts([body])[0], atol=1e-5)
    assert rows[4][1] is None and rows[4][2] is None  # NULL text, NULL embedding

    one = s.execute("SELECT embed('all-minilm-l6-v2-int8', 'hello world') AS a, "
                    "embed('hello world') AS b").rows[0]
    np.testing.assert_allclose(one[0], one[1])
    np.testing.assert_allclose(one[0], default_model.embed(["hello world"])[0], atol=1e-5)

    # Ranking with the query embedded in SQL, with and without an index.
    q = "robotic gripper grasping objects"
    qv = default_model.embed([q])[0]
    oracle = [DOCS[i] for i in np.argsort(-(ref @ qv))[:2]]
    sql = (f"SELECT body, emb <#> embed('{q}') AS score FROM \"ws\".\"docs\" "
           "WHERE emb IS NOT NULL ORDER BY score DESC LIMIT 2")
    assert [r[0] for r in s.execute(sql).rows] == oracle
    s.execute('CREATE INDEX idx_docs_emb ON "ws"."docs" USING deeplake_index (emb DESC)')
    got = s.execute(sql).rows
    assert [r[0] for r in got] == oracle
    assert abs(got[0][1] - float(ref[DOCS.index(oracle[0])] @ qv)) < 1e-4
    # MaxSim over token vectors puts the gripper sentence first as well.
    top = s.execute("SELECT body FROM \"ws\".\"docs\" WHERE toks IS NOT NULL "
                    "ORDER BY toks <#> embed_multi('gripper grasps metal parts') DESC "
                    "LIMIT 1").rows
    assert top[0][0] == DOCS[3]
    s.close()


def test_embed_column_for_generated_columns(db: tarndb.Database, default_model: Any) -> None:
    arr = embed_column(db, ["a cat", None, "a cat"], workspace="ws")
    assert arr.type == pa.list_(pa.float32())
    vals = arr.to_pylist()
    assert vals[1] is None
    np.testing.assert_allclose(vals[0], default_model.embed(["a cat"])[0], atol=1e-5)
    assert vals[0] == vals[2]
    multi = embed_column(db, ["a cat"], multi=True)
    assert multi.type == pa.list_(pa.list_(pa.float32()))


def test_generated_embedding_column(db: tarndb.Database, default_model: Any) -> None:
    """``emb FLOAT4[] GENERATED ALWAYS AS (embed(task)) STORED`` embeds on INSERT, bulk
    insert and UPDATE."""
    install(db)
    s = db.session(workspace="ws")
    s.execute('CREATE TABLE "ws"."tasks" (id BIGSERIAL PRIMARY KEY, task TEXT, '
              'emb FLOAT4[] GENERATED ALWAYS AS (embed(task)) STORED)')
    s.execute('INSERT INTO "ws"."tasks" (task) VALUES ($1), ($2), (NULL)',
              ["fix the login bug", "add a dark mode toggle"])
    s.insert_arrow("ws.tasks", pa.table({"task": ["robot arm picking up small objects"]}))
    s.execute("UPDATE \"ws\".\"tasks\" SET task = 'remove the dark mode toggle' WHERE id = 2")
    rows = s.execute('SELECT task, emb FROM "ws"."tasks" ORDER BY id').rows
    assert [r[0] for r in rows] == ["fix the login bug", "remove the dark mode toggle", None,
                                    "robot arm picking up small objects"]
    for task, emb in rows:
        if task is None:
            assert emb is None
        else:
            np.testing.assert_allclose(emb, default_model.embed([task])[0], atol=1e-5)
    top = s.execute("SELECT task FROM \"ws\".\"tasks\" WHERE emb IS NOT NULL ORDER BY "
                    "emb <#> embed('robot arm picking up small objects') DESC LIMIT 1").rows
    assert top == [("robot arm picking up small objects",)]
    s.close()
