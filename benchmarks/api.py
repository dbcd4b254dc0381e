"""HTTP API benchmark: file upload/download throughput and the query endpoint's overhead.

    python benchmarks/api.py [--size-mb 256] [--queries 300]

Starts ``python -m tarndb.api`` over a fresh lake in a temporary directory and prints, in one
run and on the same disk:

- upload and download of one ``--size-mb`` file (MB/s, streamed by ``requests``) next to a
  plain file copy (``shutil.copyfile``) of the same bytes;
- the query endpoint (``POST /workspaces/{ws}/tables/query``) p50/p95 for a primary-key
  lookup and for ``SELECT 1``, next to the embedded API running the same statements.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from _timing import pct, timed

import tarndb

TOKEN = "tdb_bench_admin_token_0123456789"
ORG = "bench"


def start(lake: Path) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        [sys.executable, "-m", "tarndb.api", "--data", str(lake), "--port", str(port),
         "--org", ORG, "--token", TOKEN],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except requests.ConnectionError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the server did not start in 60 s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size-mb", type=int, default=256)
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tarndb-bench-api-"))
    src = tmp / "blob.bin"
    with open(src, "wb") as f:
        for _ in range(args.size_mb):
            f.write(os.urandom(1 << 20))
    mb = float(args.size_mb)

    t = time.perf_counter()
    shutil.copyfile(src, tmp / "copy.bin")
    os.sync()
    copy_s = time.perf_counter() - t
    os.remove(tmp / "copy.bin")

    db = tarndb.open(str(tmp / "lake"))
    db.execute("CREATE TABLE docs (id BIGINT PRIMARY KEY, body TEXT)", workspace="ws")
    db.execute("INSERT INTO docs SELECT i, 'row ' || i FROM range(10000) t(i)", workspace="ws")
    embedded = db.session("ws")
    emb_lookup = timed(lambda: embedded.execute("SELECT * FROM docs WHERE id = $1", [4242]),
                       args.queries)
    emb_one = timed(lambda: embedded.execute("SELECT 1"), args.queries)
    embedded.close()
    db.close()

    proc, url = start(tmp / "lake")
    try:
        h = {"Authorization": f"Bearer {TOKEN}"}
        with requests.Session() as http:
            t = time.perf_counter()
            # requests builds the multipart body in client memory; the server streams it
            # to the lake (tests/api checks the server's peak memory on 1 GiB).
            r = http.post(f"{url}/workspaces/ws/files", headers=h,
                          files={"file": ("blob.bin", open(src, "rb"))})
            r.raise_for_status()
            up_s = time.perf_counter() - t
            fid = r.json()["id"]
            t = time.perf_counter()
            with http.get(f"{url}/workspaces/ws/files/{fid}/content", headers=h,
                          stream=True) as resp, open(tmp / "down.bin", "wb") as out:
                resp.raise_for_status()
                for block in resp.iter_content(1 << 20):
                    out.write(block)
            os.sync()
            down_s = time.perf_counter() - t
            assert os.path.getsize(tmp / "down.bin") == src.stat().st_size

            def query(sql: str, params: list[int]) -> None:
                resp = http.post(f"{url}/workspaces/ws/tables/query", headers=h,
                                 json={"query": sql, "params": params})
                resp.raise_for_status()

            query("SELECT 1", [])
            http_lookup = timed(lambda: query("SELECT * FROM docs WHERE id = $1", [4242]),
                                args.queries)
            http_one = timed(lambda: query("SELECT 1", []), args.queries)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"file of {args.size_mb} MB on the same disk")
    print(f"  plain file copy      {mb / copy_s:8.1f} MB/s")
    print(f"  HTTP upload          {mb / up_s:8.1f} MB/s")
    print(f"  HTTP download        {mb / down_s:8.1f} MB/s")
    print(f"query latency over {args.queries} runs (ms)      p50      p95")
    for name, xs in (("embedded  SELECT 1", emb_one), ("HTTP      SELECT 1", http_one),
                     ("embedded  pk lookup (10k rows)", emb_lookup),
                     ("HTTP      pk lookup (10k rows)", http_lookup)):
        print(f"  {name:32s} {pct(xs, 0.5):7.2f}  {pct(xs, 0.95):7.2f}")


if __name__ == "__main__":
    main()
