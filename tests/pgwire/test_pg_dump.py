"""pg_dump (Debian's pg_dump 15) of a tarndb workspace restores with ``psql -f``: into a
fresh tarndb (rows, vectors, serial and standalone sequences, keys, foreign keys, indexes)
and into a real
PostgreSQL 15 when its binaries are installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import PASSWORD, PG_BIN, Server, pg_tool

psycopg = pytest.importorskip("psycopg")

pytestmark = pytest.mark.skipif(shutil.which("pg_dump") is None and not PG_BIN.exists(),
                                reason="pg_dump is not installed")


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[Server]:
    """A second ``python -m tarndb.pgwire`` on an empty lake, to restore into."""
    port_file = tmp_path / "port"
    log = open(tmp_path / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "tarndb.pgwire", "--data", str(tmp_path / "lake"), "--port",
         "0", "--port-file", str(port_file)], stdout=log, stderr=subprocess.STDOUT,
        env=dict(os.environ, TARNDB_PASSWORD=PASSWORD))
    deadline = time.time() + 60
    while not port_file.exists():
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError("server did not start: " + (tmp_path / "server.log").read_text())
        time.sleep(0.05)
    yield Server("127.0.0.1", int(port_file.read_text()), PASSWORD, tmp_path, proc)
    proc.terminate()
    proc.wait(10)
    log.close()


@pytest.fixture(scope="module")
def dumped(pg_server: Server) -> tuple[str, str, str, str]:
    """Two workspaces (plain types; pgvector types) and their pg_dump scripts."""
    plain = f"dump_{uuid.uuid4().hex[:8]}"
    vec = f"dumpv_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS vector")
        c.execute(f"CREATE SCHEMA {plain}")
        c.execute(f"CREATE TABLE {plain}.items (id SERIAL PRIMARY KEY, name TEXT UNIQUE, "
                  "price NUMERIC(10,2), tags TEXT[], meta JSONB, at TIMESTAMP)")
        c.execute(f"CREATE TABLE {plain}.child (id BIGINT PRIMARY KEY, "
                  f"item_id INT REFERENCES {plain}.items(id), note TEXT)")
        c.execute(f"CREATE INDEX child_note_idx ON {plain}.child (note)")
        c.execute(f"CREATE TABLE {plain}.ident (id INT GENERATED ALWAYS AS IDENTITY "
                  "PRIMARY KEY, x INT)")
        c.execute(f"INSERT INTO {plain}.ident (x) VALUES (10), (20), (30)")
        # a standalone sequence behind a column default, and one used by hand
        c.execute(f"CREATE SEQUENCE {plain}.ticket_no AS integer START 10 INCREMENT 5")
        c.execute(f"CREATE TABLE {plain}.tickets (no INT DEFAULT nextval('{plain}.ticket_no'), "
                  "note TEXT)")
        c.execute(f"INSERT INTO {plain}.tickets (note) VALUES ('a'), ('b'), ('c')")
        c.execute(f"CREATE SEQUENCE {plain}.counter INCREMENT -2 MINVALUE -100 MAXVALUE 0 "
                  "START 0 CYCLE")
        for _ in range(4):
            c.execute(f"SELECT nextval('{plain}.counter')")
        with c.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {plain}.items (name, price, tags, meta, at) "
                "VALUES (%s, %s, %s, %s::jsonb, '2024-05-01 10:00:00')",
                [(f"item {i}", f"{i}.25", ["a", f"t{i}"], f'{{"i": {i}, "q": "it\'s"}}')
                 for i in range(30)])
            cur.executemany(f"INSERT INTO {plain}.child VALUES (%s, %s, %s)",
                            [(i, 1 + i % 30, f"note\t{i}\n") for i in range(50)])
        c.execute(f"CREATE SCHEMA {vec}")
        c.execute(f"CREATE TABLE {vec}.emb (id INT PRIMARY KEY, v vector(3), h halfvec(2))")
        c.execute(f"INSERT INTO {vec}.emb VALUES (1, '[1,2.5,-3]', '[0.5,1]'), "
                  "(2, '[0.1,0.2,0.3]', '[2,3]')")
    out = []
    for ws in (plain, vec):
        run = subprocess.run([pg_tool("pg_dump"), "-n", ws], env=pg_server.libpq_env(),
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        out.append(run.stdout)
    return plain, vec, out[0], out[1]


def _restore(server_env: dict[str, str], script: str, extra: list[str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([pg_tool("psql"), "-q", "-v", "ON_ERROR_STOP=1", *(extra or [])],
                          input=script, env=server_env, capture_output=True, text=True,
                          timeout=120)


def _rows(conn: psycopg.Connection[tuple[object, ...]], sql: str) -> list[tuple[object, ...]]:
    return conn.execute(sql).fetchall()


def test_dump_has_postgresqls_shape(dumped: tuple[str, str, str, str]) -> None:
    plain, _, script, vscript = dumped
    assert f"CREATE TABLE {plain}.items (" in script
    assert f"CREATE SEQUENCE {plain}.items_id_seq" in script
    assert (f"ALTER TABLE ONLY {plain}.items ALTER COLUMN id SET DEFAULT "
            f"nextval('{plain}.items_id_seq'::regclass);") in script
    assert f"SELECT pg_catalog.setval('{plain}.items_id_seq', 30, true);" in script
    assert f"ADD CONSTRAINT child_item_id_fkey FOREIGN KEY (item_id) REFERENCES " \
           f"{plain}.items(id)" in script
    assert f"CREATE INDEX child_note_idx ON {plain}.child USING btree (note);" in script
    assert "v vector(3)" in vscript and "h halfvec(2)" in vscript
    assert f"ALTER TABLE {plain}.ident ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (" \
        in script
    assert f"CREATE SEQUENCE {plain}.ticket_no\n    AS integer\n    START WITH 10\n" \
           "    INCREMENT BY 5\n" in script
    assert f"SELECT pg_catalog.setval('{plain}.ticket_no', 20, true);" in script
    assert f"SELECT pg_catalog.setval('{plain}.counter', -6, true);" in script
    assert "    CYCLE;" in script
    # the sequence is created before the table whose default uses it
    assert script.index(f"CREATE SEQUENCE {plain}.ticket_no") < \
        script.index(f"CREATE TABLE {plain}.tickets")


def test_restore_into_a_fresh_tarndb(pg_server: Server, fresh_server: Server,
                                     dumped: tuple[str, str, str, str]) -> None:
    plain, vec, script, vscript = dumped
    for s in (script, vscript):
        run = _restore(fresh_server.libpq_env(), s)
        assert run.returncode == 0, run.stderr
    with psycopg.connect(pg_server.dsn(), autocommit=True) as a, \
            psycopg.connect(fresh_server.dsn(), autocommit=True) as b:
        for sql in (f"SELECT * FROM {plain}.items ORDER BY id",
                    f"SELECT * FROM {plain}.child ORDER BY id",
                    f"SELECT id, v::text, h::text FROM {vec}.emb ORDER BY id"):
            assert _rows(a, sql) == _rows(b, sql), sql
        assert len(_rows(b, f"SELECT * FROM {plain}.items")) == 30
        # An identity column stays GENERATED ALWAYS, its sequence after the restored rows.
        assert _rows(b, f"SELECT * FROM {plain}.ident ORDER BY id") == \
            [(1, 10), (2, 20), (3, 30)]
        assert _rows(b, f"INSERT INTO {plain}.ident (x) VALUES (40) RETURNING id") == [(4,)]
        with pytest.raises(psycopg.errors.GeneratedAlways):
            b.execute(f"INSERT INTO {plain}.ident (id, x) VALUES (9, 9)")
        # Standalone sequences keep their definition and current value.
        assert _rows(b, f"SELECT * FROM {plain}.tickets ORDER BY no") == \
            [(10, "a"), (15, "b"), (20, "c")]
        assert _rows(b, f"INSERT INTO {plain}.tickets (note) VALUES ('d') RETURNING no") == \
            [(25,)]
        assert _rows(b, f"SELECT nextval('{plain}.counter')") == [(-8,)]
        assert _rows(b, "SELECT sequencename, data_type::int, increment_by, cycle FROM "
                        f"pg_sequences WHERE schemaname = '{plain}' ORDER BY 1") == [
            ("counter", 20, -2, True), ("ticket_no", 23, 5, False)]
        # The serial column continues after the restored rows; keys and references hold.
        assert _rows(b, f"INSERT INTO {plain}.items (name) VALUES ('new') RETURNING id") \
            == [(31,)]
        with pytest.raises(psycopg.errors.UniqueViolation):
            b.execute(f"INSERT INTO {plain}.items (name) VALUES ('item 3')")
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            b.execute(f"INSERT INTO {plain}.child VALUES (999, 999, 'orphan')")
        assert _rows(b, "SELECT indexname FROM pg_indexes WHERE tablename = 'child' "
                        f"AND schemaname = '{plain}' ORDER BY 1") == [
            ("child_note_idx",), ("child_pkey",)]


def _start_postgres(tmp: Path) -> tuple[subprocess.Popen[bytes], dict[str, str]] | None:
    if not (PG_BIN / "initdb").exists():
        return None
    data = tmp / "pgdata"
    sock = tmp / "sock"
    sock.mkdir()
    prefix: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run PostgreSQL as its own user
        if shutil.which("runuser") is None:
            return None
        prefix = ["runuser", "-u", "postgres", "--"]
        shutil.chown(tmp, "postgres")
        shutil.chown(sock, "postgres")
    init = subprocess.run([*prefix, str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust",
                           "-U", "postgres"], capture_output=True, timeout=120)
    if init.returncode != 0:
        return None
    proc = subprocess.Popen([*prefix, str(PG_BIN / "postgres"), "-D", str(data), "-p",
                             "55439", "-k", str(sock), "-c", "listen_addresses="],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = dict(os.environ, PGHOST=str(sock), PGPORT="55439", PGUSER="postgres",
               PGDATABASE="postgres")
    env.pop("PGSSLMODE", None)
    env.pop("PGPASSWORD", None)
    for _ in range(100):
        if subprocess.run([str(PG_BIN / "pg_isready")], env=env,
                          capture_output=True).returncode == 0:
            return proc, env
        time.sleep(0.1)
    proc.terminate()
    return None


def test_restore_into_postgresql_15(pg_server: Server, dumped: tuple[str, str, str, str]
                                    ) -> None:
    plain, _, script, _ = dumped
    # Not under pytest's tmp (private to this user): PostgreSQL may run as its own user.
    tmp = Path(tempfile.mkdtemp(prefix="tarndb-pg15-"))
    started = _start_postgres(tmp)
    if started is None:
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.skip("PostgreSQL 15 server binaries are not usable here")
    proc, env = started
    try:
        run = _restore(env, script)
        assert run.returncode == 0, run.stderr
        with psycopg.connect(pg_server.dsn(), autocommit=True) as a, \
                psycopg.connect(host=env["PGHOST"], port=55439, user="postgres",
                                dbname="postgres", autocommit=True) as b:
            for sql in (f"SELECT * FROM {plain}.items ORDER BY id",
                        f"SELECT * FROM {plain}.child ORDER BY id"):
                assert _rows(a, sql) == _rows(b, sql), sql
            assert _rows(b, f"INSERT INTO {plain}.items (name) VALUES ('new') RETURNING id"
                         ) == [(31,)]
    finally:
        proc.terminate()
        proc.wait(20)
        shutil.rmtree(tmp, ignore_errors=True)
