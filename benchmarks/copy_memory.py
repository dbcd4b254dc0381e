"""Server memory of big COPYs through psycopg over TLS: what a load or a dump costs the
server beyond the data itself.

    python benchmarks/copy_memory.py [--bags 5000] [--rows 100000]

Against a fresh ``tarndb serve`` (``python -m tarndb.pgwire``), sampling the server's resident
memory every 20 ms:

- COPY BINARY FROM STDIN of ``--bags`` multi-vector bags (``FLOAT4[][]``, 32 x 128 each);
- COPY BINARY FROM STDIN of ``--rows`` rows (id, text, 384-d ``FLOAT4[]``), then
  COPY ... TO STDOUT (FORMAT BINARY) of them, read through psycopg;

and prints, for each, the payload, the time, and the peak rise of the server's memory (as a
multiple of the payload): its anonymous memory (``RssAnon``: what the server holds), and its
whole resident set (``VmRSS``, which also counts pages of files it maps, such as the rows a
big COPY keeps on disk until COMMIT, engine/spill.py: page cache the kernel can drop).
PostgreSQL writes COPY data to its heap and streams answers, so its memory does not grow with
them; the figures say how close tarndb comes.
"""

from __future__ import annotations

import argparse
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pgwire_bench import copy_binary, start_tarndb  # noqa: E402


def _rss_mb(pid: int) -> tuple[float, float]:
    """(RssAnon, VmRSS) of ``pid`` in MB."""
    anon = total = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon"):
                anon = int(line.split()[1]) / 1024
            elif line.startswith("VmRSS"):
                total = int(line.split()[1]) / 1024
    return anon, total


def _peak_rise(pid: int, work: Callable[[], int]) -> tuple[float, float, float, int]:
    """(seconds, peak rise of the server's RssAnon and of its VmRSS in MB, bytes moved) of
    ``work``."""
    base = _rss_mb(pid)
    peak = list(base)
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            now = _rss_mb(pid)
            peak[0], peak[1] = max(peak[0], now[0]), max(peak[1], now[1])
            time.sleep(0.02)

    th = threading.Thread(target=watch)
    th.start()
    t0 = time.perf_counter()
    try:
        moved = work()
    finally:
        elapsed = time.perf_counter() - t0
        time.sleep(0.2)
        done.set()
        th.join()
    return elapsed, peak[0] - base[0], peak[1] - base[1], moved


def bags_payload(n: int) -> bytes:
    """COPY BINARY rows (id int8, bag float4[32][128]) built with numpy."""
    bag = np.random.default_rng(2).standard_normal((32, 128)).astype(np.float32)
    elems = np.empty(bag.size, dtype=[("len", ">i4"), ("v", ">f4")])
    elems["len"], elems["v"] = 4, bag.reshape(-1)
    field = struct.pack("!iiiiiii", 2, 0, 700, 32, 1, 128, 1) + elems.tobytes()
    rows = b"".join(struct.pack("!hiqi", 2, 8, i, len(field)) + field for i in range(n))
    return b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + rows + b"\xff\xff"


def _copy_in(dsn: str, table: str, payload: bytes) -> Callable[[], int]:
    def run() -> int:
        with psycopg.connect(dsn, autocommit=True) as c, c.cursor() as cur, \
                cur.copy(f"COPY {table} FROM STDIN (FORMAT BINARY)") as cp:
            for off in range(0, len(payload), 1 << 20):
                cp.write(payload[off:off + (1 << 20)])
        return len(payload)
    return run


def _copy_out(dsn: str, table: str) -> Callable[[], int]:
    def run() -> int:
        size = 0
        with psycopg.connect(dsn, autocommit=True) as c, c.cursor() as cur, \
                cur.copy(f"COPY {table} TO STDOUT (FORMAT BINARY)") as cp:
            for block in cp:
                size += len(block)
        return size
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bags", type=int, default=5000)
    ap.add_argument("--rows", type=int, default=100_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        proc, dsn = start_tarndb(Path(d))
        try:
            with psycopg.connect(dsn, autocommit=True) as c:
                c.execute("CREATE TABLE bags (id BIGINT, bag FLOAT4[][])")
                c.execute("CREATE TABLE vecs (id BIGINT, t TEXT, v FLOAT4[])")
            runs = [("COPY FROM, multi-vector bags", _copy_in(dsn, "bags",
                                                              bags_payload(args.bags))),
                    ("COPY FROM, 384-d vectors", _copy_in(dsn, "vecs", copy_binary(
                        np.random.default_rng(0).standard_normal(
                            (args.rows, 384)).astype(np.float32)))),
                    ("COPY TO, 384-d vectors", _copy_out(dsn, "vecs"))]
            print(f"{'what':32} {'MB':>8} {'seconds':>8} {'anon +MB':>9} {'x payload':>10} "
                  f"{'VmRSS +MB':>10} {'x payload':>10}")
            for what, work in runs:
                time.sleep(0.5)
                seconds, anon, rss, moved = _peak_rise(proc.pid, work)
                mb = moved / 2**20
                print(f"{what:32} {mb:8.0f} {seconds:8.1f} {anon:9.0f} {anon / mb:10.2f} "
                      f"{rss:10.0f} {rss / mb:10.2f}")
        finally:
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
