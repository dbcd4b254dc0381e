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
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "seeds"
pytestmark = pytest.mark.skipif(not SEEDS.is_dir(), reason="../shared/seeds is absent")

TOKEN = "tdb_seed_verbatim_test_token_0123456789"
PASSWORD = "pw-seeds"
WORKSPACE = "seedws"


def seed(prefix: str) -> str:
    return next(SEEDS.glob(f"{prefix}_*.txt")).read_text(encoding="utf-8")


def cut(text: str, start: str, end: str, after: str = "") -> str:
    """The seed's text from ``start`` to the end of ``end`` (the first of each past
    ``after``)."""
    i = text.index(start, text.index(after) if after else 0)
    j = text.index(end, i) + len(end)
    return text[i:j]


def doctest_code(text: str, first: str) -> str:
    """The Python of one ``>>>`` statement of the seed (with its ``...`` lines)."""
    lines = text[text.index(first):].splitlines()
    out = [lines[0][4:]]
    for line in lines[1:]:
        if not line.startswith("..."):
            break
        out.append(line[4:] if line.startswith("... ") else line[3:])
    return "\n".join(out)


def deeplake_to_tarndb(code: str) -> str:
    """The one import the seeds' README allows to change."""
    return code.replace("from deeplake.db import", "from tarndb.db import").replace(
        "from deeplake import VectorStore", "from tarndb import VectorStore")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    pg_port: int
    env: dict[str, str]

    def run(self, code: str, timeout: float = 120) -> str:
        """Run code in a fresh interpreter with the seeds' environment; its stdout."""
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=timeout, env=self.env, cwd=self.env["SEED_CWD"])
        assert out.returncode == 0, f"{out.stdout}\n{out.stderr}\n--- code ---\n{code}"
        return out.stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("seeds")
    lake = root / "lake"
    http_port, pg_port = _free_port(), _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TARNDB_TOKEN": TOKEN,
           "TARNDB_PASSWORD": PASSWORD, "TARNDB_DEMO": "false"}
    env.pop("LANCE_LOG", None)
    log = root / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tarndb", "serve", "--data", str(lake), "--http-port",
             str(http_port), "--pg-port", str(pg_port), "--log-level", "warning"],
            env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 90
        while True:  # the HTTP API answers, and the Postgres port listens
            assert proc.poll() is None, log.read_text()
            try:
                if requests.get(f"{url}/health", timeout=1).status_code == 200:
                    socket.create_connection(("127.0.0.1", pg_port), timeout=1).close()
                    break
            except (requests.ConnectionError, OSError):
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        # What docs/from-deeplake-pg.md says to set each of the seeds' variables to.
        seed_env = {**env, "BASE_URL": url, "TEST_PG_MANAGED_TOKEN": TOKEN,
                    "ACTIVELOOP_ORG_ID": "default", "ACTIVELOOP_WORKSPACE_ID": WORKSPACE,
                    "SHARED_DLPG_HOST": "127.0.0.1", "SHARED_DLPG_PORT": str(pg_port),
                    "SHARED_DLPG_USER": "postgres", "SHARED_DLPG_PASSWORD": PASSWORD,
                    "SEED_CWD": str(root)}
        yield Server(url, pg_port, seed_env)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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


def test_001_video_chunks_index_retrieve_download(server: Server) -> None:
    """Seed 001's video section: its schema, its Postgres helpers, its upload helper, its
    index statements, its retrieval loop (MaxSim over ``FLOAT4[][]`` with the encoder ``ve``
    the seed leaves to the reader: here the default model's token vectors) and its download
    loop, run as written. The rows (chunks) come from the test, as the seed's ffmpeg step
    would make them."""
    pytest.importorskip("dotenv")
    pytest.importorskip("psycopg2")
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
        import numpy as np
        from tarndb.embeddings import embed_multi
        create_table(get_connection(), table_name, schema)
        scenes = [("robot arm picking up a red cup from a table", "lab"),
                  ("a car driving on a highway at night", "road"),
                  ("a small drone flying through a warehouse", "warehouse")]
        with get_connection().get_connection() as pg_conn:
            with pg_conn.cursor() as cur:
                for i, (caption, scene) in enumerate(scenes):
                    fid = upload_video_file(b"\\x00\\x00\\x00\\x18ftypmp42" + bytes(64),
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

        class _Encoder:  # the seed's ColQwen encoder; here the default model's token vectors
            def encode_texts(self, texts):
                return [np.asarray(m) for m in embed_multi(texts)]
        ve = _Encoder()
    ''')
    blocks += [glue,
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
    out = server.run(deeplake_to_tarndb("\n".join(blocks)).replace(
        'Path("/tmp/training_chunks")', f'Path({server.env["SEED_CWD"]!r}) / "chunks"'))
    import json

    first, files = out.strip().splitlines()[-2:]
    got = json.loads(first)
    assert len(got) == 15  # 5 queries x LIMIT 3
    top = {q: v for q, v, _ in got[::3]}
    assert top["robot arm picking up an object from a table"] == "vid0"
    assert top["drone footage of indoor warehouse navigation"] == "vid2"
    assert files.count(".mp4") == 3, files


def test_002_deep_memory(server: Server) -> None:
    """Seed 002's doctest lines as written, with what it leaves to the reader (``token``,
    ``embedding_function``, ``corpus``, ``queries``) given first and its placeholders
    ``{$ORG_ID}``/``{$DATASET_ID}`` filled in. The seed writes keyword arguments with type
    annotations (``corpus: List[...] = corpus``), which Python does not parse: those are read
    as ``corpus = corpus``."""
    pytest.importorskip("torch", reason="training an adapter needs tarndb[embeddings]")
    text = seed("002")
    statements = [doctest_code(text, s) for s in (
        ">>> from deeplake import VectorStore", ">>> db = VectorStore(",
        ">>> job_id = db.deep_memory.train(", ">>> db.deep_memory.status(job_id)",
        ">>> db.deep_memory.list_jobs()", ">>> recalls = db.deep_memory.evaluate(",
        ">>> results = db.search(")]
    code = "\n".join(statements)
    code = re.sub(r"^(\s+)(\w+): [\w\[\], ]+ = ", r"\1\2 = ", code, flags=re.M)
    code = code.replace("{$ORG_ID}", "default").replace("{$DATASET_ID}", "seed002_docs")
    setup = textwrap.dedent(f'''
        import json, os, time
        os.environ["TARNDB_API_URL"] = {server.url!r}
        import tarndb
        token = {TOKEN!r}
        def embedding_function(texts):  # the reader's own function, run in this process
            return tarndb.embeddings.embed(texts)
        words = ["robot", "cake", "bank", "football", "plants", "gripper", "ocean", "music"]
        texts = [f"note {{i}} about {{words[i % 8]}} number {{i}}" for i in range(48)]
        queries = [f"what about {{words[i % 8]}} {{i}}" for i in range(48)]
        corpus = [[(f"doc-{{i}}", 1.0)] for i in range(48)]
        store = tarndb.VectorStore(path="hub://default/seed002_docs", token=token,
                                   embedding_function="minilm")
        store.add(text=texts, id=[f"doc-{{i}}" for i in range(48)])
        store.close()
    ''')
    # the seed's "after some time": wait for the job between status() and evaluate()
    wait = "db.deep_memory.wait(job_id, timeout=240)\n"
    code = code.replace("db.deep_memory.list_jobs()", wait + "db.deep_memory.list_jobs()")
    check = textwrap.dedent('''
        print("JOB", job_id)
        print("RECALLS", sorted(recalls))
        print("WITH", json.dumps(recalls["with_model"]))  # the keys as the seed spells them
        print("WITHOUT", json.dumps(recalls["without_model"]))
        print("RESULTS", [r["id"][:4] for r in results][:3])
    ''')
    out = server.run(deeplake_to_tarndb(setup + code + check), timeout=300)
    job_id = re.search(r"JOB ([0-9a-f]{24})", out)
    assert job_id, out
    job = job_id.group(1)
    # status(): the seed's box, 62 wide; pending (as here, right after train()) exactly as shown
    box = out[:out.index("\nID ")].splitlines()
    assert all(len(line) == 62 for line in box), box
    seed_box = _seed_boxes(text)
    if box[3].startswith("| status                     | pending"):
        assert box == [line.replace("6508464cd80cab681bfcfff3", job) for line in seed_box[0]]
    else:  # training already: the seed's second box's rows, its id, status, progress, results
        assert box[:3] == [line.replace("6508464cd80cab681bfcfff3", job)
                           for line in seed_box[1][:3]], box
        assert [line[:30] for line in box if line[2:3].strip()] == [
            line[:30] for line in seed_box[1] if line[2:3].strip()], box
    # list_jobs(): the seed's columns (ID 28, STATUS 11, RESULTS 29, PROGRESS)
    jobs = out[out.index("\nID ") + 1:].splitlines()
    head = next(line for line in text.splitlines() if line.startswith("ID  "))
    assert jobs[0] == head.rstrip(), (jobs[0], head)
    assert re.fullmatch(rf"{job}    completed  recall@10: \d+\.\d\d% \([+-]\d+\.\d\d%\) *"
                        r"eta: \d+\.\d seconds", jobs[1]), jobs
    assert jobs[1].index("eta:") == head.index("PROGRESS"), jobs
    assert re.fullmatch(r" {68}recall@10: \d+\.\d\d% \([+-]\d+\.\d\d%\)", jobs[2]), jobs
    # evaluate(): with_model / without_model, recall metrics for different k values
    assert re.search(r"^RECALLS \[.*'with model', 'without model'\]$", out, re.M), out
    for key in ("WITH", "WITHOUT"):
        got = json.loads(re.search(rf"^{key} (.*)$", out, re.M).group(1))  # type: ignore[union-attr]
        assert sorted(got, key=lambda k: int(k.split("@")[1])) == [
            "recall@1", "recall@3", "recall@5", "recall@10", "recall@50", "recall@100"], got
        assert all(0.0 <= v <= 1.0 for v in got.values()), got
    res = re.search(r"^RESULTS (\[\[.*)$", out, re.M)
    assert res and res.group(1).startswith("[['doc-0'"), out


def _seed_boxes(text: str) -> list[list[str]]:
    """The status boxes seed 002 shows (pending, then training), line by line."""
    boxes: list[list[str]] = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line == ">>> db.deep_memory.status(job_id)":
            box = []
            for b in lines[i + 1:]:
                if not b.startswith(("-", "|")):
                    break
                box.append(b)
            boxes.append(box)
    return boxes


def test_002_status_box_training_as_seed() -> None:
    """The training box seed 002 shows, character for character, from a job record with the
    seed's figures (ETA 2.5 s, held-out recall@10 0.62%, up 0.62 from 0): the layout
    ``status()`` prints while a job trains (a fast job on a real server can finish before a
    test sees it training; the pending box is checked through the server above)."""
    from tarndb.deepmemory import format_status

    job = {"id": "6508464cd80cab681bfcfff3", "status": "training",
           "progress": {"eta_s": 2.5, "recall@10": 0.0062, "baseline_recall@10": 0.0}}
    assert format_status(job).splitlines() == _seed_boxes(seed("002"))[1]
    pending = {"id": "6508464cd80cab681bfcfff3", "status": "pending", "progress": None}
    assert format_status(pending).splitlines() == _seed_boxes(seed("002"))[0]


DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "swe_agent_trajectories"


def _embedding_service() -> tuple[str, object]:
    """An OpenAI-compatible ``/api/v1/embeddings`` on loopback that answers with tarndb's
    default model (real embeddings): where the seed calls OpenRouter, it calls this host."""
    import json
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


def test_001_traces_memory_bm25_hybrid_replay(server: Server) -> None:
    """Seed 001's agent section: its trace table schema and insert statement (rows from the
    local SWE-agent trajectories instead of the hub dataset), its memory-table SQL and index
    statements, and its Python blocks for embedding the tasks, BM25 search, hybrid search and
    replay, as written (psycopg2 with ``database=SHARED_DLPG_DATABASE`` = the workspace and
    unqualified table names). OpenRouter's URL is the one thing changed: it points at a local
    embedding service with the default model."""
    pytest.importorskip("dotenv")
    pytest.importorskip("psycopg2")
    if not (DATA / "manifest.jsonl").is_file():
        pytest.skip("../shared/data/swe_agent_trajectories is absent")
    import json

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
    # -- the seed's Python blocks, one interpreter each, as a user runs them
    py = "import os\nimport psycopg2\nfrom dotenv import load_dotenv"
    embed_src = cut(text, "import os\nimport requests\nimport psycopg2", "conn.close()",
                    after="Python implementation for embedding tasks")
    bm25_src = cut(text, py, "conn.close()", after="BM25 Search (Keyword Precision)")
    hybrid_src = cut(text, "import os\nimport requests\nimport psycopg2", "conn.close()",
                     after="Python implementation for Hybrid Search")
    replay_src = cut(text, py, "conn.close()", after="Deterministic Replay For Debugging")
    try:
        old = "https://openrouter.ai/api/v1/embeddings"
        run_env = Server(server.url, server.pg_port, env)
        run_env.run(embed_src.replace(old, f"{url}/api/v1/embeddings"))
        left = requests.post(q, headers=h, timeout=60, json={
            "query": 'SELECT count(*) FROM "swe_agent_memory_full" WHERE embedding IS NULL'})
        assert left.json()["rows"] == [[0]], left.text
        out = run_env.run(bm25_src)
        assert out.count("\n") == min(10, len(rows)), out
        out = run_env.run(hybrid_src.replace(old, f"{url}/api/v1/embeddings"))
        assert out.count("\n") == min(10, len(rows)), out
        _seed_search_sql(text, server, url, min(10, len(rows)))
        out = run_env.run(replay_src)
        assert "Sample run_id values:" in out and "Full trace:" in out, out
        assert out.split("Full trace:")[1].strip().startswith("('swe-agent',"), out
        _seed_agents(text, server, url)
    finally:
        srv.shutdown()  # type: ignore[attr-defined]


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


def _seed_agents(text: str, server: Server, url: str) -> None:
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

    ns: dict[str, Any] = {"requests": requests, "OPENROUTER_API_KEY": "local",
                          "OPENROUTER_MODEL": "mistralai/codestral-embed-2505"}
    exec(cut(text, "def embed_query(text: str) -> list[float]:", '["embedding"]',
             after="Python implementation for Hybrid Search").replace(
        "https://openrouter.ai/api/v1/embeddings", f"{url}/api/v1/embeddings"), ns)
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
        direct = memory(prompt if agent is not oracle else f"{prompt} {prompt}")
        assert rows == direct and len(rows) == 10, (rows, direct)  # the tool queried tarndb
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


COCO = Path(__file__).resolve().parents[2] / "shared" / "data" / "coco_captions_mini"
STANDINS = Path(__file__).resolve().parent / "seeds_local"  # colqwen_encoder.py
HUB_COCO = 'load_dataset("detection-datasets/coco", split="train", streaming=True)'
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def _coco_folder(root: Path, n: int) -> Path:
    """The first ``n`` images of ``../shared/data/coco_captions_mini`` as a ``datasets``
    imagefolder, streamed by the real ``datasets.load_dataset("imagefolder", ...)`` where the
    seed streams ``detection-datasets/coco``: each item has ``image`` (PIL), ``image_id``,
    ``width``, ``height`` (and ``captions``), the fields the seed reads. The local data has no
    box annotations, so items carry no ``objects`` and the seed's own
    ``item.get("objects", {})`` gives empty ``bboxes`` / ``category_ids``."""
    d = root / f"coco_imagefolder_{n}"
    d.mkdir(exist_ok=True)
    meta = []
    for line in (COCO / "captions.jsonl").read_text(encoding="utf-8").splitlines()[:n]:
        r = json.loads(line)
        name = Path(r["file"]).name
        shutil.copyfile(COCO / r["file"], d / name)
        meta.append(json.dumps({"file_name": name, "image_id": r["image_id"],
                                "width": r["width"], "height": r["height"],
                                "captions": r["captions"]}))
    (d / "metadata.jsonl").write_text("\n".join(meta) + "\n", encoding="utf-8")
    return d


def _local_coco(server: Server, n: int, workspace: str) -> tuple[Server, str, Path]:
    """The seeds' environment for a COCO run: its own workspace, embeddings on, the stand-in
    ``colqwen_encoder`` importable, and the local imagefolder expression to stream."""
    if not (COCO / "captions.jsonl").is_file():
        pytest.skip("../shared/data/coco_captions_mini is absent")
    pytest.importorskip("datasets")
    pytest.importorskip("dotenv")
    folder = _coco_folder(Path(server.env["SEED_CWD"]), n)
    env = {**server.env, "ACTIVELOOP_WORKSPACE_ID": workspace, "ENABLE_EMBEDDINGS": "true",
           "HF_DATASETS_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(STANDINS),
                                                       server.env.get("PYTHONPATH")]))}
    local = f'load_dataset("imagefolder", data_dir={str(folder)!r}, split="train", streaming=True)'
    return Server(server.url, server.pg_port, env), local, folder


def _maxsim_oracle(folder: Path, query: str) -> dict[int, float]:
    """Exact MaxSim of ``query`` against every image of ``folder``, from the same stand-in
    encoder: per query token the best cosine over the image's vectors, summed."""
    import importlib.util

    import numpy as np
    from PIL import Image

    spec = importlib.util.spec_from_file_location("colqwen_encoder_oracle",
                                                  STANDINS / "colqwen_encoder.py")
    assert spec and spec.loader
    enc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(enc)
    q = enc.encode_texts([query])[0].astype(np.float64)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    out = {}
    for line in (folder / "metadata.jsonl").read_text().splitlines():
        m = json.loads(line)
        with Image.open(folder / m["file_name"]) as im:
            bag = enc.encode_images([im.convert("RGB")])[0].astype(np.float64)
        norms = np.linalg.norm(bag, axis=1, keepdims=True)
        bag = bag / np.where(norms > 0, norms, 1.0)
        out[int(m["image_id"])] = float((bag @ q.T).max(axis=0).sum())
    return out


def test_001_coco_ingestion_main_maxsim(server: Server) -> None:
    """Seed 001's "COCO Image Ingestion And Multi-Vector Retrieval" program as written (its
    settings, ``get_connection``/``run_query``/``create_table``, ``upload_image`` with retries,
    ``upload_files_parallel``, ``convert_bbox_to_coco`` and ``main()``: the table, batches of
    12 uploaded in parallel to /files and inserted with ``executemany`` through
    ``deeplake.db.connect``, the index and the ``<#>`` query it prints), with
    ``ENABLE_EMBEDDINGS=true``. Two substitutions: the hub stream of ``detection-datasets/coco``
    becomes ``load_dataset("imagefolder", ...)`` over 24 local COCO images (see
    ``_coco_folder``: no boxes locally), and the ``colqwen_encoder`` module the seed asks the
    reader for is ``tests/seeds_local/colqwen_encoder.py`` (ColQwen3's contract; text tokens
    from the packaged model, images by a patch featurizer). The printed top 5 must be the exact
    MaxSim ranking of those vectors."""
    pytest.importorskip("psycopg")
    ws = "seedws_coco"
    env, local, folder = _local_coco(server, 24, ws)
    text = seed("001")
    code = cut(text, "import io\nimport json\nimport os\nimport time\n"
                     "from concurrent.futures import ThreadPoolExecutor, as_completed",
               'if __name__ == "__main__":\n    main()')
    assert HUB_COCO in code
    out = env.run(deeplake_to_tarndb(code).replace(HUB_COCO, local), timeout=240)
    rows = re.findall(rf"\((\d+), UUID\('({UUID_RE})'\), ([-+.\deE]+)\)", out)
    assert len(rows) == 5, out  # LIMIT 5
    oracle = _maxsim_oracle(folder, "a photo of a city skyline")
    best = sorted(oracle, key=lambda i: -oracle[i])[:5]
    assert [int(r[0]) for r in rows] == best, (rows, best)
    for image_id, _, score in rows:
        assert abs(float(score) - oracle[int(image_id)]) < 1e-3, (rows, oracle)
    # every image landed: 24 rows (two batches of 12), each file_id the image as PNG
    h = {"Authorization": f"Bearer {TOKEN}", "X-Activeloop-Org-Id": "default"}
    r = requests.post(f"{server.url}/workspaces/{ws}/tables/query", headers=h, timeout=60,
                      json={"query": 'SELECT count(*), count(DISTINCT file_id), '
                                     'max(json_array_length(bboxes)) '
                                     f'FROM "{ws}"."coco_dataset_v3_pg"'})
    assert r.status_code == 200 and r.json()["rows"] == [[24, 24, 0]], r.text
    png = requests.get(f"{server.url}/workspaces/{ws}/files/{rows[0][1]}/content", headers=h,
                       timeout=30)
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_001_coco_helpers_loop_verify_index_maxsim(server: Server) -> None:
    """Seed 001's COCO building blocks as written: the HTTP query helpers (``run_query``,
    ``batch_insert``), "Load COCO In Streaming Mode", "Compute Embeddings" (``emb_img`` /
    ``emb_txt``), the /files ``upload_image``, "A Minimal Ingestion Loop"'s
    ``process_one_batch`` (embeddings, parallel uploads, one literal ``{EMB}`` insert per
    row), "Convert Bbox To COCO Style", ``format_2d_array``, ``insert_sql``, "Verify Ingestion
    Quickly", the index, the query encoding, the ``<#>`` search loop and the filtering
    pattern (its ``ARRAY[...]`` and ``"workspace"`` placeholders filled in). Substituted: the
    ColQwen3 model block (a hub download; ``encode_images`` / ``encode_texts`` come from the
    stand-in ``colqwen_encoder``) and the hub stream (16 local images, see ``_coco_folder``).
    What the seed leaves to the reader comes first: headers, the table, a batch to process."""
    ws = "seedws_coco_http"
    env, local, folder = _local_coco(server, 16, ws)
    text = seed("001")
    after = "Query Helpers (Single Query And Batch Query)"
    reader = textwrap.dedent('''
        # -- the reader's part: settings, headers, encoder, the table
        import io, itertools, json, os, time
        from concurrent.futures import ThreadPoolExecutor, as_completed
        import requests
        from PIL import Image
        from colqwen_encoder import encode_images, encode_texts
        BASE_URL = os.environ["BASE_URL"]
        TOKEN = os.environ["TEST_PG_MANAGED_TOKEN"]
        ORG_ID = os.environ["ACTIVELOOP_ORG_ID"]
        WORKSPACE_ID = os.environ["ACTIVELOOP_WORKSPACE_ID"]
        headers_upload = {"Authorization": f"Bearer {TOKEN}", "X-Activeloop-Org-Id": ORG_ID}
        headers_json = {**headers_upload, "Content-Type": "application/json"}
        table_name = "coco_multi_modal_search"
    ''')
    create = textwrap.dedent('''
        made = run_query(f\'CREATE TABLE "{WORKSPACE_ID}"."{table_name}" (id BIGSERIAL PRIMARY \'
                         "KEY, image_id BIGINT, width INT, height INT, bboxes JSONB, "
                         "category_ids JSONB, file_id UUID, metadata JSONB, "
                         "colqwen_embedding FLOAT4[][])")
        assert made, "CREATE TABLE failed"
        pil_image = next(iter(dataset))["image"]
    ''')
    blocks = [
        reader,
        cut(text, "def run_query(query: str, params", "else {}", after=after),
        cut(text, "def batch_insert(query: str", "else {}", after=after),
        cut(text, "from datasets import load_dataset\n\ndataset = ", "streaming=True)"),
        create,
        cut(text, "emb_img = encode_images([pil_image])[0]", "# (tokens, dim)\n",
            after="Compute Embeddings (Multi-Vector"),
        cut(text, "emb_txt = encode_texts(", "# (tokens, dim)",
            after="Compute Embeddings (Multi-Vector"),
        'print("EMB", emb_img.shape, emb_img.dtype, emb_txt.shape, emb_txt.dtype)',
        cut(text, "def upload_image(pil_img: Image.Image, filename: str) -> str | None:",
            'return out.get("id")\n    return None'),
        cut(text, "BATCH_SIZE = 16\nUPLOAD_WORKERS = 8", "time.sleep(0.05)"),
        cut(text, "def convert_bbox_to_coco(", "ymax - ymin]", after="Convert Bbox To COCO Style"),
        'print("BBOX", convert_bbox_to_coco([10.0, 20.0, 110.0, 70.0]))',
        cut(text, "def format_2d_array(", 'return f"ARRAY[{inner}]::float4[][]"'),
        cut(text, "insert_sql = (", ")\n", after="Then insert. Keep bboxes"),
        "process_one_batch(list(itertools.islice(dataset, BATCH_SIZE)))",
        'print("COUNT", end=" ")',
        cut(text, "count = run_query(f\'SELECT COUNT(*)", "[0][0])"),
        cut(text, "run_query(\n    f\'CREATE INDEX idx_coco_colqwen_vec ", 'DESC);"\n)'),
        cut(text, 'query_text = "a photo of a city skyline"', "# (tokens, dim) as nested lists"),
        'print("SEARCH")',
        cut(text, 'maxsim_sql = f"""', "print(image_id, score)"),
        "filtered = run_query(\"\"\"" + cut(text, "SELECT image_id,\n       colqwen_embedding <#> "
                                             "ARRAY[...]", "LIMIT 10;",
                                         after="Practical Filtering Patterns")
        .replace("ARRAY[...]", "ARRAY{query_emb}").replace('"workspace".', '"{WORKSPACE_ID}".')
        .rstrip(";") + '""".format(query_emb=query_emb, WORKSPACE_ID=WORKSPACE_ID))',
        'print("FILTERED", json.dumps(filtered["rows"]))',
    ]
    code = deeplake_to_tarndb("\n".join(blocks))
    assert HUB_COCO in code
    out = env.run(code.replace(HUB_COCO, local), timeout=240)
    assert re.search(r"^EMB \(16, 384\) float32 \(\d+, 384\) float32$", out, re.M), out
    assert "BBOX [10.0, 20.0, 100.0, 50.0]" in out, out
    assert re.search(r"^COUNT 16$", out, re.M), out
    ranked = [line.split() for line in out.split("SEARCH\n")[1].splitlines()
              if not line.startswith("FILTERED")]
    assert len(ranked) == 10, out  # LIMIT 10
    oracle = _maxsim_oracle(folder, "a photo of a city skyline")
    assert [int(i) for i, _ in ranked] == sorted(oracle, key=lambda i: -oracle[i])[:10], out
    for image_id, score in ranked:
        assert abs(float(score) - oracle[int(image_id)]) < 1e-3, (ranked, oracle)
    sizes = {json.loads(line)["image_id"]: (json.loads(line)["width"],
                                             json.loads(line)["height"])
             for line in (folder / "metadata.jsonl").read_text().splitlines()}
    big = [i for i, (w, h) in sizes.items() if w >= 640 and h >= 480]
    filtered = json.loads(out.split("FILTERED ")[1])
    assert [r[0] for r in filtered] == sorted(big, key=lambda i: -oracle[i])[:10], out
    # the index the seed builds exists (run_query swallows errors, so ask the catalog)
    h = {"Authorization": f"Bearer {TOKEN}", "X-Activeloop-Org-Id": "default"}
    r = requests.post(f"{server.url}/workspaces/{ws}/tables/query", headers=h, timeout=60,
                      json={"query": "SELECT indexname FROM pg_indexes "
                                     "WHERE tablename = 'coco_multi_modal_search'"})
    assert r.status_code == 200 and ["idx_coco_colqwen_vec"] in r.json()["rows"], r.text
