"""Writes through the wire: tarndb against PostgreSQL 15 in the same run, on the same rows
(id int8, t text, j jsonb, v float4[384]).

    python benchmarks/writes.py [--rows 2000] [--writers 50] [--rate 10] [--seconds 10]
                                [--parts insert,executemany,...]

Starts a throwaway PostgreSQL (TLS on, default durability; see pgwire_bench.py) and a tarndb
Postgres server, and prints for each, then the ratios and whether each target was met:
single-row INSERT p50, psycopg 2 and 3 and asyncpg ``executemany`` rows/s, COPY BINARY rows/s,
the seeds' ``POST /tables/query/batch`` rows/s (against PostgreSQL's executemany in one
transaction, its equivalent), and
``--writers`` clients each writing ``--rate`` statements/s (INSERT and ``n = n + 1``):
p50/p99 and whether any write was lost (final counter = acknowledged increments); and, at
each ``--scale`` table size, single-row INSERT and UPDATE p50 and executemany rows/s.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import psycopg2
import psycopg2.extras

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import pct  # noqa: E402
from pgwire_bench import copy_binary, start_postgres, start_tarndb  # noqa: E402

DIM = 384
DDL = "CREATE TABLE w (id BIGINT PRIMARY KEY, t TEXT, j JSONB, v FLOAT4[])"
INSERT = "INSERT INTO w (id, t, j, v) VALUES (%s, %s, %s, %s)"


def _row(i: int, vec: np.ndarray) -> tuple[Any, ...]:
    return (i, f"row {i}", json.dumps({"k": i % 7, "tag": "x"}), vec.tolist())


#: What ``--parts`` can pick (each a set of the measures above).
PARTS = ("insert", "executemany", "asyncpg", "copy", "writers", "batch")


def measure(dsn: str, rows: int, writers: int, rate: float, seconds: float,
            parts: frozenset[str] = frozenset(PARTS)) -> dict[str, float]:
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((rows, DIM)).astype(np.float32)
    out: dict[str, float] = {}
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS w")
        c.execute(DDL)
        lat = []
        for i in range(min(rows, 300)):
            t0 = time.perf_counter()
            c.execute(INSERT, _row(i, vecs[i]))
            lat.append(time.perf_counter() - t0)
        if "insert" in parts:
            out["insert_p50_ms"] = pct(lat, 0.5)
        base = 1_000_000
        n = rows
        if "executemany" in parts:
            t0 = time.perf_counter()
            with c.cursor() as cur:
                cur.executemany(INSERT, [_row(base + i, vecs[i % rows]) for i in range(n)])
            out["psycopg3_executemany_rows_s"] = n / (time.perf_counter() - t0)
    if "executemany" in parts:
        p2 = psycopg2.connect(dsn)
        p2.autocommit = True
        try:
            base = 2_000_000
            t0 = time.perf_counter()
            with p2.cursor() as cur:
                cur.executemany(INSERT, [_row(base + i, vecs[i % rows]) for i in range(n)])
            out["psycopg2_executemany_rows_s"] = n / (time.perf_counter() - t0)
        finally:
            p2.close()
    if "asyncpg" in parts:
        out["asyncpg_executemany_rows_s"] = _asyncpg_executemany(dsn, vecs, n)
    if not parts & {"copy", "writers"}:
        return out
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS cb")
        c.execute("CREATE TABLE cb (id BIGINT, t TEXT, v FLOAT4[])")
        big = rng.standard_normal((rows * 10, DIM)).astype(np.float32)
        payload = copy_binary(big)
        if "copy" in parts:
            t0 = time.perf_counter()
            with c.cursor() as cur, cur.copy("COPY cb FROM STDIN (FORMAT BINARY)") as cp:
                for off in range(0, len(payload), 1 << 20):
                    cp.write(payload[off:off + (1 << 20)])
            out["copy_binary_rows_s"] = big.shape[0] / (time.perf_counter() - t0)
        c.execute("DROP TABLE IF EXISTS cnt")
        c.execute("CREATE TABLE cnt (id INT PRIMARY KEY, n INT)")
        c.execute("INSERT INTO cnt VALUES (1, 0)")
    if "writers" not in parts:
        return out
    lats: list[float] = []
    acked = [0]
    errors = [0]
    lock = threading.Lock()

    def writer(k: int) -> None:
        try:
            conn = psycopg.connect(dsn, autocommit=True)
        except psycopg.Error:
            with lock:
                errors[0] += 1
            return
        with conn:
            period = 1.0 / rate
            nxt = time.perf_counter() + (k % 10) * period / 10
            end = time.perf_counter() + seconds
            j = 0
            while True:
                now = time.perf_counter()
                if now >= end:
                    return
                if now < nxt:
                    time.sleep(nxt - now)
                nxt += period
                t0 = time.perf_counter()
                try:
                    if j % 2:
                        conn.execute("UPDATE cnt SET n = n + 1 WHERE id = 1")
                        with lock:
                            acked[0] += 1
                    else:
                        conn.execute(INSERT, _row(10_000_000 + k * 100_000 + j, vecs[j % rows]))
                except psycopg.Error:
                    with lock:
                        errors[0] += 1
                with lock:
                    lats.append(time.perf_counter() - t0)
                j += 1

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with psycopg.connect(dsn, autocommit=True) as c:
        row = c.execute("SELECT n FROM cnt").fetchone()
    out["writers_p50_ms"] = pct(lats, 0.5)
    out["writers_p99_ms"] = pct(lats, 0.99)
    out["writers_errors"] = errors[0]
    out["writers_lost"] = acked[0] - (row[0] if row else 0)
    return out


def _asyncpg_executemany(dsn: str, vecs: np.ndarray, n: int) -> float:
    import asyncio
    import ssl

    import asyncpg

    kv = dict(part.split("=", 1) for part in dsn.split())
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    async def run() -> float:
        conn = await asyncpg.connect(host=kv["host"], port=int(kv["port"]), user=kv["user"],
                                     password=kv.get("password"), database=kv["dbname"],
                                     ssl=ctx)
        try:
            rows = [(3_000_000 + i, f"row {i}", json.dumps({"k": i % 7, "tag": "x"}),
                     vecs[i % len(vecs)].tolist()) for i in range(n)]
            t0 = time.perf_counter()
            await conn.executemany(
                "INSERT INTO w (id, t, j, v) VALUES ($1, $2, $3::jsonb, $4)", rows)
            return n / (time.perf_counter() - t0)
        finally:
            await conn.close()

    return asyncio.run(run())


def http_batch(rows: int) -> dict[str, float]:
    """The seeds' ``POST /workspaces/{ws}/tables/query/batch`` of ``rows`` INSERTs against a
    fresh ``tarndb.api`` server (HTTP, as the seeds call it)."""
    import requests

    from api import ORG, TOKEN, start

    rng = np.random.default_rng(1)
    vecs = rng.standard_normal((rows, DIM)).astype(np.float32)
    with tempfile.TemporaryDirectory() as d:
        proc, url = start(Path(d) / "lake")
        try:
            h = {"Authorization": f"Bearer {TOKEN}", "X-Activeloop-Org-Id": ORG}
            q = f"{url}/workspaces/ws/tables/query"
            r = requests.post(q, headers=h, json={"query": DDL}, timeout=60)
            r.raise_for_status()
            batch = [[i, f"row {i}", json.dumps({"k": i % 7}), vecs[i].tolist()]
                     for i in range(rows)]
            t0 = time.perf_counter()
            r = requests.post(q + "/batch", headers=h, timeout=600, json={
                "query": "INSERT INTO w (id, t, j, v) VALUES ($1, $2, $3::jsonb, $4)",
                "params_batch": batch})
            r.raise_for_status()
            return {"http_batch_rows_s": rows / (time.perf_counter() - t0)}
        finally:
            proc.terminate()
            proc.wait()


def pg_batch(dsn: str, rows: int) -> dict[str, float]:
    """PostgreSQL's equivalent of a batch: executemany in one transaction."""
    rng = np.random.default_rng(1)
    vecs = rng.standard_normal((rows, DIM)).astype(np.float32)
    with psycopg.connect(dsn) as c:
        c.execute("DROP TABLE IF EXISTS wb")
        c.execute(DDL.replace("TABLE w ", "TABLE wb "))
        c.commit()
        t0 = time.perf_counter()
        with c.cursor() as cur:
            cur.executemany(INSERT.replace("INTO w ", "INTO wb "),
                            [_row(i, vecs[i]) for i in range(rows)])
        c.commit()
        return {"http_batch_rows_s": rows / (time.perf_counter() - t0)}


def scale(dsn: str, sizes: list[int]) -> dict[str, float]:
    """Single-row INSERT and UPDATE p50 and executemany rows/s with the table at each size
    (id BIGINT PRIMARY KEY, n INT), to see whether writes stay flat as a table grows."""
    out: dict[str, float] = {}
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS big")
        c.execute("CREATE TABLE big (id BIGINT PRIMARY KEY, n INT)")
        have = 0
        for size in sizes:
            with c.cursor() as cur, cur.copy("COPY big (id, n) FROM STDIN") as cp:
                for i in range(have, size):
                    cp.write_row((i, 0))
            have = size
            c.execute("INSERT INTO big VALUES (%s, 0)", [10_000_000_000 + size])  # warm up
            ins, upd = [], []
            for j in range(60):
                t0 = time.perf_counter()
                c.execute("INSERT INTO big VALUES (%s, 0)", [20_000_000_000 + size + j])
                ins.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                c.execute("UPDATE big SET n = n + 1 WHERE id = %s", [(j * 7919) % size])
                upd.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            with c.cursor() as cur:
                cur.executemany("INSERT INTO big VALUES (%s, 0)",
                                [(30_000_000_000 + size * 10 + j, ) for j in range(500)])
            label = f"{size // 1000}k"
            out[f"insert_p50_ms@{label}"] = pct(ins, 0.5)
            out[f"update_p50_ms@{label}"] = pct(upd, 0.5)
            out[f"executemany_rows_s@{label}"] = 500 / (time.perf_counter() - t0)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rows", type=int, default=2000)
    p.add_argument("--writers", type=int, default=50)
    p.add_argument("--rate", type=float, default=10.0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--scale", default="100000,1000000",
                   help="table sizes for the growth test (empty: skip it)")
    p.add_argument("--parts", default=",".join(PARTS),
                   help=f"comma-separated subset of {','.join(PARTS)} (default: all)")
    args = p.parse_args()
    parts = frozenset(x for x in args.parts.split(",") if x)
    if parts - set(PARTS):
        p.error(f"unknown parts: {', '.join(sorted(parts - set(PARTS)))}")
    sizes = [int(x) for x in args.scale.split(",") if x]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        started = start_postgres(tmp)
        proc, dsn = start_tarndb(tmp)
        results: dict[str, dict[str, float]] = {}
        try:
            results["tarndb"] = measure(dsn, args.rows, args.writers, args.rate, args.seconds,
                                        parts)
            if "batch" in parts:
                results["tarndb"].update(http_batch(args.rows))
            if sizes:
                results["tarndb"].update(scale(dsn, sizes))
            if started is not None:
                pg_stop, pg_dsn = started
                results["postgres"] = measure(pg_dsn, args.rows, args.writers, args.rate,
                                              args.seconds, parts)
                if "batch" in parts:
                    results["postgres"].update(pg_batch(pg_dsn, args.rows))
                if sizes:
                    results["postgres"].update(scale(pg_dsn, sizes))
        finally:
            proc.terminate()
            proc.wait()
            if started is not None:
                import subprocess

                subprocess.run(started[0], check=False, stdout=subprocess.DEVNULL)
    keys = list(results["tarndb"])
    print(f"{'measure':32}" + "".join(f"{name:>14}" for name in results) + "   ratio")
    for k in keys:
        vals = [results[name][k] for name in results]
        ratio = ""
        if len(vals) == 2 and vals[1]:
            ratio = f"{vals[0] / vals[1]:8.2f}"
        print(f"{k:32}" + "".join(f"{v:14.1f}" for v in vals) + "   " + ratio)
    t = results["tarndb"]
    pg = results.get("postgres")

    def judge(ok: bool) -> str:
        return "met" if ok else "missed"

    print("targets (tarndb, through psycopg over TLS):")
    if pg:
        for k in ("psycopg3_executemany_rows_s", "psycopg2_executemany_rows_s",
                  "asyncpg_executemany_rows_s", "copy_binary_rows_s", "http_batch_rows_s"):
            if k in t:
                print(f"  {k} >= PostgreSQL's: {judge(t[k] >= pg[k])} ({t[k] / pg[k]:.2f}x)")
        if "insert_p50_ms" in t:
            print(f"  single-row INSERT p50 <= 2x PostgreSQL's: "
                  f"{judge(t['insert_p50_ms'] <= 2 * pg['insert_p50_ms'])} "
                  f"({t['insert_p50_ms'] / pg['insert_p50_ms']:.2f}x)")
    if "copy_binary_rows_s" in t:
        print(f"  COPY >= 50k rows/s: {judge(t['copy_binary_rows_s'] >= 50_000)}")
    if "writers_lost" in t:
        print(f"  {args.writers} writers: no lost write: {judge(t['writers_lost'] == 0)}, "
              f"p99 <= 50 ms: {judge(t['writers_p99_ms'] <= 50)}")
    if len(sizes) >= 2:
        lo, hi = (f"{sizes[0] // 1000}k", f"{sizes[-1] // 1000}k")
        for k in ("insert_p50_ms", "update_p50_ms"):
            ratio = t[f"{k}@{hi}"] / t[f"{k}@{lo}"]
            print(f"  {k} flat from {lo} to {hi} rows (within 1.5x): {judge(ratio <= 1.5)} "
                  f"({ratio:.2f}x)")
        ratio = t[f"executemany_rows_s@{hi}"] / t[f"executemany_rows_s@{lo}"]
        print(f"  executemany rows/s flat from {lo} to {hi} (>= 0.67x): "
              f"{judge(ratio >= 0.67)} ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
