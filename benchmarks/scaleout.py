"""Several ``tarndb serve`` processes on one lake: throughput with 1, 2 and 3 servers, how
long a write takes to be seen on another server, and Ray writes against COPY.

    python benchmarks/scaleout.py [--servers 1,2,3] [--clients 6] [--seconds 5]
                                  [--ray-rows 100000] [--s3]

- **Statements/s with N servers**: ``--clients`` client processes (psycopg, autocommit,
  TLS), spread round-robin over the N servers, run for ``--seconds`` each of two workloads:
  point reads (``SELECT v FROM kv WHERE id = $1``) and a write mix (one single-row INSERT and
  one ``UPDATE ... SET n = n + 1`` on one of 10 hot rows per loop). The baseline is the same
  clients on one server, in the same run; the ratio is N servers / 1 server. Every write
  acknowledged must be on the lake afterwards (exact counts), or the script fails. On a
  small machine every server competes for the same cores, so this shows correctness and the
  cost of coordinating through the lake, not speed-up.
- **Visibility lag**: a row inserted through server A, then polled for through server B
  (``SELECT ... WHERE id = $1`` in a loop): p50/max of the time from A's acknowledgement to
  B's first answer that has it.
- **Ray write vs COPY**: ``--ray-rows`` rows (id, text, float4[32]) written by
  ``tarndb.ray.write_table`` on a local Ray cluster (2 CPUs) into a new table, against
  COPY BINARY of the same rows through one server, in the same run.

``--s3`` puts the lake in a local S3 (moto) instead of a directory.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import pct  # noqa: E402

PASSWORD = "bench-pw"
ROWS = 2000
HOT = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, lake: str, log: Path, env: dict[str, str]) -> None:
        self.pg = free_port()
        self.http = free_port()
        out = open(log, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tarndb", "serve", "--data", lake, "--host", "127.0.0.1",
             "--pg-port", str(self.pg), "--http-port", str(self.http)],
            stdout=out, stderr=subprocess.STDOUT,
            env=dict(os.environ, TARNDB_PASSWORD=PASSWORD, **env))
        out.close()
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise SystemExit("tarndb serve exited:\n" + log.read_text())
            try:
                with psycopg.connect(self.dsn, connect_timeout=5) as c:
                    c.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise SystemExit("tarndb serve did not start:\n" + log.read_text()) from None
                time.sleep(0.2)

    @property
    def dsn(self) -> str:
        return (f"host=127.0.0.1 port={self.pg} user=postgres password={PASSWORD} "
                "dbname=postgres sslmode=require")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# -- client processes ------------------------------------------------------------------------

def _client(dsn: str, kind: str, seconds: float, seed: int, start: Any, q: Any) -> None:
    rng = np.random.default_rng(seed)
    done = 0
    inserted: list[int] = []
    increments = 0
    lat: list[float] = []
    with psycopg.connect(dsn, autocommit=True) as c:
        start.wait()
        end = time.monotonic() + seconds
        next_id = 10_000_000 * (seed + 1)
        while time.monotonic() < end:
            t0 = time.perf_counter()
            if kind == "read":
                k = int(rng.integers(0, ROWS))
                row = c.execute("SELECT v FROM kv WHERE id = %s", [k]).fetchone()
                assert row is not None and row[0] == f"v{k}", row
                done += 1
            else:
                c.execute("INSERT INTO ev (id, src) VALUES (%s, %s)", [next_id, seed])
                inserted.append(next_id)
                next_id += 1
                hot = int(rng.integers(0, HOT))
                c.execute("UPDATE hot SET n = n + 1 WHERE id = %s", [hot])
                increments += 1
                done += 2
            lat.append(time.perf_counter() - t0)
    q.put({"done": done, "inserted": inserted, "increments": increments, "lat": lat})


def run_clients(servers: list[Server], kind: str, clients: int, seconds: float
                ) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    start = ctx.Event()
    procs = [ctx.Process(target=_client, args=(servers[i % len(servers)].dsn, kind, seconds,
                                               i, start, q)) for i in range(clients)]
    for p in procs:
        p.start()
    time.sleep(2.0)  # every client connected before the clock starts
    t0 = time.monotonic()
    start.set()
    results = [q.get(timeout=seconds + 300) for _ in procs]
    elapsed = time.monotonic() - t0
    for p in procs:
        p.join(30)
    lat = [x for r in results for x in r["lat"]]
    return {"per_s": sum(r["done"] for r in results) / min(elapsed, seconds + 0.5),
            "p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99),
            "inserted": [i for r in results for i in r["inserted"]],
            "increments": sum(r["increments"] for r in results)}


def setup_tables(srv: Server) -> None:
    with psycopg.connect(srv.dsn, autocommit=True) as c:
        for t in ("kv", "ev", "hot"):
            c.execute(f"DROP TABLE IF EXISTS {t}")
        c.execute("CREATE TABLE kv (id INT PRIMARY KEY, v TEXT)")
        c.execute(f"INSERT INTO kv SELECT i, 'v' || i FROM generate_series(0, {ROWS - 1}) t(i)")
        c.execute("CREATE TABLE ev (id BIGINT PRIMARY KEY, src INT)")
        c.execute("CREATE TABLE hot (id INT PRIMARY KEY, n INT NOT NULL)")
        c.execute(f"INSERT INTO hot SELECT i, 0 FROM generate_series(0, {HOT - 1}) t(i)")


def check_writes(srv: Server, res: dict[str, Any]) -> None:
    """Every acknowledged write is on the lake: exact counts, read through another server."""
    with psycopg.connect(srv.dsn, autocommit=True) as c:
        n, distinct = c.execute("SELECT count(*), count(DISTINCT id) FROM ev").fetchone() or (0, 0)
        total = (c.execute("SELECT sum(n) FROM hot").fetchone() or (0,))[0]
    if n != len(res["inserted"]) or distinct != n or total != res["increments"]:
        raise SystemExit(f"LOST WRITES: ev rows {n} (distinct {distinct}) vs acknowledged "
                         f"{len(res['inserted'])}; increments {total} vs {res['increments']}")


def visibility_lag(a: Server, b: Server, samples: int = 40) -> list[float]:
    lags: list[float] = []
    with psycopg.connect(a.dsn, autocommit=True) as ca, \
            psycopg.connect(b.dsn, autocommit=True) as cb:
        ca.execute("DROP TABLE IF EXISTS lag")
        ca.execute("CREATE TABLE lag (id INT PRIMARY KEY)")
        cb.execute("SELECT count(*) FROM lag")
        for i in range(samples):
            ca.execute("INSERT INTO lag VALUES (%s)", [i])
            t0 = time.perf_counter()
            while cb.execute("SELECT 1 FROM lag WHERE id = %s", [i]).fetchone() is None:
                if time.perf_counter() - t0 > 30:
                    raise SystemExit(f"row {i} never seen on the other server")
            lags.append(time.perf_counter() - t0)
    return lags


# -- Ray against COPY --------------------------------------------------------------------------

def ray_vs_copy(lake: str, srv: Server, rows: int) -> dict[str, float]:
    import ray

    import tarndb.ray as tray

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    dim = 32
    rng = np.random.default_rng(0)
    vecs = rng.standard_normal((rows, dim)).astype(np.float32)
    out: dict[str, float] = {}

    from pgwire_bench import copy_binary

    data = copy_binary(vecs)
    with psycopg.connect(srv.dsn, autocommit=True) as c:
        c.execute("DROP TABLE IF EXISTS by_copy")
        c.execute("CREATE TABLE by_copy (id BIGINT PRIMARY KEY, t TEXT, v FLOAT4[])")
        t0 = time.perf_counter()
        with c.cursor().copy("COPY by_copy FROM STDIN (FORMAT BINARY)") as cp:
            cp.write(data)
        out["copy_s"] = time.perf_counter() - t0
        assert c.execute("SELECT count(*) FROM by_copy").fetchone() == (rows,)

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        # Warm the workers (process start and imports are Ray's fixed cost, reported apart).
        warm = ray.data.from_items([{"id": -1, "t": "w", "v": [0.0] * dim}])
        t0 = time.perf_counter()
        tray.write_table(warm, "public.ray_warm", lake, mode="create")
        out["ray_warm_s"] = time.perf_counter() - t0

        def make(b: dict[str, np.ndarray]) -> dict[str, Any]:
            ids = b["id"]
            return {"id": ids, "t": np.array([f"row {i}" for i in ids]),
                    "v": vecs[ids]}

        ds = ray.data.range(rows, override_num_blocks=4).map_batches(make)
        t0 = time.perf_counter()
        res = tray.write_table(ds, "public.by_ray", lake, mode="create", primary_key=["id"])
        out["ray_s"] = time.perf_counter() - t0
        assert res.rows == rows
    finally:
        ray.shutdown()
    with psycopg.connect(srv.dsn, autocommit=True) as c:
        assert c.execute("SELECT count(*), count(DISTINCT id) FROM by_ray").fetchone() == \
            (rows, rows)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--servers", default="1,2,3")
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--ray-rows", type=int, default=100_000)
    ap.add_argument("--s3", action="store_true", help="the lake in a local S3 (moto)")
    args = ap.parse_args()
    counts = [int(x) for x in args.servers.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="tarndb-scaleout-"))
    env: dict[str, str] = {}
    moto = None
    lake = str(tmp / "lake")
    if args.s3:
        import logging

        import boto3
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per S3 request
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        host, port = moto.get_host_and_port()
        env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "k",
               "AWS_SECRET_ACCESS_KEY": "s", "AWS_REGION": "us-east-1"}
        os.environ.update(env)
        boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1"
                     ).create_bucket(Bucket="scaleout")
        lake = "s3://scaleout/lake"
    servers: list[Server] = []
    try:
        servers.append(Server(lake, tmp / "s0.log", env))
        for i in range(1, max(counts)):
            servers.append(Server(lake, tmp / f"s{i}.log", env))
        print(f"lake: {lake}; {args.clients} client processes; {args.seconds:g} s per run; "
              f"{os.cpu_count()} CPUs", flush=True)
        table: dict[str, dict[int, dict[str, Any]]] = {"read": {}, "write": {}}
        for kind in ("read", "write"):
            for n in counts:
                setup_tables(servers[0])
                res = run_clients(servers[:n], kind, args.clients, args.seconds)
                if kind == "write":
                    check_writes(servers[-1], res)
                table[kind][n] = res
                print(f"{kind:5s} {n} server(s): {res['per_s']:8.0f} statements/s  "
                      f"p50 {res['p50_ms']:6.1f} ms  p99 {res['p99_ms']:7.1f} ms"
                      + ("  (every acknowledged write found)" if kind == "write" else ""),
                      flush=True)
        for kind in ("read", "write"):
            base = table[kind][counts[0]]["per_s"]
            print(f"{kind}: " + ", ".join(
                f"{n} servers = {table[kind][n]['per_s'] / base:.2f}x" for n in counts)
                + f" of {counts[0]} server(s)")
        if len(servers) >= 2:
            lags = visibility_lag(servers[0], servers[1])
            print(f"visibility lag (insert on A acknowledged -> seen on B): "
                  f"p50 {pct(lags, 0.5):.1f} ms, max {max(lags) * 1000:.1f} ms "
                  f"({len(lags)} rows)")
        if args.ray_rows:
            r = ray_vs_copy(lake, servers[0], args.ray_rows)
            print(f"{args.ray_rows} rows (id, text, float4[32]): COPY BINARY through one "
                  f"server {args.ray_rows / r['copy_s']:,.0f} rows/s; tarndb.ray.write_table "
                  f"(2 CPUs, 4 blocks, one commit) {args.ray_rows / r['ray_s']:,.0f} rows/s "
                  f"= {r['copy_s'] / r['ray_s']:.2f}x COPY (Ray's worker start-up, "
                  f"{r['ray_warm_s']:.1f} s, measured apart)")
    finally:
        for s in servers:
            s.stop()
        if moto is not None:
            moto.stop()


if __name__ == "__main__":
    main()
