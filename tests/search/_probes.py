"""What the served search tests share: a real server over a lake (:func:`serve`), psycopg
connections to it, and the probe-calibration tests' indexed vector tables."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg

import tarndb
from tarndb.pgwire.server import ServerThread

PASSWORD = "probes-pw"
N, D, K = 6000, 32, 10


def lit(v: np.ndarray) -> str:
    return "'{" + ",".join(f"{x:.6f}" for x in v.tolist()) + "}'"


@contextlib.contextmanager
def served_tables(tmp: Path, tables: dict[str, np.ndarray]) -> Iterator[int]:
    """Each table ``name (id int8 PRIMARY KEY, emb float4[])`` holding its vectors, with a
    vector index (IVF from 2,000 rows), on a lake under ``tmp``; yields the server's port."""
    db = tarndb.open(str(tmp / "lake"))
    s = db.session()
    for name, vecs in tables.items():
        s.execute(f"CREATE TABLE {name} (id int8 PRIMARY KEY, emb float4[])")
        for start in range(0, len(vecs), 2000):
            values = ",".join(f"({i}, {lit(vecs[i])})" for i in range(start, start + 2000))
            s.execute(f"INSERT INTO {name} (id, emb) VALUES {values}")
        s.execute(f"CREATE INDEX {name}_emb ON {name} USING deeplake_index (emb) "
                  "WITH (ann_min_rows = 2000)")
    s.close()
    with serve(db, tmp) as port:
        yield port


@contextlib.contextmanager
def serve(db: tarndb.Database, tmp: Path) -> Iterator[int]:
    """``db`` behind a server thread; yields its port, then stops it and closes ``db``."""
    srv = ServerThread(db, port=0, password=PASSWORD, data_dir=tmp).start()
    try:
        yield srv.port
    finally:
        srv.stop()
        db.close()


def connect(port: int) -> psycopg.Connection:
    return psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=PASSWORD,
                           dbname="postgres", sslmode="require", autocommit=True)
