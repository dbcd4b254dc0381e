"""Seed 001's "COCO Image Ingestion And Multi-Vector Retrieval" as written against a real
``tarndb serve``, over local COCO images instead of the hub's stream and with a stand-in for
the ColQwen3 encoder (``tests/seeds_local/colqwen_encoder.py``). Skips when ``../shared/seeds``
or ``../shared/data/coco_captions_mini`` is absent."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import textwrap
from pathlib import Path

import pytest
import requests

# pytest runs with --import-mode=importlib, which does not put test folders on sys.path; the
# seeds tests share their server and helpers through _seeds_support.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _seeds_support import (  # noqa: E402
    TOKEN,
    Server,
    cut,
    deeplake_to_tarndb,
    needs_seeds,
    seed,
    server,
)

pytestmark = needs_seeds
__all__ = ["server"]  # the module-scoped fixture, one server per file


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
