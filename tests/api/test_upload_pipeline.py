"""Files through a real server: uploads parsed as they arrive and hashed and written ~1 MiB
at a time on a worker thread (api/_multipart.py), uvicorn reading 1 MiB at a time, and
downloads sent with ``sendfile`` (api/_protocol.py)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3
from _api_support import Server, start_server, stop_server

from _ports import free_port
from tarndb.api._protocol import READ_SIZE, http_protocol

BOUNDARY = "pipelineboundary42"


def _blob_files(server: Server, ws: str) -> list[Path]:
    root = server.lake / ws / "_files"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _chunked_body(payload: bytes, piece: int) -> Iterator[bytes]:
    """A multipart body sent with chunked encoding (no Content-Length), in odd-sized pieces
    so part boundaries and batch boundaries fall anywhere."""
    body = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
            f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"p.bin\"\r\nContent-Type: application/x-test\r\n\r\n").encode() \
        + payload + f"\r\n--{BOUNDARY}--\r\n".encode()
    for start in range(0, len(body), piece):
        yield body[start:start + piece]


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("pipeline") / "lake",
                       {"TARNDB_MAX_UPLOAD_BYTES": str(6 << 20)})
    yield srv
    stop_server(srv)


def test_chunked_upload_lands_whole_with_its_hash(limited: Server) -> None:
    # Near-boundaries in the data ("\r\n--" + a prefix of the boundary) must stay data,
    # including where they straddle two reads.
    near = f"\r\n--{BOUNDARY[:-1]}".encode()
    payload = b"".join(os.urandom(300_001) + near for _ in range(15))  # ~4.5 MB
    h = {"Authorization": f"Bearer {limited.token}",
         "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    r = requests.post(f"{limited.url}/workspaces/pipe/files", headers=h,
                      data=_chunked_body(payload, 77_777))
    assert r.status_code == 201, r.text
    meta = r.json()
    assert meta["size"] == len(payload)
    assert meta["sha256"] == hashlib.sha256(payload).hexdigest()
    assert meta["content_type"] == "application/x-test"
    blobs = _blob_files(limited, "pipe")
    assert len(blobs) == 1 and blobs[0].read_bytes() == payload
    auth = {"Authorization": f"Bearer {limited.token}"}
    whole = requests.get(f"{limited.url}/workspaces/pipe/files/{meta['id']}/content",
                         headers=auth)
    assert whole.status_code == 200 and whole.content == payload
    assert whole.headers["ETag"] == f'"{meta["sha256"]}"'
    start, end = (1 << 20) - 5, (3 << 20) + 7  # across the download's chunks
    part = requests.get(f"{limited.url}/workspaces/pipe/files/{meta['id']}/content",
                        headers={**auth, "Range": f"bytes={start}-{end}"})
    assert part.status_code == 206 and part.content == payload[start:end + 1]


def test_chunked_upload_over_the_limit_mid_stream_leaves_nothing(limited: Server) -> None:
    # No Content-Length, so the limit can only be found while writing: the write on the
    # worker thread fails, the upload stops, and its partial blob is removed.
    h = {"Authorization": f"Bearer {limited.token}",
         "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    r = requests.post(f"{limited.url}/workspaces/over/files", headers=h,
                      data=_chunked_body(os.urandom(10 << 20), 1 << 20))
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    assert _blob_files(limited, "over") == []
    listing = requests.get(f"{limited.url}/workspaces/over/files",
                           headers={"Authorization": f"Bearer {limited.token}"})
    assert listing.status_code == 200 and listing.json()["total"] == 0
    # The server goes on serving uploads.
    ok = requests.post(f"{limited.url}/workspaces/over/files", headers=h,
                       data=_chunked_body(b"small", 3))
    assert ok.status_code == 201 and ok.json()["size"] == 5


def test_protocol_reads_a_connection_in_large_pieces() -> None:
    import uvicorn
    from uvicorn.server import ServerState

    cls = http_protocol()
    assert not isinstance(cls, str)  # httptools is a dependency

    async def main() -> int:
        async def app(scope: dict, receive: object, send: object) -> None:
            return None

        config = uvicorn.Config(app, http=cls, log_level="warning")
        config.load()
        state = ServerState()
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: cls(config=config, server_state=state, app_state={}), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(100):
            if state.connections:
                break
            await asyncio.sleep(0.01)
        (conn,) = state.connections
        size = int(conn.transport.max_size)  # type: ignore[attr-defined]
        writer.close()
        server.close()
        return size

    assert asyncio.run(main()) == READ_SIZE > 256 * 1024


def _upload(server: Server, ws: str, payload: bytes) -> str:
    h = {"Authorization": f"Bearer {server.token}",
         "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    r = requests.post(f"{server.url}/workspaces/{ws}/files", headers=h,
                      data=_chunked_body(payload, 1 << 20))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def test_sendfile_downloads_on_one_kept_alive_connection(limited: Server) -> None:
    payload = os.urandom((2 << 20) + 12345)
    fid = _upload(limited, "send", payload)
    url = f"{limited.url}/workspaces/send/files/{fid}"
    auth = {"Authorization": f"Bearer {limited.token}"}
    with requests.Session() as s:
        # Several responses on one connection: each sendfile body ends exactly where its
        # Content-Length says, or the next response would be read out of its bytes.
        for _ in range(2):
            whole = s.get(f"{url}/download", headers=auth)
            assert whole.status_code == 200 and whole.content == payload
            assert whole.headers["Content-Disposition"].startswith("attachment")
            tail = s.get(f"{url}/content", headers={**auth, "Range": "bytes=-1000"})
            assert tail.status_code == 206 and tail.content == payload[-1000:]
            assert tail.headers["Content-Range"] == f"bytes {len(payload) - 1000}-" \
                f"{len(payload) - 1}/{len(payload)}"
            meta = s.get(url, headers=auth)
            assert meta.status_code == 200 and meta.json()["size"] == len(payload)
        head = s.head(f"{url}/content", headers=auth)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["Content-Length"] == str(len(payload))
        etag = whole.headers["ETag"]
        assert s.get(f"{url}/content", headers={**auth, "If-None-Match": etag}).status_code \
            == 304
        other = s.get(f"{url}/content", headers=bearer_other(limited))
        assert other.status_code == 401


def bearer_other(server: Server) -> dict[str, str]:
    return {"Authorization": "Bearer tdb_not_a_token_000000000000000"}


def test_client_leaving_mid_download_does_not_hurt_the_server(limited: Server) -> None:
    payload = os.urandom(5 << 20)
    fid = _upload(limited, "leave", payload)
    port = int(limited.url.rsplit(":", 1)[1])
    for _ in range(3):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before the window
            sock.connect(("127.0.0.1", port))
            sock.sendall((f"GET /workspaces/leave/files/{fid}/content HTTP/1.1\r\n"
                          f"Host: x\r\nAuthorization: Bearer {limited.token}\r\n\r\n")
                         .encode())
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            time.sleep(0.1)  # the server is mid-body, blocked on this socket
    r = requests.get(f"{limited.url}/workspaces/leave/files/{fid}/content",
                     headers={"Authorization": f"Bearer {limited.token}"})
    assert r.status_code == 200 and r.content == payload
    assert requests.get(f"{limited.url}/health").status_code == 200


def test_tarndb_serve_over_https_keeps_the_streamed_paths(tmp_path: Path) -> None:
    """``tarndb serve`` with HTTPS: no 1 MiB reads or sendfile on TLS transports (their own
    read sizes, and TLS needs the bytes in user space); uploads and downloads still work."""
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    pg_port, http_port = free_port(), free_port()
    token = "tdb_test_tls_files_token_0123456789"
    env = {**os.environ, "TARNDB_TOKEN": token, "TARNDB_PASSWORD": "pw", "TARNDB_DEMO": "false",
           "TARNDB_HTTP_TLS": "true", "HF_HUB_OFFLINE": "1"}
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tarndb", "serve", "--data", str(tmp_path / "lake"),
             "--host", "127.0.0.1", "--pg-port", str(pg_port), "--http-port", str(http_port)],
            env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"https://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "tarndb serve did not start"
            try:
                if requests.get(f"{url}/health", timeout=1, verify=False).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.2)
        payload = os.urandom((3 << 20) + 7)
        h = {"Authorization": f"Bearer {token}"}
        r = requests.post(f"{url}/workspaces/tlsws/files", verify=False, data=_chunked_body(
            payload, 1 << 20), headers={**h, "Content-Type":
                                        f"multipart/form-data; boundary={BOUNDARY}"})
        assert r.status_code == 201, r.text
        assert r.json()["sha256"] == hashlib.sha256(payload).hexdigest()
        fid = r.json()["id"]
        with requests.Session() as s:
            whole = s.get(f"{url}/workspaces/tlsws/files/{fid}/content", headers=h, verify=False)
            assert whole.status_code == 200 and whole.content == payload
            part = s.get(f"{url}/workspaces/tlsws/files/{fid}/content", verify=False,
                         headers={**h, "Range": "bytes=100-199"})
            assert part.status_code == 206 and part.content == payload[100:200]
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert "Traceback" not in log.read_text()


def test_concurrent_uploads_each_land_whole(limited: Server) -> None:
    # Each upload hashes and writes on the worker threads while its next batch arrives; six
    # at once must not mix their bytes, hashes or rows.
    payloads = [os.urandom((3 << 20) + 1000 * i + 1) for i in range(6)]
    h = {"Authorization": f"Bearer {limited.token}",
         "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}

    def upload(payload: bytes) -> dict[str, Any]:
        r = requests.post(f"{limited.url}/workspaces/many/files", headers=h,
                          data=_chunked_body(payload, 300_007))
        assert r.status_code == 201, r.text
        return dict(r.json())

    with ThreadPoolExecutor(len(payloads)) as pool:
        metas = list(pool.map(upload, payloads))
    auth = {"Authorization": f"Bearer {limited.token}"}
    for payload, meta in zip(payloads, metas, strict=True):
        assert meta["size"] == len(payload)
        assert meta["sha256"] == hashlib.sha256(payload).hexdigest()
        back = requests.get(f"{limited.url}/workspaces/many/files/{meta['id']}/content",
                            headers=auth)
        assert back.status_code == 200 and back.content == payload
    listing = requests.get(f"{limited.url}/workspaces/many/files", headers=auth)
    assert listing.json()["total"] == len(payloads)
    assert len(_blob_files(limited, "many")) == len(payloads)


def test_kept_alive_connection_carries_uploads_then_json(limited: Server) -> None:
    # The request body pieces uvicorn keeps for the app (api/_protocol.py) belong to one
    # request: the next request on the same connection starts from none.
    payload = os.urandom((2 << 20) + 3)
    h = {"Authorization": f"Bearer {limited.token}"}
    with requests.Session() as s:
        for piece in (65_536, 1 << 20):
            r = s.post(f"{limited.url}/workspaces/alive/files", data=_chunked_body(
                payload, piece), headers={
                    **h, "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
            assert r.status_code == 201, r.text
            assert r.json()["sha256"] == hashlib.sha256(payload).hexdigest()
        q = s.post(f"{limited.url}/workspaces/alive/tables/query", headers=h,
                   json={"query": "SELECT 41 + 1 AS answer"})
        assert q.status_code == 200, q.text
        assert q.json()["rows"] == [[42]]


def test_client_leaving_mid_chunked_upload_leaves_no_file(limited: Server) -> None:
    # The client goes away while a batch is still being hashed and written: the upload waits
    # for that batch, then removes the blob; no metadata row is ever written.
    port = int(limited.url.rsplit(":", 1)[1])
    head = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"gone.bin\"\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall((f"POST /workspaces/gone/files HTTP/1.1\r\nHost: x\r\n"
                      f"Authorization: Bearer {limited.token}\r\n"
                      f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n").encode())
        for piece in [head] + [os.urandom(1 << 20) for _ in range(4)]:
            sock.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        deadline = time.monotonic() + 10
        while not _blob_files(limited, "gone") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _blob_files(limited, "gone"), "the upload should be streaming to the lake"
    deadline = time.monotonic() + 10
    while _blob_files(limited, "gone") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _blob_files(limited, "gone") == []
    listing = requests.get(f"{limited.url}/workspaces/gone/files",
                           headers={"Authorization": f"Bearer {limited.token}"})
    assert listing.status_code == 200 and listing.json()["total"] == 0


@pytest.fixture
def tiny_lake(tmp_path: Path) -> Iterator[Path]:
    """A lake on a 24 MiB tmpfs, so the disk fills up mid-upload (needs root to mount)."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mnt)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt / "lake"
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_mid_upload_is_a_507_and_leaves_nothing(tiny_lake: Path) -> None:
    # The write fails with ENOSPC on the writing thread; the error reaches the client in the
    # API's JSON shape, the partial blob is removed, and the server goes on.
    srv = start_server(tiny_lake)
    try:
        h = {"Authorization": f"Bearer {srv.token}",
             "Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        r = requests.post(f"{srv.url}/workspaces/full/files", headers=h,
                          data=_chunked_body(os.urandom(40 << 20), 1 << 20))
        assert r.status_code == 507, r.text
        assert r.json()["error"]["code"] == "disk_full"
        assert _blob_files(srv, "full") == []
        auth = {"Authorization": f"Bearer {srv.token}"}
        assert requests.get(f"{srv.url}/workspaces/full/files", headers=auth).json()[
            "total"] == 0
        ok = requests.post(f"{srv.url}/workspaces/full/files", headers=h,
                           data=_chunked_body(b"fits", 2))
        assert ok.status_code == 201 and ok.json()["size"] == 4
    finally:
        stop_server(srv)
