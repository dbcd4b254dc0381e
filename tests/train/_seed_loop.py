"""The seed's "Retrieval to Training" loop, as written (../shared/seeds/000_d5ca2e9418eeb919.txt).

``seed_source(...)`` returns the seed's code with only the connection details filled in
(``API_URL``, ``TOKEN``, ``WORKSPACE``) and, so that parallel test runs do not share a folder,
the default download folder. ``encode_text`` is the seed's "your encoder": the caller defines
it before running the code.
"""

from __future__ import annotations

SEED = '''
import os
import requests

API_URL = "https://api.deeplake.ai"
TOKEN = "YOUR_TOKEN"
WORKSPACE = "YOUR_WORKSPACE"
TABLE = "video_chunks"

headers = {
    "Authorization": f"Bearer {TOKEN}",
    "Content-Type": "application/json",
}
auth_headers = {"Authorization": f"Bearer {TOKEN}"}

def query(sql):
    res = requests.post(
        f"{API_URL}/workspaces/{WORKSPACE}/tables/query",
        headers=headers,
        json={"query": sql},
    )
    return res.json()

training_objectives = [
    "robot arm picking up small objects from a table",
    "autonomous vehicle navigating through narrow corridors",
    "human-robot handover of tools in assembly line",
]

def retrieve_training_set(objective, top_k=20):
    """Retrieve files matching a training objective."""
    emb = encode_text(objective)  # your encoder

    # Format embedding (single-vector or multi-vector)
    if isinstance(emb[0], list):
        # Multi-vector
        inner = ", ".join(
            "ARRAY[" + ",".join(str(v) for v in row) + "]" for row in emb
        )
        emb_literal = f"ARRAY[{inner}]::float4[][]"
    else:
        # Single-vector
        emb_literal = "ARRAY[" + ",".join(str(v) for v in emb) + "]::float4[]"

    result = query(f"""
        SELECT id, file_id, metadata,
               embedding <#> {emb_literal} AS score
        FROM "{WORKSPACE}"."{TABLE}"
        ORDER BY score DESC
        LIMIT {top_k}
    """)
    return result.get("rows", [])

def download_training_set(rows, output_dir="/tmp/training_data"):
    os.makedirs(output_dir, exist_ok=True)
    paths = []

    for row in rows:
        row_id, file_id = row[0], row[1]
        if not file_id:
            continue

        res = requests.get(
            f"{API_URL}/workspaces/{WORKSPACE}/files/{file_id}/content",
            headers=auth_headers,
        )
        if res.status_code == 200:
            path = os.path.join(output_dir, f"sample_{row_id}.mp4")
            with open(path, "wb") as f:
                f.write(res.content)
            paths.append(path)

    return paths

for objective in training_objectives:
    print(f"\\n--- Objective: {objective} ---")
    rows = retrieve_training_set(objective, top_k=10)
    paths = download_training_set(rows)
    print(f"Downloaded {len(paths)} files for training")

    # Feed paths to your training loop
    # train(paths, objective=objective)
'''

# "Add SQL filters for precision", with the emb_literal the loop builds.
SEED_FILTERED = '''
def retrieve_filtered(objective):
    emb = encode_text(objective)
    emb_literal = "ARRAY[" + ",".join(str(v) for v in emb) + "]::float4[]"
    result = query(f"""
    SELECT id, file_id, metadata,
           embedding <#> {emb_literal} AS score
    FROM "{WORKSPACE}"."{TABLE}"
    WHERE metadata->>'camera' = 'cam1'
      AND start_s > 100.0
    ORDER BY score DESC
    LIMIT 20
""")
    return result
'''


def seed_source(api_url: str, token: str, workspace: str, output_dir: str) -> str:
    code = SEED + SEED_FILTERED
    for old, new in (('"https://api.deeplake.ai"', repr(api_url)),
                     ('"YOUR_TOKEN"', repr(token)),
                     ('"YOUR_WORKSPACE"', repr(workspace)),
                     ('"/tmp/training_data"', repr(output_dir))):
        assert code.count(old) == 1, old
        code = code.replace(old, new)
    return code
