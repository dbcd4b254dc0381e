"""Cost of per-session memory and temp limits (engine/limits.py) on session start.

    python benchmarks/session_limits.py [--n 300] [--sessions 20] [--baseline-src DIR]

Starts ``tarndb serve`` without per-session limits (``shared``) and with them
(``per-session``: 64MB / 32MB per session), and with ``--baseline-src`` (a ``src`` directory
of another checkout, e.g. ``git archive HEAD src | tar -x -C /tmp/head``) a third server
from that code (``baseline``). Prints, for each, psycopg connect + ``SELECT 1`` + close in
ms (mean, p50, p95; the servers are measured in turns, so machine noise hits all alike) and
the server's RSS growth per connected idle session, with ratios to the first server.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
import requests

PASSWORD = "bench-pw"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(name: str, env_extra: dict[str, str], src: str | None) -> dict[str, Any]:
    lake = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    pg, http = _port(), _port()
    env = {**os.environ, "TARNDB_PASSWORD": PASSWORD, "TARNDB_DEMO": "false",
           "HF_HUB_OFFLINE": "1", "TARNDB_AUTH_FAILURE_DELAY": "0", **env_extra}
    if src:
        env["PYTHONPATH"] = src
    proc = subprocess.Popen([sys.executable, "-m", "tarndb.cli", "serve", "--data", str(lake),
                             "--pg-port", str(pg), "--http-port", str(http)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{http}/health", timeout=1).status_code == 200:
                break
        except OSError:
            time.sleep(0.2)
    dsn = f"host=127.0.0.1 port={pg} user=postgres password={PASSWORD} sslmode=disable"
    return {"name": name, "proc": proc, "dsn": dsn, "times": []}


def rss_kb(proc: subprocess.Popen[bytes]) -> int:
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def connect_select(dsn: str) -> float:
    t = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("SELECT 1").fetchone()
    return (time.perf_counter() - t) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--baseline-src", default=None)
    a = ap.parse_args()
    servers = []
    if a.baseline_src:
        servers.append(start("baseline", {}, a.baseline_src))
    servers.append(start("shared", {}, None))
    servers.append(start("per-session", {"TARNDB_SESSION_MEMORY_LIMIT": "64MB",
                                         "TARNDB_SESSION_TEMP_LIMIT": "32MB"}, None))
    try:
        time.sleep(2)  # the per-session server prepares its spare engines
        for s in servers:
            for _ in range(20):  # warm up
                connect_select(s["dsn"])
        for _ in range(a.n):
            for s in servers:
                s["times"].append(connect_select(s["dsn"]))
        for s in servers:
            before = rss_kb(s["proc"])
            conns = [psycopg.connect(s["dsn"], autocommit=True) for _ in range(a.sessions)]
            for c in conns:
                c.execute("SELECT 1").fetchone()
            time.sleep(1)
            s["rss_per_session_mb"] = (rss_kb(s["proc"]) - before) / 1024 / a.sessions
            s["threads"] = len(os.listdir(f"/proc/{s['proc'].pid}/task"))
            for c in conns:
                c.close()
        base = statistics.mean(servers[0]["times"])
        print(f"connect + SELECT 1 + close, {a.n} each, in turns; idle RSS per session "
              f"with {a.sessions} open")
        for s in servers:
            ts = sorted(s["times"])
            mean = statistics.mean(ts)
            print(f"{s['name']:>12}: mean {mean:.2f} ms (x{mean / base:.3f}, "
                  f"{mean - base:+.2f} ms), p50 {ts[len(ts) // 2]:.2f}, "
                  f"p95 {ts[int(len(ts) * 0.95)]:.2f}; "
                  f"RSS/session {s['rss_per_session_mb']:.1f} MB, threads {s['threads']}")
    finally:
        for s in servers:
            s["proc"].terminate()
            s["proc"].wait(15)


if __name__ == "__main__":
    main()
