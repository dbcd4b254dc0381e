"""UPDATE costs: one row by key as the table grows and as its history grows, and one hot row
under many writers, with PostgreSQL 15 in the same run for the wire figures.

    python benchmarks/updates.py [--clients 8] [--per-client 40] [--sizes 100000,1000000]
        [--history 3000]

Prints, through psycopg over TLS against a real ``tarndb serve`` and against PostgreSQL 15:
``--clients`` connections each running ``--per-client`` ``UPDATE cnt SET n = n + 1 WHERE id
= 1`` flat out (updates/s, p50, p99, and whether the final count equals the updates
acknowledged). Then, in-process (``tarndb.open``, engine only, no wire): single-row UPDATE
p50 by primary key at each ``--sizes``, and UPDATE / key-lookup p50 after 100 and after
``--history`` versions of one table (tarndb keeps every version by default).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import pct  # noqa: E402
from pgwire_bench import start_postgres, start_tarndb  # noqa: E402

import tarndb  # noqa: E402


def hot_row(dsn: str, clients: int, per_client: int) -> dict[str, float]:
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS cnt")
        c.execute("CREATE TABLE cnt (id INT PRIMARY KEY, n INT)")
        c.execute("INSERT INTO cnt VALUES (1, 0)")
    lats: list[float] = []
    lock = threading.Lock()

    def writer() -> None:
        with psycopg.connect(dsn, autocommit=True) as c:
            for _ in range(per_client):
                t0 = time.perf_counter()
                c.execute("UPDATE cnt SET n = n + 1 WHERE id = 1")
                with lock:
                    lats.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=writer) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    with psycopg.connect(dsn, autocommit=True) as c:
        row = c.execute("SELECT n FROM cnt").fetchone()
    return {"updates_s": len(lats) / elapsed, "p50_ms": pct(lats, 0.5),
            "p99_ms": pct(lats, 0.99), "exact": float(row is not None and row[0] == len(lats))}


def _update_p50(s: tarndb.Session, ids: list[int]) -> float:
    lat = []
    for i in ids:
        t0 = time.perf_counter()
        s.execute("UPDATE t SET n = n + 1 WHERE id = $1", [i])
        lat.append(time.perf_counter() - t0)
    return pct(lat, 0.5)


def by_size(sizes: list[int]) -> dict[str, float]:
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as d:
        db = tarndb.open(f"{d}/lake")
        s = db.session()
        s.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, n INT)")
        have = 0
        for size in sizes:
            s.insert_arrow("t", pa.table({"id": pa.array(np.arange(have, size)),
                                          "n": pa.array(np.zeros(size - have, np.int32))}))
            have = size
            _update_p50(s, [0])  # warm up
            out[f"update_p50_ms@{size // 1000}k"] = _update_p50(
                s, [(j * 7919) % size for j in range(60)])
        s.close()
        db.close()
    return out


def by_history(history: int) -> dict[str, float]:
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as d:
        db = tarndb.open(f"{d}/lake")
        s = db.session()
        s.execute("CREATE TABLE t (id INT PRIMARY KEY, n INT)")
        s.execute("INSERT INTO t VALUES (1, 0)")

        def lookup_ms() -> float:
            lat = []
            for _ in range(100):
                t0 = time.perf_counter()
                s.execute("SELECT n FROM t WHERE id = 1")
                lat.append(time.perf_counter() - t0)
            return pct(lat, 0.5)

        out["update_p50_ms@100_versions"] = _update_p50(s, [1] * 100)
        out["lookup_p50_ms@100_versions"] = lookup_ms()
        for _ in range(history - 200):
            s.execute("UPDATE t SET n = n + 1 WHERE id = 1")
        out[f"update_p50_ms@{history}_versions"] = _update_p50(s, [1] * 100)
        out[f"lookup_p50_ms@{history}_versions"] = lookup_ms()
        s.close()
        db.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--per-client", type=int, default=40)
    p.add_argument("--sizes", default="100000,1000000")
    p.add_argument("--history", type=int, default=3000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        started = start_postgres(tmp)
        proc, dsn = start_tarndb(tmp)
        try:
            wire = {"tarndb": hot_row(dsn, args.clients, args.per_client)}
            if started is not None:
                wire["postgres"] = hot_row(started[1], args.clients, args.per_client)
        finally:
            proc.terminate()
            proc.wait()
            if started is not None:
                subprocess.run(started[0], check=False, stdout=subprocess.DEVNULL)
    print(f"hot row: {args.clients} clients x {args.per_client} UPDATEs of one row "
          "(psycopg over TLS)")
    for name, r in wire.items():
        print(f"  {name:9} {r['updates_s']:8.1f} updates/s   p50 {r['p50_ms']:7.1f} ms   "
              f"p99 {r['p99_ms']:7.1f} ms   final count exact: {bool(r['exact'])}")
    print("in-process (tarndb.open, no wire):")
    sizes = [int(x) for x in args.sizes.split(",") if x]
    for k, v in {**by_size(sizes), **by_history(args.history)}.items():
        print(f"  {k:32} {v:8.2f}")


if __name__ == "__main__":
    main()
