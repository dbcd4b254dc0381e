"""``tarndb.ray.read_table`` followed by one map stage: tarndb's block count against Ray's.

    python benchmarks/ray_read.py [--rows 8000,200000] [--cpus 2] [--repeat 3]

For each size, a table (id, text, float4[32]) is written by ``tarndb.ray.write_table`` in
4-8 blocks, then read back and passed through one ``map_batches`` step and counted:

- **baseline**: ``read_table(..., override_num_blocks=None)``, Ray's default (it aims at
  ~200 blocks whatever the table's size, splitting each fragment's output);
- **tarndb**: ``read_table(...)``, one block per fragment or per ~20,000 rows (at most 200).

Both run in the same process on the same local Ray cluster (``--cpus``), after one warm-up
read; the best of ``--repeat`` runs is printed with the ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from typing import Any

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default="8000,200000")
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    sizes = [int(x) for x in args.rows.split(",")]

    import ray

    import tarndb
    import tarndb.ray as tray

    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    db = tarndb.open(tempfile.mkdtemp(prefix="tarndb-rayread-") + "/lake")
    try:
        def make(b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            ids = b["id"]
            return {"id": ids, "body": np.array([f"row {i}" for i in ids]),
                    "emb": np.ones((len(ids), 32), "float32")}

        for n in sizes:
            ds = ray.data.range(n, override_num_blocks=8 if n < 50_000 else 4).map_batches(make)
            tray.write_table(ds, f"ws.t{n}", db, mode="create")
        tray.read_table(db, f"ws.t{sizes[0]}").map_batches(lambda b: b).count()  # warm-up

        def run(n: int, **kw: Any) -> float:
            best = float("inf")
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                got = tray.read_table(db, f"ws.t{n}", **kw).map_batches(
                    lambda b: b, batch_format="pyarrow").count()
                best = min(best, time.perf_counter() - t0)
                assert got == n, (got, n)
            return best

        print(f"{args.cpus} Ray CPUs; best of {args.repeat}", flush=True)
        for n in sizes:
            base = run(n, override_num_blocks=None)
            ours = run(n)
            print(f"{n:>9,} rows: Ray's default blocks {base:6.2f} s, tarndb's {ours:6.2f} s "
                  f"= {base / ours:5.1f}x faster", flush=True)
    finally:
        db.close()
        ray.shutdown()


if __name__ == "__main__":
    main()
