"""Pipelined INSERTs (executemany, pipeline mode) run as one batched statement, and every
client still sees exactly what PostgreSQL sends: one reply per Execute, in order, the error at
the Execute that failed, nothing after it until Sync, all or nothing per implicit transaction."""

from __future__ import annotations

import asyncio
import json

import psycopg
import pytest

import tarndb
from tarndb import metrics
from tarndb.pgwire import messages as m

from .conftest import Server
from .test_protocol import connect, error, kinds, pdb, send  # noqa: F401 - pdb is a fixture


def _inserts_run() -> float:
    return metrics.STATEMENTS.labels("insert", "ok")._value.get()  # type: ignore[attr-defined]


# -- bytes on the wire (sans-io) ---------------------------------------------------------------


def test_pipeline_replies_in_order_and_one_statement(pdb: tarndb.Database) -> None:  # noqa: F811
    s = pdb.session()
    s.execute("CREATE TABLE pb1 (id INT8 PRIMARY KEY, t TEXT, n SERIAL)")
    s.close()
    conn, _ = connect(pdb)
    before = _inserts_run()
    frames = [m.f_parse("", "INSERT INTO pb1 (id, t) VALUES ($1, $2)")]
    for i in range(50):
        frames += [m.f_bind("", "", [str(i).encode(), f"t{i}".encode()]),
                   m.f_describe("P", ""), m.f_execute("")]
    frames.append(m.f_sync())
    # Fed in small pieces, as TLS records arrive: nothing is sent before the Sync's replies.
    wire = b"".join(frames)
    outs = [conn.receive_data(wire[i:i + 100]) for i in range(0, len(wire), 100)]
    assert all(o == b"" for o in outs[:-1])
    out = m.split_backend(outs[-1])
    assert kinds(out) == b"1" + b"2nC" * 50 + b"Z"
    assert [body for k, body in out if k == b"C"] == [b"INSERT 0 1\x00"] * 50
    assert _inserts_run() - before == 1  # fifty Executes, one statement
    s = pdb.session()
    assert s.execute("SELECT count(*), min(n), max(n), sum(id) FROM pb1").rows == \
        [(50, 1, 50, sum(range(50)))]
    s.close()


def test_pipeline_error_at_its_execute_then_skip_to_sync(pdb: tarndb.Database) -> None:  # noqa: F811
    s = pdb.session()
    s.execute("CREATE TABLE pb2 (id INT8 PRIMARY KEY, t TEXT)")
    s.execute("INSERT INTO pb2 VALUES (7, 'old')")
    s.close()
    conn, _ = connect(pdb)
    frames = [m.f_parse("ins", "INSERT INTO pb2 (id, t) VALUES ($1, $2)")]
    for i in (1, 2, 7, 3):
        frames += [m.f_bind("", "ins", [str(i).encode(), b"new"]), m.f_execute("")]
    frames += [m.f_sync(), m.f_query("SELECT count(*) FROM pb2")]
    out = send(conn, *frames)
    # Two inserts succeed, the third is the duplicate: its error, then nothing until Sync.
    assert kinds(out) == b"1" + b"2C" * 2 + b"2E" + b"Z" + b"TDCZ"
    e = error(out)
    assert e["C"] == "23505" and "(id)=(7)" in e["D"]
    assert out[-3] == (b"D", b"\x00\x01\x00\x00\x00\x011")  # the implicit transaction rolled back
    # The session is usable, and a clean batch after the failed one goes in.
    frames = [m.f_bind("", "ins", [str(i).encode(), b"new"]) + m.f_execute("")
              for i in (1, 2, 3)]
    out = send(conn, *frames, m.f_sync())
    assert kinds(out) == b"2C2C2CZ"
    s = pdb.session()
    assert s.execute("SELECT id, t FROM pb2 ORDER BY id").rows == \
        [(1, "new"), (2, "new"), (3, "new"), (7, "old")]
    s.close()


def test_pipeline_select_sees_the_batch_before_it(pdb: tarndb.Database) -> None:  # noqa: F811
    s = pdb.session()
    s.execute("CREATE TABLE pb3 (id INT8)")
    s.close()
    conn, _ = connect(pdb)
    frames = [m.f_parse("", "INSERT INTO pb3 VALUES ($1)")]
    for i in range(3):
        frames += [m.f_bind("", "", [str(i).encode()]), m.f_execute("")]
    frames += [m.f_parse("", "SELECT count(*) FROM pb3"), m.f_bind("", "", []),
               m.f_execute(""), m.f_flush()]
    out = send(conn, *frames)
    assert kinds(out) == b"1" + b"2C" * 3 + b"12DC"
    assert out[-2] == (b"D", b"\x00\x01\x00\x00\x00\x013")
    assert kinds(send(conn, m.f_sync())) == b"Z"


# -- real clients ------------------------------------------------------------------------------


def test_psycopg3_executemany_is_one_write(pg_server: Server) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute("CREATE TABLE pb_em (id BIGINT PRIMARY KEY, t TEXT, j JSONB, v FLOAT4[], "
                  "s BIGSERIAL, d TEXT DEFAULT 'dflt')")
        rows = [(i, f"row {i}", json.dumps({"k": i % 3}), [float(i), 0.5]) for i in range(400)]
        with c.cursor() as cur:
            cur.executemany("INSERT INTO pb_em (id, t, j, v) VALUES (%s, %s, %s, %s)", rows)
            assert cur.rowcount == 400
        got = c.execute("SELECT count(*), count(DISTINCT s), min(s), max(s), "
                        "count(*) FILTER (WHERE d = 'dflt'), sum(id) FROM pb_em").fetchone()
        assert got == (400, 400, 1, 400, 400, sum(range(400)))
        assert c.execute("SELECT t, j, v FROM pb_em WHERE id = 17").fetchone() == \
            ("row 17", {"k": 2}, [17.0, 0.5])
        # A duplicate in the middle: the whole executemany fails, nothing of it is stored.
        dup = [(1000 + i, "x", None, None) for i in range(10)] + [(5, "dup", None, None)]
        with pytest.raises(psycopg.errors.UniqueViolation), c.cursor() as cur:
            cur.executemany("INSERT INTO pb_em (id, t, j, v) VALUES (%s, %s, %s, %s)", dup)
        assert c.execute("SELECT count(*) FROM pb_em").fetchone() == (400,)
        # Inside a transaction the batch is read back before COMMIT, and rolled back with it.
        with pytest.raises(psycopg.errors.CheckViolation), c.transaction():
            with c.cursor() as cur:
                cur.executemany("INSERT INTO pb_em (id, t) VALUES (%s, %s)",
                                [(2000 + i, "in txn") for i in range(20)])
            assert c.execute("SELECT count(*) FROM pb_em WHERE t = 'in txn'").fetchone() == (20,)
            c.execute("ALTER TABLE pb_em ADD CONSTRAINT small CHECK (id < 2010)")
        assert c.execute("SELECT count(*) FROM pb_em WHERE t = 'in txn'").fetchone() == (0,)


def test_asyncpg_executemany_is_atomic(pg_server: Server) -> None:
    asyncpg = pytest.importorskip("asyncpg")

    async def main() -> None:
        c = await asyncpg.connect(host=pg_server.host, port=pg_server.port, user="postgres",
                                  password=pg_server.password, database="postgres",
                                  ssl="require")
        try:
            await c.execute("CREATE TABLE pb_apg (id BIGINT PRIMARY KEY, j JSONB, v FLOAT4[])")
            await c.executemany("INSERT INTO pb_apg VALUES ($1, $2::jsonb, $3)",
                                [(i, json.dumps({"i": i}), [float(i)]) for i in range(300)])
            assert await c.fetchval("SELECT count(*) FROM pb_apg") == 300
            assert await c.fetchval("SELECT v FROM pb_apg WHERE id = 299") == [299.0]
            with pytest.raises(asyncpg.UniqueViolationError):
                await c.executemany("INSERT INTO pb_apg VALUES ($1, NULL, NULL)",
                                    [(1000,), (1001,), (3,), (1002,)])
            assert await c.fetchval("SELECT count(*) FROM pb_apg") == 300
            # A NOT NULL violation is reported as itself, not as a batch failure.
            await c.execute("ALTER TABLE pb_apg ALTER COLUMN j SET NOT NULL")
            with pytest.raises(asyncpg.NotNullViolationError):
                await c.executemany("INSERT INTO pb_apg VALUES ($1, $2::jsonb, NULL)",
                                    [(2000, "{}"), (2001, None)])
            assert await c.fetchval("SELECT count(*) FROM pb_apg") == 300
        finally:
            await c.close()

    asyncio.run(main())


def test_read_only_and_workspace_checks_hold_for_batches(pg_server: Server) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute("CREATE TABLE pb_ro (id INT8)")
        c.execute("CREATE ROLE pb_reader LOGIN PASSWORD 'pw-reader'")
        c.execute("GRANT SELECT ON pb_ro TO pb_reader")
    with psycopg.connect(pg_server.dsn(user="pb_reader", password="pw-reader"),
                         autocommit=True) as r:
        with pytest.raises(psycopg.errors.InsufficientPrivilege), r.cursor() as cur:
            cur.executemany("INSERT INTO pb_ro VALUES (%s)", [(i,) for i in range(5)])
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        assert c.execute("SELECT count(*) FROM pb_ro").fetchone() == (0,)


def test_bad_bind_after_held_inserts_rolls_the_pipeline_back(pdb: tarndb.Database) -> None:  # noqa: F811
    s = pdb.session()
    s.execute("CREATE TABLE pb4 (id INT8)")
    s.close()
    conn, _ = connect(pdb)
    frames = [m.f_parse("", "INSERT INTO pb4 VALUES ($1)", [20])]
    for i in range(2):
        frames += [m.f_bind("", "", [str(i).encode()]), m.f_execute("")]
    # A binary int8 of 3 bytes: the Bind fails, after the two Executes before it ran.
    frames += [m.f_bind("", "", [b"\x00\x00\x01"], [1]), m.f_execute(""), m.f_sync()]
    out = send(conn, *frames)
    assert kinds(out) == b"12C2CEZ"
    assert error(out)["C"] in ("22P03", "08P01", "22023")
    # As in PostgreSQL the error aborted the pipeline's implicit transaction.
    s = pdb.session()
    assert s.execute("SELECT count(*) FROM pb4").rows == [(0,)]
    s.close()
    # In an explicit transaction block a protocol error aborts the block (25P02 after it).
    out = send(conn, m.f_query("BEGIN"), m.f_bind("", "nope", []), m.f_sync(),
               m.f_query("SELECT 1"), m.f_query("ROLLBACK"))
    assert error(out)["C"] == "26000"
    assert [m.parse_error_fields(b)["C"] for k, b in out if k == b"E"] == ["26000", "25P02"]


def test_float8_arrays_keep_their_precision(pg_server: Server) -> None:
    """float8[] parameters (text or binary, alone or batched) are stored as float8, not
    through float4 (0.1 stays 0.1, 1e300 stays finite)."""
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute("CREATE TABLE pb_f8 (id INT8, d FLOAT8[], f FLOAT4[])")
        row = ([0.1, 1e300, -2.5e-310], [0.1])
        c.execute("INSERT INTO pb_f8 VALUES (1, %s, %s)", row)
        c.execute("INSERT INTO pb_f8 VALUES (2, %s, %s)", row, binary=True)
        with c.cursor() as cur:
            cur.executemany("INSERT INTO pb_f8 VALUES (%s, %s, %s)",
                            [(3 + i, *row) for i in range(3)])
        got = c.execute("SELECT d, f FROM pb_f8 ORDER BY id").fetchall()
    assert len(got) == 5
    for d, f in got:
        assert d == [0.1, 1e300, -2.5e-310]
        assert f == [0.1]  # float4's shortest text, as PostgreSQL prints it


def test_a_batch_runs_early_past_its_byte_bound(pdb: tarndb.Database,  # noqa: F811
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import struct

    from tarndb.pgwire import protocol

    # Two 384-d float4 vectors as sent (3,092 bytes each in binary: a length word per float).
    monkeypatch.setattr(protocol, "MAX_BATCH_BYTES", 6000)
    s = pdb.session()
    s.execute("CREATE TABLE pb5 (id INT8, v FLOAT4[])")
    s.close()
    conn, _ = connect(pdb)
    vec = struct.pack("!iiiii", 1, 0, 700, 384, 1) + struct.pack("!if", 4, 0.5) * 384
    frames = [m.f_parse("", "INSERT INTO pb5 VALUES ($1, $2)", [20, 1021])]
    for i in range(3):
        frames += [m.f_bind("", "", [str(i).encode(), vec], [0, 1]), m.f_execute("")]
    # No Sync yet: the first two ran as one statement once past the bound; the third waits
    # for the Sync (and so do the replies: a pipeline's replies may wait until Sync).
    before = _inserts_run()
    assert send(conn, *frames) == []
    assert _inserts_run() - before == 1
    assert kinds(send(conn, m.f_sync())) == b"1" + b"2C" * 3 + b"Z"
    assert _inserts_run() - before == 2
    s = pdb.session()
    assert s.execute("SELECT count(*), sum(v[384]) FROM pb5").rows == [(3, 1.5)]
    s.close()


def test_a_long_pipeline_runs_while_it_arrives_and_stays_one_transaction(
        pdb: tarndb.Database) -> None:  # noqa: F811
    """Past EARLY_BATCH_SETS held Executes, what has arrived runs before the Sync (the work
    overlaps the client's) and its replies go out; a later failure still rolls back every row
    of the implicit transaction, and the replies are exactly PostgreSQL's."""
    from tarndb.pgwire import protocol

    n = protocol.EARLY_BATCH_SETS * 2 + 10
    dup = protocol.EARLY_BATCH_SETS + 20  # fails after an early batch ran
    s = pdb.session()
    s.execute("CREATE TABLE pb6 (id INT8 PRIMARY KEY, t TEXT)")
    s.execute(f"INSERT INTO pb6 VALUES ({10_000 + dup}, 'old')")
    s.close()
    conn, _ = connect(pdb)
    frames = [m.f_parse("", "INSERT INTO pb6 (id, t) VALUES ($1, $2)")]
    for i in range(n):
        frames += [m.f_bind("", "", [str(10_000 + i).encode(), b"new"]), m.f_execute("")]
    wire = b"".join(frames)
    outs = [conn.receive_data(wire[i:i + 4096]) for i in range(0, len(wire), 4096)]
    early = m.split_backend(b"".join(outs))
    assert kinds(early).startswith(b"1" + b"2C" * protocol.EARLY_BATCH_SETS)  # before Sync
    out = early + m.split_backend(conn.receive_data(m.f_sync()))
    assert kinds(out) == b"1" + b"2C" * dup + b"2E" + b"Z"
    assert error(out)["C"] == "23505"
    s = pdb.session()
    assert s.execute("SELECT count(*), min(t) FROM pb6").rows == [(1, "old")]  # all rolled back
    s.close()
    # Without a failure, every row of a long pipeline goes in, once.
    frames = [m.f_bind("", "", [str(20_000 + i).encode(), b"x"]) + m.f_execute("")
              for i in range(n)]
    wire = b"".join(frames)
    outs = [conn.receive_data(wire[i:i + 4096]) for i in range(0, len(wire), 4096)]
    out = m.split_backend(b"".join(outs) + conn.receive_data(m.f_sync()))
    assert kinds(out) == b"2C" * n + b"Z"
    s = pdb.session()
    assert s.execute("SELECT count(*), count(DISTINCT id) FROM pb6 WHERE t = 'x'").rows == \
        [(n, n)]
    s.close()
