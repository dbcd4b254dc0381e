"""COPY ... TO STDOUT of more rows than one conversion batch (Result.row_batches): every row,
in order, exactly as SELECT returns them, in text and binary."""

from __future__ import annotations

import uuid

import psycopg

from .conftest import Server


def test_copy_to_across_conversion_batches(pg_server: Server) -> None:
    t = f"co_{uuid.uuid4().hex[:8]}"
    n = 20_000  # two and a half batches of 8192
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute(f"CREATE TABLE {t} (id INT8, t TEXT, v FLOAT4[])")
        with c.cursor() as cur, cur.copy(f"COPY {t} FROM STDIN") as cp:
            for i in range(n):
                cp.write_row((i, None if i % 7 == 0 else f"r{i}", [i / 4, -float(i) - 0.5]))
        want = c.execute(f"SELECT id, t, v FROM {t} ORDER BY id").fetchall()
        with c.cursor() as cur:
            with cur.copy(f"COPY (SELECT id, t, v FROM {t} ORDER BY id) TO STDOUT") as cp:
                text_rows = list(cp.rows())
            with cur.copy(f"COPY (SELECT id, t, v FROM {t} ORDER BY id) TO STDOUT "
                          "(FORMAT BINARY)") as cp:
                cp.set_types(["int8", "text", "float4[]"])
                binary_rows = list(cp.rows())
            status = cur.rowcount
    assert len(want) == n
    assert status == n  # from the command tag, COPY n
    assert binary_rows == want
    assert text_rows == [(str(i), t, "{" + ",".join(_pg_float(x) for x in v) + "}")
                         for i, t, v in want]


def _pg_float(x: float) -> str:
    return str(int(x)) if x == int(x) else repr(x)
