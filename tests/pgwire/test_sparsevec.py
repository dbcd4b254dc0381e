"""pgvector's sparsevec stored sparsely, through psycopg 3 and pgvector-python against a real
server: 1e6- and 1e9-dimension values in text and binary, distances against numpy, pgvector's
limits and errors, casts, binary COPY both ways, a sparsevec index's answers, the server's
memory with a 1e9-dimension vector, and a column of the earlier dense layout still served."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pgvector.psycopg as pgvector_psycopg
import psycopg
import pytest
from pgvector import utils

from tarndb.engine.types import ColumnType

from .conftest import Server

SparseVector = utils.SparseVector

BIG = 1_000_000_000
N, NNZ = 300, 40


def _connect(server: Server) -> Any:
    c = psycopg.connect(server.dsn(), autocommit=True)
    c.execute("CREATE EXTENSION IF NOT EXISTS vector")
    pgvector_psycopg.register_vector(c)
    return c


def _random(rng: np.random.Generator, dim: int, nnz: int) -> dict[int, float]:
    idx = (
        rng.choice(dim, nnz, replace=False)
        if dim < 10 * nnz
        else np.unique(rng.integers(0, dim, nnz))
    )
    vals = rng.standard_normal(len(idx)).astype(np.float32)
    return {int(i): float(v) for i, v in zip(idx, vals, strict=True) if v != 0}


def _dist(a: dict[int, float], b: dict[int, float], op: str) -> float:
    """pgvector's definitions, on the union of the non-zeros (float64)."""
    keys = sorted(set(a) | set(b))
    x = np.array([a.get(k, 0.0) for k in keys], np.float64)
    y = np.array([b.get(k, 0.0) for k in keys], np.float64)
    if op == "<->":
        return float(np.sqrt(((x - y) ** 2).sum()))
    if op == "<#>":
        return float(-(x @ y))
    if op == "<+>":
        return float(np.abs(x - y).sum())
    return float(1 - (x @ y) / np.sqrt((x @ x) * (y @ y)))


def _pairs(v: Any) -> dict[int, float]:
    return dict(zip(v.indices(), v.values(), strict=True))


@pytest.fixture(scope="module")
def table(pg_server: Server) -> tuple[str, list[dict[int, float]]]:
    """N rows of sparsevec(1e9) with ~NNZ non-zeros each (a few NULL), half of them sent in
    binary."""
    rng = np.random.default_rng(7)
    rows = [_random(rng, BIG, NNZ) for _ in range(N)]
    # shared indices, so that distances are not all "no overlap"
    for i, r in enumerate(rows):
        r[5] = float(i % 7) + 0.5
        r[BIG - 1] = 1.0 if i % 2 else -1.0
    t = f"spv_{uuid.uuid4().hex[:8]}"
    with _connect(pg_server) as c:
        c.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, s sparsevec({BIG}))")
        with c.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {t} VALUES (%s, %s)",
                [(i, SparseVector(rows[i], BIG)) for i in range(0, N, 2)],
            )
        with c.cursor(binary=True) as cur:
            cur.executemany(
                f"INSERT INTO {t} VALUES (%b, %b)",
                [(i, SparseVector(rows[i], BIG)) for i in range(1, N, 2)],
            )
        c.execute(f"INSERT INTO {t} VALUES (%s, NULL)", (N,))
    return t, rows


@pytest.mark.parametrize("binary", [False, True])
@pytest.mark.parametrize("dim", [1_000_000, BIG])
def test_large_dimensions_round_trip(pg_server: Server, binary: bool, dim: int) -> None:
    v = {0: 1.5, 12345: -2.25, dim - 1: 3.0}
    t = f"spr_{uuid.uuid4().hex[:8]}"
    with _connect(pg_server) as c, c.cursor(binary=binary) as cur:
        cur.execute(f"CREATE TABLE {t} (id INT, s sparsevec({dim}), u sparsevec)")
        ph = "%b" if binary else "%s"
        cur.execute(
            f"INSERT INTO {t} VALUES (1, {ph}, {ph})", (SparseVector(v, dim), SparseVector(v, dim))
        )
        got = cur.execute(f"SELECT s, u, s::text FROM {t}").fetchone()
        assert got is not None
        for s in got[:2]:
            assert isinstance(s, SparseVector)
            assert s.dimensions() == dim and _pairs(s) == v
        assert got[2] == f"{{1:1.5,12346:-2.25,{dim}:3}}/{dim}"
        # the text form read back as a literal
        assert cur.execute(
            f"SELECT count(*) FROM {t} WHERE s::text = %s", (got[2],)
        ).fetchone() == (1,)
        row = cur.execute(
            f"SELECT %s::sparsevec({dim})::text", (f"{{{dim}:7, 3:0.5, 1:0}}/{dim}",)
        ).fetchone()
        assert row == (f"{{3:0.5,{dim}:7}}/{dim}",)  # sorted, the zero dropped


@pytest.mark.parametrize("op", ["<->", "<=>", "<#>", "<+>"])
def test_distances_match_pgvector_definitions(pg_server: Server, table: Any, op: str) -> None:
    t, rows = table
    rng = np.random.default_rng(3)
    q = _random(rng, BIG, 60)
    q[5] = 2.0
    q[BIG - 1] = 0.75
    with _connect(pg_server) as c:
        got = dict(
            c.execute(
                f"SELECT id, s {op} %s FROM {t} ORDER BY id", (SparseVector(q, BIG),)
            ).fetchall()
        )
    assert got[N] is None
    expect = np.array([_dist(r, q, op) for r in rows])
    np.testing.assert_allclose([got[i] for i in range(N)], expect, rtol=1e-5, atol=1e-5)


def test_functions_match_numpy(pg_server: Server) -> None:
    a = {0: 3.0, 4: -4.0, 999_999_999: 1e-3}
    b = {4: 2.0, 7: 1.0, 999_999_999: -5.0}
    sa, sb = SparseVector(a, BIG), SparseVector(b, BIG)
    with _connect(pg_server) as c:
        row = c.execute(
            "SELECT l2_distance(%s, %s), cosine_distance(%s, %s), "
            "inner_product(%s, %s), l1_distance(%s, %s), l2_norm(%s), "
            "l2_normalize(%s), %s <-> %s",
            (sa, sb) * 4 + (sa, sa, sa, sa),
        ).fetchone()
        assert row is not None
        np.testing.assert_allclose(
            row[:4],
            [_dist(a, b, "<->"), _dist(a, b, "<=>"), -_dist(a, b, "<#>"), _dist(a, b, "<+>")],
            rtol=1e-6,
        )
        norm = float(np.sqrt(sum(x * x for x in a.values())))
        assert row[4] == pytest.approx(norm, rel=1e-6)
        unit = row[5]
        assert isinstance(unit, SparseVector) and unit.dimensions() == BIG
        assert unit.indices() == [0, 4, 999_999_999]
        np.testing.assert_allclose(unit.values(), [3 / norm, -4 / norm, 1e-3 / norm], rtol=1e-6)
        assert row[6] == 0.0  # equal vectors are exactly 0 apart
        # pgvector's NaN for the cosine distance of a zero vector
        zero = c.execute("SELECT '{}/5'::sparsevec <=> '{1:1}/5'::sparsevec").fetchone()
        assert zero is not None and np.isnan(zero[0])


def test_casts(pg_server: Server) -> None:
    with _connect(pg_server) as c:
        row = c.execute(
            "SELECT '[1,0,2]'::vector::sparsevec::text, "
            "'{2:3}/3'::sparsevec::vector::text, "
            "ARRAY[0, 1.5, 0]::real[]::sparsevec::text, "
            "'{1:1,3:2}/3'::sparsevec(3)::text, "
            "'{1:0.5}/2'::sparsevec::halfvec::text"
        ).fetchone()
        assert row == ("{1:1,3:2}/3", "[0,3,0]", "{2:1.5}/3", "{1:1,3:2}/3", "[0.5,0]")
        with pytest.raises(psycopg.errors.DataException, match="expected 4 dimensions, not 3"):
            c.execute("SELECT '{1:1}/3'::sparsevec(4)")
        with pytest.raises(
            psycopg.errors.ProgramLimitExceeded,
            match="vector cannot have more than 16000 dimensions",
        ):
            c.execute(f"SELECT '{{1:1}}/{BIG}'::sparsevec::vector")
        with pytest.raises(
            psycopg.errors.CannotCoerce, match=r"cannot cast type sparsevec to real\[\]"
        ):
            c.execute("SELECT '{1:1}/3'::sparsevec::real[]")


def test_limits_and_errors(pg_server: Server, table: Any) -> None:
    t = table[0]
    many = "{" + ",".join(f"{i}:1" for i in range(1, 16002)) + f"}}/{BIG}"
    ok = "{" + ",".join(f"{i}:1" for i in range(1, 16001)) + f"}}/{BIG}"
    cases: list[tuple[str, tuple[Any, ...], Any, str]] = [
        (
            "SELECT %s::sparsevec",
            (f"{{1:1}}/{BIG + 1}",),
            psycopg.errors.ProgramLimitExceeded,
            f"sparsevec cannot have more than {BIG} dimensions",
        ),
        (
            "SELECT %s::sparsevec",
            (many,),
            psycopg.errors.ProgramLimitExceeded,
            "sparsevec cannot have more than 16000 non-zero elements",
        ),
        (
            "SELECT %s::sparsevec",
            ("{1:1}/0",),
            psycopg.errors.DataException,
            "sparsevec must have at least 1 dimension",
        ),
        (
            "SELECT %s::sparsevec",
            ("{4:1}/3",),
            psycopg.errors.DataException,
            "sparsevec index out of bounds",
        ),
        (
            "SELECT %s::sparsevec",
            ("{2:1,2:3}/3",),
            psycopg.errors.DataException,
            "sparsevec indices must not contain duplicates",
        ),
        (
            "SELECT %s::sparsevec",
            ("{1:NaN}/3",),
            psycopg.errors.DataException,
            "NaN not allowed in sparsevec",
        ),
        (
            "SELECT %s::sparsevec",
            ("{1:1e40}/3",),
            psycopg.errors.NumericValueOutOfRange,
            '"1e40" is out of range for type sparsevec',
        ),
        (
            "SELECT %s::sparsevec",
            ("[1,2]",),
            psycopg.errors.InvalidTextRepresentation,
            'invalid input syntax for type sparsevec: "[1,2]"',
        ),
        (
            "SELECT %s <-> %s",
            (SparseVector({1: 1}, 3), SparseVector({1: 1}, 4)),
            psycopg.errors.DataException,
            "different sparsevec dimensions 3 and 4",
        ),
        (
            f"INSERT INTO {t} VALUES (9999, %s)",
            (SparseVector({1: 1}, 5),),
            psycopg.errors.DataException,
            f"expected {BIG} dimensions, not 5",
        ),
        (
            "CREATE TABLE spv_bad (s sparsevec(1000000001))",
            (),
            psycopg.errors.InvalidParameterValue,
            f"dimensions for type sparsevec cannot exceed {BIG}",
        ),
    ]
    with _connect(pg_server) as c:
        for sql, params, err, msg in cases:
            with pytest.raises(err) as e:
                c.execute(sql, params)
            assert str(e.value).splitlines()[0] == msg, sql
        got = c.execute("SELECT %s::sparsevec", (ok,)).fetchone()
        assert got is not None and len(got[0].indices()) == 16000
    # pgvector's binary checks (sparsevec_recv)
    bad_binary = [
        (
            np.array([BIG + 1, 1, 0, 0], ">i4").tobytes() + np.array([1], ">f4").tobytes(),
            psycopg.errors.ProgramLimitExceeded,
            f"sparsevec cannot have more than {BIG} dimensions",
        ),
        (
            np.array([5, 2, 0, 3, 1], ">i4").tobytes() + np.array([1, 1], ">f4").tobytes(),
            psycopg.errors.DataException,
            "sparsevec indices must be in ascending order",
        ),
        (
            np.array([5, 1, 0, 1], ">i4").tobytes() + np.array([0], ">f4").tobytes(),
            psycopg.errors.DataException,
            "binary representation of sparsevec cannot contain zero values",
        ),
        (
            np.array([5, 1, 7, 1], ">i4").tobytes() + np.array([1], ">f4").tobytes(),
            psycopg.errors.DataException,
            "expected unused to be 0, not 7",
        ),
    ]
    from psycopg.pq import DiagnosticField, ExecStatus

    with _connect(pg_server) as c:
        oid = c.execute("SELECT oid FROM pg_type WHERE typname = 'sparsevec'").fetchone()[0]
        for data, err, msg in bad_binary:
            res = c.pgconn.exec_params(b"SELECT $1::text", [data], [oid], [1])
            assert res.status == ExecStatus.FATAL_ERROR, msg
            state = res.error_field(DiagnosticField.SQLSTATE).decode()
            assert psycopg.errors.lookup(state) is err, msg
            assert res.error_field(DiagnosticField.MESSAGE_PRIMARY).decode() == msg


def test_copy_binary_in_and_out(pg_server: Server, table: Any) -> None:
    src, rows = table
    t = f"spc_{uuid.uuid4().hex[:8]}"
    with _connect(pg_server) as c:
        c.execute(f"CREATE TABLE {t} (id INT, s sparsevec({BIG}))")
        with c.cursor() as cur:
            with cur.copy(f"COPY {src} (id, s) TO STDOUT (FORMAT BINARY)") as copy:
                copy.set_types(["int4", "sparsevec"])
                out = list(copy.rows())
            assert len(out) == N + 1
            with cur.copy(f"COPY {t} (id, s) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(["int4", "sparsevec"])
                for r in out:
                    copy.write_row(r)
        back = dict(c.execute(f"SELECT id, s FROM {t}").fetchall())
    assert back[N] is None
    for i in range(N):
        assert back[i].dimensions() == BIG
        got = _pairs(back[i])
        assert got.keys() == rows[i].keys()
        np.testing.assert_allclose(
            [got[k] for k in sorted(got)], [rows[i][k] for k in sorted(got)], rtol=1e-6
        )


@pytest.mark.parametrize(
    "kind,op", [("l2", "<->"), ("cosine", "<=>"), ("ip", "<#>"), ("l1", "<+>")]
)
def test_index_answers_exactly(pg_server: Server, table: Any, kind: str, op: str) -> None:
    src, rows = table
    t = f"spi_{kind}_{uuid.uuid4().hex[:6]}"
    rng = np.random.default_rng(11)
    q = _random(rng, BIG, 80)
    q[5] = 1.0
    qv = SparseVector(q, BIG)
    d = np.array([_dist(r, q, op) for r in rows])
    with _connect(pg_server) as c:
        c.execute(f"CREATE TABLE {t} AS SELECT * FROM {src}")
        c.execute(f"CREATE INDEX {t}_s ON {t} USING hnsw (s sparsevec_{kind}_ops) WITH (m = 16)")
        plan = "\n".join(
            r[0]
            for r in c.execute(f"EXPLAIN SELECT id FROM {t} ORDER BY s {op} %s, id LIMIT 10", (qv,))
        )
        assert f"{t}_s" in plan and "exact sparse scan" in plan, plan
        # (ties, which the shared indices make, broken by id)
        got = c.execute(
            f"SELECT id, s {op} %s FROM {t} ORDER BY s {op} %s, id LIMIT 10", (qv, qv)
        ).fetchall()
        expect = np.argsort(d, kind="stable")[:10]
        assert [r[0] for r in got] == expect.tolist()
        np.testing.assert_allclose([r[1] for r in got], d[expect], rtol=1e-5, atol=1e-6)
        # with a filter: never under-filled
        got = c.execute(
            f"SELECT id FROM {t} WHERE id %% 5 = 2 ORDER BY s {op} %s, id LIMIT 15", (qv,)
        ).fetchall()
        allowed = np.flatnonzero(np.arange(N) % 5 == 2)
        assert [r[0] for r in got] == allowed[np.argsort(d[allowed], kind="stable")[:15]].tolist()
        # rows with a NULL vector sort last, as in PostgreSQL
        got = c.execute(f"SELECT id FROM {t} ORDER BY s {op} %s LIMIT {N + 1}", (qv,)).fetchall()
        assert got[-1] == (N,) and len(got) == N + 1


def _vm_peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmPeak:"):
            return int(line.split()[1])
    raise AssertionError("no VmPeak")


def test_memory_stays_small_with_1e9_dimensions(pg_server: Server, table: Any) -> None:
    """A 1e9-dimension float4 vector would be 4 GB: the server's peak virtual memory (which
    counts even untouched allocations) must not grow by anything near it."""
    t = table[0]
    assert pg_server.proc is not None
    before = _vm_peak_kb(pg_server.proc.pid)
    q = SparseVector({0: 1.0, BIG - 1: 2.0, 5: 3.0}, BIG)
    with _connect(pg_server) as c:
        for binary in (False, True):
            with c.cursor(binary=binary) as cur:
                cur.execute(
                    f"SELECT s, s::text, l2_normalize(s), s <-> %s, s <=> %s, "
                    f"s <#> %s, s <+> %s FROM {t}",
                    (q,) * 4,
                ).fetchall()
                cur.execute(f"SELECT id FROM {t} ORDER BY s <-> %s LIMIT 5", (q,)).fetchall()
                cur.execute(f"INSERT INTO {t} VALUES (%s, %s)", (10_000 + binary, q))
    grown_mb = (_vm_peak_kb(pg_server.proc.pid) - before) / 1024
    assert grown_mb < 1024, f"server peak virtual memory grew by {grown_mb:.0f} MB"


def test_dense_layout_columns_still_served(thread_server: Any) -> None:
    """A sparsevec column of a table made before sparse storage (catalog ndim 1, a dense
    float4[] in Lance) is read and written as before."""
    server, _, db = thread_server
    with _connect(server) as c:
        c.execute("CREATE TABLE old_sp (id INT, s real[])")
        c.execute("INSERT INTO old_sp VALUES (1, '{1,0,2}'), (2, '{0,0,3}')")
    info = db.catalog.table("public", "old_sp")
    info.columns[1].type = ColumnType("float4", 1, "SPARSEVEC", (3,))  # the old DDL's type
    db.catalog.update_table(info)
    with _connect(server) as c:
        c.execute("INSERT INTO old_sp VALUES (3, %s)", (SparseVector({1: 4.0}, 3),))
        c.execute("INSERT INTO old_sp VALUES (4, '{3:5}/3')")
        rows = c.execute(
            "SELECT id, s, s::text, s <-> %s FROM old_sp ORDER BY id", (SparseVector({0: 1.0}, 3),)
        ).fetchall()
    assert [(r[0], _pairs(r[1]), r[2]) for r in rows] == [
        (1, {0: 1.0, 2: 2.0}, "{1:1,3:2}/3"),
        (2, {2: 3.0}, "{3:3}/3"),
        (3, {1: 4.0}, "{2:4}/3"),
        (4, {2: 5.0}, "{3:5}/3"),
    ]
    np.testing.assert_allclose(
        [r[3] for r in rows], [2.0, np.sqrt(10), np.sqrt(17), np.sqrt(26)], rtol=1e-6
    )
    # the move to the sparse layout that docs/postgres-tools.md gives
    with _connect(server) as c:
        c.execute("CREATE TABLE new_sp AS SELECT id, s::text::sparsevec(3) AS s FROM old_sp")
        assert db.catalog.table("public", "new_sp").columns[1].type.is_sparse
        assert c.execute("SELECT id, s::text FROM new_sp ORDER BY id").fetchall() == [
            (r[0], r[2]) for r in rows
        ]


def test_statements_that_write_and_read_it(pg_server: Server) -> None:
    """UPDATE, upsert, NULLs, ALTER TABLE ADD COLUMN, CREATE TABLE AS, DELETE RETURNING, a
    prepared filter; pgvector's catalog entry for l2_norm(sparsevec); no aggregates."""
    t = f"spw_{uuid.uuid4().hex[:8]}"
    with _connect(pg_server) as c:
        c.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, s sparsevec(5))")
        c.execute(
            f"INSERT INTO {t} VALUES (1, %s), (2, '{{2:1}}/5'), (3, NULL)",
            (SparseVector({0: 1.0, 3: 2.0}, 5),),
            prepare=True,
        )
        c.execute(
            f"INSERT INTO {t} VALUES (1, '{{1:9}}/5') ON CONFLICT (id) DO UPDATE SET s = EXCLUDED.s"
        )
        c.execute(f"UPDATE {t} SET s = %s WHERE id = 2", (SparseVector({4: 3.0}, 5),))
        c.execute(f"ALTER TABLE {t} ADD COLUMN u sparsevec")
        c.execute(f"UPDATE {t} SET u = s WHERE id = 1")
        assert c.execute(f"SELECT id, s::text, u::text FROM {t} ORDER BY id").fetchall() == [
            (1, "{1:9}/5", "{1:9}/5"),
            (2, "{5:3}/5", None),
            (3, None, None),
        ]
        assert c.execute(f"SELECT id FROM {t} WHERE s IS NULL").fetchall() == [(3,)]
        assert c.execute(
            f"SELECT id FROM {t} WHERE s <-> %s < 1", (SparseVector({4: 3.5}, 5),), prepare=True
        ).fetchall() == [(2,)]
        c.execute(f"CREATE TABLE {t}_c AS SELECT id, s FROM {t}")
        assert c.execute(f"SELECT count(*) FROM {t}_c WHERE s IS NOT NULL").fetchone() == (2,)
        assert c.execute(f"DELETE FROM {t} WHERE id = 2 RETURNING s::text").fetchall() == [
            ("{5:3}/5",)
        ]
        oid = c.execute("SELECT oid FROM pg_type WHERE typname = 'sparsevec'").fetchone()
        assert oid is not None
        assert c.execute(
            "SELECT proargtypes FROM pg_proc WHERE proname = 'l2_norm'"
        ).fetchall() == [(str(oid[0]),)]
        with pytest.raises(
            psycopg.errors.UndefinedFunction, match=r"function avg\(sparsevec\) does not exist"
        ):
            c.execute(f"SELECT avg(s) FROM {t}")
        with pytest.raises(
            psycopg.errors.UndefinedFunction,
            match=r"function vector_dims\(sparsevec\) does not exist",
        ):
            c.execute(f"SELECT vector_dims(s) FROM {t}")
