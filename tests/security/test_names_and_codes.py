"""Reserved workspace names, PostgreSQL's SQLSTATEs for arithmetic and limits, and HTTP bodies
that are too big or too deep: each a clean refusal in the stable error shape, never a 500 and
never a write into the server's own directories on the lake."""

from __future__ import annotations

import errno
import json
import socket
from pathlib import Path

import psycopg
import pytest
import requests
from _security_support import Stack
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

import tarndb
from tarndb.api import create_app
from tarndb.engine.duck_errors import translate

RESERVED = ["tls", "TLS", "_catalog.lance", "_locks", "_deepmemory", "_anything", ".hidden",
            "pg_mine", "information_schema"]


def _lake_entries(stack: Stack) -> dict[str, list[str]]:
    """The lake's top entries and what each holds (the lock directory's contents come and go
    with the server's background leases: only its presence counts)."""
    out = {}
    for d in sorted(stack.lake.iterdir()):
        out[d.name] = sorted(p.name for p in d.iterdir()) \
            if d.is_dir() and d.name != "_locks" else []
    return out


@pytest.mark.parametrize("name", RESERVED)
def test_reserved_workspace_names_are_refused(stack: Stack, name: str) -> None:
    before = _lake_entries(stack)
    quoted = '"' + name + '"'
    for sql in (f"CREATE SCHEMA {quoted}", f"CREATE TABLE {quoted}.t (x INT)"):
        with stack.pg() as c, pytest.raises(psycopg.errors.ReservedName) as e:
            c.execute(sql)
        assert e.value.diag.message_primary == f'unacceptable schema name "{name}"'
        r = stack.http_sql("admin", sql)
        assert r.status_code == 400 and r.json()["error"]["sqlstate"] == "42939", r.text
    if name != "information_schema":
        # an upload to it would write <lake>/<name>/_files.lance
        r = requests.post(f"{stack.http_url}/workspaces/{name}/files",
                          headers=stack.headers("admin"), timeout=30, verify=stack.verify,
                          files={"file": ("x.txt", b"planted", "text/plain")})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["sqlstate"] in ("42939", "22023")
    assert _lake_entries(stack) == before
    assert name not in [r[0] for r in stack.admin_sql(
        "SELECT nspname FROM pg_namespace")] or name == "information_schema"


@pytest.mark.parametrize("expr", ["1/0", "1::int/0", "1.5/0", "1.0::float8/0", "5 % 0",
                                  "sum(x)/0 FROM (SELECT 1 AS x) s"])
def test_division_by_zero_is_22012(stack: Stack, expr: str) -> None:
    with stack.pg() as c, pytest.raises(psycopg.errors.DivisionByZero) as e:
        c.execute(f"SELECT {expr}")
    assert e.value.diag.message_primary == "division by zero"
    r = stack.http_sql("read", f"SELECT {expr}")
    assert r.status_code == 400 and r.json()["error"] == {
        "code": "division_by_zero", "sqlstate": "22012", "message": "division by zero"}


def test_deeply_nested_array_is_54000(stack: Stack) -> None:
    sql = "SELECT " + "ARRAY[" * 1000 + "1" + "]" * 1000
    with stack.pg() as c:
        with pytest.raises(psycopg.errors.ProgramLimitExceeded):
            c.execute(sql)
        assert c.execute("SELECT ARRAY[ARRAY[1, 2], ARRAY[3, 4]]").fetchone() == \
            ([[1, 2], [3, 4]],)
    r = stack.http_sql("read", sql)
    assert r.status_code == 400 and r.json()["error"]["sqlstate"] == "54000", r.text


def test_deep_json_body_is_400(stack: Stack) -> None:
    body = '{"query": "SELECT 1", "params": [' + "[" * 100_000 + "]" * 100_000 + "]}"
    r = requests.post(f"{stack.http_url}/workspaces/ws1/tables/query", data=body,
                      headers={**stack.headers("read"), "Content-Type": "application/json"},
                      timeout=60, verify=stack.verify)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_request"
    assert r.json()["error"]["message"] == "request body is nested too deeply"


def test_oversized_json_body_is_413(stack: Stack) -> None:
    """A body declared over the limit (256 MB by default) is refused before it is read."""
    host, port = stack.http_url.removeprefix("http://").split(":")
    token = stack.headers("read")["Authorization"]
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall((f"POST /workspaces/ws1/tables/query HTTP/1.1\r\nHost: x\r\n"
                      f"Authorization: {token}\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {300 << 20}\r\n\r\n").encode() + b'{"query": "')
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    err = json.loads(body)["error"]
    assert err["code"] == "payload_too_large" and set(err) >= {"code", "sqlstate", "message"}


@pytest.mark.parametrize("exc", [
    OSError(errno.ENOSPC, "No space left on device"),
    OSError("LanceError(IO): Generic LocalFileSystem error: Unable to write: No space left on "
            "device (os error 28)"),
])
def test_a_full_disk_is_53100(exc: OSError) -> None:
    err = translate(exc)
    assert (type(err).__name__, err.sqlstate, err.http_status) == ("DiskFull", "53100", 507)
    assert translate(OSError(errno.EACCES, "Permission denied")).sqlstate == "XX000"


def test_out_of_memory_is_53200() -> None:
    import duckdb

    err = translate(duckdb.OutOfMemoryException("Out of Memory Error: failed to offload data "
                                                "block of size 160.0 KiB"))
    assert (err.sqlstate, err.http_status, err.message) == ("53200", 503, "out of memory")


def test_a_full_disk_over_http_is_507(tmp_path: Path) -> None:
    """An endpoint that meets a full disk (an upload, a write) answers 507 disk_full in the
    stable error shape, not 500."""
    db = tarndb.open(str(tmp_path / "lake"))
    try:
        app = create_app(db)

        async def full(request: Request) -> Response:
            raise OSError(errno.ENOSPC, "No space left on device")

        app.router.routes.insert(0, Route("/full", full))
        with TestClient(app, raise_server_exceptions=False) as c:
            r = c.get("/full")
        assert r.status_code == 507
        assert r.json() == {"error": {"code": "disk_full", "sqlstate": "53100", "message":
                                      "could not write to the lake: no space left on device"}}
    finally:
        db.close()
