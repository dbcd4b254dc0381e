"""What an operator sees of many clients: /metrics (Prometheus), /ready, JSON statement logs."""

from __future__ import annotations

import json
import re
from typing import Any

import requests

from .test_writers import _run_threads


def _metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = re.escape(name) + (r"\{" + re.escape(want) + r"\}" if labels else "") + r" (\S+)"
    m = re.search(r"^" + pattern + r"$", text, re.M)
    return float(m.group(1)) if m else 0.0


def test_metrics_ready_and_json_statement_logs(servers: Any) -> None:
    (srv,) = servers(1, {"TARNDB_LOG_FORMAT": "json", "TARNDB_LOG_STATEMENTS": "1"})
    base = f"http://127.0.0.1:{srv.http_port}"
    assert requests.get(f"{base}/ready", timeout=10).json() == {"status": "ready"}
    with srv.connect() as c:
        c.execute("CREATE TABLE m (id INT PRIMARY KEY, v INT)")
    before = requests.get(f"{base}/metrics", timeout=10).text
    held = srv.connect()
    during = requests.get(f"{base}/metrics", timeout=10).text
    assert _metric(during, "tarndb_connections", protocol="postgres") >= 1
    held.close()

    def work(i: int) -> None:
        with srv.connect() as c:
            for j in range(5):
                c.execute("INSERT INTO m VALUES (%s, 0)", [i * 100 + j])
                c.execute("SELECT v FROM m WHERE id = %s", [i * 100 + j])
            try:
                c.execute("INSERT INTO m VALUES (%s, 0)", [i * 100])  # a duplicate
            except Exception:  # noqa: BLE001 - counted below
                pass

    assert _run_threads(4, work) == []
    after = requests.get(f"{base}/metrics", timeout=10).text
    assert after.startswith("# HELP") or "# HELP" in after
    ok_inserts = (_metric(after, "tarndb_statements_total", kind="insert", outcome="ok")
                  - _metric(before, "tarndb_statements_total", kind="insert", outcome="ok"))
    dup_inserts = (_metric(after, "tarndb_statements_total", kind="insert", outcome="23")
                   - _metric(before, "tarndb_statements_total", kind="insert", outcome="23"))
    selects = (_metric(after, "tarndb_statements_total", kind="select", outcome="ok")
               - _metric(before, "tarndb_statements_total", kind="select", outcome="ok"))
    assert (ok_inserts, dup_inserts) == (20, 4)
    assert selects >= 20  # the clients' own, plus what drivers send at connect
    assert (_metric(after, "tarndb_rows_written_total")
            - _metric(before, "tarndb_rows_written_total")) == 20
    assert _metric(after, "tarndb_statement_seconds_count", kind="insert") >= 24
    lines = [json.loads(line) for line in srv.log.read_text().splitlines()
             if line.startswith("{")]
    stmts = [x for x in lines if x.get("logger") == "tarndb.statements"]
    assert sum(1 for x in stmts if x["kind"] == "insert" and x["outcome"] == "23") == 4
    assert all({"time", "level", "ms", "user", "workspace"} <= set(x) for x in stmts)
