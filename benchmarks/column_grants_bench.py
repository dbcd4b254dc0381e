"""What column privileges cost a role's statements: the same statements run as a role
holding SELECT on the table, as a role holding SELECT on some of its columns only (each
statement's column references are worked out from its parse tree: pgwire/colrefs.py), and as
the superuser (no check), in one run (ratios, since the machine is noisy).

    python benchmarks/column_grants_bench.py [--rows 20000] [--calls 200]
"""

from __future__ import annotations

import argparse
import tempfile

import pyarrow as pa
from _timing import pct, timed

import tarndb
from tarndb.pgwire import roles


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--calls", type=int, default=200)
    a = ap.parse_args()
    db = tarndb.open(tempfile.mkdtemp(prefix="colbench-"))
    roles.install(db)  # GRANTs and their checks, as `tarndb serve` installs them
    n = a.rows
    db.execute("CREATE TABLE ws1.emp (id INT PRIMARY KEY, name TEXT, salary INT)")
    db.session(workspace="ws1").insert_arrow(
        "ws1.emp",
        pa.table(
            {
                "id": pa.array(range(n), pa.int32()),
                "name": [f"name {i}" for i in range(n)],
                "salary": pa.array([i % 1000 for i in range(n)], pa.int32()),
            }
        ),
    )
    for r in ("whole", "cols"):
        db.execute(f"CREATE ROLE {r} LOGIN PASSWORD 'bench-only'")
        db.execute(f"GRANT USAGE ON SCHEMA ws1 TO {r}")
    db.execute("GRANT SELECT ON ws1.emp TO whole")
    db.execute("GRANT SELECT (id, name) ON ws1.emp TO cols")
    sessions = {"superuser": db.session(workspace="ws1")}
    for r in ("whole", "cols"):
        s = db.session(workspace="ws1", allowed_workspaces={"ws1", "public"})
        s.acl_role = r  # what the Postgres front end sets for a role's login
        sessions[r] = s
    for q in (
        "SELECT name FROM ws1.emp WHERE id = 12345",
        "SELECT count(*) FROM ws1.emp WHERE name LIKE 'name 1%'",
        "SELECT a.name FROM ws1.emp a JOIN ws1.emp b ON a.id = b.id + 1 "
        "WHERE a.id IN (SELECT id FROM ws1.emp WHERE name > 'name 9') ORDER BY 1 LIMIT 5",
    ):
        want = sessions["superuser"].execute(q).rows
        p50 = {}
        for name, s in sessions.items():
            assert s.execute(q).rows == want
            p50[name] = pct(timed(lambda s=s, q=q: s.execute(q), a.calls), 0.5)
        print(
            f"{q}\n  p50 ms: "
            + ", ".join(f"{k} {v:.3f}" for k, v in p50.items())
            + f"; column grants / table grant {p50['cols'] / p50['whole']:.2f}"
        )


if __name__ == "__main__":
    main()
