"""Small statements through psycopg 3 over TLS, tarndb beside PostgreSQL in the same run
(issue 18: "small statements (SELECT 1, key lookups, the catalog queries drivers send) at
most 2x PostgreSQL's round trip").

One connection per server, ``--n`` statements of each kind, p50 and p95 per side, the ratio
of the p50s and "met"/"missed" against 2x. Key lookups go through the extended protocol
(psycopg sends Parse/Bind/Describe/Execute/Sync for a parameterised statement) on a table of
``--rows`` rows (BIGINT PRIMARY KEY, short TEXT, INT, ~150-byte TEXT), keys spread over the
table; a second round repeats the same keys (a cache's best case, said as such). Run::

    python benchmarks/small_statements.py --rows 100000 --n 300

``--only 'key lookup'`` runs only the statements whose label holds that text.

``--floor`` shows where the floor is instead, with the server on a thread of this process:
the round trip when the server answers each request with the bytes it sent for it before
(TLS, the server's socket loop and psycopg only), beside the real one; and the server's own
time per request (``ServerConnection.receive_data`` fed the same request 2,000 times)::

    python benchmarks/small_statements.py --floor --rows 100000

``--cpu`` prints the CPU time per statement through ``Session.execute`` in this process (the
engine's own cost, steadier than wall time on a shared machine; its table also holds a 384-d
``REAL[]`` per row for a ``SELECT *``)::

    python benchmarks/small_statements.py --cpu --rows 100000 --n 500
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pgwire_bench import start_postgres, start_tarndb  # noqa: E402

#: What drivers send at connect or introspection time (psycopg's type lookup, SQLAlchemy's
#: has_table/version checks).
CATALOG = ("SELECT t.oid, typarray FROM pg_catalog.pg_type t "
           "JOIN pg_catalog.pg_namespace ns ON typnamespace = ns.oid "
           "WHERE typname = %s AND nspname = 'pg_catalog'")


def _statements(rows: int) -> list[tuple[str, Callable[[psycopg.Connection[Any], int], Any]]]:
    def key(i: int) -> int:
        return (i * 7919) % rows

    return [
        ("SELECT 1 (extended)", lambda c, i: c.execute("SELECT 1").fetchall()),
        ("SELECT 1 (simple)",
         lambda c, i: psycopg.ClientCursor(c).execute("SELECT 1").fetchall()),
        ("key lookup, spread keys",
         lambda c, i: c.execute("SELECT t, n FROM kl WHERE id = %s", [key(i)]).fetchall()),
        ("key lookup, same 10 keys",
         lambda c, i: c.execute("SELECT t, n FROM kl WHERE id = %s", [key(i % 10)]).fetchall()),
        ("key lookup, int columns",
         lambda c, i: c.execute("SELECT id, n FROM kl WHERE id = %s", [key(i)]).fetchall()),
        ("key lookup, ~150-byte text",
         lambda c, i: c.execute("SELECT id, n, body FROM kl WHERE id = %s",
                                [key(i)]).fetchall()),
        ("catalog: pg_type by name", lambda c, i: c.execute(CATALOG, ["int4"]).fetchall()),
    ]


def _body(i: int) -> str:
    """~150 bytes of text per row (a short document or agent memory), different per row:
    words drawn per row from a 5,000-word vocabulary (text that compresses as prose does)."""
    rng = random.Random(i)
    return f"doc {i}: " + " ".join(f"w{rng.randrange(5000)}" for _ in range(24))


def _load(c: psycopg.Connection[Any], rows: int) -> None:
    c.execute("DROP TABLE IF EXISTS kl")
    c.execute("CREATE TABLE kl (id BIGINT PRIMARY KEY, t TEXT, n INT, body TEXT)")
    with c.cursor() as cur, cur.copy("COPY kl (id, t, n, body) FROM STDIN") as cp:
        for i in range(rows):
            cp.write_row((i, f"row {i}", i % 7, _body(i)))
    c.execute("SELECT count(*) FROM kl").fetchall()


def measure(dsn: str, rows: int, n: int, only: str | None = None
            ) -> dict[str, tuple[float, float]]:
    out: dict[str, tuple[float, float]] = {}
    with psycopg.connect(dsn, autocommit=True) as c:
        _load(c, rows)
        for label, fn in _statements(rows):
            if only is not None and only not in label:
                continue
            for i in range(10):  # warm: prepared statements, caches, first version read
                fn(c, i)
            lat = []
            for i in range(n):
                a = time.perf_counter()
                fn(c, i)
                lat.append(time.perf_counter() - a)
            lat.sort()
            out[label] = (lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.95)] * 1000)
    return out


def floor(rows: int, n: int) -> None:
    """The ``--floor`` measurement (module docstring)."""
    import tarndb
    from tarndb.pgwire import protocol
    from tarndb.pgwire.server import ServerThread

    tmp = Path(tempfile.mkdtemp(prefix="small-statements-floor-"))
    db = tarndb.open(str(tmp / "lake"))
    srv = ServerThread(db, port=0, password="pw", data_dir=tmp).start()
    dsn = (f"host=127.0.0.1 port={srv.port} user=postgres password=pw dbname=postgres "
           "sslmode=require")
    real = protocol.ServerConnection.receive_data
    replies: dict[bytes, bytes] = {}
    mode: dict[str, Any] = {"v": "record", "us": 0.0}

    def receive(self: Any, data: bytes | bytearray) -> bytes:
        key = bytes(data)
        if mode["v"] == "canned" and key in replies:
            return replies[key]
        if mode["v"] == "time":
            mode["v"] = "record"
            a = time.perf_counter()
            for _ in range(2000):
                real(self, bytearray(key))
            mode["us"] = (time.perf_counter() - a) / 2000 * 1e6
        out: bytes = real(self, data)
        if mode["v"] == "record":
            replies[key] = out
        return out

    protocol.ServerConnection.receive_data = receive  # type: ignore[method-assign]
    statements = [s for s in _statements(rows) if "catalog" not in s[0]]
    try:
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("CREATE TABLE kl (id BIGINT PRIMARY KEY, t TEXT, n INT, body TEXT)")
            c.execute("INSERT INTO kl SELECT i, 'row ' || i, i %% 7, 'doc ' || i || ': ' || "
                      "repeat('lake vector ', 12) FROM range(0, %s) t(i)", [rows])
            print(f"{'statement':28s} {'real p50 ms':>12s} {'canned reply p50 ms':>20s} "
                  f"{'server us/request':>18s}")
            for label, fn in statements:
                if "same 10" in label:
                    continue
                for _ in range(20):
                    fn(c, 0)  # one key: the canned reply is the right answer
                lat: dict[str, float] = {}
                for m in ("record", "canned"):
                    mode["v"] = m
                    t = []
                    for _ in range(n):
                        a = time.perf_counter()
                        fn(c, 0)
                        t.append(time.perf_counter() - a)
                    t.sort()
                    lat[m] = t[len(t) // 2] * 1000
                mode["v"] = "time"
                fn(c, 0)
                print(f"{label:28s} {lat['record']:12.3f} {lat['canned']:20.3f} "
                      f"{mode['us']:18.1f}")
    finally:
        protocol.ServerConnection.receive_data = real  # type: ignore[method-assign]
        srv.stop()
        db.close()


def cpu(rows: int, n: int) -> None:
    """The ``--cpu`` measurement: CPU time per statement through ``Session.execute`` in this
    process (no protocol, no client; steadier than wall time on a shared machine), the best
    of 7 rounds of ``n``."""
    import timeit

    import tarndb

    tmp = Path(tempfile.mkdtemp(prefix="small-statements-cpu-"))
    db = tarndb.open(str(tmp / "lake"))
    s = db.session()
    import numpy as np
    import pyarrow as pa

    s.execute("CREATE TABLE kl (id BIGINT PRIMARY KEY, t TEXT, n INT, body TEXT, emb REAL[])")
    emb = np.random.default_rng(0).standard_normal((rows, 384)).astype(np.float32)
    s.insert_arrow("kl", pa.table({
        "id": list(range(rows)), "t": [f"row {i}" for i in range(rows)],
        "n": [i % 7 for i in range(rows)], "body": [_body(i) for i in range(rows)],
        "emb": pa.ListArray.from_arrays(np.arange(0, rows * 384 + 1, 384, dtype=np.int32),
                                        pa.array(emb.ravel()))}))
    s.execute("SELECT count(*) FROM kl")
    state = [0]

    def lookup(sql: str) -> Callable[[], Any]:
        def run() -> Any:
            state[0] = (state[0] + 7919) % rows
            return s.execute(sql, [state[0]]).rows
        return run

    print(f"{'statement (Session.execute, in process)':44s} {'CPU us':>8s}")
    for label, fn in (("SELECT 1", lambda: s.execute("SELECT 1").rows),
                      ("key lookup SELECT t, n", lookup("SELECT t, n FROM kl WHERE id = $1")),
                      ("key lookup SELECT id, n, body (~150 B)",
                       lookup("SELECT id, n, body FROM kl WHERE id = $1")),
                      ("key lookup SELECT * (with a 384-d REAL[])",
                       lookup("SELECT * FROM kl WHERE id = $1"))):
        fn()
        best = min(timeit.repeat(fn, number=n, repeat=7, timer=time.process_time))
        print(f"{label:44s} {best / n * 1e6:8.1f}")
    db.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--floor", action="store_true",
                    help="where the floor is: canned replies and the server's own time")
    ap.add_argument("--cpu", action="store_true",
                    help="CPU time per statement through Session.execute in this process")
    ap.add_argument("--only", metavar="TEXT",
                    help="run only the statements whose label holds TEXT ('key lookup')")
    args = ap.parse_args()
    if args.floor:
        floor(args.rows, args.n)
        return
    if args.cpu:
        cpu(args.rows, args.n)
        return
    tmp = Path(tempfile.mkdtemp(prefix="small-statements-"))
    proc, dsn = start_tarndb(tmp)
    pg = start_postgres(tmp)
    try:
        tarn = measure(dsn, args.rows, args.n, args.only)
        peer = measure(pg[1], args.rows, args.n, args.only) if pg else None
    finally:
        proc.terminate()
        if pg:
            subprocess.run(pg[0], capture_output=True)
    print(f"psycopg {psycopg.__version__} over TLS, one connection, {args.n} statements each, "
          f"{args.rows} rows")
    print(f"{'statement':28s} {'tarndb p50/p95 ms':>20s} {'PostgreSQL p50/p95 ms':>22s} "
          f"{'ratio':>6s}  target 2x")
    for label, (p50, p95) in tarn.items():
        if peer is None:
            print(f"{label:28s} {p50:9.3f} /{p95:7.3f}   (PostgreSQL not installed)")
            continue
        q50, q95 = peer[label]
        ratio = p50 / q50
        print(f"{label:28s} {p50:9.3f} /{p95:7.3f} {q50:11.3f} /{q95:7.3f} {ratio:7.1f}x  "
              f"{'met' if ratio <= 2 else 'missed'}")


if __name__ == "__main__":
    main()
