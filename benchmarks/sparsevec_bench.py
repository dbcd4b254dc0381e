"""pgvector's sparsevec on tarndb through psycopg: exact top-10 over sparse vectors.

    python benchmarks/sparsevec_bench.py                    # 100k rows, 30522 dims
    python benchmarks/sparsevec_bench.py --n 20000 --dim 1000000000

Starts tarndb's server on a thread over a fresh lake (TLS, SCRAM), loads ``--n`` random
SPLADE-like rows (``--nnz`` Zipf-skewed term ids drawn per row, so rows share terms; ~55
distinct non-zeros for the default 120)
by binary COPY through pgvector-python's ``SparseVector``, creates ``USING hnsw (s
sparsevec_ip_ops)``, and times ``ORDER BY s <#> $1 LIMIT 10`` (and ``<->``, ``<=>``): p50 and
p95 over the queries, recall@10 of ``<#>`` against an inverted-list dot product computed here
(independent of the server's code). ``ORDER BY (s <#> $1) + 0`` is the same query that the
ranking planner does not recognise: DuckDB calls the sparse distance function on every row
(the path without the planner), for comparison.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import psycopg
from _timing import pct, timed
from pgvector.psycopg import register_vector
from pgvector.utils import SparseVector

import tarndb
from tarndb.pgwire.server import ServerThread

PASSWORD = "bench-pw"


def _rows(rng: np.random.Generator, n: int, dim: int, nnz: int) -> list[dict[int, float]]:
    # Zipf-skewed term ids (as text vocabularies are), then spread over the dimension
    out = []
    for _ in range(n):
        ids = np.unique((rng.zipf(1.3, nnz) * 7919) % dim)
        vals = rng.random(ids.size).astype(np.float32) + 0.01
        out.append(dict(zip(ids.tolist(), vals.tolist(), strict=True)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=30522)
    ap.add_argument("--nnz", type=int, default=120)
    ap.add_argument("--queries", type=int, default=30)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    rows = _rows(rng, args.n, args.dim, args.nnz)
    queries = _rows(rng, args.queries, args.dim, 30)
    inverted: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for i, r in enumerate(rows):
        for t, v in r.items():
            inverted[t].append((i, v))

    with tempfile.TemporaryDirectory() as tmp:
        db = tarndb.open(str(Path(tmp) / "lake"))
        srv = ServerThread(db, port=0, password=PASSWORD, data_dir=Path(tmp)).start()
        dsn = (
            f"host=127.0.0.1 port={srv.port} user=postgres password={PASSWORD} "
            "dbname=postgres sslmode=require"
        )
        try:
            with psycopg.connect(dsn, autocommit=True) as c:
                c.execute("CREATE EXTENSION IF NOT EXISTS vector")
                register_vector(c)
                c.execute(f"CREATE TABLE docs (id INT, s sparsevec({args.dim}))")
                t0 = time.perf_counter()
                with (
                    c.cursor() as cur,
                    cur.copy("COPY docs (id, s) FROM STDIN (FORMAT BINARY)") as copy,
                ):
                    copy.set_types(["int4", "sparsevec"])
                    for i, r in enumerate(rows):
                        copy.write_row((i, SparseVector(r, args.dim)))
                mean_nnz = sum(len(r) for r in rows) / len(rows)
                print(
                    f"load {args.n} rows ({args.dim} dims, {mean_nnz:.0f} non-zeros on "
                    f"average) by COPY BINARY: {time.perf_counter() - t0:.1f} s"
                )
                c.execute("CREATE INDEX docs_s ON docs USING hnsw (s sparsevec_ip_ops)")
                qs = [SparseVector(q, args.dim) for q in queries]
                hits = 0
                for q, qv in zip(queries, qs, strict=True):
                    score = np.zeros(args.n)
                    for t, v in q.items():
                        for i, x in inverted.get(t, []):
                            score[i] += np.float32(v) * np.float32(x)
                    truth = set(np.argsort(-score, kind="stable")[:10].tolist())
                    got = {
                        r[0]
                        for r in c.execute("SELECT id FROM docs ORDER BY s <#> %s LIMIT 10", (qv,))
                    }
                    hits += len(truth & got)
                print(
                    f"recall@10 of <#> against an inverted-list dot product: "
                    f"{hits / (10 * len(qs)):.3f}"
                )
                for label, sql in (
                    (
                        "<#> (index, exact sparse scan)",
                        "SELECT id FROM docs ORDER BY s <#> %s LIMIT 10",
                    ),
                    ("<->", "SELECT id FROM docs ORDER BY s <-> %s LIMIT 10"),
                    ("<=>", "SELECT id FROM docs ORDER BY s <=> %s LIMIT 10"),
                    (
                        "<#> per row in DuckDB (no planner)",
                        "SELECT id FROM docs ORDER BY (s <#> %s) + 0 LIMIT 10",
                    ),
                ):
                    it = iter(qs * 3)
                    c.execute(sql, (qs[0],)).fetchall()  # warm
                    ts = timed(lambda s=sql, i=it: c.execute(s, (next(i),)).fetchall(), len(qs))
                    print(f"{label:40s} p50 {pct(ts, 0.5):8.1f} ms  p95 {pct(ts, 0.95):8.1f} ms")
        finally:
            srv.stop()
            db.close()


if __name__ == "__main__":
    main()
