"""What the web UI tests share: the seeded server (``Site``), its constants, console capture
and screenshots. Imported as ``_web_support`` (a unique name): ``from conftest import ...``
picks whichever folder's conftest was loaded last when several test folders run."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "api"))

from _api_support import wait_until_healthy  # noqa: E402
from _web_media import mp4, png  # noqa: E402

from _ports import free_port  # noqa: E402

ORG = "acme"
WS = "demo"
TOKEN = "tdb_web_test_admin_token_0123456789"
CHROMIUM = os.environ.get("TARNDB_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "web"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync",
                 "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required"]

BODIES = [
    ("Harbor at dawn", "fishing boats leave the harbor at dawn while gulls circle the pier"),
    ("Mountain trail", "a steep mountain trail with snow near the summit and a wooden bridge"),
    ("City traffic", "evening traffic in the city centre, buses and bicycles at a crossing"),
    ("Robot arm", "a robot arm picks up a red cube from the table and places it in a box"),
    ("Boat repair", "workers repair an old fishing boat hull in a dry dock near the harbor"),
]


@dataclass
class Site:
    url: str
    token: str
    lake: Path
    proc: subprocess.Popen[bytes]
    files: dict[str, str] = field(default_factory=dict)  # name -> file id
    video_id: str = ""

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def sql(self, query: str, params: list[Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"query": query}
        if params is not None:
            body["params"] = params
        r = requests.post(f"{self.url}/workspaces/{WS}/tables/query", json=body,
                          headers=self.headers(), timeout=60)
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    def upload(self, name: str, data: bytes, content_type: str) -> str:
        r = requests.post(f"{self.url}/workspaces/{WS}/files", headers=self.headers(),
                          files={"file": (name, data, content_type)}, timeout=60)
        assert r.status_code == 201, r.text
        fid: str = r.json()["id"]
        self.files[name] = fid
        return fid


def _start(lake: Path) -> Site:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("_web_serve.py")), "--data", str(lake),
         "--port", str(port), "--org", ORG, "--token", TOKEN],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(proc, url)
    return Site(url, TOKEN, lake, proc)


def _seed(site: Site, tmp: Path) -> None:
    colors = [(37, 99, 235), (220, 38, 38), (22, 163, 74), (234, 179, 8), (147, 51, 234)]
    image_ids = [site.upload(f"photo_{i}.png", png(c, label=f"photo {i}"), "image/png")
                 for i, c in enumerate(colors)]
    site.video_id = site.upload("clip.mp4", mp4(tmp / "clip.mp4").read_bytes(), "video/mp4")
    site.upload("notes.txt", b"first line\nsecond line\n", "text/plain")
    site.upload("config.json", b'{"model": "minilm", "dims": 384}', "application/json")
    site.sql(f'CREATE TABLE "{WS}"."docs" (id BIGSERIAL PRIMARY KEY, title TEXT, body TEXT, '
             'meta JSONB, emb FLOAT4[], mv FLOAT4[][], file_id UUID, clip VIDEO, sem FLOAT4[])')
    for i, (title, body) in enumerate(BODIES):
        emb = [float((i + j) % 5) / 5 for j in range(8)]
        mv = [[float(i), 1.0, 0.5, 0.25]] * 3
        site.sql(f'INSERT INTO "{WS}"."docs" (title, body, meta, emb, mv, file_id, clip) '
                 'VALUES ($1, $2, $3, $4, $5, $6, $7)',
                 [title, body, {"source": "web-test", "tags": ["a", "b"], "rank": i},
                  emb, mv, image_ids[i], site.video_id if i == 0 else None])
    # Real sentence embeddings from the server's default model, for vector and hybrid search.
    site.sql(f'UPDATE "{WS}"."docs" SET sem = embed(body)')
    site.sql(f'CREATE INDEX docs_body_bm25 ON "{WS}"."docs" USING deeplake_index (body) '
             "WITH (index_type = 'bm25')")


@dataclass
class Console:
    errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)


def shot(page: Any, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path
