"""Every SQL statement of the seed documents, with names filled in and small random
embeddings, run through the embedded engine and checked against numpy."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest

import tarndb

WS = "my_workspace"
rng = np.random.default_rng(7)


def fmt_2d(arr: np.ndarray) -> str:  # the seed's format_2d_array
    inner = ", ".join("ARRAY[" + ", ".join(str(v) for v in row) + "]" for row in arr.tolist())
    return f"ARRAY[{inner}]::float4[][]"


def fmt_1d(v: np.ndarray) -> str:
    return "ARRAY[" + ",".join(str(x) for x in v.tolist()) + "]::float4[]"


def maxsim(doc: np.ndarray, q: np.ndarray) -> float:
    d = doc / np.linalg.norm(doc, axis=1, keepdims=True)
    qq = q / np.linalg.norm(q, axis=1, keepdims=True)
    return float((qq @ d.T).max(axis=1).sum())


def test_coco_seed(db: tarndb.Database) -> None:
    s = db.session(workspace=WS)
    table = "coco_dataset_v3_pg"
    schema = {"id": "BIGSERIAL PRIMARY KEY", "image_id": "BIGINT", "width": "INT",
              "height": "INT", "bboxes": "JSONB", "category_ids": "JSONB", "file_id": "UUID",
              "metadata": "JSONB", "colqwen_embedding": "FLOAT4[][]"}
    cols = ", ".join(f"{k} {v}" for k, v in schema.items())
    s.execute(f'CREATE TABLE IF NOT EXISTS "{WS}"."{table}" ({cols}) USING deeplake')
    s.execute(f'CREATE TABLE IF NOT EXISTS "{WS}"."{table}" ({cols}) USING deeplake')
    embs, meta = [], []
    insert_sql = (
        f'INSERT INTO "{WS}"."{table}" '
        f"(image_id, width, height, bboxes, category_ids, colqwen_embedding, file_id, metadata) "
        f"VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, {{EMB}}, $6::uuid, $7::jsonb)")
    for i in range(12):
        emb = rng.standard_normal((int(rng.integers(3, 9)), 16)).astype(np.float32)
        embs.append(emb)
        w, h = (640, 480) if i % 2 else (320, 240)
        meta.append((i, w, h))
        s.execute(insert_sql.replace("{EMB}", fmt_2d(emb)),
                  [1000 + i, w, h, json.dumps([[1.0, 2.0, 3.0, 4.0]]), json.dumps([i % 3]),
                   str(uuid.uuid4()), json.dumps({"dataset": "coco", "original_id": 1000 + i})])
    assert s.execute(f'SELECT COUNT(*) FROM "{WS}"."{table}"').rows == [(12,)]
    s.execute(f'CREATE INDEX IF NOT EXISTS idx_coco_colqwen_vec ON "{WS}"."{table}" '
              "USING deeplake_index (colqwen_embedding DESC)")
    q = rng.standard_normal((4, 16)).astype(np.float32)
    q_emb = q.tolist()
    res = s.execute(f'''
        SELECT image_id, width, height, bboxes, category_ids,
               colqwen_embedding <#> ARRAY{q_emb}::float4[][] AS score
        FROM "{WS}"."{table}"
        ORDER BY score DESC
        LIMIT 10;
    ''')
    expected = sorted(((maxsim(e, q), 1000 + i) for i, e in enumerate(embs)), reverse=True)[:10]
    assert [r[0] for r in res.rows] == [e[1] for e in expected]
    np.testing.assert_allclose([r[-1] for r in res.rows], [e[0] for e in expected], rtol=1e-4)
    assert res.rows[0][3] == [[1.0, 2.0, 3.0, 4.0]]
    filtered = s.execute(f'''
        SELECT image_id, colqwen_embedding <#> {fmt_2d(q)} AS score
        FROM "{WS}"."{table}"
        WHERE width >= 640 AND height >= 480
        ORDER BY score DESC
        LIMIT 10''').rows
    exp = sorted(((maxsim(e, q), 1000 + i) for i, e in enumerate(embs) if i % 2),
                 reverse=True)
    assert [r[0] for r in filtered] == [e[1] for e in exp]


def test_video_and_training_seed(db: tarndb.Database) -> None:
    s = db.session(workspace=WS)
    table = "api_test_videos_colqwen_v2_pg"
    schema = {"id": "BIGSERIAL PRIMARY KEY", "video_id": "TEXT", "scene_name": "TEXT",
              "chunk_index": "INT", "start_s": "FLOAT4", "end_s": "FLOAT4",
              "colqwen_embedding": "FLOAT4[][]", "file_id": "UUID", "metadata": "JSONB"}
    cols = ", ".join(f"{k} {v}" for k, v in schema.items())
    s.execute(f'CREATE TABLE IF NOT EXISTS "{WS}"."{table}" ({cols}) USING deeplake')
    s.execute(f'CREATE INDEX IF NOT EXISTS idx_video_vec ON "{WS}"."{table}" '
              "USING deeplake_index (colqwen_embedding DESC)")
    s.execute(f'CREATE INDEX IF NOT EXISTS idx_video_scene ON "{WS}"."{table}" '
              "USING deeplake_index (scene_name) WITH (index_type = 'exact_text')")
    embs = []
    for i in range(8):
        emb = rng.standard_normal((5, 8)).astype(np.float32)
        embs.append(emb)
        s.execute(f'INSERT INTO "{WS}"."{table}" (video_id, scene_name, chunk_index, start_s, '
                  "end_s, colqwen_embedding, file_id, metadata) VALUES ($1, $2, $3, $4, $5, "
                  f"{fmt_2d(emb)}, $6::uuid, $7::jsonb)",
                  ["vid_0", "scene_1", i, 20.0 * i, 20.0 * i + 20, str(uuid.uuid4()),
                   json.dumps({"camera": "cam1" if i >= 3 else "cam2"})])
    q = rng.standard_normal((3, 8)).astype(np.float32)
    rows = s.execute(f"""
    SELECT video_id, scene_name, chunk_index, start_s, end_s, file_id,
           colqwen_embedding <#> ARRAY{q.tolist()}::float4[][] AS score
    FROM "{WS}"."{table}"
    ORDER BY score DESC
    LIMIT 3;
    """).rows
    exp = sorted(((maxsim(e, q), i) for i, e in enumerate(embs)), reverse=True)[:3]
    assert [r[2] for r in rows] == [i for _, i in exp]
    assert isinstance(rows[0][5], uuid.UUID)
    # seed 000: the training-set query with filters, single-vector form too
    filtered = s.execute(f"""
        SELECT id, file_id, metadata,
               colqwen_embedding <#> {fmt_2d(q)} AS score
        FROM "{WS}"."{table}"
        WHERE metadata->>'camera' = 'cam1'
          AND start_s > 100.0
        ORDER BY score DESC
        LIMIT 20
    """).rows
    assert {r[2]["camera"] for r in filtered} == {"cam1"}
    assert len(filtered) == sum(1 for i in range(8) if i >= 3 and 20.0 * i > 100.0) == 2
    s.execute(f'CREATE TABLE "{WS}"."video_chunks" (id BIGSERIAL PRIMARY KEY, file_id UUID, '
              "metadata JSONB, embedding FLOAT4[])")
    vecs = rng.standard_normal((10, 6)).astype(np.float32)
    for v in vecs:
        s.execute(f'INSERT INTO "{WS}"."video_chunks" (file_id, metadata, embedding) '
                  f"VALUES ($1, $2, {fmt_1d(v)})", [str(uuid.uuid4()), json.dumps({})])
    qv = rng.standard_normal(6).astype(np.float32)
    got = s.execute(f"""
        SELECT id, file_id, metadata,
               embedding <#> {fmt_1d(qv)} AS score
        FROM "{WS}"."video_chunks"
        ORDER BY score DESC
        LIMIT 5
    """).rows
    cos = vecs @ qv / (np.linalg.norm(vecs, axis=1) * np.linalg.norm(qv))
    assert [r[0] for r in got] == [int(i) + 1 for i in np.argsort(-cos)[:5]]


def test_agent_memory_seed(db: tarndb.Database) -> None:
    s = db.session(workspace="workspace")
    s.execute('CREATE TABLE IF NOT EXISTS "workspace"."swe_agent_trajectories2" ('
              "id BIGSERIAL PRIMARY KEY, agent TEXT, model TEXT, model_provider TEXT, date TEXT,"
              " task TEXT, episode TEXT, run_id TEXT, trial_name TEXT, conversations JSONB)"
              " USING deeplake")
    insert_query = (
        'INSERT INTO "swe_agent_trajectories2" '
        "(agent, model, model_provider, date, task, episode, run_id, trial_name, conversations) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)")
    tasks = ["fix authentication bug in login flow", "add pagination to the users endpoint",
             "authentication token expires too early", "refactor database connection pool",
             "fix typo in README"]
    for i, task in enumerate(tasks):
        s.execute(insert_query, ["swe-agent", "gpt-4", "openai", "2025-01-01", task, f"ep{i}",
                                 f"run-{i}", f"trial-{i}",
                                 json.dumps([{"role": "user", "content": task}])])
    s.execute('CREATE TABLE IF NOT EXISTS "swe_agent_memory_full" AS\n'
              'SELECT * FROM "swe_agent_trajectories2" LIMIT 1000;')
    s.execute('ALTER TABLE "swe_agent_memory_full"\nADD COLUMN IF NOT EXISTS embedding FLOAT4[];')
    s.execute("CREATE INDEX IF NOT EXISTS idx_memory_full_vec\n"
              'ON "workspace"."swe_agent_memory_full"\nUSING deeplake_index (embedding DESC);')
    s.execute("CREATE INDEX IF NOT EXISTS idx_memory_full_bm25\n"
              'ON "workspace"."swe_agent_memory_full"\n'
              "USING deeplake_index (task) WITH (index_type = 'bm25');")
    s.execute("CREATE EXTENSION IF NOT EXISTS pg_deeplake")
    rows = s.execute('SELECT id, task FROM "swe_agent_memory_full" WHERE embedding IS NULL '
                     "LIMIT 200").rows
    assert len(rows) == 5
    vecs = {}
    for _id, _task in rows:
        v = rng.standard_normal(8).astype(np.float32)
        vecs[_id] = v
        s.execute('UPDATE "swe_agent_memory_full" SET embedding = $1 WHERE id = $2',
                  [v.tolist(), _id])
    bm25 = s.execute("""
        SELECT task, episode, model,
               task <#> 'fix authentication bug' AS bm25_score
        FROM "swe_agent_memory_full"
        ORDER BY bm25_score ASC
        LIMIT 10
    """)
    assert bm25.rows[0][0] == "fix authentication bug in login flow"
    assert {r[0] for r in bm25.rows[1:3]} == {"authentication token expires too early",
                                              "fix typo in README"}
    assert bm25.notices  # ASC is treated as DESC, and the server says so
    scores = [r[3] for r in bm25.rows]
    # a BM25 ranking returns min(k, rows) rows, best first: the 3 that contain a query term,
    # then the others scoring 0 (issue 18: as without an index)
    n_rows = s.execute('SELECT count(*) FROM "swe_agent_memory_full"').rows[0][0]
    assert scores == sorted(scores, reverse=True) and len(scores) == min(10, n_rows)
    assert min(scores[:3]) > 0 and scores[3:] == [0.0] * (len(scores) - 3)
    q = rng.standard_normal(8).astype(np.float32)
    vec = s.execute(f"""
        SELECT task, episode, model,
               embedding <#> {fmt_1d(q)} AS similarity
        FROM "swe_agent_memory_full"
        ORDER BY similarity ASC
        LIMIT 10
    """).rows
    ids = list(vecs)
    cos = np.array([vecs[i] @ q / (np.linalg.norm(vecs[i]) * np.linalg.norm(q)) for i in ids])
    assert [r[1] for r in vec] == [f"ep{ids[i] - 1}" for i in np.argsort(-cos)]
    hybrid = s.execute(f"""
        SELECT task, episode, model,
               (embedding, task) <#> deeplake_hybrid_record(
                   {fmt_1d(q)},
                   'fix authentication bug',
                   0.5, 0.5
               ) AS score
        FROM "swe_agent_memory_full"
        WHERE embedding IS NOT NULL
        ORDER BY score ASC
        LIMIT 10
    """).rows
    assert len(hybrid) == 5
    hs = [r[3] for r in hybrid]
    assert hs == sorted(hs, reverse=True) and 0.0 <= min(hs) and max(hs) <= 1.0
    sample = s.execute("""
        SELECT run_id, agent, model, task
        FROM "swe_agent_trajectories2"
        WHERE run_id IS NOT NULL AND run_id <> ''
        LIMIT 10
    """).rows
    assert len(sample) == 5
    row = s.execute("""
            SELECT agent, model, task, episode, conversations
            FROM "swe_agent_trajectories2"
            WHERE run_id = $1
            LIMIT 1
            """, [sample[0][0]]).rows[0]
    assert row[4] == [{"role": "user", "content": row[2]}]


@pytest.mark.parametrize("fusion", ["minmax", "rrf", "softmax", "dbsf", "dbsf_adaptive",
                                    "dbsf_coverage"])
def test_hybrid_fusion_setting(db: tarndb.Database, fusion: str) -> None:
    s = db.session()
    s.execute("CREATE TABLE m (id INT, e FLOAT4[], t TEXT)")
    s.execute("INSERT INTO m VALUES (1, ARRAY[1,0], 'red apple'), (2, ARRAY[0,1], 'green pear'),"
              " (3, ARRAY[1,1], 'red pear')")
    s.execute(f"SET tarndb.hybrid_fusion = '{fusion}'")
    rows = s.execute("SELECT id, (e, t) <#> deeplake_hybrid_record(ARRAY[1,0]::float4[], "
                     "'red', 0.5, 0.5) AS s FROM m ORDER BY s DESC").rows
    assert rows[0][0] == 1 and rows[-1][0] == 2
