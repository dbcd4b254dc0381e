"""The seeds' code, cut out of ``../shared/seeds/*.txt`` at run time and run as written against a
real ``tarndb serve``: only the connection details (the seeds' environment variables), the
``deeplake`` import and, where a seed reads from a hub, local data differ. Between the cut
blocks the test does what the seed leaves to the reader (rows to search, an encoder ``ve``),
through the same clients. Skips when ``../shared/seeds`` is absent.
"""
from __future__ import annotations

import json
import os
import re
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

# pytest runs with --import-mode=importlib, which does not put test folders on sys.path; the
# seeds tests share their server and helpers through _seeds_support.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _seeds_support import (  # noqa: E402
    PASSWORD,
    TOKEN,
    WORKSPACE,
    Server,
    cut,
    deeplake_to_tarndb,
    needs_seeds,
    seed,
    server,
)

pytestmark = needs_seeds
__all__ = ["server"]  # the module-scoped fixture, one server per file


def test_001_minimal_file_upload(server: Server) -> None:
    pytest.importorskip("dotenv")
    code = cut(seed("001"), "import io\nimport os\nimport requests\nfrom PIL import Image\n"
                            "from dotenv import load_dotenv", 'print("file_id:", file_id)')
    out = server.run(code)
    m = re.fullmatch(r"file_id: ([0-9a-f-]{36})\n", out)
    assert m, out
    r = requests.get(f"{server.url}/workspaces/{WORKSPACE}/files/{m.group(1)}/content",
                     headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert r.status_code == 200 and r.content[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.filterwarnings("ignore:lance is not fork-safe")  # ffmpeg runs in a child
def test_001_video_chunks_index_retrieve_download(server: Server) -> None:
    """Seed 001's video section: its schema, its Postgres helpers, its upload helper, its
    index statements, its "Embed Videos With ColQwen3-Video" block (``import
    colqwen_video_encoder as ve``: the module the seed asks the reader for is
    ``tests/seeds_local/colqwen_video_encoder.py``, a stand-in whose texts are the default
    model's token vectors), its retrieval loop (MaxSim over ``FLOAT4[][]`` with that ``ve``)
    and its download loop, run as written. The rows come from the test, as the seed's ffmpeg
    step would make them: a real ``chunk.mp4`` (made with imageio-ffmpeg) uploaded per scene,
    with its scene caption's token vectors as the embedding, so retrieval has a meaning to
    check."""
    pytest.importorskip("dotenv")
    pytest.importorskip("psycopg2")
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    import numpy as np

    cwd = Path(server.env["SEED_CWD"])
    writer = imageio_ffmpeg.write_frames(str(cwd / "chunk.mp4"), (64, 48), fps=8)
    writer.send(None)
    for i in range(16):  # a 2 s clip: a bright square moving over a dark gradient
        frame = np.tile(np.linspace(0, 90, 64, dtype=np.uint8), (48, 1))[..., None].repeat(3, 2)
        frame[10:26, 3 * i:3 * i + 16] = (230, 60, 40)
        writer.send(frame.tobytes())
    writer.close()
    env = Server(server.url, server.pg_port, {**server.env, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(STANDINS), server.env.get("PYTHONPATH")]))})
    text = seed("001")
    blocks = [
        cut(text, 'table_name = "api_test_videos_colqwen_v2_pg"', "}\n"),
        cut(text, "import os\nfrom dotenv import load_dotenv\nfrom deeplake.db import connect",
            "        pg_conn.commit()"),
        cut(text, "import io\nimport os\nimport requests\nfrom typing import Optional\n\n"
                  "BASE_URL", "else None"),
    ]
    glue = textwrap.dedent('''
        # -- the test: the table and three chunks, as the seed's chunking step makes them
        import json
        from pathlib import Path
        from tarndb.embeddings import embed_multi
        create_table(get_connection(), table_name, schema)
        scenes = [("robot arm picking up a red cup from a table", "lab"),
                  ("a car driving on a highway at night", "road"),
                  ("a small drone flying through a warehouse", "warehouse")]
        with get_connection().get_connection() as pg_conn:
            with pg_conn.cursor() as cur:
                for i, (caption, scene) in enumerate(scenes):
                    fid = upload_video_file(Path("chunk.mp4").read_bytes(),
                                            f"chunk{i}.mp4")
                    assert fid, "upload failed"
                    emb = embed_multi([caption])[0].tolist()
                    cur.execute(
                        f'INSERT INTO "{WORKSPACE_ID}"."{table_name}" (video_id, scene_name, '
                        'chunk_index, start_s, end_s, colqwen_embedding, file_id, metadata) '
                        'VALUES (%s, %s, %s, %s, %s, %s, %s, %s)',
                        (f"vid{i}", scene, i, 20.0 * i, 20.0 * i + 20, emb, fid,
                         json.dumps({"caption": caption})))
            pg_conn.commit()
    ''')
    blocks += [glue,
               cut(text, "from pathlib import Path\nimport colqwen_video_encoder as ve",
                   "# nested lists"),
               'print("EMBED", emb.shape, emb.dtype, len(q), len(q[0]))',
               cut(text, "with get_connection().get_connection() as pg_conn:\n"
                         "    with pg_conn.cursor() as cur:\n        cur.execute(\n"
                         "            f'CREATE INDEX IF NOT EXISTS idx_video_vec",
                   "    pg_conn.commit()"),
               cut(text, "search_queries = [\n    \"robot arm picking up an object",
                   '            "score": score,\n        })'),
               cut(text, "from pathlib import Path\n\ntraining_dir = Path(",
                   "out.write_bytes(res.content)"),
               textwrap.dedent('''
                   print(json.dumps([[c["query"], c["video_id"], c["scene_name"]]
                                     for c in retrieved_chunks]))
                   print(sorted(p.name for p in training_dir.iterdir()))
               ''')]
    out = env.run(deeplake_to_tarndb("\n".join(blocks)).replace(
        'Path("/tmp/training_chunks")', f'Path({server.env["SEED_CWD"]!r}) / "chunks"'))
    # the seed's encoder block: a (tokens, dim) bag for the clip (4 frames x 16 patches) and
    # the query's token vectors as nested lists
    assert re.search(r"^EMBED \(64, 384\) float32 \d+ 384$", out, re.M), out

    first, files = out.strip().splitlines()[-2:]
    got = json.loads(first)
    assert len(got) == 15  # 5 queries x LIMIT 3
    top = {q: v for q, v, _ in got[::3]}
    assert top["robot arm picking up an object from a table"] == "vid0"
    assert top["drone footage of indoor warehouse navigation"] == "vid2"
    assert files.count(".mp4") == 3, files
    clip = (cwd / "chunk.mp4").read_bytes()
    assert all(p.read_bytes() == clip for p in (cwd / "chunks").iterdir())


DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "swe_agent_trajectories"
STANDINS = Path(__file__).resolve().parent / "seeds_local"  # the seeds' encoder modules


def _embedding_service() -> tuple[str, object]:
    """An OpenAI-compatible ``/api/v1/embeddings`` on loopback that answers with tarndb's
    default model (real embeddings): where the seed calls OpenRouter, it calls this host."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from tarndb.embeddings import embed

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            vecs = embed(list(body["input"]))
            out = json.dumps({"data": [{"index": i, "embedding": v.tolist()}
                                       for i, v in enumerate(vecs)]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{srv.server_address[1]}", srv


@dataclass
class AgentMemory:
    url: str  # the local OpenAI-compatible embeddings service
    rows: int  # trajectories in the trace table
    env: Server  # the seeds' environment with SHARED_DLPG_DATABASE = the workspace


@pytest.fixture(scope="module")
def agent_memory(server: Server) -> Iterator[AgentMemory]:
    """Seed 001's agent memory, set up as the seed does: its trace table schema and insert
    statement (rows from the local SWE-agent trajectories instead of the hub dataset), its
    memory-table SQL and index statements, then its Python block that embeds the tasks
    (OpenRouter's URL pointed at a local embedding service with the default model) and
    UPDATEs the rows."""
    pytest.importorskip("dotenv")
    pytest.importorskip("psycopg2")
    if not (DATA / "manifest.jsonl").is_file():
        pytest.skip("../shared/data/swe_agent_trajectories is absent")
    text = seed("001")
    env = {**server.env, "SHARED_DLPG_DATABASE": WORKSPACE, "OPENROUTER_API_KEY": "local"}
    url, srv = _embedding_service()
    # -- the trace table with the seed's schema and insert statement, filled from local files
    schema_src = cut(text, 'schema = {\n    "id": "BIGSERIAL PRIMARY KEY",\n    "agent": "TEXT",',
                     "}\n")
    insert_src = cut(text, "insert_query = (", ")\n")
    ns: dict[str, object] = {}
    exec(schema_src + "\n" + insert_src.replace('"{table_name}"', "\"swe_agent_trajectories2\""),
         ns)
    h = {"Authorization": f"Bearer {TOKEN}", "X-Activeloop-Org-Id": "default"}
    cols = ", ".join(f"{k} {v}" for k, v in ns["schema"].items())  # type: ignore[attr-defined]
    q = f"{server.url}/workspaces/{WORKSPACE}/tables/query"
    requests.post(q, headers=h, timeout=60, json={
        "query": f'CREATE TABLE IF NOT EXISTS "swe_agent_trajectories2" ({cols})'}
    ).raise_for_status()
    rows = []
    for line in (DATA / "manifest.jsonl").read_text().splitlines():
        m = json.loads(line)
        traj = json.loads((DATA / m["file"]).read_text())
        hist = traj.get("history", [])
        task = next((str(x.get("content")) for x in hist if x.get("role") == "user"), "")
        rows.append(["swe-agent", m.get("model") or "", "openai", "", task[:4000],
                     m["instance"], m["instance"], Path(m["file"]).parent.name,
                     json.dumps(hist)])
    r = requests.post(f"{q}/batch", headers=h, timeout=120,
                      json={"query": str(ns["insert_query"]), "params_batch": rows})
    assert r.status_code == 200, r.text
    # -- the memory table and its indexes, as the seed's SQL
    sql = [cut(text, 'CREATE TABLE IF NOT EXISTS "swe_agent_memory_full" AS', "LIMIT 1000;"),
           cut(text, 'ALTER TABLE "swe_agent_memory_full"', "embedding FLOAT4[];"),
           cut(text, "CREATE INDEX IF NOT EXISTS idx_memory_full_vec", "(embedding DESC);"),
           cut(text, "CREATE INDEX IF NOT EXISTS idx_memory_full_bm25", "'bm25');")]
    for stmt in sql:
        stmt = stmt.replace('"workspace".', f'"{WORKSPACE}".')
        r = requests.post(q, headers=h, timeout=120, json={"query": stmt.rstrip(";")})
        assert r.status_code == 200, (stmt, r.text)
    # -- the seed's embedding block: embeddings from the service, UPDATEd into the rows
    embed_src = cut(text, "import os\nimport requests\nimport psycopg2", "conn.close()",
                    after="Python implementation for embedding tasks")
    run_env = Server(server.url, server.pg_port, env)
    try:
        run_env.run(embed_src.replace(OPENROUTER, f"{url}/api/v1/embeddings"))
        yield AgentMemory(url, len(rows), run_env)
    finally:
        srv.shutdown()  # type: ignore[attr-defined]


OPENROUTER = "https://openrouter.ai/api/v1/embeddings"


def test_001_traces_memory_bm25_hybrid_replay(server: Server,
                                              agent_memory: AgentMemory) -> None:
    """Seed 001's agent section (set up by ``agent_memory``: trace table, memory table,
    indexes, the embedding block's UPDATE) and its Python blocks for BM25 search, hybrid
    search and replay, as written (psycopg2 with ``database=SHARED_DLPG_DATABASE`` = the
    workspace and unqualified table names), and its BM25, vector and hybrid SQL. OpenRouter's
    URL is the one thing changed: it points at a local embedding service with the default
    model."""
    text = seed("001")
    h = {"Authorization": f"Bearer {TOKEN}", "X-Activeloop-Org-Id": "default"}
    q = f"{server.url}/workspaces/{WORKSPACE}/tables/query"
    url, n = agent_memory.url, min(10, agent_memory.rows)
    left = requests.post(q, headers=h, timeout=60, json={
        "query": 'SELECT count(*) FROM "swe_agent_memory_full" WHERE embedding IS NULL'})
    assert left.json()["rows"] == [[0]], left.text
    py = "import os\nimport psycopg2\nfrom dotenv import load_dotenv"
    bm25_src = cut(text, py, "conn.close()", after="BM25 Search (Keyword Precision)")
    hybrid_src = cut(text, "import os\nimport requests\nimport psycopg2", "conn.close()",
                     after="Python implementation for Hybrid Search")
    replay_src = cut(text, py, "conn.close()", after="Deterministic Replay For Debugging")
    out = agent_memory.env.run(bm25_src)
    assert out.count("\n") == n, out
    out = agent_memory.env.run(hybrid_src.replace(OPENROUTER, f"{url}/api/v1/embeddings"))
    assert out.count("\n") == n, out
    _seed_search_sql(text, server, url, n)
    out = agent_memory.env.run(replay_src)
    assert "Sample run_id values:" in out and "Full trace:" in out, out
    assert out.split("Full trace:")[1].strip().startswith("('swe-agent',"), out


def _seed_search_sql(text: str, server: Server, url: str, n: int) -> None:
    """Seed 001's three search statements (BM25, vector, hybrid) over psycopg2 as its blocks
    connect, their ``ARRAY[...]`` filled with the query's embedding from the same service.
    The embeddings the seed's UPDATE wrote are the service's; the vector search's scores are
    the exact cosine ranking of them; every ranking comes best first (the seed writes ``ORDER
    BY ... ASC`` on a ``<#>`` similarity, which tarndb reads as best first, with a NOTICE)."""
    import numpy as np
    import psycopg2

    def service(texts: list[str]) -> np.ndarray:
        r = requests.post(f"{url}/api/v1/embeddings", timeout=60,
                          json={"model": "mistralai/codestral-embed-2505", "input": texts})
        r.raise_for_status()
        return np.array([d["embedding"] for d in r.json()["data"]], dtype=np.float64)

    query = "fix authentication bug"
    lit = "ARRAY[" + ",".join(map(str, service([query])[0].tolist())) + "]"
    stmts = {
        name: cut(text, start, "LIMIT 10;", after=after).replace("ARRAY[...]", lit)
        for name, start, after in (
            ("bm25", "SELECT task, episode, model,\n       task <#> 'fix authentication bug'",
             "BM25 Search (Keyword Precision)"),
            ("vector", "SELECT task, episode, model,\n       embedding <#> ARRAY[...]",
             "Vector Search (Semantic Similarity)"),
            ("hybrid", "SELECT task, episode, model,\n    (embedding, task) <#>",
             "Hybrid Search (Combined Signal)"))}
    assert not any("ARRAY[...]" in sql for sql in stmts.values()), stmts
    assert query in stmts["bm25"] and query in stmts["hybrid"], stmts
    conn = psycopg2.connect(host="127.0.0.1", port=server.pg_port, user="postgres",
                            password=PASSWORD, database=WORKSPACE, sslmode="require")
    try:
        got = {}
        with conn.cursor() as cur:
            for name, sql in stmts.items():
                cur.execute(sql)
                got[name] = cur.fetchall()
            cur.execute('SELECT task, embedding FROM "swe_agent_memory_full"')
            stored = cur.fetchall()
    finally:
        conn.close()
    for name, res in got.items():
        assert len(res) == n and all(len(r) == 4 for r in res), (name, res)
        scores = [r[3] for r in res]
        assert scores == sorted(scores, reverse=True), (name, scores)
    # the UPDATE wrote the service's vectors; vector search ranks them by exact cosine
    tasks = [t or "" for t, _ in stored]
    emb = np.array([e for _, e in stored], dtype=np.float64)
    want = service(tasks)
    cos = (emb * want).sum(1) / np.linalg.norm(emb, axis=1) / np.linalg.norm(want, axis=1)
    assert cos.min() > 0.9999, cos
    qv = service([query])[0]
    exact = emb @ qv / np.linalg.norm(emb, axis=1) / np.linalg.norm(qv)
    best = np.sort(exact)[::-1][:n]
    assert np.allclose([r[3] for r in got["vector"]], best, atol=1e-4), (got["vector"], best)
    by_task = {t: float(x) for t, x in zip(tasks, exact, strict=True)}
    assert all(abs(by_task[r[0]] - r[3]) < 1e-4 for r in got["vector"]), got["vector"]


def test_001_memory_agents(server: Server, agent_memory: AgentMemory) -> None:
    """Seed 001's "Multi-Agent Workflows (Memory-Backed Tools)": the seed describes, without
    code, three Pydantic AI agents that differ only in how their tools query the shared
    memory (Code Assistant: search before answering; Debugging Oracle: "error + description";
    Strategy Learner: patterns across similar tasks). Built here as described, each tool runs
    the seed's hybrid statement (its ``embed_query`` cut from the seed, pointed at the local
    service) over psycopg2. The one substitution: the OpenAI model becomes Pydantic AI's
    offline ``FunctionModel``, scripted to call the agent's tool with the user's words, then
    answer from the rows it got. Skips without ``pydantic_ai`` (the test extra has it)."""
    pydantic_ai = pytest.importorskip("pydantic_ai")
    import psycopg2
    from pydantic_ai.messages import (
        ModelMessage,
        ModelResponse,
        TextPart,
        ToolCallPart,
        ToolReturnPart,
        UserPromptPart,
    )
    from pydantic_ai.models.function import AgentInfo, FunctionModel

    text, url = seed("001"), agent_memory.url
    ns: dict[str, Any] = {"requests": requests, "OPENROUTER_API_KEY": "local",
                          "OPENROUTER_MODEL": "mistralai/codestral-embed-2505"}
    exec(cut(text, "def embed_query(text: str) -> list[float]:", '["embedding"]',
             after="Python implementation for Hybrid Search").replace(
        OPENROUTER, f"{url}/api/v1/embeddings"), ns)
    hybrid = cut(text, "SELECT task, episode, model,\n    (embedding, task) <#>", "LIMIT 10;",
                 after="Hybrid Search (Combined Signal)").rstrip(";")

    def memory(query: str) -> list[dict[str, Any]]:
        lit = "ARRAY[" + ",".join(map(str, ns["embed_query"](query))) + "]"
        sql = hybrid.replace("ARRAY[...]", lit).replace(
            "'fix authentication bug'", "'" + query.replace("'", "''") + "'")
        conn = psycopg2.connect(host="127.0.0.1", port=server.pg_port, user="postgres",
                                password=PASSWORD, database=WORKSPACE, sslmode="require")
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return [{"task": t[:200], "episode": e, "model": m, "score": s}
                        for t, e, m, s in cur.fetchall()]
        finally:
            conn.close()

    def scripted(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        returns = [p for p in messages[-1].parts if isinstance(p, ToolReturnPart)]
        if not returns:  # first turn: the agent's tool, with the user's words
            prompt = next(p.content for p in messages[0].parts if isinstance(p, UserPromptPart))
            tool = info.function_tools[0]
            return ModelResponse(parts=[ToolCallPart(tool.name, {
                k: prompt for k in tool.parameters_json_schema["properties"]})])
        got: Any = returns[0].content
        rows = got["rows"] if isinstance(got, dict) else got
        return ModelResponse(parts=[TextPart(
            f"{len(rows)} past runs; closest: {rows[0]['episode']} ({rows[0]['model']})")])

    model = FunctionModel(scripted)
    code = pydantic_ai.Agent(model, instructions="Search memory before answering.")
    oracle = pydantic_ai.Agent(model, instructions="Find past fixes for this error.")
    strategy = pydantic_ai.Agent(model, instructions="Summarise what worked on similar tasks.")

    @code.tool_plain
    def search_memory(query: str) -> list[dict[str, Any]]:
        """Hybrid (BM25 + vector) search over past agent runs."""
        return memory(query)

    @oracle.tool_plain
    def search_errors(error: str, description: str) -> list[dict[str, Any]]:
        """Past runs that hit this error, by error text plus description."""
        return memory(f"{error} {description}")

    @strategy.tool_plain
    def similar_tasks(task: str) -> dict[str, Any]:
        """Which models and episodes handled similar tasks."""
        rows = memory(task)
        return {"rows": rows, "models": sorted({r["model"] for r in rows})}

    for agent, prompt in ((code, "fix authentication bug"),
                          (oracle, "TypeError: unsupported operand"),
                          (strategy, "add a command line option")):
        result = agent.run_sync(prompt)
        calls = [p for m in result.all_messages() for p in m.parts
                 if isinstance(p, ToolReturnPart)]
        assert len(calls) == 1, result.all_messages()
        got: Any = calls[0].content
        rows = got["rows"] if isinstance(got, dict) else got
        # the tool queried tarndb: its rows are what the same statement returns directly
        direct = memory(prompt if agent is not oracle else f"{prompt} {prompt}")
        assert rows == direct and len(rows) == min(10, agent_memory.rows), (rows, direct)
        assert result.output == (f"{len(rows)} past runs; closest: {rows[0]['episode']} "
                                 f"({rows[0]['model']})"), result.output


def test_000_retrieval_to_training(server: Server) -> None:
    """Seed 000 as written: its setup (API_URL, TOKEN and WORKSPACE filled in), objectives,
    ``retrieve_training_set``, ``download_training_set``, the loop that puts them together,
    and the filtered query. What it leaves to the reader comes first: the ``video_chunks``
    table with file references and ``encode_text`` (the default model)."""
    text = seed("000")
    setup = cut(text, "import os\nimport requests\n\nAPI_URL", "    return res.json()")
    setup = setup.replace('"https://api.deeplake.ai"', repr(server.url)).replace(
        '"YOUR_TOKEN"', repr(TOKEN)).replace('"YOUR_WORKSPACE"', repr(WORKSPACE))
    glue = textwrap.dedent('''
        # -- the reader's part: a table of clips with embeddings, and an encoder
        from tarndb.embeddings import embed
        def encode_text(t):
            return embed([t])[0].tolist()
        query(f'CREATE TABLE "{WORKSPACE}"."{TABLE}" (id BIGSERIAL PRIMARY KEY, file_id UUID, '
              'metadata JSONB, embedding FLOAT4[], start_s FLOAT4)')
        clips = [("a robot arm picks small parts off a table", "cam1", 120.0),
                 ("a self-driving car in a narrow corridor", "cam2", 10.0),
                 ("a worker hands a wrench to a robot", "cam1", 50.0)]
        for i, (caption, cam, start) in enumerate(clips):
            up = {"file": (f"clip{i}.mp4", bytes(64), "video/mp4")}
            fid = requests.post(f"{API_URL}/workspaces/{WORKSPACE}/files",
                                headers=auth_headers, files=up).json()["id"]
            vec = "ARRAY[" + ",".join(map(str, encode_text(caption))) + "]::float4[]"
            r = query(f"INSERT INTO \\"{WORKSPACE}\\".\\"{TABLE}\\" (file_id, metadata, embedding, "
                      f"start_s) VALUES ('{fid}', '{{\\"camera\\": \\"{cam}\\"}}', {vec}, {start})")
            assert "error" not in r, r
    ''')
    body = [cut(text, "training_objectives = [", "]\n"),
            cut(text, "def retrieve_training_set(objective, top_k=20):",
                'return result.get("rows", [])'),
            cut(text, 'def download_training_set(rows, output_dir="/tmp/training_data"):',
                "    return paths"),
            cut(text, "for objective in training_objectives:",
                'print(f"Downloaded {len(paths)} files for training")'),
            "emb = encode_text(training_objectives[0])\n"
            'emb_literal = "ARRAY[" + ",".join(str(v) for v in emb) + "]::float4[]"',
            cut(text, 'result = query(f"""\n    SELECT id, file_id, metadata,', '""")'),
            'print("FILTERED", [r[0] for r in result["rows"]])']
    code = "\n".join([setup, glue, *body]).replace(
        '"/tmp/training_data"', repr(str(Path(server.env["SEED_CWD"]) / "training_data")))
    out = server.run(code)
    assert out.count("Downloaded 3 files for training") == 3, out
    assert "FILTERED [1]" in out, out  # cam1 and start_s > 100: the robot arm clip only
