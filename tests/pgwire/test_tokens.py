"""API tokens as Postgres passwords: workspace isolation and read-only roles over pgwire.

A user name that is not a catalog role logs in with an HTTP API token as its password, over
TLS only; the session then has the token's limits, enforced by the engine (SQLSTATE 42501).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

import tarndb
from tarndb.api.tokens import TokenStore
from tarndb.pgwire import messages as m
from tarndb.pgwire import roles
from tarndb.pgwire.protocol import ServerConfig, ServerConnection, State
from tarndb.pgwire.server import ServerThread

PASSWORD = "s3cret-pw"


@dataclass
class Env:
    db: tarndb.Database
    srv: ServerThread
    store: TokenStore
    read_a: str
    write_a: str
    write_all: str

    def dsn(self, password: str, user: str = "token", **extra: str) -> str:
        params = {"host": "127.0.0.1", "port": str(self.srv.port), "user": user,
                  "password": password, "dbname": "postgres", "sslmode": "require",
                  "connect_timeout": "10"}
        params.update(extra)
        return " ".join(f"{k}={v}" for k, v in params.items())


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp: Path = tmp_path_factory.mktemp("pgtokens")
    db = tarndb.open(str(tmp / "lake"))
    s = db.session()
    for ws in ("a", "b"):
        s.execute(f'CREATE TABLE "{ws}"."t" (id BIGINT, body TEXT, emb FLOAT4[])')
        s.execute(f"INSERT INTO \"{ws}\".\"t\" VALUES (1, 'in {ws}', ARRAY[1,2]::float4[])")
    s.close()
    store = TokenStore(db.catalog)
    srv = ServerThread(db, port=0, password=PASSWORD, data_dir=tmp).start()
    # The server checks tokens with this store, so a revocation here is seen at once.
    srv.server.config.tokens = store
    yield Env(db, srv, store,
              read_a=store.create(org="o", role="read", workspaces=["a"])[0],
              write_a=store.create(org="o", role="write", workspaces=["a"])[0],
              write_all=store.create(org="o", role="write", workspaces="*")[0])
    srv.stop()
    db.close()


def test_scoped_token_reads_its_workspace_only(env: Env) -> None:
    with psycopg.connect(env.dsn(env.write_a), autocommit=True) as c:
        assert c.info.pgconn.ssl_in_use
        # Unqualified names resolve in the token's workspace.
        assert c.execute("SELECT body FROM t").fetchall() == [("in a",)]
        assert c.execute('SELECT body FROM "a"."t"').fetchall() == [("in a",)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute('SELECT body FROM "b"."t"')
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute('INSERT INTO "b"."t" VALUES (2, \'x\', NULL)')
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute('SELECT * FROM "a"."t" JOIN "b"."t" USING (id)')
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            with c.cursor().copy('COPY "b"."t" (id, body) FROM STDIN') as cp:
                cp.write_row((3, "sneaked"))
        # A token login is no role: it cannot make one (and so cannot escape its limits).
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("CREATE ROLE evil LOGIN SUPERUSER PASSWORD 'x'")
        # The connection is still usable, and a write token writes in its own workspace.
        c.execute("INSERT INTO t VALUES (2, 'written', NULL)")
        with c.cursor().copy("COPY t (id, body) FROM STDIN") as cp:
            cp.write_row((3, "copied"))
        assert c.execute("SELECT count(*) FROM t").fetchone() == (3,)
    s = env.db.session()
    try:
        assert s.execute('SELECT count(*) FROM "b"."t"').scalar() == 1
        s.execute('DELETE FROM "a"."t" WHERE id > 1')
    finally:
        s.close()


def test_read_token_cannot_write(env: Env) -> None:
    with psycopg.connect(env.dsn(env.read_a), autocommit=True) as c:
        assert c.execute("SELECT id, body FROM t").fetchall() == [(1, "in a")]
        for sql in ("INSERT INTO t VALUES (9, 'no', NULL)", "UPDATE t SET body = 'no'",
                    "DELETE FROM t", "CREATE TABLE t2 (x INT)", "DROP TABLE t"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute(sql)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            with c.cursor().copy("COPY t (id, body) FROM STDIN") as cp:
                cp.write_row((9, "no"))
        # Binary results and COPY TO still work for a reader.
        assert c.execute("SELECT id FROM t", binary=True).fetchone() == (1,)
        buf = io.BytesIO()
        with c.cursor().copy("COPY t (id, body) TO STDOUT") as cp:
            for chunk in cp:
                buf.write(chunk)
        assert buf.getvalue() == b"1\tin a\n"
        assert c.execute("SELECT count(*) FROM t").fetchone() == (1,)
        # A reader lists the versions it may read.
        assert c.execute("SELECT count(*) FROM tarndb_versions('t')").fetchone()[0] >= 2
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT tarndb_tag('t', 'no')")


def test_scoped_token_does_not_see_other_workspaces_in_the_catalog(env: Env) -> None:
    with psycopg.connect(env.dsn(env.read_a), autocommit=True) as c:
        schemas = {r[0] for r in c.execute("SELECT nspname FROM pg_namespace")}
        assert "a" in schemas and "b" not in schemas
        tables = c.execute("SELECT table_schema, table_name FROM information_schema.tables "
                           "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')")
        assert tables.fetchall() == [("a", "t")]
        assert [r[0] for r in c.execute("SELECT relname FROM pg_class WHERE relkind = 'r'")] \
            == ["t"]
        with pytest.raises(psycopg.Error):
            c.execute("SELECT 'b.t'::regclass")


def test_unscoped_token_and_roles_keep_full_access(env: Env) -> None:
    with psycopg.connect(env.dsn(env.write_all)) as c:
        assert c.execute('SELECT count(*) FROM "b"."t"').fetchone() == (1,)
    # A catalog role logs in with SCRAM, as before, and sees every workspace.
    with psycopg.connect(env.dsn(PASSWORD, user="postgres")) as c:
        assert c.execute('SELECT body FROM "b"."t"').fetchone() == ("in b",)


def test_bad_or_revoked_token_is_28p01(env: Env) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(env.dsn("tdb_not-a-token"))
    # A role name with a token as password is a SCRAM login, which the token cannot pass.
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(env.dsn(env.write_all, user="postgres"))
    token, record = env.store.create(org="o", role="read", workspaces=["a"])
    psycopg.connect(env.dsn(token)).close()
    env.store.revoke(record.id)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(env.dsn(token))


def test_token_is_refused_without_tls(env: Env) -> None:
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(env.dsn(env.write_all, sslmode="disable"))


# -- the sans-io core: what is asked for, and the exact SQLSTATEs ------------------------------


@pytest.fixture(scope="module")
def core_db(env: Env) -> tarndb.Database:
    roles.ensure_superuser(env.db, PASSWORD)
    return env.db


def _start(db: tarndb.Database, tls: bool, user: str = "token") -> tuple[ServerConnection, int]:
    conn = ServerConnection(db, ServerConfig(tls_available=True), is_tls=tls)
    out = m.split_backend(conn.receive_data(m.f_startup({"user": user,
                                                         "database": "postgres"})))
    assert out[-1][0] == b"R"
    return conn, struct.unpack("!i", out[-1][1][:4])[0]


def _error(msgs: list[tuple[bytes, bytes]]) -> dict[str, str]:
    for k, body in msgs:
        if k == b"E":
            return m.parse_error_fields(body)
    raise AssertionError(f"no error in {msgs!r}")


def test_core_asks_cleartext_only_over_tls(env: Env, core_db: tarndb.Database) -> None:
    conn, code = _start(core_db, tls=True)
    assert code == 3 and conn.state is State.AUTH_TOKEN  # AuthenticationCleartextPassword
    out = m.split_backend(conn.receive_data(m.f_password(env.read_a.encode() + b"\0")))
    assert out[0] == (b"R", struct.pack("!i", 0)) and out[-1] == (b"Z", b"I")
    assert conn.session.read_only and conn.session.allowed_workspaces == {"a"}
    assert conn.session.workspace == "a"
    conn.connection_lost()

    conn, code = _start(core_db, tls=True)
    e = _error(m.split_backend(conn.receive_data(m.f_password(b"wrong-token\0"))))
    assert (e["S"], e["C"]) == ("FATAL", "28P01") and conn.closed

    # No TLS: a SCRAM exchange (code 10), never a request for the token in the clear.
    conn, code = _start(core_db, tls=False)
    assert code == 10 and conn.state is State.AUTH_SASL_INITIAL
    # A role keeps SCRAM on TLS connections too.
    conn, code = _start(core_db, tls=True, user="postgres")
    assert code == 10


def test_core_token_login_can_be_turned_off(env: Env, core_db: tarndb.Database) -> None:
    conn = ServerConnection(core_db, ServerConfig(tls_available=True, token_auth=False),
                            is_tls=True)
    out = m.split_backend(conn.receive_data(m.f_startup({"user": "token"})))
    assert struct.unpack("!i", out[-1][1][:4])[0] == 10


def test_a_known_key_lookup_keeps_the_token_to_its_workspace(env: Env) -> None:
    """A key lookup whose text ran before is answered without parsing it again (issue 18,
    engine/lookup.py known_point): a token limited to workspace a still gets 42501 for
    ``b``'s table by the same text another session ran, and its unqualified name still
    resolves in its own workspace."""
    s = env.db.session()
    try:
        for ws in ("a", "b"):
            s.execute(f'CREATE TABLE "{ws}"."kp" (id BIGINT PRIMARY KEY, body TEXT)')
            s.execute(f"INSERT INTO \"{ws}\".\"kp\" VALUES (1, 'kp in {ws}')")
        other = 'SELECT body FROM "b"."kp" WHERE id = $1'
        for _ in range(3):  # the text is now a known key lookup
            assert s.execute(other, [1]).rows == [("kp in b",)]
    finally:
        s.close()
    with psycopg.connect(env.dsn(env.write_a), autocommit=True) as c:
        for _ in range(6):  # psycopg prepares the statement from its fifth run
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                c.execute('SELECT body FROM "b"."kp" WHERE id = %s', (1,))
            assert c.execute("SELECT body FROM kp WHERE id = %s", (1,)).fetchall() == \
                [("kp in a",)]
    with psycopg.connect(env.dsn(env.write_all), autocommit=True) as c:
        assert c.execute('SELECT body FROM "b"."kp" WHERE id = %s', (1,)).fetchall() == \
            [("kp in b",)]
