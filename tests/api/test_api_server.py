"""A real server (``python -m tarndb.api``) driven with ``requests`` exactly as the seed
documents do, plus ``tarndb.Client`` and the failure modes only a socket shows."""

from __future__ import annotations

import hashlib
import io
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import pytest
import requests
from _api_support import ORG, Server, png, start_server, stop_server
from PIL import Image

import tarndb
from tarndb.client import Client
from tarndb.errors import InsufficientPrivilege, NotFound, UndefinedTable

WORKSPACE_ID = "seedws"


@pytest.fixture(scope="module")
def env(server: Server) -> dict[str, str]:
    """What the seeds read from .env: base URL, token, org, workspace."""
    return {"BASE_URL": server.url, "TOKEN": server.token, "ORG_ID": ORG,
            "WORKSPACE_ID": WORKSPACE_ID}


def _blob_files(server: Server, ws: str) -> list[Path]:
    root = server.lake / ws / "_files"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


# -- seed 001: the minimal upload ----------------------------------------------------------


def test_seed_minimal_upload(env: dict[str, str]) -> None:
    BASE_URL, TOKEN, ORG_ID, WORKSPACE_ID = (env[k] for k in  # noqa: N806 - seed spelling
                                             ("BASE_URL", "TOKEN", "ORG_ID", "WORKSPACE_ID"))
    img = Image.new("RGB", (256, 256), color=(40, 80, 200))
    buf = io.BytesIO()
    img.save(buf, format="PNG")

    res = requests.post(
        f"{BASE_URL}/workspaces/{WORKSPACE_ID}/files",
        headers={"Authorization": f"Bearer {TOKEN}", "X-Activeloop-Org-Id": ORG_ID},
        files={"file": ("example.png", buf.getvalue(), "image/png")},
        timeout=60,
    )
    file_id = res.json().get("id")
    assert res.status_code in (200, 201)
    assert uuid.UUID(file_id)
    back = requests.get(f"{BASE_URL}/workspaces/{WORKSPACE_ID}/files/{file_id}/content",
                        headers={"Authorization": f"Bearer {TOKEN}"})
    assert back.status_code == 200 and back.content == buf.getvalue()


# -- seed 001: query helpers, batch insert, parallel uploads; seed 000: download loop ------


def test_seed_ingest_query_download(env: dict[str, str], tmp_path: Path) -> None:
    BASE_URL, TOKEN, ORG_ID, WORKSPACE_ID = (env[k] for k in  # noqa: N806 - seed spelling
                                             ("BASE_URL", "TOKEN", "ORG_ID", "WORKSPACE_ID"))
    headers_json = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json",
                    "X-Activeloop-Org-Id": ORG_ID}

    def run_query(query: str, params: list[Any] | None = None) -> dict[str, Any]:
        url = f"{BASE_URL}/workspaces/{WORKSPACE_ID}/tables/query"
        payload: dict[str, Any] = {"query": query}
        if params is not None:
            payload["params"] = params
        res = requests.post(url, headers=headers_json, json=payload)
        assert res.status_code == 200, res.text
        return res.json() if res.status_code == 200 else {}

    def batch_insert(query: str, params_batch: list[list[Any]],
                     timeout_s: int = 120) -> dict[str, Any]:
        url = f"{BASE_URL}/workspaces/{WORKSPACE_ID}/tables/query/batch"
        payload = {"query": query, "params_batch": params_batch}
        res = requests.post(url, headers=headers_json, json=payload, timeout=timeout_s)
        assert res.status_code == 200, res.text
        return res.json() if res.status_code == 200 else {}

    def upload_image(pil_img: Image.Image, filename: str, max_retries: int = 3) -> str | None:
        url = f"{BASE_URL}/workspaces/{WORKSPACE_ID}/files"
        buf = io.BytesIO()
        pil_img.save(buf, format="PNG")
        img_bytes = buf.getvalue()
        headers = {"Authorization": f"Bearer {TOKEN}", "X-Activeloop-Org-Id": ORG_ID}
        for attempt in range(max_retries):
            try:
                res = requests.post(url, headers=headers,
                                    files={"file": (filename, img_bytes, "image/png")},
                                    timeout=60)
                if res.status_code in (200, 201):
                    return str(res.json().get("id"))
                if res.status_code in (429, 502, 503, 504):
                    time.sleep((2 ** attempt) + 0.5)
                    continue
                return None
            except requests.RequestException:
                time.sleep((2 ** attempt) + 0.5)
        return None

    def upload_files_parallel(images: list[Image.Image], image_ids: list[int],
                              max_workers: int = 8) -> list[str | None]:
        file_ids: list[str | None] = [None] * len(images)
        with ThreadPoolExecutor(max_workers=max_workers) as ex:
            futs = {ex.submit(upload_image, images[i], f"coco_{image_ids[i]}.png"): i
                    for i in range(len(images))}
            for fut in as_completed(futs):
                file_ids[futs[fut]] = fut.result()
        return file_ids

    table_name = "coco_dataset_v3_pg"
    schema = {"id": "BIGSERIAL PRIMARY KEY", "image_id": "BIGINT", "width": "INT",
              "height": "INT", "bboxes": "JSONB", "category_ids": "JSONB", "file_id": "UUID",
              "metadata": "JSONB", "colqwen_embedding": "FLOAT4[][]"}
    cols = ", ".join(f"{k} {v}" for k, v in schema.items())
    run_query(f'CREATE TABLE IF NOT EXISTS "{WORKSPACE_ID}"."{table_name}" ({cols}) '
              "USING deeplake")

    images = [Image.new("RGB", (64 + i, 48), color=(i * 20, 100, 200 - i * 10))
              for i in range(12)]
    image_ids = list(range(1000, 1012))
    file_ids = upload_files_parallel(images, image_ids)
    assert all(file_ids) and len(set(file_ids)) == 12

    def format_2d_array(arr_2d: list[list[float]]) -> str:
        inner = ", ".join("ARRAY[" + ",".join(str(float(v)) for v in row) + "]"
                          for row in arr_2d)
        return f"ARRAY[{inner}]::float4[][]"

    def embedding_of(i: int) -> list[list[float]]:  # 3 tokens x 16 dims, one per image
        return [[float(i == j) + 0.01 * t for j in range(16)] for t in range(3)]

    insert_sql = f'''
        INSERT INTO "{WORKSPACE_ID}"."{table_name}"
        (image_id, width, height, bboxes, category_ids, colqwen_embedding, file_id, metadata)
        VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, {{EMB}}, $6::uuid, $7::jsonb)
    '''
    for i, img in enumerate(images):
        emb = embedding_of(i)
        sql = insert_sql.replace("{EMB}", format_2d_array(emb))
        params = [[image_ids[i], img.width, img.height, json.dumps([[0, 0, 10, 10]]),
                   json.dumps([1, 2]), file_ids[i],
                   json.dumps({"dataset": "coco", "original_id": image_ids[i]})]]
        out = batch_insert(sql, params)
        assert out["rows_affected"] == 1

    count = run_query(f'SELECT COUNT(*) FROM "{WORKSPACE_ID}"."{table_name}"')
    assert count.get("rows", [[0]])[0][0] == 12

    res = run_query(f'''SELECT image_id, file_id, metadata, bboxes
                        FROM "{WORKSPACE_ID}"."{table_name}"
                        WHERE metadata->>'dataset' = 'coco' AND width >= 70
                        ORDER BY image_id''')
    rows = res["rows"]
    assert [r[0] for r in rows] == image_ids[6:]
    assert rows[0][2] == {"dataset": "coco", "original_id": 1006}
    assert rows[0][3] == [[0, 0, 10, 10]]

    run_query(
        f'CREATE INDEX idx_coco_colqwen_vec '
        f'ON "{WORKSPACE_ID}"."{table_name}" '
        f"USING deeplake_index (colqwen_embedding DESC);"
    )

    # seed 001's MaxSim search, with the query embedding inlined as ARRAY{list}.
    q_emb = embedding_of(7)
    maxsim_sql = f"""
    SELECT image_id, width, height, bboxes, category_ids,
           colqwen_embedding <#> ARRAY{q_emb}::float4[][] AS score
    FROM "{WORKSPACE_ID}"."{table_name}"
    ORDER BY score DESC
    LIMIT 10;
    """
    ranked = run_query(maxsim_sql)["rows"]
    assert len(ranked) == 10 and ranked[0][0] == 1007
    assert ranked[0][-1] == pytest.approx(max(r[-1] for r in ranked))

    # seed 000: retrieve with a filter, then its download loop (Authorization header only).
    def retrieve_training_set(emb: list[list[float]], top_k: int = 20) -> list[Any]:
        inner = ", ".join("ARRAY[" + ",".join(str(v) for v in row) + "]" for row in emb)
        emb_literal = f"ARRAY[{inner}]::float4[][]"
        result = run_query(f"""
            SELECT image_id, file_id, metadata, bboxes,
                   colqwen_embedding <#> {emb_literal} AS score
            FROM "{WORKSPACE_ID}"."{table_name}"
            WHERE metadata->>'dataset' = 'coco' AND width >= 70
            ORDER BY score DESC
            LIMIT {top_k}
        """)
        return list(result.get("rows", []))

    rows = retrieve_training_set(embedding_of(9), top_k=6)
    assert len(rows) == 6 and rows[0][0] == 1009
    assert sorted(r[0] for r in rows) == image_ids[6:]
    auth_headers = {"Authorization": f"Bearer {TOKEN}"}
    output_dir = tmp_path / "training_data"
    os.makedirs(output_dir, exist_ok=True)
    paths = []
    for row in rows:
        row_id, file_id = row[0], row[1]
        if not file_id:
            continue
        r = requests.get(f"{BASE_URL}/workspaces/{WORKSPACE_ID}/files/{file_id}/content",
                         headers=auth_headers)
        if r.status_code == 200:
            path = os.path.join(output_dir, f"sample_{row_id}.png")
            with open(path, "wb") as f:
                f.write(r.content)
            paths.append(path)
    assert len(paths) == 6
    for row, path in zip(rows, paths, strict=True):
        buf = io.BytesIO()
        images[image_ids.index(row[0])].save(buf, format="PNG")  # what upload_image sent
        assert Path(path).read_bytes() == buf.getvalue()


# -- seed 001: video chunks ----------------------------------------------------------------


def test_seed_video_upload_and_download(env: dict[str, str], mp4_bytes: bytes) -> None:
    BASE_URL, TOKEN, ORG_ID, WORKSPACE_ID = (env[k] for k in  # noqa: N806 - seed spelling
                                             ("BASE_URL", "TOKEN", "ORG_ID", "WORKSPACE_ID"))
    url = f"{BASE_URL}/workspaces/{WORKSPACE_ID}/files"
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Activeloop-Org-Id": ORG_ID}
    files = {"file": ("chunk_0000.mp4", io.BytesIO(mp4_bytes), "video/mp4")}
    res = requests.post(url, headers=headers, files=files, timeout=120)
    assert res.status_code in (200, 201)
    file_id = res.json()["id"]
    assert res.json()["content_type"] == "video/mp4"

    url = f"{BASE_URL}/workspaces/{WORKSPACE_ID}/files/{file_id}/download"
    res = requests.get(url, headers={"Authorization": f"Bearer {TOKEN}",
                                     "X-Activeloop-Org-Id": ORG_ID})
    assert res.status_code == 200 and res.content == mp4_bytes
    assert "attachment" in res.headers["Content-Disposition"]

    # A video element seeks with Range requests.
    seek = requests.get(url, headers={"Authorization": f"Bearer {TOKEN}",
                                      "Range": "bytes=500000-500999"})
    assert seek.status_code == 206 and seek.content == mp4_bytes[500000:501000]
    past = requests.get(url, headers={"Authorization": f"Bearer {TOKEN}",
                                      "Range": f"bytes={len(mp4_bytes) + 1}-"})
    assert past.status_code == 416
    etag = res.headers["ETag"]
    again = requests.get(url, headers={"Authorization": f"Bearer {TOKEN}",
                                       "If-None-Match": etag})
    assert again.status_code == 304


# -- failures only a real socket shows -----------------------------------------------------


def test_client_disconnect_mid_upload(server: Server) -> None:
    ws = "dropws"
    declared = 50 << 20
    head = (b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.bin\"\r\n"
            b"Content-Type: application/octet-stream\r\n\r\n")
    request = (f"POST /workspaces/{ws}/files HTTP/1.1\r\nHost: x\r\n"
               f"Authorization: Bearer {server.token}\r\n"
               "Content-Type: multipart/form-data; boundary=B\r\n"
               f"Content-Length: {declared}\r\n\r\n").encode()
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(request + head)
        for _ in range(6):
            sock.sendall(os.urandom(1 << 20))
        deadline = time.monotonic() + 10
        while not _blob_files(server, ws) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _blob_files(server, ws), "the upload should be streaming to the lake"
    # The server notices, removes the partial blob, records nothing, and carries on.
    deadline = time.monotonic() + 10
    while _blob_files(server, ws) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _blob_files(server, ws) == []
    h = {"Authorization": f"Bearer {server.token}"}
    listing = requests.get(f"{server.url}/workspaces/{ws}/files", headers=h)
    assert listing.status_code == 200 and listing.json()["total"] == 0
    assert requests.get(f"{server.url}/health").status_code == 200


def test_truncated_body(server: Server) -> None:
    body = (b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.bin\"\r\n\r\n"
            + b"y" * 1000)  # no closing boundary, and a Content-Length that matches
    r = requests.post(f"{server.url}/workspaces/truncws/files", data=body,
                      headers={"Authorization": f"Bearer {server.token}",
                               "Content-Type": "multipart/form-data; boundary=B"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request"
    assert _blob_files(server, "truncws") == []


def test_tokens_over_http_and_isolation(server: Server) -> None:
    admin = {"Authorization": f"Bearer {server.token}"}
    r = requests.post(f"{server.url}/tokens", headers=admin,
                      json={"name": "reader", "role": "read", "workspaces": [WORKSPACE_ID]})
    assert r.status_code == 201
    reader = {"Authorization": f"Bearer {r.json()['token']}"}
    ok = requests.post(f"{server.url}/workspaces/{WORKSPACE_ID}/tables/query", headers=reader,
                       json={"query": "SELECT 1"})
    assert ok.status_code == 200
    for ws, body, status in [
        ("otherws", {"query": "SELECT 1"}, 403),
        (WORKSPACE_ID, {"query": "CREATE TABLE nope (x INT)"}, 403),
    ]:
        bad = requests.post(f"{server.url}/workspaces/{ws}/tables/query", headers=reader,
                            json=body)
        assert bad.status_code == status and bad.json()["error"]["code"]
    wrong_org = requests.get(f"{server.url}/me", headers={**reader,
                                                          "X-Activeloop-Org-Id": "globex"})
    assert wrong_org.status_code == 403
    assert requests.delete(f"{server.url}/tokens/{r.json()['id']}",
                           headers=admin).status_code == 200
    assert requests.get(f"{server.url}/me", headers=reader).status_code == 401


# -- tarndb.Client -------------------------------------------------------------------------


@pytest.fixture()
def client(server: Server) -> Iterator[Client]:
    with tarndb.Client(server.url, server.token, "clientws", org=ORG) as c:
        yield c


def test_client_roundtrip(client: Client, tmp_path: Path, mp4_bytes: bytes) -> None:
    assert client.health()["status"] == "ok"
    assert client.me()["role"] == "admin"
    client.create_table("items", {"id": "BIGSERIAL PRIMARY KEY", "name": "TEXT",
                                  "file_id": "UUID", "emb": "FLOAT4[]"}, if_not_exists=True)
    src = tmp_path / "clip.mp4"
    src.write_bytes(mp4_bytes)
    meta = client.upload_file(src)  # streamed from disk
    assert meta["filename"] == "clip.mp4" and meta["content_type"] == "video/mp4"
    assert meta["sha256"] == hashlib.sha256(mp4_bytes).hexdigest()
    pic = client.upload_file(png(), "pic.png", "image/png")
    out = client.query_batch("INSERT INTO items (name, file_id, emb) VALUES ($1, $2::uuid, $3)",
                             [["clip", meta["id"], [1.0, 0.0]], ["pic", pic["id"], [0.0, 1.0]]])
    assert out["rows_affected"] == 2
    res = client.query("SELECT name, file_id, emb FROM items WHERE name = $1", ["clip"])
    assert res.columns == ["name", "file_id", "emb"]
    assert res.dicts() == [{"name": "clip", "file_id": meta["id"], "emb": [1.0, 0.0]}]
    assert client.download_file(res.rows[0][1]) == mp4_bytes
    target = client.download_file_to(pic["id"], tmp_path / "pic.png")
    assert Path(target).read_bytes() == png()
    assert client.get_file(pic["id"])["size"] == len(png())
    ids = {f["id"] for f in client.list_files(limit=10)["files"]}
    assert {meta["id"], pic["id"]} <= ids
    assert "items" in [t["name"] for t in client.list_tables()]
    assert client.describe_table("items")["row_count"] == 2
    client.delete_file(pic["id"])
    with pytest.raises(NotFound):
        client.download_file(pic["id"])
    client.drop_table("items")
    with pytest.raises(UndefinedTable) as info:
        client.query("SELECT * FROM items")
    assert info.value.sqlstate == "42P01"


def test_client_errors_and_retry(server: Server) -> None:
    with tarndb.Client(server.url, "tdb_wrong_token_xxxxxx", "clientws") as bad:
        with pytest.raises(tarndb.TarnError) as info:
            bad.query("SELECT 1")
        assert info.value.http_status == 401
    with tarndb.Client(server.url, server.token, "clientws", org="globex") as wrong_org, \
            pytest.raises(InsufficientPrivilege):
        wrong_org.me()
    # Nothing listens on this port: connection errors are retried, then raised.
    import httpx

    from _ports import free_port

    t0 = time.monotonic()
    with tarndb.Client(f"http://127.0.0.1:{free_port()}", "t" * 10, "w", retries=2,
                       backoff_s=0.05) as gone, pytest.raises(httpx.ConnectError):
        gone.health()
    assert time.monotonic() - t0 < 5


def test_limits_over_a_socket(tmp_path: Path) -> None:
    """413 for an oversized upload (answered before the body is read), 429 when saturated."""
    srv = start_server(tmp_path / "lake", {"TARNDB_MAX_CONCURRENCY": "1",
                                           "TARNDB_MAX_PENDING": "0",
                                           "TARNDB_MAX_UPLOAD_BYTES": str(1 << 20)})
    try:
        for n in (2 << 20, 24 << 20):
            r = requests.post(f"{srv.url}/workspaces/bp/files",
                              headers={"Authorization": f"Bearer {srv.token}"},
                              files={"file": ("big.bin", os.urandom(n))})
            assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
        assert _blob_files(srv, "bp") == []
        port = int(srv.url.rsplit(":", 1)[1])
        # Hold the only admission slot with an upload that has not finished sending.
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall((f"POST /workspaces/bp/files HTTP/1.1\r\nHost: x\r\n"
                      f"Authorization: Bearer {srv.token}\r\n"
                      "Content-Type: multipart/form-data; boundary=B\r\n"
                      "Content-Length: 100000\r\n\r\n--B\r\n").encode())
        h = {"Authorization": f"Bearer {srv.token}"}
        deadline = time.monotonic() + 10
        status = 0
        while time.monotonic() < deadline:
            r = requests.post(f"{srv.url}/workspaces/bp/tables/query", headers=h,
                              json={"query": "SELECT 1"})
            status = r.status_code
            if status == 429:
                assert r.headers["Retry-After"].isdigit()
                assert r.json()["error"]["code"] == "too_many_requests"
                break
            time.sleep(0.05)
        assert status == 429
        sock.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            r = requests.post(f"{srv.url}/workspaces/bp/tables/query", headers=h,
                              json={"query": "SELECT 1"})
            if r.status_code == 200:
                break
            time.sleep(0.05)
        assert r.status_code == 200
        # tarndb.Client retries 429 with backoff on its own.
        sock2 = socket.create_connection(("127.0.0.1", port))
        sock2.sendall((f"POST /workspaces/bp/files HTTP/1.1\r\nHost: x\r\n"
                       f"Authorization: Bearer {srv.token}\r\n"
                       "Content-Type: multipart/form-data; boundary=B\r\n"
                       "Content-Length: 100000\r\n\r\n--B\r\n").encode())
        time.sleep(0.3)
        threading.Timer(1.0, sock2.close).start()
        with tarndb.Client(srv.url, srv.token, "bp", backoff_s=0.2, retries=6) as c:
            assert c.query("SELECT 7").scalar() == 7
    finally:
        stop_server(srv)


def test_big_upload_streams_with_bounded_memory(tmp_path: Path) -> None:
    """256 MiB by default; TARNDB_TEST_BIG_UPLOAD_MB=1024 runs the issue's 1 GiB check."""
    size_mb = int(os.environ.get("TARNDB_TEST_BIG_UPLOAD_MB", "256"))
    srv = start_server(tmp_path / "lake")
    try:
        src = tmp_path / "big.bin"
        block = os.urandom(1 << 20)
        sha = hashlib.sha256()
        with open(src, "wb") as f:
            for _ in range(size_mb):
                f.write(block)
                sha.update(block)
        before = srv.rss_kb()
        anon_before = srv.anon_kb()
        with tarndb.Client(srv.url, srv.token, "big", timeout=600) as c:
            meta = c.upload_file(src, "big.bin")
            assert meta["size"] == size_mb << 20 and meta["sha256"] == sha.hexdigest()
            out = c.download_file_to(meta["id"], tmp_path / "back.bin")
        got = hashlib.sha256()
        with open(out, "rb") as f:
            while chunk := f.read(1 << 20):
                got.update(chunk)
        assert got.hexdigest() == sha.hexdigest()
        grown_mb = (srv.rss_peak_kb() - before) / 1024
        print(f"server RSS before {before / 1024:.0f} MB, peak {srv.rss_peak_kb() / 1024:.0f} MB")
        assert grown_mb < 100, f"server memory grew by {grown_mb:.0f} MB for {size_mb} MB"
        if size_mb >= 1024:  # the bar, checked on the opt-in 1 GiB run
            # Most of the idle RSS (~360 MB) is clean, file-backed library code (Lance,
            # DuckDB, Arrow) shared with other processes; the server's own memory is its
            # anonymous pages, and their peak is at most the idle amount plus the growth.
            anon_peak_mb = anon_before / 1024 + grown_mb
            print(f"anonymous memory idle {anon_before / 1024:.0f} MB, "
                  f"peak <= {anon_peak_mb:.0f} MB")
            assert anon_peak_mb < 300
    finally:
        stop_server(srv)
