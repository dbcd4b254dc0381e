"""Standalone sequences against their baselines, in one run (ratios, since the machine is
noisy): ``SELECT nextval('s')`` against ``SELECT random()`` (both run by DuckDB), and an
INSERT of N rows whose key is ``DEFAULT nextval('s')`` against the same INSERT into a SERIAL
column and into a plain one.

    python benchmarks/sequences_bench.py [--rows 20000] [--calls 2000]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from _timing import pct, timed

import tarndb


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--calls", type=int, default=2000)
    a = ap.parse_args()
    db = tarndb.open(tempfile.mkdtemp(prefix="seqbench-"))
    s = db.session()
    s.execute("CREATE SEQUENCE s")
    s.execute("CREATE TABLE plain (id BIGINT, v INT)")
    s.execute("CREATE TABLE ser (id BIGSERIAL, v INT)")
    s.execute("CREATE TABLE dflt (id BIGINT DEFAULT nextval('s'), v INT)")
    one = timed(lambda: s.execute("SELECT random()"), a.calls)
    nv = timed(lambda: s.execute("SELECT nextval('s')"), a.calls)
    print(f"SELECT random()     p50 {pct(one, .5):.3f} ms")
    print(f"SELECT nextval('s') p50 {pct(nv, .5):.3f} ms  "
          f"ratio {pct(nv, .5) / pct(one, .5):.2f}")
    out = {}
    for table, sql in (("plain", f"INSERT INTO plain SELECT i, i FROM range({a.rows}) t(i)"),
                       ("ser", f"INSERT INTO ser (v) SELECT i FROM range({a.rows}) t(i)"),
                       ("dflt", f"INSERT INTO dflt (v) SELECT i FROM range({a.rows}) t(i)")):
        t = time.perf_counter()
        s.execute(sql)
        out[table] = time.perf_counter() - t
    for table in ("plain", "ser", "dflt"):
        print(f"INSERT {a.rows} rows into {table:5}: {out[table] * 1000:8.1f} ms  "
              f"ratio to plain {out[table] / out['plain']:.2f}")
    ids = s.execute("SELECT count(DISTINCT id), count(*) FROM dflt").rows[0]
    assert ids[0] == ids[1] == a.rows, ids
    s.close()
    db.close()


if __name__ == "__main__":
    main()
