"""Reading a view with its owner's rights, as a role holding SELECT on the view only, against
the superuser's read of the same view, in one run (ratios, since the machine is noisy).

A role reads a view that leaves rows out behind an ``OFFSET 0`` fence (its filters run on
the rows the view gives, never pushed under the view's ``WHERE``: engine/views.py); a view
that only picks columns is read without one.

    python benchmarks/view_grants_bench.py [--rows 200000] [--calls 15]
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
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--calls", type=int, default=15)
    a = ap.parse_args()
    db = tarndb.open(tempfile.mkdtemp(prefix="viewbench-"))
    roles.install(db)  # GRANTs and their checks, as `tarndb serve` installs them
    n = a.rows
    db.execute("CREATE TABLE ws1.big (id INT, cat INT, body TEXT)")
    db.session(workspace="ws1").insert_arrow("ws1.big", pa.table({
        "id": pa.array(range(n), pa.int32()),
        "cat": pa.array([i % 10 for i in range(n)], pa.int32()),
        "body": [f"row {i}" for i in range(n)]}))
    db.execute("CREATE VIEW ws1.rows_v AS SELECT id, body FROM ws1.big WHERE cat <> 3")
    db.execute("CREATE VIEW ws1.cols_v AS SELECT id, body FROM ws1.big")
    db.execute("CREATE ROLE carol LOGIN PASSWORD 'bench-only'")
    db.execute("GRANT USAGE ON SCHEMA ws1 TO carol")
    db.execute("GRANT SELECT ON ws1.rows_v, ws1.cols_v TO carol")
    role = db.session(workspace="ws1", allowed_workspaces={"ws1", "public"})
    role.acl_role = "carol"  # what the Postgres front end sets for a role's login
    sup = db.session(workspace="ws1")
    for q in ("SELECT body FROM ws1.rows_v WHERE id = 12345",
              "SELECT body FROM ws1.cols_v WHERE id = 12345",
              "SELECT count(*) FROM ws1.rows_v WHERE body LIKE 'row 1%'"):
        assert role.execute(q).rows == sup.execute(q).rows
        base = timed(lambda q=q: sup.execute(q), a.calls)
        mine = timed(lambda q=q: role.execute(q), a.calls)
        print(f"{q}\n  superuser p50 {pct(base, .5):.2f} ms, role p50 {pct(mine, .5):.2f} ms, "
              f"ratio {pct(mine, .5) / pct(base, .5):.2f}")


if __name__ == "__main__":
    main()
