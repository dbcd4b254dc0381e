"""Postgres protocol benchmark: tarndb against a real PostgreSQL, same client, one run.

    python benchmarks/pgwire_bench.py [--pg-dsn "host=... port=... user=... dbname=..."]
        [--rows 100000] [--dim 384] [--clients 50] [--rate 10]

Starts ``python -m tarndb.pgwire`` over a fresh lake (TLS, SCRAM). Without ``--pg-dsn`` it
starts a throwaway PostgreSQL with ``initdb``/``pg_ctl`` (PATH or Debian's
/usr/lib/postgresql/*/bin; as the ``postgres`` user when run as root). Prints, for each
server: ``SELECT 1`` round trip p50/p95, primary-key lookup p50/p95, COPY ingest of
``--rows`` rows (id, text, ``--dim``-d float4[]) in rows/s, and ``SELECT 1`` p50/p95 with
``--clients`` concurrent clients, flat out and paced at ``--rate`` queries/s each. Both
servers are reached over TLS (``sslmode=require``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psycopg
from _timing import pct, timed

from tarndb.pgwire.server import ensure_certificate

PASSWORD = "bench-pw"


def copy_binary(vecs: np.ndarray) -> bytes:
    """COPY BINARY rows (id int8, t text, v float4[]) built with numpy, so the client is not
    what the benchmark measures."""
    n, dim = vecs.shape
    texts = [f"row {i}".encode() for i in range(n)]
    tlen = max(len(t) for t in texts)
    rec = np.dtype([("nf", ">i2"), ("l1", ">i4"), ("id", ">i8"), ("l2", ">i4"),
                    ("t", f"S{tlen}"), ("l3", ">i4"), ("ndim", ">i4"), ("flags", ">i4"),
                    ("elem", ">i4"), ("dim", ">i4"), ("lb", ">i4"),
                    ("v", [("len", ">i4"), ("x", ">f4")], (dim,))])
    a = np.zeros(n, dtype=rec)
    a["nf"], a["l1"], a["id"], a["l2"] = 3, 8, np.arange(n), tlen
    a["t"] = [t.ljust(tlen) for t in texts]
    a["l3"] = 20 + 8 * dim
    a["ndim"], a["flags"], a["elem"], a["dim"], a["lb"] = 1, 0, 700, dim, 1
    a["v"]["len"] = 4
    a["v"]["x"] = vecs
    return b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8 + a.tobytes() + b"\xff\xff"


def bench(name: str, dsn: str, rows: int, dim: int, clients: int,
          rate: float) -> dict[str, float]:
    res: dict[str, float] = {}
    with psycopg.connect(dsn, autocommit=True) as c:
        for _ in range(50):
            c.execute("SELECT 1").fetchone()
        lat = timed(lambda: c.execute("SELECT 1").fetchone(), 1000)
        res["select1_p50_ms"], res["select1_p95_ms"] = pct(lat, .5), pct(lat, .95)
        c.execute("DROP TABLE IF EXISTS bench_items")
        c.execute("CREATE TABLE bench_items (id BIGINT PRIMARY KEY, t TEXT, v FLOAT4[])")
        vecs = np.random.default_rng(0).standard_normal((rows, dim)).astype(np.float32)
        payload = copy_binary(vecs)
        t0 = time.perf_counter()
        with c.cursor().copy("COPY bench_items (id, t, v) FROM STDIN (FORMAT BINARY)") as cp:
            for off in range(0, len(payload), 1 << 20):
                cp.write(payload[off:off + (1 << 20)])
        res["copy_rows_per_s"] = rows / (time.perf_counter() - t0)
        ids = np.random.default_rng(1).integers(0, rows, 300).tolist()
        it = iter(ids)
        lat = timed(lambda: c.execute("SELECT id, t FROM bench_items WHERE id = %s",
                                      (next(it),)).fetchone(), len(ids))
        res["pk_p50_ms"], res["pk_p95_ms"] = pct(lat, .5), pct(lat, .95)
    closed, closed_err = concurrent(dsn, clients, None)
    paced, paced_err = concurrent(dsn, clients, rate)
    res["concurrent_errors"] = closed_err + paced_err
    res["concurrent_p50_ms"], res["concurrent_p95_ms"] = pct(closed, .5), pct(closed, .95)
    res["paced_p50_ms"], res["paced_p95_ms"] = pct(paced, .5), pct(paced, .95)
    print(f"{name:>10}: SELECT 1 p50 {res['select1_p50_ms']:.3f} ms p95 "
          f"{res['select1_p95_ms']:.3f} ms | PK lookup p50 {res['pk_p50_ms']:.3f} ms p95 "
          f"{res['pk_p95_ms']:.3f} ms | COPY {res['copy_rows_per_s']:,.0f} rows/s\n"
          f"{'':>12}{clients} clients SELECT 1 flat out: p50 {res['concurrent_p50_ms']:.3f} ms "
          f"p95 {res['concurrent_p95_ms']:.3f} ms | at {rate:g}/s each: p50 "
          f"{res['paced_p50_ms']:.3f} ms p95 {res['paced_p95_ms']:.3f} ms | errors "
          f"{int(res['concurrent_errors'])}", flush=True)
    return res


def concurrent(dsn: str, clients: int, rate: float | None,
               per_client: int = 200) -> tuple[list[float], int]:
    """``clients`` connections running ``SELECT 1``: flat out (``rate`` None: a saturation
    test, where p95 is queueing behind the other 49 on a 2-core box, for any server), or
    each at ``rate`` queries/s with random phase (a load the server can carry, where p95
    shows what concurrency itself costs)."""
    lats: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def client(seed: int) -> None:
        rng = np.random.default_rng(seed)
        mine: list[float] = []
        try:
            with psycopg.connect(dsn, autocommit=True) as cc:
                cc.execute("SELECT 1").fetchone()
                start.wait()
                due = time.perf_counter() + (rng.uniform(0, 1 / rate) if rate else 0)
                for _ in range(per_client):
                    if rate:
                        time.sleep(max(0.0, due - time.perf_counter()))
                        due += rng.exponential(1 / rate)
                    t = time.perf_counter()
                    cc.execute("SELECT 1").fetchone()
                    mine.append(time.perf_counter() - t)
            with lock:
                lats.extend(mine)
        except BaseException as e:  # noqa: BLE001 - counted and reported
            errors.append(e)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return lats or [float("nan")], len(errors)


def start_tarndb(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port_file = tmp / "port"
    env = dict(os.environ, TARNDB_PASSWORD=PASSWORD)
    proc = subprocess.Popen([sys.executable, "-m", "tarndb.pgwire", "--data", str(tmp / "lake"),
                             "--port", "0", "--port-file", str(port_file)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not port_file.exists():
        if proc.poll() is not None:
            raise SystemExit("tarndb server did not start")
        time.sleep(0.05)
    port = port_file.read_text()
    return proc, (f"host=127.0.0.1 port={port} user=postgres password={PASSWORD} "
                  "dbname=postgres sslmode=require")


def _pg_bin(name: str) -> str | None:
    """``initdb``/``pg_ctl`` from PATH, else from Debian's versioned directory."""
    found = shutil.which(name)
    if found:
        return found
    for d in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (d / name).exists():
            return str(d / name)
    return None


def start_postgres(tmp: Path) -> tuple[list[str], str] | None:
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        return None
    # Postgres refuses to run as root; as root, run it as the Debian package's own user.
    as_user: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return None
        if runuser is None:
            return None
        as_user = [runuser, "-u", "postgres", "--"]
        os.chmod(tmp, 0o777)
    data = tmp / "pgdata"
    subprocess.run([*as_user, initdb, "-D", str(data), "-U", "postgres", "--auth=trust"],
                   check=True, stdout=subprocess.DEVNULL)
    # TLS like tarndb's side, with the same kind of certificate, so both pay for encryption.
    cert, key = ensure_certificate(data / "tls")
    if as_user:
        import pwd

        pw = pwd.getpwnam("postgres")
        for f in (data / "tls", cert, key):
            os.chown(f, pw.pw_uid, pw.pw_gid)
    import socket

    with socket.socket() as sk:  # a free port: several benchmarks may run at once
        sk.bind(("127.0.0.1", 0))
        port = str(sk.getsockname()[1])
    subprocess.run([*as_user, pg_ctl, "-D", str(data), "-o",
                    f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1 -c ssl=on "
                    f"-c ssl_cert_file={cert} -c ssl_key_file={key}", "-l",
                    str(tmp / "pg.log"), "-w", "start"], check=True, stdout=subprocess.DEVNULL)
    return ([*as_user, pg_ctl, "-D", str(data), "-m", "fast", "stop"],
            f"host=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=require")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--pg-dsn", help="a PostgreSQL to compare with (default: start one)")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--rate", type=float, default=10.0,
                   help="queries/s per client in the paced concurrency test")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        pg_stop = None
        pg_dsn = args.pg_dsn
        if pg_dsn is None:
            started = start_postgres(tmp)
            if started is None:
                print("postgres: not started (give --pg-dsn, or install Debian's postgresql)")
            else:
                pg_stop, pg_dsn = started
        proc, dsn = start_tarndb(tmp)
        try:
            results = {"tarndb": bench("tarndb", dsn, args.rows, args.dim, args.clients,
                                         args.rate)}
            if pg_dsn:
                results["postgres"] = bench("postgres", pg_dsn, args.rows, args.dim,
                                            args.clients, args.rate)
        finally:
            proc.terminate()
            proc.wait()
            if pg_stop:
                subprocess.run(pg_stop, check=False, stdout=subprocess.DEVNULL)
        t = results["tarndb"]
        print("targets: SELECT 1 p50 <= 1 ms:", "ok" if t["select1_p50_ms"] <= 1 else "MISSED",
              "| COPY >= 50k rows/s:", "ok" if t["copy_rows_per_s"] >= 50_000 else "MISSED",
              f"| {args.clients} clients: errors {int(t['concurrent_errors'])}, paced p95 "
              f"{t['paced_p95_ms'] / t['select1_p95_ms']:.1f}x one client's (<= 5x):",
              "ok" if t["paced_p95_ms"] <= 5 * t["select1_p95_ms"]
              and not t["concurrent_errors"] else "MISSED")
        # Flat out, p95 is queueing: by Little's law it stays within 5x only if the server
        # answers clients / (5 x single p95) queries/s, 11k/s here. That is the machine's
        # limit, not a protocol cost, so it is shown for both servers, not judged.
        print("flat out (saturation, for context): p95 / single-client p95 =",
              ", ".join(f"{name} {r['concurrent_p95_ms'] / r['select1_p95_ms']:.0f}x"
                        for name, r in results.items()))


if __name__ == "__main__":
    main()
