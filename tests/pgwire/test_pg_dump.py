"""pg_dump of a tarndb workspace restores: Debian's pg_dump 15 and PostgreSQL 16.2's (from
the pgserver wheel), each with its own psql and pg_restore. Plain scripts restore with
``psql -f`` into a fresh tarndb (rows, vectors, serial and standalone sequences, keys,
foreign keys, indexes, grants) and into a real PostgreSQL 15 when its binaries are installed;
custom archives (``-Fc``) restore with ``pg_restore --single-transaction`` into a fresh
tarndb."""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import PASSWORD, PG_BIN, Server, pg_tool

psycopg = pytest.importorskip("psycopg")

#: A role the plain workspace grants to; a restore target has it made first, as pg_dump
#: leaves roles to pg_dumpall.
READER = "dump_reader"


def _pgserver_bin() -> Path | None:
    """The bin directory of the pgserver wheel's PostgreSQL 16.2 (found without importing
    the package, which only carries the programs here)."""
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@dataclass(frozen=True)
class Tools:
    """One PostgreSQL release's client programs. A dump is restored with the psql and
    pg_restore of its own release (psql 16.2 does not know the ``\\restrict`` that
    pg_dump 15.18 writes)."""

    major: int
    bin: Path | None  # None: Debian's, through pg_tool
    tls: bool  # the pgserver wheel's libpq is built without TLS

    def path(self, name: str) -> str:
        return pg_tool(name) if self.bin is None else str(self.bin / name)

    def env(self, server: Server) -> dict[str, str]:
        env = server.libpq_env()
        if not self.tls:
            env["PGSSLMODE"] = "disable"  # the test server takes plain connections
        return env


@pytest.fixture(scope="module", params=[15, 16], ids=["pg15", "pg16"])
def tools(request: pytest.FixtureRequest) -> Tools:
    if request.param == 15:
        if shutil.which("pg_dump") is None and not PG_BIN.exists():
            pytest.skip("pg_dump is not installed")
        found = Tools(15, None, tls=True)
    else:
        bin_dir = _pgserver_bin()
        if bin_dir is None:
            if sys.platform == "linux" and platform.machine() != "x86_64":
                pytest.skip("pgserver (PostgreSQL 16's pg_dump) has no wheel for Linux on "
                            f"{platform.machine()}")
            pytest.fail("pgserver is not installed (the test extra installs it for its "
                        "pg_dump 16)")
        found = Tools(16, bin_dir, tls=False)
    version = subprocess.run([found.path("pg_dump"), "--version"], capture_output=True,
                             text=True, check=True).stdout
    assert version.startswith(f"pg_dump (PostgreSQL) {found.major}."), version
    return found


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
    server = Server("127.0.0.1", int(port_file.read_text()), PASSWORD, tmp_path, proc)
    with psycopg.connect(server.dsn(), autocommit=True) as c:
        c.execute(f"CREATE ROLE {READER} LOGIN PASSWORD 'reader-pw-1'")
    yield server
    proc.terminate()
    proc.wait(10)
    log.close()


@pytest.fixture(scope="module")
def workspaces(pg_server: Server) -> tuple[str, str]:
    """Two workspaces (plain types; pgvector types), dumped by each pg_dump."""
    plain = f"dump_{uuid.uuid4().hex[:8]}"
    vec = f"dumpv_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server.dsn(), autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS vector")
        c.execute(f"CREATE SCHEMA {plain}")
        c.execute(f"CREATE ROLE {READER} LOGIN PASSWORD 'reader-pw-1'")
        c.execute(f"GRANT USAGE ON SCHEMA {plain} TO {READER}")
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
        c.execute(f"GRANT SELECT ON {plain}.items TO {READER}")
        c.execute(f"CREATE SCHEMA {vec}")
        c.execute(f"CREATE TABLE {vec}.emb (id INT PRIMARY KEY, v vector(3), h halfvec(2), "
                  "s sparsevec(5))")
        c.execute(f"INSERT INTO {vec}.emb VALUES (1, '[1,2.5,-3]', '[0.5,1]', '{{1:1.5,3:2}}/5'), "
                  "(2, '[0.1,0.2,0.3]', '[2,3]', '{5:-1}/5')")
        c.execute(f"CREATE INDEX emb_v_idx ON {vec}.emb USING hnsw (v vector_cosine_ops) "
                  "WITH (m = 8, ef_construction = 32)")
    return plain, vec


@pytest.fixture(scope="module")
def dumped(pg_server: Server, workspaces: tuple[str, str], tools: Tools
           ) -> tuple[str, str, str, str]:
    """The two workspaces and their plain pg_dump scripts."""
    plain, vec = workspaces
    out = []
    for ws in (plain, vec):
        run = subprocess.run([tools.path("pg_dump"), "-n", ws], env=tools.env(pg_server),
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        out.append(run.stdout)
    return plain, vec, out[0], out[1]


def _restore(tools: Tools, server_env: dict[str, str], script: str
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tools.path("psql"), "-q", "-v", "ON_ERROR_STOP=1"],
                          input=script, env=server_env, capture_output=True, text=True,
                          timeout=120)


def _rows(conn: psycopg.Connection[tuple[object, ...]], sql: str) -> list[tuple[object, ...]]:
    return conn.execute(sql).fetchall()


def test_dump_has_postgresqls_shape(tools: Tools, dumped: tuple[str, str, str, str]) -> None:
    plain, _, script, vscript = dumped
    assert f"-- Dumped by pg_dump version {tools.major}." in script
    assert f"CREATE TABLE {plain}.items (" in script
    assert f"CREATE SEQUENCE {plain}.items_id_seq" in script
    assert (f"ALTER TABLE ONLY {plain}.items ALTER COLUMN id SET DEFAULT "
            f"nextval('{plain}.items_id_seq'::regclass);") in script
    assert f"SELECT pg_catalog.setval('{plain}.items_id_seq', 30, true);" in script
    assert f"ADD CONSTRAINT child_item_id_fkey FOREIGN KEY (item_id) REFERENCES " \
           f"{plain}.items(id)" in script
    assert f"CREATE INDEX child_note_idx ON {plain}.child USING btree (note);" in script
    assert "v vector(3)" in vscript and "h halfvec(2)" in vscript and "s sparsevec(5)" in vscript
    assert "SET STORAGE" not in vscript  # each column stored as its type is
    assert "USING hnsw (v vector_cosine_ops) WITH (m='8', ef_construction='32');" in vscript
    assert f"ALTER TABLE {plain}.ident ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (" \
        in script
    assert f"CREATE SEQUENCE {plain}.ticket_no\n    AS integer\n    START WITH 10\n" \
           "    INCREMENT BY 5\n" in script
    # pg_dump 16 gives a sequence to its owner with ALTER SEQUENCE, 15 with ALTER TABLE
    owner = "SEQUENCE" if tools.major >= 16 else "TABLE"
    assert f"ALTER {owner} {plain}.ticket_no OWNER TO postgres;" in script
    assert f"SELECT pg_catalog.setval('{plain}.ticket_no', 20, true);" in script
    assert f"SELECT pg_catalog.setval('{plain}.counter', -6, true);" in script
    assert "    CYCLE;" in script
    # the schema's and the table's grants; public keeps PUBLIC's USAGE (no REVOKE)
    assert f"GRANT USAGE ON SCHEMA {plain} TO {READER};" in script
    assert f"GRANT SELECT ON TABLE {plain}.items TO {READER};" in script
    assert "REVOKE" not in script
    # the sequence is created before the table whose default uses it
    assert script.index(f"CREATE SEQUENCE {plain}.ticket_no") < \
        script.index(f"CREATE TABLE {plain}.tickets")


@pytest.mark.parametrize("tools", [16], ids=["pg16"], indirect=True)
def test_extension_functions_are_left_to_their_extensions(tools: Tools, pg_server: Server,
                                                         workspaces: tuple[str, str]) -> None:
    """A dump of public (of the whole database too) leaves pgvector's functions and
    pg_deeplake's to CREATE EXTENSION, as members of their extensions in pg_depend (it
    wrote a CREATE FUNCTION for each, which no restore could run)."""
    run = subprocess.run([tools.path("pg_dump"), "-s", "-n", "public"],
                         env=tools.env(pg_server), capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "ALTER SCHEMA public OWNER TO postgres;" in run.stdout
    assert "CREATE FUNCTION" not in run.stdout


def _assert_restored(a: psycopg.Connection[tuple[object, ...]],
                     b: psycopg.Connection[tuple[object, ...]], plain: str, vec: str) -> None:
    """What the fresh tarndb ``b`` holds after a restore of the dump of ``a``."""
    for sql in (f"SELECT * FROM {plain}.items ORDER BY id",
                f"SELECT * FROM {plain}.child ORDER BY id",
                f"SELECT id, v::text, h::text, s::text FROM {vec}.emb ORDER BY id"):
        assert _rows(a, sql) == _rows(b, sql), sql
    indexes = f"SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = '{vec}' ORDER BY 1"
    assert _rows(a, indexes) == _rows(b, indexes)
    assert len(_rows(b, f"SELECT * FROM {plain}.items")) == 30
    grants = (f"SELECT has_schema_privilege('{READER}', '{plain}', 'USAGE'), "
              f"has_table_privilege('{READER}', '{plain}.items', 'SELECT'), "
              f"has_table_privilege('{READER}', '{plain}.child', 'SELECT')")
    assert _rows(b, grants) == [(True, True, False)]
    assert len(_rows(b, f"SELECT * FROM {plain}.child")) == 50
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


def test_restore_into_a_fresh_tarndb(tools: Tools, pg_server: Server, fresh_server: Server,
                                     dumped: tuple[str, str, str, str]) -> None:
    plain, vec, script, vscript = dumped
    for s in (script, vscript):
        run = _restore(tools, tools.env(fresh_server), s)
        assert run.returncode == 0, run.stderr
    with psycopg.connect(pg_server.dsn(), autocommit=True) as a, \
            psycopg.connect(fresh_server.dsn(), autocommit=True) as b:
        _assert_restored(a, b, plain, vec)


# pg_restore 16 only: 15's sends the same statements, and the file keeps to its time budget
@pytest.mark.parametrize("tools", [16], ids=["pg16"], indirect=True)
def test_custom_format_restores_with_pg_restore(tools: Tools, pg_server: Server,
                                                fresh_server: Server,
                                                workspaces: tuple[str, str]) -> None:
    """``pg_dump -Fc`` of both workspaces, ``pg_restore --single-transaction`` into a fresh
    tarndb: each table is created, COPYed into and granted on in one transaction. (Not
    ``-j``: two DDL statements on one table at once can lose one, see
    docs/postgres-tools.md.)"""
    plain, vec = workspaces
    archive = fresh_server.data / "dump.custom"
    run = subprocess.run([tools.path("pg_dump"), "-Fc", "-n", plain, "-n", vec, "-f",
                          str(archive)], env=tools.env(pg_server), capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    run = subprocess.run([tools.path("pg_restore"), "--single-transaction", "--exit-on-error",
                          "-d", "postgres", str(archive)], env=tools.env(fresh_server),
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    with psycopg.connect(pg_server.dsn(), autocommit=True) as a, \
            psycopg.connect(fresh_server.dsn(), autocommit=True) as b:
        _assert_restored(a, b, plain, vec)


@dataclass(frozen=True)
class Postgres15:
    """A real PostgreSQL 15 server (Debian's binaries), on a Unix socket."""

    host: str
    port: int

    def env(self, dbname: str) -> dict[str, str]:
        env = dict(os.environ, PGHOST=self.host, PGPORT=str(self.port), PGUSER="postgres",
                   PGDATABASE=dbname)
        env.pop("PGSSLMODE", None)
        env.pop("PGPASSWORD", None)
        return env


def _start_postgres(tmp: Path) -> tuple[subprocess.Popen[bytes], Postgres15] | None:
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
    server = Postgres15(str(sock), 55439)
    for _ in range(100):
        if subprocess.run([str(PG_BIN / "pg_isready")], env=server.env("postgres"),
                          capture_output=True).returncode == 0:
            return proc, server
        time.sleep(0.1)
    proc.terminate()
    return None


@pytest.fixture(scope="module")
def postgres15() -> Iterator[Postgres15]:
    """One PostgreSQL 15 for the module; each dump restores into a database of its own."""
    # Not under pytest's tmp (private to this user): PostgreSQL may run as its own user.
    tmp = Path(tempfile.mkdtemp(prefix="tarndb-pg15-"))
    started = _start_postgres(tmp)
    if started is None:
        shutil.rmtree(tmp, ignore_errors=True)
        pytest.skip("PostgreSQL 15 server binaries are not usable here")
    proc, server = started
    try:
        with psycopg.connect(host=server.host, port=server.port, user="postgres",
                             dbname="postgres", autocommit=True) as c:
            c.execute(f"CREATE ROLE {READER} LOGIN")
        yield server
    finally:
        proc.terminate()
        proc.wait(20)
        shutil.rmtree(tmp, ignore_errors=True)


def test_restore_into_postgresql_15(tools: Tools, pg_server: Server, postgres15: Postgres15,
                                    dumped: tuple[str, str, str, str]) -> None:
    """The plain workspace's script (pg_dump 16's too: nothing in it is newer than 15)."""
    plain, _, script, _ = dumped
    dbname = f"restored{tools.major}"
    with psycopg.connect(host=postgres15.host, port=postgres15.port, user="postgres",
                         dbname="postgres", autocommit=True) as c:
        c.execute(f"CREATE DATABASE {dbname}")
    run = _restore(tools, postgres15.env(dbname), script)
    assert run.returncode == 0, run.stderr
    with psycopg.connect(pg_server.dsn(), autocommit=True) as a, \
            psycopg.connect(host=postgres15.host, port=postgres15.port, user="postgres",
                            dbname=dbname, autocommit=True) as b:
        for sql in (f"SELECT * FROM {plain}.items ORDER BY id",
                    f"SELECT * FROM {plain}.child ORDER BY id",
                    f"SELECT * FROM {plain}.tickets ORDER BY no"):
            assert _rows(a, sql) == _rows(b, sql), sql
        assert _rows(b, f"INSERT INTO {plain}.items (name) VALUES ('new') RETURNING id"
                     ) == [(31,)]
        assert _rows(b, f"SELECT has_schema_privilege('{READER}', '{plain}', 'USAGE'), "
                        f"has_table_privilege('{READER}', '{plain}.items', 'SELECT')") == [
            (True, True)]
