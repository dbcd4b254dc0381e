"""Engine benchmarks, each printed next to its baseline in the same run.

    python benchmarks/engine.py [--rows 100000] [--lookup-rows 1000000]

1. Batch insert of N rows (id, text, 384-d FLOAT4[]) through tarndb vs raw Lance
   ``write_dataset`` vs a native DuckDB table.
2. Primary-key point lookup latency (p50/p95) at ``--lookup-rows`` rows: tarndb vs a raw Lance
   filtered read vs DuckDB.
3. The cost of a 128x320 ``FLOAT4[][]`` literal inlined in SQL text (lift + parse + insert)
   vs the same insert with the array bound as a parameter.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import duckdb
import lance
import numpy as np
import pyarrow as pa

import tarndb


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def report(name: str, lat: list[float]) -> None:
    print(f"{name:<34}p50 {pct(lat, 50):7.2f} ms  p95 {pct(lat, 95):7.2f} ms")


def batch(n: int, dim: int, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    return pa.table({
        "id": pa.array(np.arange(1, n + 1), pa.int64()),
        "body": pa.array([f"document {i} about topic {i % 97}" for i in range(n)]),
        "emb": pa.FixedSizeListArray.from_arrays(vecs.reshape(-1), dim).cast(
            pa.list_(pa.float32())),
    })


def bench_insert(root: Path, n: int) -> None:
    t = batch(n, 384)
    print(f"\n== batch insert of {n:,} rows (id BIGINT, body TEXT, emb FLOAT4[384]) ==")
    t0 = time.perf_counter()
    lance.write_dataset(t, str(root / "raw.lance"))
    raw = time.perf_counter() - t0
    con = duckdb.connect(str(root / "duck.db"))
    t0 = time.perf_counter()
    con.execute("CREATE TABLE t AS SELECT * FROM t")
    duck = time.perf_counter() - t0
    con.close()
    db = tarndb.open(str(root / "lake"))
    db.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, body TEXT, emb FLOAT4[])")
    s = db.session()
    t0 = time.perf_counter()
    s.insert_arrow("t", t)  # the bulk path COPY FROM STDIN and ingestion use
    ours = time.perf_counter() - t0
    assert db.execute("SELECT count(*) FROM t").scalar() == n
    print(f"{'raw Lance write_dataset':<34}{raw:8.2f} s  {n / raw:12,.0f} rows/s")
    print(f"{'DuckDB native table (CTAS)':<34}{duck:8.2f} s  {n / duck:12,.0f} rows/s")
    print(f"{'tarndb insert_arrow (bulk/COPY)':<34}{ours:8.2f} s  {n / ours:12,.0f} rows/s"
          f"   ({ours / raw:.2f}x raw Lance)")
    db.close()


def bench_lookup(root: Path, n: int, reps: int = 200) -> None:
    print(f"\n== primary-key point lookup at {n:,} rows ({reps} lookups) ==")
    t = batch(n, 8)
    lance.write_dataset(t, str(root / "lk.lance"))
    ds = lance.dataset(str(root / "lk.lance"))
    rng = np.random.default_rng(1)
    keys = rng.integers(1, n + 1, reps)
    lat = []
    for k in keys:
        t0 = time.perf_counter()
        ds.to_table(filter=f"id = {int(k)}")
        lat.append((time.perf_counter() - t0) * 1000)
    report("raw Lance to_table(filter)", lat)
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM t")
    lat = []
    for k in keys:
        t0 = time.perf_counter()
        con.execute("SELECT * FROM t WHERE id = $1", [int(k)]).fetchall()
        lat.append((time.perf_counter() - t0) * 1000)
    report("DuckDB native table", lat)
    db = tarndb.open(str(root / "lake2"))
    db.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, body TEXT, emb FLOAT4[])")
    s = db.session()
    s.insert_arrow("t", t)
    lat = []
    for k in keys:
        t0 = time.perf_counter()
        r = s.execute("SELECT * FROM t WHERE id = $1", [int(k)])
        lat.append((time.perf_counter() - t0) * 1000)
        assert r.rows[0][0] == k
    report("tarndb SELECT ... WHERE id = $1", lat)
    db.close()


def bench_literal(root: Path, reps: int = 20) -> None:
    print(f"\n== a 128x320 FLOAT4[][] literal ({128 * 320:,} numbers) ==")
    rng = np.random.default_rng(2)
    db = tarndb.open(str(root / "lake3"))
    db.execute("CREATE TABLE t (id SERIAL, m FLOAT4[][])")
    s = db.session()
    lits, lat_lit, lat_param = [], [], []
    for _ in range(reps):
        m = rng.standard_normal((128, 320)).astype(np.float32)
        inner = ", ".join("ARRAY[" + ", ".join(str(v) for v in row) + "]" for row in m.tolist())
        lits.append((m, f"INSERT INTO t (m) VALUES (ARRAY[{inner}]::float4[][])"))
    for m, sql in lits:
        t0 = time.perf_counter()
        s.execute(sql)
        lat_lit.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        s.execute("INSERT INTO t (m) VALUES ($1)", [m])
        lat_param.append((time.perf_counter() - t0) * 1000)
    print(f"{'inline literal (lift+parse+insert)':<34}p50 {pct(lat_lit, 50):7.2f} ms  "
          f"mean {statistics.mean(lat_lit):7.2f} ms")
    print(f"{'bound parameter (numpy)':<34}p50 {pct(lat_param, 50):7.2f} ms  "
          f"mean {statistics.mean(lat_param):7.2f} ms")
    db.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--lookup-rows", type=int, default=1_000_000)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tarndb-bench-"))
    try:
        bench_insert(root, args.rows)
        bench_lookup(root, args.lookup_rows)
        bench_literal(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
