"""The ASGI app called in-process: auth, errors, SQL, tables, files, tokens."""

from __future__ import annotations

import base64
import hashlib
import uuid
from pathlib import Path
from typing import Any

import pytest
from _api_support import ORG, Tokens, bearer, png
from starlette.testclient import TestClient

from tarndb.api import ApiSettings, create_app


def _err(resp: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    err: dict[str, Any] = body["error"]
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["code"], str) and isinstance(err["sqlstate"], str)
    if code is not None:
        assert err["code"] == code, err
    return err


def q(client: TestClient, token: str, sql: str, params: list[Any] | None = None,
      ws: str = "ws1", **extra: Any) -> Any:
    body: dict[str, Any] = {"query": sql, **extra}
    if params is not None:
        body["params"] = params
    return client.post(f"/workspaces/{ws}/tables/query", headers=bearer(token), json=body)


# -- auth ---------------------------------------------------------------------------------


def test_health_needs_no_token(client: TestClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer not-a-real-token"}, {"Authorization": "tdb_x"},
])
def test_bad_credentials_are_401(client: TestClient, headers: dict[str, str]) -> None:
    for method, path in [("GET", "/me"), ("POST", "/workspaces/ws1/tables/query"),
                         ("GET", "/workspaces/ws1/files"), ("GET", "/tokens")]:
        r = client.request(method, path, headers=headers, json={"query": "select 1"})
        _err(r, 401, "unauthenticated")
        assert r.headers["www-authenticate"].startswith("Bearer")


def test_me(client: TestClient, tokens: Tokens) -> None:
    r = client.get("/me", headers=bearer(tokens.read))
    assert r.status_code == 200
    assert r.json()["org"] == ORG and r.json()["role"] == "read"
    assert r.json()["workspaces"] == ["ws1"]
    assert "sha256" not in r.json() and "token" not in r.json()


def test_org_header_checked(client: TestClient, tokens: Tokens) -> None:
    assert client.get("/me", headers=bearer(tokens.write, ORG)).status_code == 200
    _err(client.get("/me", headers=bearer(tokens.write, "globex")), 403,
         "insufficient_privilege")
    _err(client.get("/me", headers=bearer(tokens.other_org, ORG)), 403)


def test_workspace_isolation(client: TestClient, tokens: Tokens) -> None:
    assert q(client, tokens.write, "SELECT 1").status_code == 200
    _err(q(client, tokens.write, "SELECT 1", ws="ws2"), 403, "insufficient_privilege")
    _err(client.get("/workspaces/ws2/files", headers=bearer(tokens.read)), 403)
    up = client.post("/workspaces/ws2/files", headers=bearer(tokens.write),
                     files={"file": ("a.png", png(), "image/png")})
    _err(up, 403)
    # Reaching into another workspace by name from an allowed one is refused too.
    assert q(client, tokens.write_all, 'CREATE TABLE "ws2"."secret" (x INT)',
             ws="ws2").status_code == 200
    _err(q(client, tokens.write, 'SELECT * FROM "ws2"."secret"'), 403)
    assert q(client, tokens.write_all, 'SELECT * FROM "ws2"."secret"').status_code == 200


def test_read_token_cannot_write(client: TestClient, tokens: Tokens) -> None:
    assert q(client, tokens.write, "CREATE TABLE t (x INT)").status_code == 200
    _err(q(client, tokens.read, "INSERT INTO t VALUES (1)"), 403, "insufficient_privilege")
    _err(q(client, tokens.read, "DROP TABLE t"), 403)
    _err(client.post("/workspaces/ws1/tables/query/batch", headers=bearer(tokens.read),
                     json={"query": "INSERT INTO t VALUES ($1)", "params_batch": [[1]]}), 403)
    _err(client.post("/workspaces/ws1/files", headers=bearer(tokens.read),
                     files={"file": ("a.txt", b"hi", "text/plain")}), 403)
    _err(client.delete("/workspaces/ws1/tables/t", headers=bearer(tokens.read)), 403)
    r = q(client, tokens.read, "SELECT count(*) FROM t")
    assert r.status_code == 200 and r.json()["rows"] == [[0]]


def test_engine_enforces_token_limits(client: TestClient, tokens: Tokens) -> None:
    """What the statement check lets through, the session's own limits still refuse: a
    version function that writes a tag is a SELECT, but not for a read token."""
    assert q(client, tokens.write, "CREATE TABLE tg (x INT)").status_code == 200
    assert q(client, tokens.write, "INSERT INTO tg VALUES (1)").status_code == 200
    _err(q(client, tokens.read, "SELECT tarndb_tag('tg', 'v1')"), 403,
         "insufficient_privilege")
    assert q(client, tokens.write, "SELECT tarndb_tag('tg', 'v1')").status_code == 200


# -- malformed requests --------------------------------------------------------------------


@pytest.mark.parametrize(("body", "content_type"), [
    (b"{not json", "application/json"),
    (b"[1, 2]", "application/json"),
    (b'{"params": []}', "application/json"),
    (b'{"query": 42}', "application/json"),
    (b'{"query": "select 1", "params": {"a": 1}}', "application/json"),
    (b'{"query": "select 1", "timeout_ms": -5}', "application/json"),
    (b'{"query": "select 1", "timeout_ms": "soon"}', "application/json"),
    (b"\xff\xfe\x00", "application/json"),
    (b"", "application/json"),
    (b'{"query": "select \\ud800"}', "application/json"),
    (b'{"query": "select $1", "params": ["\\udfff"]}', "application/json"),
])
def test_malformed_query_bodies_are_400(client: TestClient, tokens: Tokens, body: bytes,
                                        content_type: str) -> None:
    r = client.post("/workspaces/ws1/tables/query", content=body,
                    headers={**bearer(tokens.write), "Content-Type": content_type})
    _err(r, 400)


@pytest.mark.parametrize("body", [
    {"query": "select $1"}, {"query": "select $1", "params_batch": [1, 2]},
    {"query": "select $1", "params_batch": "x"},
])
def test_malformed_batch_bodies_are_400(client: TestClient, tokens: Tokens,
                                        body: dict[str, Any]) -> None:
    _err(client.post("/workspaces/ws1/tables/query/batch", headers=bearer(tokens.write),
                     json=body), 400, "invalid_request")


def test_bad_paths(client: TestClient, tokens: Tokens) -> None:
    h = bearer(tokens.write_all)
    _err(client.get("/nope", headers=h), 404, "not_found")
    _err(client.put("/workspaces/ws1/tables/query", headers=h), 405, "method_not_allowed")
    _err(client.get("/workspaces/ws1/files/not-a-uuid", headers=h), 400, "invalid_request")
    _err(client.get("/workspaces/ws1/files/not-a-uuid/content", headers=h), 400)
    _err(client.get(f"/workspaces/ws1/files/{uuid.uuid4()}", headers=h), 404, "not_found")
    _err(client.get(f"/workspaces/ws1/files/{uuid.uuid4()}/download", headers=h), 404)
    _err(client.get("/workspaces/%2E%2E/files", headers=h), 400)
    r = client.get("/workspaces/..%2Fetc/files", headers=h)  # never matches a route
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    _err(client.get("/workspaces/a%00b/files", headers=h), 400)
    _err(client.get("/workspaces/ws1/tables/%2E%2E", headers=h), 400)
    _err(client.get("/workspaces/ws1/tables/a%00b", headers=h), 400)
    _err(client.get("/workspaces/ws1/tables/nosuch", headers=h), 404, "undefined_table")


def test_sql_errors_carry_sqlstate(client: TestClient, tokens: Tokens) -> None:
    err = _err(q(client, tokens.write, "SELEC 1"), 400)
    assert err["sqlstate"] == "42601"
    err = _err(q(client, tokens.write, "SELECT * FROM missing_table"), 404)
    assert err["sqlstate"] == "42P01"
    assert q(client, tokens.write, "CREATE TABLE dup (x INT)").status_code == 200
    err = _err(q(client, tokens.write, "CREATE TABLE dup (x INT)"), 409)
    assert err["sqlstate"] == "42P07"


def test_body_size_limit(db: Any, tokens: Tokens) -> None:
    app = create_app(db, ApiSettings(org=ORG, max_body_bytes=1000, max_upload_bytes=2000))
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.post("/workspaces/ws1/tables/query", headers=bearer(tokens.write),
                   json={"query": "select '" + "x" * 2000 + "'"})
        _err(r, 413, "payload_too_large")
        r = c.post("/workspaces/ws1/files", headers=bearer(tokens.write),
                   files={"file": ("big.bin", b"x" * 5000, "application/octet-stream")})
        _err(r, 413, "payload_too_large")
        r = c.get("/workspaces/ws1/files", headers=bearer(tokens.write))
        assert r.json()["total"] == 0


# -- SQL ----------------------------------------------------------------------------------


def test_query_value_encoding(client: TestClient, tokens: Tokens, db: Any) -> None:
    r = q(client, tokens.write, """
        CREATE TABLE enc (id BIGSERIAL PRIMARY KEY, u UUID, j JSONB, v FLOAT4[],
                          m FLOAT4[][], b BYTEA, ts TIMESTAMPTZ, n NUMERIC(10,2), t TEXT)
    """)
    assert r.status_code == 200, r.text
    u = uuid.uuid4()
    r = q(client, tokens.write,
          "INSERT INTO enc (u, j, v, m, b, ts, n, t) VALUES "
          "($1::uuid, $2::jsonb, $3::float4[], $4::float4[][], $5::bytea, $6::timestamptz, "
          "$7::numeric, $8) RETURNING id",
          [str(u), {"k": [1, 2], "s": "x"}, [0.5, 1.5], [[1.0, 2.0], [3.0, 4.0]],
           "\\x00ff", "2025-06-01T12:00:00Z", "12.25", "hé"])
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [[1]]
    r = q(client, tokens.read, "SELECT u, j, v, m, b, ts, n, t FROM enc")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["columns"] == ["u", "j", "v", "m", "b", "ts", "n", "t"]
    assert body["row_count"] == 1
    row = body["rows"][0]
    assert row[0] == str(u)
    assert row[1] == {"k": [1, 2], "s": "x"}
    assert row[2] == [0.5, 1.5]
    assert row[3] == [[1.0, 2.0], [3.0, 4.0]]
    # bytea goes out as base64 of exactly the bytes the engine holds.
    assert base64.b64decode(row[4]) == db.session(workspace="ws1").execute(
        "SELECT b FROM enc").rows[0][0]
    assert row[5].startswith("2025-06-01T12:00:00")
    assert row[6] == 12.25
    assert row[7] == "hé"


def test_surrogate_pairs_are_fine(client: TestClient, tokens: Tokens) -> None:
    r = client.post("/workspaces/ws1/tables/query", headers={**bearer(tokens.write),
                    "Content-Type": "application/json"},
                    content=b'{"query": "select $1::text AS e", "params": ["\\ud83d\\ude00"]}')
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [["\U0001F600"]]


def test_query_params_and_row_count(client: TestClient, tokens: Tokens) -> None:
    r = q(client, tokens.write, "SELECT $1::int + 1 AS a, $2::text AS b", [41, "x"])
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [[42, "x"]] and r.json()["columns"] == ["a", "b"]
    assert q(client, tokens.write, "CREATE TABLE rc (x INT)").status_code == 200
    r = q(client, tokens.write, "INSERT INTO rc VALUES (1), (2), (3)")
    assert r.json()["row_count"] == 3 and r.json()["rows"] == []


def test_batch_is_one_transaction(client: TestClient, tokens: Tokens) -> None:
    assert q(client, tokens.write,
             "CREATE TABLE b (id BIGSERIAL PRIMARY KEY, x INT NOT NULL, tag TEXT)"
             ).status_code == 200
    ok = client.post("/workspaces/ws1/tables/query/batch", headers=bearer(tokens.write),
                     json={"query": "INSERT INTO b (x, tag) VALUES ($1, $2)",
                           "params_batch": [[1, "a"], [2, "b"], [3, "c"]]})
    assert ok.status_code == 200, ok.text
    assert ok.json()["rows_affected"] == 3
    bad = client.post("/workspaces/ws1/tables/query/batch", headers=bearer(tokens.write),
                      json={"query": "INSERT INTO b (x, tag) VALUES ($1, $2)",
                            "params_batch": [[4, "d"], [None, "e"], [6, "f"]]})
    err = _err(bad, 409)
    assert err["sqlstate"] == "23502" and err["batch_index"] == 1
    r = q(client, tokens.read, "SELECT x FROM b ORDER BY x")
    assert r.json()["rows"] == [[1], [2], [3]]  # nothing of the failed batch


def test_batch_of_inserts_is_one_statement(client: TestClient, tokens: Tokens) -> None:
    from tarndb import metrics

    def inserts() -> float:
        return metrics.STATEMENTS.labels("insert", "ok")._value.get()  # type: ignore[no-any-return]

    assert q(client, tokens.write, "CREATE TABLE bb (id INT8 PRIMARY KEY, v FLOAT4[])"
             ).status_code == 200
    before = inserts()
    ok = client.post("/workspaces/ws1/tables/query/batch", headers=bearer(tokens.write),
                     json={"query": "INSERT INTO bb VALUES ($1, $2)",
                           "params_batch": [[i, [i, 0.5]] for i in range(200)]})
    assert ok.status_code == 200, ok.text
    assert ok.json()["rows_affected"] == 200 and ok.json()["statements"] == 200
    assert inserts() - before == 1
    r = q(client, tokens.read, "SELECT count(*), sum(id), max(v[1]) FROM bb")
    assert r.json()["rows"] == [[200, sum(range(200)), 199.0]]


def test_timeout(client: TestClient, tokens: Tokens) -> None:
    import time

    t0 = time.monotonic()
    r = q(client, tokens.write,
          "SELECT sum(a.range * b.range) FROM range(200000) a, range(200000) b",
          timeout_ms=200)
    _err(r, 408, "query_canceled")
    assert time.monotonic() - t0 < 10


# -- tables -------------------------------------------------------------------------------


def test_tables_crud(client: TestClient, tokens: Tokens) -> None:
    h = bearer(tokens.write)
    schema = {"id": "BIGSERIAL PRIMARY KEY", "image_id": "BIGINT", "bboxes": "JSONB",
              "file_id": "UUID", "emb": "FLOAT4[][]"}
    r = client.post("/workspaces/ws1/tables", headers=h, json={"name": "coco", "schema": schema})
    assert r.status_code == 201, r.text
    assert [c["name"] for c in r.json()["columns"]] == list(schema)
    assert r.json()["row_count"] == 0
    _err(client.post("/workspaces/ws1/tables", headers=h,
                     json={"name": "coco", "schema": schema}), 409)
    assert client.post("/workspaces/ws1/tables", headers=h,
                       json={"name": "coco", "schema": schema, "if_not_exists": True}
                       ).status_code == 201
    q(client, tokens.write, "INSERT INTO coco (image_id) VALUES (1), (2)")
    d = client.get("/workspaces/ws1/tables/coco", headers=h).json()
    assert d["row_count"] == 2 and d["primary_key"] == ["id"]
    types = {c["name"]: c["type"] for c in d["columns"]}
    assert types["file_id"] == "uuid" and types["bboxes"] == "jsonb"
    names = [t["name"] for t in client.get("/workspaces/ws1/tables", headers=h).json()["tables"]]
    assert "coco" in names
    assert client.delete("/workspaces/ws1/tables/coco", headers=h).status_code == 200
    _err(client.get("/workspaces/ws1/tables/coco", headers=h), 404)
    _err(client.delete("/workspaces/ws1/tables/coco", headers=h), 404)


@pytest.mark.parametrize("schema", [
    {"x": "INT); DROP TABLE other; --"}, {"x": "TEXT DEFAULT 'a'"}, {"x": "INT /* c */"},
    {}, {"x": 5}, [], "x int",
])
def test_create_table_rejects_injection(client: TestClient, tokens: Tokens, schema: Any) -> None:
    _err(client.post("/workspaces/ws1/tables", headers=bearer(tokens.write),
                     json={"name": "t", "schema": schema}), 400)


# -- files --------------------------------------------------------------------------------


def _upload(client: TestClient, token: str, data: bytes, name: str = "example.png",
            ctype: str | None = "image/png", ws: str = "ws1") -> Any:
    part = (name, data, ctype) if ctype else (name, data)
    return client.post(f"/workspaces/{ws}/files", headers=bearer(token, ORG),
                       files={"file": part})


def test_upload_and_fetch(client: TestClient, tokens: Tokens) -> None:
    data = png()
    r = _upload(client, tokens.write, data)
    assert r.status_code == 201, r.text
    meta = r.json()
    assert set(meta) >= {"id", "filename", "content_type", "size", "sha256", "created_at"}
    assert uuid.UUID(meta["id"]).version == 4
    assert meta["size"] == len(data) and meta["sha256"] == hashlib.sha256(data).hexdigest()
    assert meta["content_type"] == "image/png" and meta["filename"] == "example.png"
    h = bearer(tokens.read)
    assert client.get(f"/workspaces/ws1/files/{meta['id']}", headers=h).json() == meta
    c = client.get(f"/workspaces/ws1/files/{meta['id']}/content", headers=h)
    assert c.status_code == 200 and c.content == data
    assert c.headers["content-type"] == "image/png"
    assert c.headers["content-disposition"].startswith("inline")
    assert c.headers["etag"] == f'"{meta["sha256"]}"'
    assert "max-age" in c.headers["cache-control"]
    assert c.headers["accept-ranges"] == "bytes"
    assert c.headers["x-content-type-options"] == "nosniff"
    d = client.get(f"/workspaces/ws1/files/{meta['id']}/download", headers=h)
    assert d.content == data
    assert d.headers["content-disposition"].startswith('attachment; filename="example.png"')
    listing = client.get("/workspaces/ws1/files", headers=h).json()
    assert listing["total"] == 1 and listing["files"][0]["id"] == meta["id"]


def test_upload_sniffs_without_type(client: TestClient, tokens: Tokens,
                                    mp4_bytes: bytes) -> None:
    r = _upload(client, tokens.write, mp4_bytes, "clip.bin", None)
    assert r.status_code == 201 and r.json()["content_type"] == "video/mp4"
    r = _upload(client, tokens.write, png(), "x", "application/octet-stream")
    assert r.json()["content_type"] == "image/png"


def test_ranges_and_conditional_get(client: TestClient, tokens: Tokens,
                                    mp4_bytes: bytes) -> None:
    meta = _upload(client, tokens.write, mp4_bytes, "clip.mp4", "video/mp4").json()
    url = f"/workspaces/ws1/files/{meta['id']}/content"
    h = bearer(tokens.read)
    size = len(mp4_bytes)
    r = client.get(url, headers={**h, "Range": "bytes=100-199"})
    assert r.status_code == 206 and r.content == mp4_bytes[100:200]
    assert r.headers["content-range"] == f"bytes 100-199/{size}"
    assert r.headers["content-length"] == "100"
    r = client.get(url, headers={**h, "Range": "bytes=-50"})
    assert r.status_code == 206 and r.content == mp4_bytes[-50:]
    r = client.get(url, headers={**h, "Range": f"bytes={size - 10}-"})
    assert r.status_code == 206 and r.content == mp4_bytes[-10:]
    r = client.get(url, headers={**h, "Range": f"bytes={size}-"})
    _err(r, 416, "range_not_satisfiable")
    assert r.headers["content-range"] == f"bytes */{size}"
    r = client.get(url, headers={**h, "Range": "bytes=0-1,5-6"})
    assert r.status_code == 200 and r.content == mp4_bytes
    etag = r.headers["etag"]
    r = client.get(url, headers={**h, "If-None-Match": etag})
    assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == etag
    r = client.get(url, headers={**h, "If-None-Match": '"other"'})
    assert r.status_code == 200
    r = client.get(url, headers={**h, "Range": "bytes=0-9", "If-Range": '"stale"'})
    assert r.status_code == 200 and len(r.content) == size
    r = client.get(url, headers={**h, "Range": "bytes=0-9", "If-Range": etag})
    assert r.status_code == 206 and r.content == mp4_bytes[:10]
    r = client.head(url, headers=h)
    assert r.status_code == 200 and r.headers["content-length"] == str(size)


def test_unicode_filename(client: TestClient, tokens: Tokens) -> None:
    meta = _upload(client, tokens.write, png(), "фото 1'x.png", "image/png").json()
    assert meta["filename"] == "фото 1'x.png"
    r = client.get(f"/workspaces/ws1/files/{meta['id']}/download", headers=bearer(tokens.read))
    cd = r.headers["content-disposition"]
    assert cd.startswith("attachment; filename=\"")
    assert "filename*=UTF-8''%D1%84%D0%BE%D1%82%D0%BE%201%27x.png" in cd
    assert cd.isascii()


def test_big_json_body(client: TestClient, tokens: Tokens) -> None:
    vec = [float(i % 7) for i in range(20000)]
    r = q(client, tokens.write, "SELECT array_length($1::float4[], 1) AS n", [vec])
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [[20000]]


def test_empty_file(client: TestClient, tokens: Tokens) -> None:
    meta = _upload(client, tokens.write, b"", "empty.txt", "text/plain").json()
    assert meta["size"] == 0
    r = client.get(f"/workspaces/ws1/files/{meta['id']}/content", headers=bearer(tokens.read))
    assert r.status_code == 200 and r.content == b""


def test_delete_file(client: TestClient, tokens: Tokens, db: Any) -> None:
    meta = _upload(client, tokens.write, b"bye", "bye.txt", "text/plain").json()
    _err(client.delete(f"/workspaces/ws1/files/{meta['id']}", headers=bearer(tokens.read)), 403)
    assert client.delete(f"/workspaces/ws1/files/{meta['id']}",
                         headers=bearer(tokens.write)).status_code == 200
    _err(client.get(f"/workspaces/ws1/files/{meta['id']}/content",
                    headers=bearer(tokens.read)), 404)
    blobs = list((Path(db.lake.uri) / "ws1" / "_files").rglob("*"))
    assert not [p for p in blobs if p.is_file()]


def test_list_files_paginates(client: TestClient, tokens: Tokens) -> None:
    ids = [_upload(client, tokens.write, f"{i}".encode(), f"{i}.txt", "text/plain").json()["id"]
           for i in range(5)]
    h = bearer(tokens.read)
    p1 = client.get("/workspaces/ws1/files?limit=2", headers=h).json()
    p2 = client.get("/workspaces/ws1/files?limit=2&offset=2", headers=h).json()
    p3 = client.get("/workspaces/ws1/files?limit=2&offset=4", headers=h).json()
    assert p1["next_offset"] == 2 and p3["next_offset"] is None
    got = [f["id"] for p in (p1, p2, p3) for f in p["files"]]
    assert got == list(reversed(ids))
    _err(client.get("/workspaces/ws1/files?limit=0", headers=h), 400)
    _err(client.get("/workspaces/ws1/files?limit=x", headers=h), 400)


@pytest.mark.parametrize(("body", "ctype"), [
    (b"", "multipart/form-data; boundary=XYZ"),
    (b"--XYZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\r\n"
     b"partial bytes without the closing boundary", "multipart/form-data; boundary=XYZ"),
    (b"--XYZ\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nv\r\n--XYZ--\r\n",
     "multipart/form-data; boundary=XYZ"),
    (b"garbage that is not multipart at all", "multipart/form-data; boundary=XYZ"),
    (b'{"file": "x"}', "application/json"),
    (b"x", "multipart/form-data"),
])
def test_bad_uploads_are_400_and_leave_nothing(client: TestClient, tokens: Tokens, db: Any,
                                               body: bytes, ctype: str) -> None:
    r = client.post("/workspaces/ws1/files", content=body,
                    headers={**bearer(tokens.write), "Content-Type": ctype})
    _err(r, 400)
    files_dir = Path(db.lake.uri) / "ws1" / "_files"
    assert not [p for p in files_dir.rglob("*") if p.is_file()] if files_dir.exists() else True
    assert client.get("/workspaces/ws1/files", headers=bearer(tokens.read)).json()["total"] == 0


# -- tokens -------------------------------------------------------------------------------


def test_token_admin_endpoints(client: TestClient, tokens: Tokens) -> None:
    h = bearer(tokens.admin)
    _err(client.get("/tokens", headers=bearer(tokens.write)), 403)
    r = client.post("/tokens", headers=h,
                    json={"name": "ci", "role": "read", "workspaces": ["ws3"]})
    assert r.status_code == 201, r.text
    new = r.json()
    assert new["token"] and new["role"] == "read" and new["workspaces"] == ["ws3"]
    assert client.get("/me", headers=bearer(new["token"])).json()["id"] == new["id"]
    _err(client.get("/workspaces/ws1/files", headers=bearer(new["token"])), 403)
    listed = client.get("/tokens", headers=h).json()["tokens"]
    assert new["id"] in [t["id"] for t in listed]
    assert all("token" not in t and "sha256" not in t for t in listed)
    assert all(t["org"] == ORG for t in listed)  # not globex's
    assert client.delete(f"/tokens/{new['id']}", headers=h).status_code == 200
    _err(client.get("/me", headers=bearer(new["token"])), 401)
    _err(client.delete(f"/tokens/{new['id']}", headers=h), 404)
    _err(client.delete("/tokens/../etc", headers=h), 404)
    _err(client.post("/tokens", headers=h, json={"role": "root"}), 400)
    _err(client.post("/tokens", headers=h, json={"org": "globex"}), 403)
    _err(client.post("/tokens", headers=h, json={"workspaces": ["../x"]}), 400)


def test_scoped_admin_cannot_widen(db: Any, client: TestClient) -> None:
    from tarndb.api import TokenStore

    scoped, _ = TokenStore(db.catalog).create(org=ORG, role="admin", workspaces=["ws1"])
    h = bearer(scoped)
    _err(client.post("/tokens", headers=h, json={"workspaces": "*"}), 403)
    _err(client.post("/tokens", headers=h, json={"workspaces": ["ws1", "ws2"]}), 403)
    r = client.post("/tokens", headers=h, json={"workspaces": ["ws1"], "role": "write"})
    assert r.status_code == 201
    listed = {t["id"] for t in client.get("/tokens", headers=h).json()["tokens"]}
    assert r.json()["id"] in listed
    assert len(listed) < len(TokenStore(db.catalog).list(ORG))


def test_first_start_token(db: Any) -> None:
    from tarndb.api import TokenStore, bootstrap_admin_token

    # The fixture db has no tokens yet when this test does not ask for them.
    minted = bootstrap_admin_token(db, ApiSettings(org=ORG))
    assert minted and minted.startswith("tdb_")
    assert bootstrap_admin_token(db, ApiSettings(org=ORG)) is None  # only once
    tok = TokenStore(db.catalog).authenticate(minted)
    assert tok is not None and tok.role == "admin" and tok.workspaces is None
    assert bootstrap_admin_token(db, ApiSettings(org=ORG, token="my-own-token-1")) is None
    own = TokenStore(db.catalog).authenticate("my-own-token-1")
    assert own is not None and own.role == "admin" and own.org == ORG


def test_files_join_in_sql(client: TestClient, tokens: Tokens) -> None:
    meta = _upload(client, tokens.write, png(), "joined.png", "image/png").json()
    assert q(client, tokens.write, "CREATE TABLE pics (id BIGSERIAL PRIMARY KEY, "
             "file_id UUID, label TEXT)").status_code == 200
    assert q(client, tokens.write, "INSERT INTO pics (file_id, label) VALUES ($1::uuid, 'a')",
             [meta["id"]]).status_code == 200
    r = q(client, tokens.read, 'SELECT p.label, f.filename, f.size, f.content_type '
          'FROM pics p JOIN "ws1"."_files" f ON f.id = p.file_id')
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [["a", "joined.png", meta["size"], "image/png"]]
    denied = q(client, tokens.write, 'DELETE FROM "ws1"."_files"')  # a read-only table
    assert denied.status_code in (400, 403) and denied.json()["error"]["sqlstate"]
