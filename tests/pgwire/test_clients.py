"""Real clients against a real server process (``python -m tarndb.pgwire``) with TLS."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading
import time
import uuid
from typing import Any

import pytest

from .conftest import Server

psycopg = pytest.importorskip("psycopg")
psycopg2 = pytest.importorskip("psycopg2")

HEAVY = "SELECT sum(hash(i)) FROM range(30000000000) t(i)"


def run(server: Server, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(server.dsn(), autocommit=True) as c:
        cur = c.execute(sql, params)
        return cur.fetchall() if cur.description else []


# -- psql -----------------------------------------------------------------------------------

def psql(server: Server, *commands: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("psql")
    if exe is None:
        pytest.skip("psql (Debian postgresql-client) is not installed")
    args = [exe, server.dsn(), "-X", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose"]
    for c in commands:
        args += ["-c", c]
    return subprocess.run(args, capture_output=True, text=True, timeout=60,
                          env={"PGCONNECT_TIMEOUT": "10", "PATH": "/usr/bin:/bin"})


def test_psql_queries_and_errors(pg_server: Server) -> None:
    r = psql(pg_server, "CREATE TABLE psql_t (id BIGSERIAL PRIMARY KEY, name TEXT, emb FLOAT4[])",
             "INSERT INTO psql_t (name, emb) VALUES ('x', ARRAY[1.5, 2]::float4[])",
             "SELECT name, emb FROM psql_t")
    assert r.returncode == 0, r.stderr
    assert "{1.5,2}" in r.stdout
    r = psql(pg_server, "SELECT * FROM no_such_table")
    assert r.returncode != 0
    assert "42P01" in r.stderr


def test_psql_copy_csv(pg_server: Server, tmp_path: Any) -> None:
    src = tmp_path / "in.csv"
    src.write_text('id,name,emb\n1,"a, b","{1,2}"\n2,plain,\n')
    r = psql(pg_server, "CREATE TABLE psql_copy (id INT8, name TEXT, emb FLOAT4[])",
             f"\\copy psql_copy FROM '{src}' WITH (FORMAT csv, HEADER true)",
             "SELECT id, name, emb FROM psql_copy ORDER BY id")
    assert r.returncode == 0, r.stderr
    assert "COPY 2" in r.stdout
    assert "a, b" in r.stdout and "{1,2}" in r.stdout
    out = tmp_path / "out.csv"
    r = psql(pg_server, f"\\copy (SELECT id, name FROM psql_copy ORDER BY id) TO '{out}' CSV")
    assert r.returncode == 0, r.stderr
    assert out.read_text() == '1,"a, b"\n2,plain\n'


@pytest.mark.parametrize("meta,expect", [(r"\dt", "psql_meta"), (r"\d psql_meta", "bigint"),
                                         (r"\dn", "public"), (r"\l", "postgres")])
def test_psql_meta_commands(pg_server: Server, meta: str, expect: str) -> None:
    run(pg_server, "CREATE TABLE IF NOT EXISTS psql_meta (id BIGINT PRIMARY KEY, v FLOAT4[])")
    r = psql(pg_server, meta)
    assert r.returncode == 0, r.stderr
    assert expect in r.stdout


# -- psycopg2 and the seed's snippets ---------------------------------------------------------

def _pg2(server: Server) -> Any:
    return psycopg2.connect(host=server.host, port=server.port, user="postgres",
                            password=server.password, database="postgres", sslmode="require")


def test_psycopg2_ssl_and_types(pg_server: Server) -> None:
    conn = _pg2(pg_server)
    with conn.cursor() as cur:
        cur.execute("SELECT %s::float4[], %s::jsonb, %s::uuid, %s, %s",
                    ([1.0, 2.5], json.dumps({"a": 1}), str(uuid.UUID(int=5)), 7, "t'x"))
        assert cur.fetchone() == ([1.0, 2.5], {"a": 1}, str(uuid.UUID(int=5)), 7, "t'x")
    assert conn.info.ssl_in_use
    conn.close()


def test_seed_memory_table_and_retrieval(pg_server: Server) -> None:
    """The psycopg2 snippets of seeds/001 (memory table, BM25, vector, hybrid, replay)."""
    conn = _pg2(pg_server)
    with conn.cursor() as cur:
        cur.execute('CREATE TABLE "swe_agent_trajectories2" (id BIGSERIAL PRIMARY KEY, '
                    'agent TEXT, model TEXT, task TEXT, episode TEXT, run_id TEXT, '
                    'conversations JSONB)')
        cur.execute('INSERT INTO "swe_agent_trajectories2" (agent, model, task, episode, run_id, '
                    'conversations) VALUES (%s, %s, %s, %s, %s, %s::jsonb), '
                    '(%s, %s, %s, %s, %s, %s::jsonb)',
                    ("a1", "m", "fix authentication bug in login", "1", "run-1",
                     json.dumps([{"role": "user", "content": "hi"}]),
                     "a2", "m", "add a caching layer", "2", "run-2", "[]"))
    conn.commit()
    TABLE = "swe_agent_memory_full"  # noqa: N806 - as in the seed
    with conn.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS pg_deeplake")
        conn.commit()
    with conn.cursor() as cur:
        cur.execute(f'CREATE TABLE IF NOT EXISTS "{TABLE}" AS '
                    'SELECT * FROM "swe_agent_trajectories2" LIMIT 1000')
        cur.execute(f'ALTER TABLE "{TABLE}" ADD COLUMN IF NOT EXISTS embedding FLOAT4[]')
    conn.commit()
    with conn.cursor() as cur:
        cur.execute(f'SELECT id, task FROM "{TABLE}" WHERE embedding IS NULL LIMIT 200')
        rows = cur.fetchall()
    embs = {"fix authentication bug in login": [0.9, 0.1, 0.0],
            "add a caching layer": [0.0, 0.2, 0.9]}
    with conn.cursor() as cur:
        for _id, task in rows:
            cur.execute(f'UPDATE "{TABLE}" SET embedding = %s WHERE id = %s', (embs[task], _id))
        conn.commit()
    query_text = "fix authentication bug"
    with conn.cursor() as cur:
        cur.execute(f"""
            SELECT task, episode, model,
                   task <#> '{query_text.replace("'", "''")}' AS bm25_score
            FROM "{TABLE}"
            ORDER BY bm25_score ASC
            LIMIT 10
        """)
        results = cur.fetchall()
        assert results[0][0] == "fix authentication bug in login"
        assert conn.notices, "ORDER BY ... ASC on <#> sends a NOTICE"
    query_emb = [1.0, 0.0, 0.0]
    with conn.cursor() as cur:
        emb_str = "ARRAY[" + ",".join(map(str, query_emb)) + "]::float4[]"
        safe_query = query_text.replace("'", "''")
        cur.execute(f"""
            SELECT task, episode, model,
                   (embedding, task) <#> deeplake_hybrid_record(
                       {emb_str},
                       '{safe_query}',
                       0.5, 0.5
                   ) AS score
            FROM "{TABLE}"
            WHERE embedding IS NOT NULL
            ORDER BY score ASC
            LIMIT 10
        """)
        assert cur.fetchall()[0][0] == "fix authentication bug in login"
        cur.execute(f'SELECT task, embedding <#> {emb_str} AS similarity FROM "{TABLE}" '
                    "ORDER BY similarity ASC LIMIT 10")
        assert cur.fetchall()[0][0] == "fix authentication bug in login"
    with conn.cursor() as cur:
        cur.execute("""
            SELECT run_id, agent, model, task
            FROM "swe_agent_trajectories2"
            WHERE run_id IS NOT NULL AND run_id <> ''
            LIMIT 10
        """)
        sample = cur.fetchall()
    run_id = sample[0][0]
    with conn.cursor() as cur:
        cur.execute("""
            SELECT agent, model, task, episode, conversations
            FROM "swe_agent_trajectories2"
            WHERE run_id = %s
            LIMIT 1
            """, (run_id,))
        row = cur.fetchone()
    assert isinstance(row[4], list)
    conn.close()


def test_tarndb_db_connect_seed_shape(pg_server: Server) -> None:
    from tarndb.db import ConnectionManager, connect

    conn: ConnectionManager = connect(org_id="org", workspace_id="seedws", host=pg_server.host,
                                      port=pg_server.port, user="postgres",
                                      password=pg_server.password)

    def run_query(sql: str, params: Any = None) -> list[Any]:
        with conn.get_connection() as pg_conn:
            with pg_conn.cursor() as cur:
                cur.execute(sql, params)
                rows = cur.fetchall() if cur.description else []
            pg_conn.commit()
        return rows

    schema = {"id": "BIGSERIAL PRIMARY KEY", "image_id": "BIGINT", "bboxes": "JSONB",
              "file_id": "UUID", "metadata": "JSONB", "emb": "FLOAT4[][]"}
    cols = ", ".join(f"{k} {v}" for k, v in schema.items())
    run_query(f'CREATE TABLE IF NOT EXISTS "seedws"."coco" ({cols}) USING deeplake')
    fid = str(uuid.uuid4())
    with conn.get_connection() as pg_conn:
        with pg_conn.cursor() as cur:
            cur.executemany(
                'INSERT INTO "seedws"."coco" (image_id, bboxes, file_id, metadata, emb) '
                "VALUES (%s, %s::jsonb, %s::uuid, %s::jsonb, %s::float4[][])",
                [(1, json.dumps([[0, 0, 1, 1]]), fid, json.dumps({"d": "coco"}),
                  [[0.1, 0.2], [0.3, 0.4]]),
                 (2, "[]", fid, "{}", [[1.0, 0.0]])])
        pg_conn.commit()
    # unqualified names resolve in the workspace
    assert run_query("SELECT image_id, file_id FROM coco ORDER BY image_id") == [
        (1, uuid.UUID(fid)), (2, uuid.UUID(fid))]
    got = run_query('SELECT image_id, emb <#> ARRAY[ARRAY[0.1, 0.2]]::float4[][] AS score '
                    'FROM "seedws"."coco" ORDER BY score DESC LIMIT 5')
    assert [r[0] for r in got] == [1, 2] or [r[0] for r in got] == [2, 1]
    conn.close()


# -- psycopg 3 ------------------------------------------------------------------------------

def test_psycopg3_text_binary_prepared(pg_server: Server) -> None:
    with psycopg.connect(pg_server.dsn()) as c:
        c.execute("CREATE TABLE p3 (id BIGSERIAL PRIMARY KEY, t TEXT, v FLOAT4[], j JSONB, "
                  "u UUID, n NUMERIC(10,2), ts TIMESTAMPTZ, b BYTEA)")
        u = uuid.uuid4()
        import datetime as dt
        from decimal import Decimal

        ts = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)
        c.execute("INSERT INTO p3 (t, v, j, u, n, ts, b) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                  ("x", [0.5, 1.5], psycopg.types.json.Jsonb({"k": [1]}), u, Decimal("12.34"),
                   ts, b"\x00\x01"))
        c.commit()
        want = ("x", [0.5, 1.5], {"k": [1]}, u, Decimal("12.34"), ts, b"\x00\x01")
        sql = "SELECT t, v, j, u, n, ts, b FROM p3 WHERE t = %s"
        assert c.execute(sql, ("x",)).fetchone() == want
        assert c.execute(sql, ("x",), binary=True).fetchone() == want
        for _ in range(6):  # psycopg prepares after 5 executions
            assert c.execute(sql, ("x",), prepare=True).fetchone() == want
        c.commit()


def test_psycopg3_pipeline_and_executemany(pg_server: Server) -> None:
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute("CREATE TABLE pipe (id INT8, v FLOAT4[])")
        with c.pipeline():
            for i in range(20):
                c.execute("INSERT INTO pipe (id, v) VALUES (%s, %s)", (i, [float(i)]))
        with c.cursor() as cur:
            cur.executemany("INSERT INTO pipe (id) VALUES (%s)", [(100 + i,) for i in range(10)])
        assert c.execute("SELECT count(*), sum(id) FROM pipe").fetchone() == (30, 190 + 1045)


def test_psycopg3_copy_text_and_binary(pg_server: Server) -> None:
    import numpy as np

    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute("CREATE TABLE cp3 (id BIGINT, t TEXT, v FLOAT4[], j JSONB)")
        rng = np.random.default_rng(1)
        vecs = rng.standard_normal((200, 16)).astype(np.float32)
        with c.cursor().copy("COPY cp3 (id, t, v, j) FROM STDIN") as cp:
            for i in range(100):
                cp.write_row((i, f"row\t{i}", vecs[i].tolist(), json.dumps({"i": i})))
        with c.cursor().copy("COPY cp3 (id, t, v) FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(["int8", "text", "float4[]"])
            for i in range(100, 200):
                cp.write_row((i, None, vecs[i].tolist()))
        rows = c.execute("SELECT id, t, v, j FROM cp3 ORDER BY id").fetchall()
        assert len(rows) == 200
        assert rows[3][1] == "row\t3" and rows[3][3] == {"i": 3}
        assert np.array_equal(np.asarray([r[2] for r in rows], np.float32), vecs)
        out = []
        with c.cursor().copy("COPY (SELECT id, t FROM cp3 WHERE id < 3 ORDER BY id) "
                             "TO STDOUT") as cp:
            out = [r for r in cp.rows()]
        assert out == [("0", "row\t0"), ("1", "row\t1"), ("2", "row\t2")]
        with c.cursor().copy("COPY (SELECT id, v FROM cp3 WHERE id = 150) TO STDOUT "
                             "(FORMAT BINARY)") as cp:
            cp.set_types(["int8", "float4[]"])
            (rid, v), = list(cp.rows())
        assert rid == 150 and np.allclose(v, vecs[150])


def test_psycopg3_async(pg_server: Server) -> None:
    async def main() -> Any:
        async with await psycopg.AsyncConnection.connect(pg_server.dsn()) as c:
            cur = await c.execute("SELECT %s::int8 * 2, %s::float4[]", (21, [1.0]))
            return await cur.fetchone()
    assert asyncio.run(main()) == (42, [1.0])


def test_errors_carry_sqlstate(pg_server: Server) -> None:
    with psycopg.connect(pg_server.dsn()) as c:
        with pytest.raises(psycopg.errors.UndefinedTable) as ei:
            c.execute("SELECT * FROM missing_table")
        assert ei.value.diag.statement_position == "15"
        c.rollback()
        with pytest.raises(psycopg.errors.SyntaxError):
            c.execute("SELEC 1")
        c.rollback()
        c.execute("CREATE TABLE IF NOT EXISTS uniq (id INT PRIMARY KEY)")
        c.execute("INSERT INTO uniq VALUES (1)")
        c.commit()
        with pytest.raises(psycopg.errors.UniqueViolation):
            c.execute("INSERT INTO uniq VALUES (1)")
        c.rollback()
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_bad_credentials(pg_server: Server) -> None:
    with pytest.raises(psycopg.OperationalError) as ei:
        psycopg.connect(pg_server.dsn(password="wrong"))
    assert "28P01" in str(ei.value) or "password authentication failed" in str(ei.value)
    with pytest.raises(psycopg.OperationalError) as ei:
        psycopg.connect(pg_server.dsn(user="nobody"))
    assert "password authentication failed" in str(ei.value)
    with pytest.raises(psycopg.OperationalError) as ei:
        psycopg.connect(pg_server.dsn(dbname="nope"))
    assert 'database "nope" does not exist' in str(ei.value)


# -- asyncpg --------------------------------------------------------------------------------

def test_asyncpg(pg_server: Server) -> None:
    asyncpg = pytest.importorskip("asyncpg")

    async def main() -> None:
        c = await asyncpg.connect(host=pg_server.host, port=pg_server.port, user="postgres",
                                  password=pg_server.password, database="postgres",
                                  ssl="require")
        try:
            await c.execute("CREATE TABLE apg (id BIGINT PRIMARY KEY, v FLOAT4[], j JSONB, "
                            "t TEXT)")
            await c.executemany("INSERT INTO apg (id, v, j, t) VALUES ($1, $2, $3, $4)",
                                [(i, [float(i), 0.5], json.dumps({"i": i}), f"t{i}")
                                 for i in range(5)])
            rows = await c.fetch("SELECT id, v, j, t FROM apg WHERE id >= $1 ORDER BY id", 3)
            assert [tuple(r) for r in rows] == [(3, [3.0, 0.5], '{"i": 3}', "t3"),
                                                (4, [4.0, 0.5], '{"i": 4}', "t4")]
            stmt = await c.prepare("SELECT t FROM apg WHERE id = $1")
            assert await stmt.fetchval(2) == "t2"
            assert await c.fetchval("SELECT $1::float4[]", [1.5, 2.5]) == [1.5, 2.5]
            with pytest.raises(asyncpg.UndefinedTableError):
                await c.fetch("SELECT * FROM nope_apg")
        finally:
            await c.close()

    asyncio.run(main())


# -- SQLAlchemy and pandas ------------------------------------------------------------------

@pytest.mark.parametrize("driver", ["postgresql+psycopg2", "postgresql+psycopg"])
def test_sqlalchemy_core_and_reflection(pg_server: Server, driver: str) -> None:
    sa = pytest.importorskip("sqlalchemy")
    table = "sa_" + driver.split("+")[1]
    engine = sa.create_engine(pg_server.url(driver))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE TABLE {table} (id BIGSERIAL PRIMARY KEY, "
                                 "name TEXT NOT NULL, score DOUBLE PRECISION, emb FLOAT4[])"))
            conn.execute(sa.text(f"INSERT INTO {table} (name, score) VALUES (:n, :s)"),
                         [{"n": "a", "s": 1.5}, {"n": "b", "s": 2.5}])
        insp = sa.inspect(engine)
        assert insp.has_table(table)
        assert not insp.has_table("definitely_not_here")
        assert table in insp.get_table_names()
        cols = {c["name"]: c for c in insp.get_columns(table)}
        assert list(cols) == ["id", "name", "score", "emb"]
        assert isinstance(cols["id"]["type"], sa.BigInteger)
        assert cols["name"]["nullable"] is False
        assert insp.get_pk_constraint(table)["constrained_columns"] == ["id"]
        md = sa.MetaData()
        t = sa.Table(table, md, autoload_with=engine)
        with engine.connect() as conn:
            got = conn.execute(sa.select(t.c.name).where(t.c.score > 2).order_by(t.c.id)).all()
        assert [r[0] for r in got] == ["b"]
    finally:
        engine.dispose()


def test_pandas_read_sql(pg_server: Server) -> None:
    pd = pytest.importorskip("pandas")
    sa = pytest.importorskip("sqlalchemy")
    run(pg_server, "CREATE TABLE IF NOT EXISTS pdt (id INT, x DOUBLE PRECISION)")
    run(pg_server, "INSERT INTO pdt VALUES (1, 0.5), (2, 1.5)")
    engine = sa.create_engine(pg_server.url("postgresql+psycopg2"))
    try:
        df = pd.read_sql("SELECT id, x FROM pdt ORDER BY id", engine)
        assert df["x"].tolist() == [0.5, 1.5]
        df2 = pd.read_sql("pdt", engine)
        assert len(df2) == 2
    finally:
        engine.dispose()


# -- concurrency, cancel, hang-ups ----------------------------------------------------------

def test_hundred_concurrent_connections(pg_server: Server) -> None:
    errors: list[BaseException] = []
    conns = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        try:
            c = psycopg.connect(pg_server.dsn(), autocommit=True)
            with lock:
                conns.append(c)
            for _ in range(3):
                assert c.execute("SELECT %s::int8 + 1", (i,)).fetchone() == (i + 1,)
        except BaseException as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        assert not errors, errors[:3]
        assert len(conns) == 100  # all open at once
    finally:
        for c in conns:
            c.close()


def test_slow_query_does_not_block_others_and_cancel(pg_server: Server) -> None:
    slow = psycopg.connect(pg_server.dsn(), autocommit=True)
    result: dict[str, Any] = {}

    def go() -> None:
        try:
            slow.execute(HEAVY)
        except BaseException as e:  # noqa: BLE001 - inspected below
            result["error"] = e

    t = threading.Thread(target=go)
    t.start()
    time.sleep(0.5)
    t0 = time.time()
    assert run(pg_server, "SELECT 41 + 1") == [(42,)]
    assert time.time() - t0 < 2.0, "a slow query blocked another session"
    slow.cancel_safe()
    t.join(20)
    assert not t.is_alive()
    assert isinstance(result.get("error"), psycopg.errors.QueryCanceled)
    assert slow.execute("SELECT 1").fetchone() == (1,)
    slow.close()


def test_psycopg2_cancel(pg_server: Server) -> None:
    conn = _pg2(pg_server)
    conn.autocommit = True
    threading.Timer(0.5, conn.cancel).start()
    with conn.cursor() as cur:
        with pytest.raises(psycopg2.errors.QueryCanceled):
            cur.execute(HEAVY)
        cur.execute("SELECT 2")
        assert cur.fetchone() == (2,)
    conn.close()


def test_ssl_not_required_by_default(pg_server: Server) -> None:
    with psycopg.connect(pg_server.dsn(sslmode="disable")) as c:
        assert c.execute("SELECT 1").fetchone() == (1,)
        assert c.info.pgconn.ssl_in_use is False
