"""``bench_search.py --via psycopg``: search and small statements through psycopg over TLS,
tarndb against PostgreSQL 15 + pgvector in the same run, on the same rows.

    python benchmarks/search/bench_search.py --via psycopg              # 100k x 384, minutes
    python benchmarks/search/bench_search.py --via psycopg --n 1000000  # issue 18's size

Starts a real ``tarndb serve`` (TLS, SCRAM) over a fresh lake and a throwaway PostgreSQL 15
with TLS on (``benchmarks/pgwire_bench.py``'s helper; Debian's server, run as ``postgres``
when root) with pgvector (build it from ``../shared/vendor/pgvector-0.8.6.tar.gz``, see
``../shared/vendor/README.md``; without it the pgvector rows say why they did not run). Both
get the same table (id, cat, body, emb) by COPY BINARY: ``emb`` is ``float4[]`` ranked with
``<#>`` on tarndb and ``vector(d)`` ranked with ``<=>`` on PostgreSQL. Query vectors are numpy
arrays sent in binary to both: pgvector-python's ``register_vector`` for PostgreSQL, a 10-line
``float4[]`` dumper (:class:`Float4ArrayDumper`) for tarndb (psycopg's own list dumper spends
1-2 ms formatting 384 floats as text). Rows that compare paths are timed interleaved, query
by query. Every row prints p50 /
p95 latency and recall@10 against the exact answer; filtered rows also count under-filled
answers. Rows:

- vector top-10 unfiltered, 1% and 50% filters: tarndb (``clustered`` index), pgvector HNSW
  (``hnsw.ef_search``, default 100) and IVFFlat (lists = rows / 1000, ``ivfflat.probes``,
  default sqrt(lists)), numpy brute force in this process; tarndb's exact scan (a pinned
  table version is answered exactly) beside numpy;
- BM25 top-10 with 3-word queries from the corpus: tarndb beside exhaustive BM25 (the recall
  reference), bm25s and Lance's own full-text search in this process (lancedb's FTS is
  Lance's);
- ``SELECT 1``, a primary-key lookup and catalog queries drivers send at connect time;
- before/after: the same tarndb statements with ``SET tarndb.fast_paths = off`` (the general
  path through DuckDB), and the ranking's fixed cost: its psycopg p50 less the same search
  called in this process on the server's table.

The psycopg figures come first; then issue 18's targets, each judged "met" or "missed" from
them.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from pgwire_bench import start_postgres  # noqa: E402

K = 10
PASSWORD = "bench-wire-pw"
_BIN_HEADER = b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def start_tarndb(root: str) -> tuple[subprocess.Popen[bytes], str, str]:
    """``tarndb serve`` on a fresh lake: (process, DSN, lake path)."""
    lake = os.path.join(root, "tarndb-lake")
    pg, http = _free_port(), _free_port()
    # Its own search cache: this process maps the same table's vectors for the in-process
    # rows, and two processes must not build one cache file at once.
    env = dict(os.environ, TARNDB_PASSWORD=PASSWORD,
               TARNDB_SEARCH_CACHE=os.path.join(root, "server-search-cache"))
    log = open(os.path.join(root, "tarndb-serve.log"), "wb")  # noqa: SIM115 - the child's
    proc = subprocess.Popen(
        [sys.executable, "-m", "tarndb", "serve", "--data", lake, "--host", "127.0.0.1",
         "--pg-port", str(pg), "--http-port", str(http), "--no-demo"],
        stdout=log, stderr=subprocess.STDOUT, env=env)
    log.close()
    dsn = (f"host=127.0.0.1 port={pg} user=postgres password={PASSWORD} dbname=postgres "
           "sslmode=require")
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            raise SystemExit("tarndb serve exited:\n"
                             + Path(root, "tarndb-serve.log").read_text())
        try:
            with psycopg.connect(dsn, connect_timeout=5) as c:
                c.execute("SELECT 1")
            return proc, dsn, lake
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("tarndb serve did not start") from None
            time.sleep(0.3)


def copy_payload(ids: np.ndarray, cat: np.ndarray, body: Sequence[str], emb: np.ndarray,
                 pgvector: bool) -> bytes:
    """COPY BINARY rows (id int8, cat int4, body text, emb): ``float4[]`` for tarndb,
    pgvector's ``vector`` for PostgreSQL. Built with numpy: the client is not what this
    measures."""
    n, d = emb.shape
    texts = [t.encode() for t in body]
    head = np.zeros(n, np.dtype([("nf", ">i2"), ("l1", ">i4"), ("id", ">i8"), ("l2", ">i4"),
                                 ("cat", ">i4"), ("l3", ">i4")]))
    head["nf"], head["l1"], head["id"], head["l2"], head["cat"] = 4, 8, ids, 4, cat
    head["l3"] = [len(t) for t in texts]
    if pgvector:
        vec = np.zeros(n, np.dtype([("len", ">i4"), ("dim", ">i2"), ("unused", ">i2"),
                                    ("x", ">f4", (d,))]))
        vec["len"], vec["dim"] = 4 + 4 * d, d
        vec["x"] = emb
    else:
        vec = np.zeros(n, np.dtype([("len", ">i4"), ("ndim", ">i4"), ("flags", ">i4"),
                                    ("elem", ">i4"), ("dim", ">i4"), ("lb", ">i4"),
                                    ("v", [("l", ">i4"), ("x", ">f4")], (d,))]))
        vec["len"], vec["ndim"], vec["elem"], vec["dim"], vec["lb"] = 20 + 8 * d, 1, 700, d, 1
        vec["v"]["l"] = 4
        vec["v"]["x"] = emb
    hb, vb = head.tobytes(), vec.tobytes()
    hs, vs = head.itemsize, vec.itemsize
    parts = [_BIN_HEADER]
    for i, t in enumerate(texts):
        parts += (hb[i * hs:(i + 1) * hs], t, vb[i * vs:(i + 1) * vs])
    parts.append(b"\xff\xff")
    return b"".join(parts)


def load(dsn: str, ddl: str, payload: bytes) -> float:
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS docs")
        c.execute(ddl)
        t0 = time.perf_counter()
        with c.cursor() as cur, cur.copy("COPY docs (id, cat, body, emb) FROM STDIN "
                                          "(FORMAT BINARY)") as cp:
            for off in range(0, len(payload), 1 << 20):
                cp.write(payload[off:off + (1 << 20)])
        return time.perf_counter() - t0


class Wire:
    """Rows of the psycopg section, printed as they come and kept for the targets."""

    def __init__(self, repeats: int) -> None:
        self.repeats = repeats
        self.rows: dict[str, tuple[float, float, float | None, int | None]] = {}

    def time(self, name: str, fn: Callable[[int], Sequence[int] | None], nq: int,
             truth: list[set[int]] | None = None, want: int | None = None,
             note: str = "") -> None:
        self.group([(name, fn, truth, want, note)], nq)

    def group(self, rows: Sequence[tuple[str, Callable[[int], Sequence[int] | None],
                                         list[set[int]] | None, int | None, str]],
              nq: int) -> None:
        """Time several ways of answering the same queries, interleaved query by query (on a
        busy machine, rows timed one after the other see different loads; interleaved, they
        share it, and a warm-up that one path leaves behind does not favour the next)."""
        for _, fn, *_rest in rows:
            for i in range(min(3, nq)):
                fn(i)  # warm: caches, the index opened, the statement prepared
        n = len(rows)
        p50s: list[list[float]] = [[] for _ in rows]
        p95s: list[list[float]] = [[] for _ in rows]
        rec: list[list[float]] = [[] for _ in rows]
        under = [0] * n
        for r in range(self.repeats):
            lat: list[list[float]] = [[] for _ in rows]
            for i in range(nq):
                for j, (_, fn, truth, want, _note) in enumerate(rows):
                    t0 = time.perf_counter()
                    keys = fn(i)
                    lat[j].append((time.perf_counter() - t0) * 1000)
                    if r == 0 and truth is not None and keys is not None:
                        got = list(keys)
                        rec[j].append(len(set(got[:K]) & truth[i])
                                      / max(1, min(K, len(truth[i]))))
                        if want is not None and len(got) < want:
                            under[j] += 1
            for j in range(n):
                p50s[j].append(float(np.percentile(lat[j], 50)))
                p95s[j].append(float(np.percentile(lat[j], 95)))
        for j, (name, _, _, want, note) in enumerate(rows):
            res = (float(np.median(p50s[j])), float(np.median(p95s[j])),
                   float(np.mean(rec[j])) if rec[j] else None,
                   under[j] if want is not None else None)
            self.rows[name] = res
            r_txt = "   n/a" if res[2] is None else f"{res[2]:6.3f}"
            u_txt = "" if res[3] is None else f"   under-filled {res[3]}"
            print(f"  {name:<58} p50 {res[0]:8.3f} ms   p95 {res[1]:8.3f} ms   recall@10 "
                  f"{r_txt}{u_txt}" + (f"   ({note})" if note else ""), flush=True)

    def skip(self, name: str, why: str) -> None:
        print(f"  {name:<58} not run: {why}", flush=True)

    def get(self, name: str) -> tuple[float, float, float | None, int | None] | None:
        return self.rows.get(name)


def _ids(cur: Any) -> list[int]:
    return [r[0] for r in cur.fetchall()]


class Float4ArrayDumper(psycopg.adapt.Dumper):
    """numpy vectors as binary ``float4[]`` parameters: the client side of tarndb's rows, as
    pgvector-python's ``register_vector`` is of PostgreSQL's (psycopg's own list dumper
    spends ~1-2 ms formatting 384 floats as text, more than the statement costs)."""

    oid = 1021  # float4[]
    format = psycopg.pq.Format.BINARY

    def dump(self, obj: Any) -> bytes:
        a = np.asarray(obj, dtype=">f4").ravel()
        body = np.empty(a.size, dtype=[("len", ">i4"), ("x", ">f4")])
        body["len"], body["x"] = 4, a
        return np.array([1, 0, 700, a.size, 1], ">i4").tobytes() + body.tobytes()


def _one_blas_thread() -> Any:
    """numpy's BLAS on one thread: on a small shared machine its threads fight the servers'
    and each other (a 100k x 384 product took 0.7 s with two)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1)


def _const(args: Any) -> Callable[[int], Any] | None:
    return None if args is None else (lambda i: args)


def ranked(c: psycopg.Connection[Any], sql: str, params: Sequence[Any]
           ) -> Callable[[int], list[int]]:
    """Query ``i``: ``sql`` with ``params[i]`` as its one parameter; the ids it returns."""
    def run(i: int) -> list[int]:
        return _ids(c.execute(sql, (params[i],)))  # type: ignore[arg-type]
    return run


def statement(c: psycopg.Connection[Any], sql: str, args: Callable[[int], Any] | None = None
              ) -> Callable[[int], None]:
    """Run ``sql`` (with ``args(i)``) and fetch every row."""
    def run(i: int) -> None:
        c.execute(sql, args(i) if args else None).fetchall()  # type: ignore[arg-type]
    return run


def run(root: str, v: Any, nq: int, repeats: int, slow: int, ef_search: int,
        probes: int | None, text: bool) -> None:
    """The psycopg section (``v``: bench_search's VectorData)."""
    from bench_search import topk  # the same top-k the direct mode uses

    n, d = v.data.shape
    w = Wire(repeats)
    print(f"\nthrough psycopg over TLS: tarndb serve vs PostgreSQL 15 + pgvector, {n} x {d}, "
          f"{nq} queries", flush=True)
    proc, tdsn, lake = start_tarndb(root)
    pg_stop = None
    pg_dsn = None
    # Outside ``root``: the server runs as the ``postgres`` user, who cannot enter a 0700
    # temporary directory of root's.
    pg_dir = tempfile.mkdtemp(prefix="tarn-bench-pg-")
    try:
        started = start_postgres(Path(pg_dir))
        if started is not None:
            pg_stop, pg_dsn = started
    except Exception as e:  # noqa: BLE001 - a missing baseline says why
        print(f"  PostgreSQL: not started ({e!r})")
    if pg_dsn is None:
        print("  PostgreSQL: not started (install Debian's postgresql-15); its rows are skipped")
    try:
        t0 = time.perf_counter()
        secs = load(tdsn, "CREATE TABLE docs (id BIGINT PRIMARY KEY, cat INT, body TEXT, "
                    "emb FLOAT4[])", copy_payload(v.rid, v.cat, v.text, v.data, False))
        print(f"  load: tarndb COPY BINARY {n} rows {secs:.1f} s", flush=True)
        with psycopg.connect(tdsn, autocommit=True) as c:
            t1 = time.perf_counter()
            c.execute("CREATE INDEX docs_emb ON docs USING deeplake_index (emb DESC)")
            print(f"  build: tarndb clustered index {time.perf_counter() - t1:.1f} s")
            if text:
                t1 = time.perf_counter()
                c.execute("CREATE INDEX docs_body ON docs USING deeplake_index (body) "
                          "WITH (index_type = 'bm25')")
                print(f"  build: tarndb bm25 index {time.perf_counter() - t1:.1f} s")
            version = max(r[0] for r in c.execute(
                "SELECT version FROM tarndb_versions('docs')").fetchall())
        del t0
        pgvector_ok = False
        if pg_dsn is not None:
            with psycopg.connect(pg_dsn, autocommit=True) as c:
                try:
                    c.execute("CREATE EXTENSION IF NOT EXISTS vector")
                    pgvector_ok = True
                except psycopg.Error as e:
                    print("  pgvector: not available in this PostgreSQL "
                          f"({e.diag.message_primary}); build it from "
                          "../shared/vendor/pgvector-0.8.6.tar.gz")
            if pgvector_ok:
                secs = load(pg_dsn, f"CREATE TABLE docs (id BIGINT PRIMARY KEY, cat INT, "
                            f"body TEXT, emb vector({d}))",
                            copy_payload(v.rid, v.cat, v.text, v.data, True))
                print(f"  load: PostgreSQL COPY BINARY {n} rows {secs:.1f} s", flush=True)
            else:
                load(pg_dsn, "CREATE TABLE docs (id BIGINT PRIMARY KEY, cat INT, body TEXT, "
                     "emb REAL[])", copy_payload(v.rid, v.cat, v.text, v.data, False))

        # -- small statements -----------------------------------------------------------
        print("\n small statements")
        rng = np.random.default_rng(5)
        keys = rng.integers(0, n, 1000).tolist()
        small_n = 300
        cat_sql = {
            "psycopg TypeInfo.fetch('vector') query": (
                "SELECT t.typname AS name, t.oid AS oid, t.typarray AS array_oid, "
                "t.oid::regtype::text AS regtype, coalesce(a.typdelim, ',') AS delimiter "
                "FROM pg_type t LEFT JOIN pg_type a ON a.oid = t.typarray "
                "WHERE t.oid = to_regtype(%s)", ("vector",)),
            "SQLAlchemy has_table query": (
                "SELECT pg_catalog.pg_class.relname FROM pg_catalog.pg_class JOIN "
                "pg_catalog.pg_namespace ON pg_catalog.pg_namespace.oid = "
                "pg_catalog.pg_class.relnamespace WHERE pg_catalog.pg_class.relname = %s "
                "AND pg_catalog.pg_class.relkind = ANY (ARRAY['r', 'p', 'f', 'v', 'm']) "
                "AND pg_catalog.pg_table_is_visible(pg_catalog.pg_class.oid) "
                "AND pg_catalog.pg_namespace.nspname != 'pg_catalog'", ("docs",)),
            "SHOW standard_conforming_strings": ("SHOW standard_conforming_strings", None),
        }
        pk = "SELECT id, cat, body FROM docs WHERE id = %s"
        with psycopg.connect(tdsn, autocommit=True) as c, \
                psycopg.connect(tdsn, autocommit=True) as off:
            off.execute("SET tarndb.fast_paths = off")
            pg = psycopg.connect(pg_dsn, autocommit=True) if pg_dsn else None
            try:
                def rows_for(what: str, sql: str, args: Callable[[int], Any] | None
                             ) -> list[Any]:
                    out: list[Any] = [(f"tarndb: {what}", statement(c, sql, args), None, None,
                                       "")]
                    if pg is not None:
                        out.append((f"PostgreSQL: {what}", statement(pg, sql, args), None,
                                    None, ""))
                    return out

                w.group(rows_for("SELECT 1", "SELECT 1", None) + [
                    ("tarndb: SELECT 1, fast paths off (before)", statement(off, "SELECT 1"),
                     None, None, "")], small_n)
                w.group(rows_for("primary-key lookup", pk, lambda i: (keys[i],)), small_n)
                for what, (sql, args) in cat_sql.items():
                    try:
                        for conn in (c, pg, off):
                            if conn is not None:
                                conn.execute(sql, args).fetchall()
                    except psycopg.Error as e:
                        w.skip(what, e.diag.message_primary or repr(e))
                        continue
                    w.group(rows_for(what, sql, _const(args)) + [
                        (f"tarndb: {what}, fast paths off (before)",
                         statement(off, sql, _const(args)), None, None, "")], 100)
            finally:
                if pg is not None:
                    pg.close()

        # -- vectors ------------------------------------------------------------------------
        print(f"\n vector top-{K} (cosine), {n} x {d}")
        wheres = {"unfiltered": "", "1% filter": "WHERE cat = 0 ", "50% filter":
                  "WHERE cat < 50 "}
        want = {f: min(K, int(m.sum()) if m is not None else n)
                for f, (_, m) in v.filters.items()}
        qlists = list(v.qs)
        for fname, (_, mask) in v.filters.items():
            sub = np.flatnonzero(mask) if mask is not None else None
            xs = v.data if sub is None else v.data[sub]

            def brute(i: int, xs: np.ndarray = xs, sub: Any = sub) -> list[int]:
                top = topk(xs @ v.qs[i], K)
                return (top if sub is None else sub[top]).tolist()

            with _one_blas_thread():
                w.time(f"numpy brute force (in process), {fname}", brute, min(nq, slow),
                       v.truths[fname], want[fname], f"{min(nq, slow)} queries, 1 BLAS thread")
        with psycopg.connect(tdsn, autocommit=True) as c, \
                psycopg.connect(tdsn, autocommit=True) as off:
            for conn in (c, off):  # query vectors go as binary float4[] (numpy)
                conn.adapters.register_dumper(np.ndarray, Float4ArrayDumper)
            off.execute("SET tarndb.fast_paths = off")
            for fname, where in wheres.items():
                sql = f"SELECT id FROM docs {where}ORDER BY emb <#> %s LIMIT {K}"
                group = [(f"tarndb, {fname}", ranked(c, sql, qlists), v.truths[fname],
                          want[fname], ""),
                         (f"tarndb, {fname}, fast paths off (before)", ranked(off, sql, qlists),
                          v.truths[fname], want[fname], "")]
                if fname == "unfiltered":
                    group.append(_search_alone(lake, v))
                w.group(group, nq)
            sql = f'SELECT id FROM "docs@{version}" ORDER BY emb <#> %s LIMIT {K}'
            w.time("tarndb exact scan (pinned version), unfiltered", ranked(c, sql, qlists),
                   min(nq, slow), v.truths["unfiltered"], K, f"{min(nq, slow)} queries")
            _fixed_cost(w, c, off, v, nq)
        if pg_dsn is not None and pgvector_ok:
            _pgvector(w, pg_dsn, v, nq, ef_search, probes, wheres, want)
        elif pg_dsn is not None:
            w.skip("pgvector HNSW / IVFFlat", "the vector extension is not installed")

        # -- BM25 -----------------------------------------------------------------------------
        if text:
            _bm25(w, tdsn, root, lake, v, nq)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if pg_stop:
            subprocess.run(pg_stop, check=False, stdout=subprocess.DEVNULL)
        shutil.rmtree(pg_dir, ignore_errors=True)
    targets(w, n, d)


def _table_uri(lake: str) -> str:
    found = sorted(glob.glob(os.path.join(lake, "public", "docs*.lance")))
    if not found:
        raise SystemExit(f"the docs table's Lance dataset is not under {lake}/public")
    return found[-1]


def _fixed_cost(w: Wire, c: psycopg.Connection[Any], off: psycopg.Connection[Any], v: Any,
                nq: int) -> None:
    """A ranking's fixed cost: the same statement on a table of 10 rows, where the search is
    a few microseconds (timed in this process beside it), so the round trip is the cost."""
    import tarndb.search as search

    tiny = v.data[:K]
    c.execute("DROP TABLE IF EXISTS tiny")
    c.execute("CREATE TABLE tiny (id BIGINT PRIMARY KEY, emb FLOAT4[])")
    with c.cursor() as cur:
        cur.executemany("INSERT INTO tiny VALUES (%s, %s)",
                        [(i, tiny[i]) for i in range(K)])
    qlists = list(v.qs)
    sql = f"SELECT id FROM tiny ORDER BY emb <#> %s LIMIT {K}"
    packed = np.ascontiguousarray(tiny)
    w.group([("tarndb ranking, 10-row table", ranked(c, sql, qlists), None, None,
              "the round trip is the fixed cost"),
             ("tarndb ranking, 10-row table, fast paths off (before)", ranked(off, sql, qlists),
              None, None, ""),
             ("cosine top-10 of 10 rows in numpy (the search there)",
              lambda i: search.cosine_scores(packed, v.qs[i]).argsort()[::-1].tolist(), None,
              None, "")], nq)


def _search_alone(lake: str, v: Any, bm25_truth: list[set[int]] | None = None
                  ) -> tuple[str, Callable[[int], list[int]], list[set[int]], int | None, str]:
    """The search the server runs for an unfiltered ranking (vector, or BM25 when its truth
    is given), called in this process on the server's table: what the SQL and the wire add
    is the difference."""
    import lance

    import tarndb.search as search

    ds = lance.dataset(_table_uri(lake))
    t = ds.to_table(columns=["__rid", "id"])
    order = np.argsort(t["__rid"].to_numpy())
    rid_sorted, id_of = t["__rid"].to_numpy()[order], t["id"].to_numpy()[order]

    def alone(i: int) -> list[int]:
        if bm25_truth is not None:
            rids = search.bm25_topk(ds, "body", v.qtexts[i], K).row_keys
        else:
            rids = search.vector_topk(ds, "emb", v.qs[i], K).row_keys
        return id_of[np.searchsorted(rid_sorted, rids)].tolist()  # the server's __rid -> id

    if bm25_truth is not None:
        return ("tarndb BM25 search alone (in process, the server's table)", alone,
                bm25_truth, None, "")
    return ("tarndb search alone (in process, the server's table)", alone,
            v.truths["unfiltered"], K, "")


def _pgvector(w: Wire, dsn: str, v: Any, nq: int, ef_search: int, probes: int | None,
              wheres: dict[str, str], want: dict[str, int]) -> None:
    from pgvector.psycopg import register_vector

    n, _ = v.data.shape
    lists = max(1, n // 1000)
    probes = probes or max(1, int(round(np.sqrt(lists))))
    with psycopg.connect(dsn, autocommit=True) as c:
        register_vector(c)
        c.execute("SET maintenance_work_mem = '2GB'")
        c.execute("CREATE INDEX docs_cat ON docs (cat)")
        c.execute("ANALYZE docs")
        for kind, build, setting in (
                ("HNSW", "CREATE INDEX docs_hnsw ON docs USING hnsw (emb vector_cosine_ops)",
                 f"SET hnsw.ef_search = {ef_search}"),
                ("IVFFlat", f"CREATE INDEX docs_ivf ON docs USING ivfflat (emb "
                 f"vector_cosine_ops) WITH (lists = {lists})", f"SET ivfflat.probes = {probes}")):
            t0 = time.perf_counter()
            c.execute(build)
            print(f"  build: pgvector {kind} {time.perf_counter() - t0:.1f} s", flush=True)
            c.execute(setting)
            note = setting.removeprefix("SET ")
            for fname, where in wheres.items():
                sql = f"SELECT id FROM docs {where}ORDER BY emb <=> %s LIMIT {K}"
                w.time(f"pgvector {kind}, {fname}", ranked(c, sql, v.qs), nq,
                       v.truths[fname], want[fname], note)
            c.execute(f"DROP INDEX docs_{'hnsw' if kind == 'HNSW' else 'ivf'}")
        sql = f"SELECT id FROM docs ORDER BY emb <=> %s LIMIT {K}"
        slow = min(nq, 20)
        w.time("PostgreSQL exact scan (no vector index), unfiltered", ranked(c, sql, v.qs),
               slow, v.truths["unfiltered"], K, f"{slow} queries")


def _bm25(w: Wire, dsn: str, root: str, lake: str, v: Any, nq: int) -> None:
    import lance
    import pyarrow as pa
    from bench_search import topk

    import tarndb.search as search

    n = len(v.text)
    print(f"\n BM25 top-{K}, {n} short documents, 3-word queries")
    exact_idx = search.BM25Index()
    exact_idx.add(v.rid, v.text)

    def bm25_exact(i: int) -> list[int]:
        keys, scores = exact_idx.score_all(v.qtexts[i])
        return keys[topk(scores, K)].tolist()

    truth = [set(bm25_exact(i)) for i in range(nq)]
    w.time("exhaustive BM25 (in process, the recall reference)", bm25_exact, nq, truth)
    with psycopg.connect(dsn, autocommit=True) as c, \
            psycopg.connect(dsn, autocommit=True) as off:
        off.execute("SET tarndb.fast_paths = off")
        sql = f"SELECT id FROM docs ORDER BY body <#> %s LIMIT {K}"
        w.group([("tarndb BM25", ranked(c, sql, v.qtexts), truth, None, ""),
                 ("tarndb BM25, fast paths off (before)", ranked(off, sql, v.qtexts), truth,
                  None, ""), _search_alone(lake, v, truth)], nq)
    try:
        import bm25s  # type: ignore[import-not-found,import-untyped,unused-ignore]
    except ImportError:
        w.skip("bm25s (in process)", "pip install bm25s")
    else:
        retriever = bm25s.BM25()
        retriever.index(bm25s.tokenize(list(v.text), stopwords=None, show_progress=False),
                        show_progress=False)

        def bm25s_q(i: int) -> list[int]:
            res, _ = retriever.retrieve(bm25s.tokenize([v.qtexts[i]], stopwords=None,
                                                       show_progress=False), k=K,
                                        show_progress=False)
            return [int(x) for x in res[0]]

        w.time("bm25s (in process)", bm25s_q, nq, truth, note="its own BM25 variant")
    fts = lance.write_dataset(pa.table({"__rid": v.rid, "body": v.text}), f"{root}/fts.lance")
    fts.create_scalar_index("body", "INVERTED")
    fts = lance.dataset(fts.uri)
    w.time("Lance full-text search (in process; lancedb's FTS)", lambda i: fts.to_table(
        columns=["__rid"], full_text_query=v.qtexts[i], limit=K,
        disable_scoring_autoprojection=True)["__rid"].to_pylist(), nq, truth,
        note="Lance's BM25 variant")


def targets(w: Wire, n: int, d: int) -> None:
    """Issue 18's targets, judged from the psycopg rows."""
    print(f"\nissue 18 targets, through psycopg (measured here at {n} x {d}):")

    def line(what: str, ok: bool | None, got: str) -> None:
        mark = "n/a   " if ok is None else ("met   " if ok else "missed")
        print(f"  [{mark}] {what:<62} {got}")

    def p50(name: str) -> float | None:
        r = w.get(name)
        return None if r is None else r[0]

    t, h = w.get("tarndb, unfiltered"), w.get("pgvector HNSW, unfiltered")
    if t is not None and h is not None:
        line("vector top-10 p50 <= pgvector HNSW at recall@10 >= 0.95",
             t[0] <= h[0] and (t[2] or 0) >= 0.95,
             f"tarndb {t[0]:.2f} ms (recall {t[2]:.3f}) vs HNSW {h[0]:.2f} ms "
             f"(recall {h[2]:.3f}), {t[0] / h[0]:.2f}x")
    else:
        line("vector top-10 p50 <= pgvector HNSW at recall@10 >= 0.95", None,
             "a row did not run")
    if t is not None:
        line("vector top-10 p50 <= 8 ms (machine idle)", t[0] <= 8, f"{t[0]:.2f} ms")
    filt = [w.get(f"tarndb, {f}") for f in ("1% filter", "50% filter")]
    if all(r is not None for r in filt):
        worst = min(r[2] or 0 for r in filt if r is not None)
        under = sum(r[3] or 0 for r in filt if r is not None)
        line("filtered recall >= 0.95, never under-filled", worst >= 0.95 and under == 0,
             f"worst recall {worst:.3f}, under-filled {under} (clustered data only)")
    b, lf = w.get("tarndb BM25"), w.get("Lance full-text search (in process; lancedb's FTS)")
    if b is not None and lf is not None:
        line("BM25 p50 <= lancedb FTS (Lance FTS in process)", b[0] <= lf[0],
             f"tarndb {b[0]:.2f} ms vs {lf[0]:.2f} ms, {b[0] / lf[0]:.2f}x")
    e, nb = p50("tarndb exact scan (pinned version), unfiltered"), \
        p50("numpy brute force (in process), unfiltered")
    if e is not None and nb is not None:
        line("exact scan <= 1.5x numpy", e <= 1.5 * nb,
             f"{e:.2f} ms vs {nb:.2f} ms, {e / nb:.2f}x")
    line("MaxSim exact <= 1.5x numpy", None, "not in --via psycopg (see the direct mode)")
    for what, tn, pn in (("SELECT 1 <= 2x PostgreSQL", "tarndb: SELECT 1",
                          "PostgreSQL: SELECT 1"),
                         ("primary-key lookup <= 2x PostgreSQL", "tarndb: primary-key lookup",
                          "PostgreSQL: primary-key lookup"),
                         ("catalog query (TypeInfo.fetch) <= 2x PostgreSQL",
                          "tarndb: psycopg TypeInfo.fetch('vector') query",
                          "PostgreSQL: psycopg TypeInfo.fetch('vector') query"),
                         ("catalog query (has_table) <= 2x PostgreSQL",
                          "tarndb: SQLAlchemy has_table query",
                          "PostgreSQL: SQLAlchemy has_table query")):
        a, b2 = p50(tn), p50(pn)
        if a is None or b2 is None:
            line(what, None, "a row did not run")
        else:
            line(what, a <= 2 * b2, f"{a:.3f} ms vs {b2:.3f} ms, {a / b2:.2f}x")
    for what, alone, through in (
            ("vector", "cosine top-10 of 10 rows in numpy (the search there)",
             "tarndb ranking, 10-row table"),
            ("BM25 (the search timed in this process)",
             "tarndb BM25 search alone (in process, the server's table)", "tarndb BM25")):
        s, r = p50(alone), p50(through)
        if s is None or r is None:
            continue
        line(f"{what} ranking fixed cost <= 1 ms plus the search", r - s <= 1.0,
             f"{r:.2f} ms through psycopg - {s:.2f} ms search = {r - s:.2f} ms")
        before = p50(f"{through}, fast paths off (before)")
        if before is not None:
            print(f"  (before, general path: {before:.2f} ms through psycopg, fixed cost "
                  f"{before - s:.2f} ms)")
    line("HTTP upload / download >= 0.5x a file copy", None, "not measured here")
