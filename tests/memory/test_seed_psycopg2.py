"""The seed's agent-memory section over psycopg2, with embed() in place of OpenRouter."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import tarndb

psycopg2 = pytest.importorskip("psycopg2")
pytest.importorskip("sentence_transformers", reason="needs tarndb[embeddings]")

TRAJ = Path(__file__).resolve().parents[3] / "shared" / "data" / "swe_agent_trajectories"
PASSWORD = "mem-pw"


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[Any]:
    if not (TRAJ / "manifest.jsonl").is_file():
        pytest.skip("shared/data/swe_agent_trajectories is not present")
    from tarndb.embeddings import install
    from tarndb.ingest import ingest_traces
    from tarndb.pgwire.server import ServerThread

    db = tarndb.open(str(tmp_path / "lake"))
    install(db)
    ingest_traces(db, TRAJ, table="swe_agent_trajectories2", workspace="public",
                  progress=False)
    srv = ServerThread(db, port=0, password=PASSWORD, data_dir=tmp_path).start()
    c = psycopg2.connect(host="127.0.0.1", port=srv.port, user="postgres", password=PASSWORD,
                         dbname="postgres", sslmode="require")
    yield c
    c.close()
    srv.stop()
    db.close()


def test_seed_memory_section(conn: Any) -> None:
    with conn.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS pg_deeplake")
        cur.execute('CREATE TABLE IF NOT EXISTS "swe_agent_memory_full" AS '
                    'SELECT * FROM "swe_agent_trajectories2" LIMIT 1000')
        cur.execute('ALTER TABLE "swe_agent_memory_full" '
                    "ADD COLUMN IF NOT EXISTS embedding FLOAT4[]")
        cur.execute('CREATE INDEX IF NOT EXISTS idx_memory_full_vec ON '
                    '"public"."swe_agent_memory_full" USING deeplake_index (embedding DESC)')
        cur.execute('CREATE INDEX IF NOT EXISTS idx_memory_full_bm25 ON '
                    '"public"."swe_agent_memory_full" USING deeplake_index (task) '
                    "WITH (index_type = 'bm25')")
        conn.commit()
        # The seed's "pull rows without embeddings, embed, UPDATE" loop, done by the database.
        cur.execute('UPDATE "swe_agent_memory_full" SET embedding = embed(task) '
                    "WHERE embedding IS NULL")
        assert cur.rowcount == 22
        conn.commit()
        cur.execute('SELECT count(*) FROM "swe_agent_memory_full" WHERE embedding IS NULL')
        assert cur.fetchone()[0] == 0

        cur.execute("""SELECT task, episode, model,
                              task <#> 'pydicom PixelRepresentation' AS bm25_score
                       FROM "swe_agent_memory_full" ORDER BY bm25_score ASC LIMIT 10""")
        rows = cur.fetchall()
        assert rows[0][1] == "pydicom__pydicom-1458"

        query_text = "TimeDelta serialization precision"
        cur.execute("SELECT embed(%s)::text", (query_text,))
        emb_str = "ARRAY" + cur.fetchone()[0].replace("{", "[").replace("}", "]") \
            + "::float4[]"
        cur.execute(f"""SELECT task, episode, model, embedding <#> {emb_str} AS similarity
                        FROM "swe_agent_memory_full" ORDER BY similarity ASC LIMIT 10""")
        vec_rows = cur.fetchall()
        assert vec_rows[0][1] == "marshmallow-code__marshmallow-1867"
        assert vec_rows[0][3] >= vec_rows[-1][3]  # best first even when ASC is written

        cur.execute(f"""SELECT task, episode, model,
                           (embedding, task) <#> deeplake_hybrid_record(
                               {emb_str}, '{query_text}', 0.5, 0.5) AS score
                        FROM "swe_agent_memory_full" WHERE embedding IS NOT NULL
                        ORDER BY score ASC LIMIT 10""")
        hyb = cur.fetchall()
        assert hyb[0][1] == "marshmallow-code__marshmallow-1867"

        cur.execute("""SELECT run_id, agent, model, task FROM "swe_agent_trajectories2"
                       WHERE run_id IS NOT NULL AND run_id <> '' LIMIT 10""")
        sample = cur.fetchall()
        assert len(sample) == 10
        run_id = sample[0][0]
        cur.execute("""SELECT agent, model, task, episode, conversations
                       FROM "swe_agent_trajectories2" WHERE run_id = %s LIMIT 1""", (run_id,))
        agent, _, _, episode, conversations = cur.fetchone()
        assert agent == "swe-agent"
        cur.execute('SELECT metadata FROM "swe_agent_trajectories2" WHERE run_id = %s',
                    (run_id,))
        meta = cur.fetchone()[0]
        source = json.loads((TRAJ / meta["source_file"]).read_text())
        assert conversations == source["history"]
