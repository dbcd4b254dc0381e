"""The sans-io connection driven with bytes over a real engine (no sockets)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

import tarndb
from tarndb.pgwire import messages as m
from tarndb.pgwire import roles
from tarndb.pgwire.protocol import ServerConfig, ServerConnection, State, parse_options
from tarndb.pgwire.scram import ScramClient

PW = "pw"


@pytest.fixture(scope="module")
def pdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tarndb.Database]:
    db = tarndb.open(str(tmp_path_factory.mktemp("proto") / "lake"))
    roles.ensure_superuser(db, PW)
    s = db.session()
    s.execute("CREATE TABLE items (id BIGSERIAL PRIMARY KEY, name TEXT, emb FLOAT4[])")
    s.execute("INSERT INTO items (name, emb) VALUES ('a', ARRAY[1,2]::float4[]), "
              "('b', ARRAY[3,4]::float4[]), ('c', NULL)")
    s.close()
    yield db
    db.close()


Msgs = list[tuple[bytes, bytes]]


def kinds(msgs: Msgs) -> bytes:
    return b"".join(k for k, _ in msgs)


def connect(db: tarndb.Database, password: str = PW, user: str = "postgres",
            **params: str) -> tuple[ServerConnection, Msgs]:
    conn = ServerConnection(db, ServerConfig(), pid=42, secret=7)
    params.setdefault("database", "postgres")
    out = m.split_backend(conn.receive_data(m.f_startup({"user": user, **params})))
    assert out[-1][0] == b"R" and struct.unpack("!i", out[-1][1][:4])[0] == 10
    cli = ScramClient(user, password)
    out = m.split_backend(conn.receive_data(m.f_sasl_initial("SCRAM-SHA-256", cli.first())))
    assert out[0][0] == b"R" and struct.unpack("!i", out[0][1][:4])[0] == 11
    out = m.split_backend(conn.receive_data(m.f_password(cli.final(out[0][1][4:]))))
    return conn, out


def send(conn: ServerConnection, *frames: bytes) -> Msgs:
    return m.split_backend(conn.receive_data(b"".join(frames)))


def error(msgs: Msgs) -> dict[str, str]:
    for k, body in msgs:
        if k == b"E":
            return m.parse_error_fields(body)
    raise AssertionError(f"no error in {kinds(msgs)!r}")


def test_startup_and_auth(pdb: tarndb.Database) -> None:
    conn, out = connect(pdb, application_name="t1")
    assert kinds(out).startswith(b"RR")  # SASLFinal, AuthenticationOk
    assert struct.unpack("!i", out[1][1])[0] == 0
    status = {k.split(b"\0")[0].decode(): k.split(b"\0")[1].decode()
              for t, k in out if t == b"S"}
    assert status["server_version"].startswith("15")  # what Debian's pg_dump 15 accepts
    assert status["client_encoding"] == "UTF8"
    assert status["application_name"] == "t1"
    assert (b"K", struct.pack("!ii", 42, 7)) in out
    assert out[-1] == (b"Z", b"I")
    assert conn.state is State.READY


def test_wrong_password_is_28p01_and_closes(pdb: tarndb.Database) -> None:
    conn, out = connect(pdb, password="nope")
    e = error(out)
    assert (e["S"], e["C"]) == ("FATAL", "28P01")
    assert conn.closed


def test_unknown_role_is_28p01(pdb: tarndb.Database) -> None:
    conn, out = connect(pdb, user="ghost")
    assert error(out)["C"] == "28P01"


def test_unknown_database_is_3d000(pdb: tarndb.Database) -> None:
    conn, out = connect(pdb, database="nodb")
    assert error(out)["C"] == "3D000"
    assert conn.closed


def test_ssl_request_without_tls_says_n(pdb: tarndb.Database) -> None:
    conn = ServerConnection(pdb, ServerConfig(tls_available=False))
    assert conn.receive_data(m.f_ssl_request()) == b"N"
    conn = ServerConnection(pdb, ServerConfig(tls_available=True))
    assert conn.receive_data(m.f_ssl_request()) == b"S"
    assert conn.wants_tls
    conn.tls_started()
    assert conn.is_tls


def test_cancel_request_packet(pdb: tarndb.Database) -> None:
    conn = ServerConnection(pdb)
    assert conn.receive_data(m.f_cancel(5, 6)) == b""
    assert conn.cancel_request == (5, 6)
    assert conn.closed


def test_simple_query_several_statements(pdb: tarndb.Database) -> None:
    conn, _ = connect(pdb)
    out = send(conn, m.f_query("SELECT 1 AS one; SELECT name FROM items ORDER BY id"))
    assert kinds(out) == b"TDCTDDDCZ"
    assert out[1] == (b"D", b"\x00\x01\x00\x00\x00\x011")
    assert out[2] == (b"C", b"SELECT 1\x00")
    assert out[-1] == (b"Z", b"I")


def test_empty_query(pdb: tarndb.Database) -> None:
    conn, _ = connect(pdb)
    assert kinds(send(conn, m.f_query("  ;  "))) == b"IZ"
    # Comments alone are empty too (pg_restore sends a dump's header comment by itself).
    for sql in ("--\n-- PostgreSQL database dump\n--\n\n", "/* a */ ; -- b", "-- x"):
        assert kinds(send(conn, m.f_query(sql))) == b"IZ", sql
    out = send(conn, m.f_query("/* a */ SELECT 1 /* b */ -- c"))
    assert kinds(out) == b"TDCZ"


def test_error_with_sqlstate_and_position(pdb: tarndb.Database) -> None:
    conn, _ = connect(pdb)
    out = send(conn, m.f_query("SELECT * FROM nope"))
    e = error(out)
    assert e["C"] == "42P01"
    assert e["P"] == "15"
    assert out[-1] == (b"Z", b"I")


def test_transaction_states(pdb: tarndb.Database) -> None:
    conn, _ = connect(pdb)
    assert send(conn, m.f_query("BEGIN"))[-1] == (b"Z", b"T")
    assert send(conn, m.f_query("SELECT 1/0 + nope"))[-1] == (b"Z", b"E")
    out = send(conn, m.f_query("SELECT 1"))
    assert error(out)["C"] == "25P02"
    assert send(conn, m.f_query("ROLLBACK"))[-1] == (b"Z", b"I")


def test_extended_query_named_statement_and_row_limit(pdb: tarndb.Database) -> None:
    conn, _ = connect(pdb)
    out = send(conn, m.f_parse("st", "SELECT id, name FROM items WHERE id >= $1 ORDER BY id", [20]),
               m.f_describe("S", "st"), m.f_sync())
    assert kinds(out) == b"1tTZ"
    assert out[1][1] == b"\x00\x01\x00\x00\x00\x14"
    out = send(conn, m.f_bind("p1", "st", [b"1"], [0], [1, 0]), m.f_describe("P", "p1"),
               m.f_execute("p1", 2), m.f_execute("p1", 2), m.f_sync())
    assert kinds(out) == b"2TDDsDCZ"
    # id in binary (int8), name in text
    assert out[2][1] == b"\x00\x02\x00\x00\x00\x08" + struct.pack("!q", 1) + b"\x00\x00\x00\x01a"
    assert out[6] == (b"C", b"SELECT 3\x00")
    # the named statement survives; re-creating it is an error until it is closed
    out = send(conn, m.f_parse("st", "SELECT 1"), m.f_sync())
    assert error(out)["C"] == "42P05"
    out = send(conn, m.f_close("S", "st"), m.f_parse("st", "SELECT 2"), m.f_sync())
    assert kinds(out) == b"31Z"


def test_extended_error_skips_until_sync(pdb: tarndb.Database) -> None:
    conn, _ = connect(pdb)
    out = send(conn, m.f_parse("", "SELECT * FROM nope"), m.f_bind("", "", []),
               m.f_execute(""), m.f_sync(), m.f_parse("", "SELECT 1"), m.f_bind("", "", []),
               m.f_execute(""), m.f_sync())
    # (Postgres reports the error at Parse; tarndb plans lazily and reports it at Execute.)
    assert kinds(out).endswith(b"EZ12DCZ")
    assert kinds(out).count(b"E") == 1
    assert error(out)["C"] == "42P01"


def test_unknown_portal_and_statement(pdb: tarndb.Database) -> None:
    conn, _ = connect(pdb)
    assert error(send(conn, m.f_bind("", "missing", []), m.f_sync()))["C"] == "26000"
    assert error(send(conn, m.f_execute("missing"), m.f_sync()))["C"] == "34000"


def test_binary_parameters_and_results(pdb: tarndb.Database) -> None:
    conn, _ = connect(pdb)
    vec = struct.pack("!iiiii", 1, 0, 700, 2, 1) + struct.pack("!if", 4, 0.5) + \
        struct.pack("!if", 4, 0.25)
    out = send(conn, m.f_parse("", "SELECT $1::float4[] AS v, $2::int8 + 1 AS n", [1021, 20]),
               m.f_bind("", "", [vec, struct.pack("!q", 41)], [1], [1]), m.f_describe("P", ""),
               m.f_execute(""), m.f_sync())
    assert kinds(out) == b"12TDCZ"
    row = out[3][1]
    ncols, l1 = struct.unpack_from("!hi", row)
    assert ncols == 2
    assert row[6:6 + l1] == vec
    assert row[6 + l1:] == struct.pack("!iq", 8, 42)


def test_copy_in_text_and_out_csv(pdb: tarndb.Database) -> None:
    conn, _ = connect(pdb)
    send(conn, m.f_query("CREATE TABLE cp (id INT, t TEXT, v FLOAT4[])"))
    out = send(conn, m.f_query("COPY cp FROM STDIN"))
    assert out == [(b"G", b"\x00\x00\x03\x00\x00\x00\x00\x00\x00")]
    assert conn.state is State.COPY_IN
    out = send(conn, m.f_copy_data(b"1\tx\\ty\t{1,2}\n2\t\\N\t"), m.f_copy_data(b"\\N\n"),
               m.f_copy_done())
    assert out == [(b"C", b"COPY 2\x00"), (b"Z", b"I")]
    out = send(conn, m.f_query("COPY (SELECT id, t, v FROM cp ORDER BY id) TO STDOUT "
                                "WITH (FORMAT csv, HEADER true)"))
    assert kinds(out) == b"HdddcCZ"
    assert [body for k, body in out if k == b"d"] == [b"id,t,v\n", b'1,x\ty,"{1,2}"\n', b"2,,\n"]


def test_copy_into_a_table_created_in_the_same_transaction(pdb: tarndb.Database) -> None:
    """pg_restore --single-transaction creates each table, then COPYs into it."""
    conn, _ = connect(pdb)
    send(conn, m.f_query("BEGIN; CREATE SCHEMA cpt; CREATE TABLE cpt.t (id INT, t TEXT)"))
    out = send(conn, m.f_query("COPY cpt.t (id, t) FROM stdin"), m.f_copy_data(b"1\ta\n"),
               m.f_copy_done())
    assert kinds(out) == b"GCZ" and out[1:] == [(b"C", b"COPY 1\x00"), (b"Z", b"T")]
    out = send(conn, m.f_query("COPY cpt.nope FROM stdin"))
    assert error(out)["C"] == "42P01"
    send(conn, m.f_query("ROLLBACK"))
    other, _ = connect(pdb)
    assert error(send(other, m.f_query("SELECT * FROM cpt.t")))["C"] == "42P01"
    send(conn, m.f_query("BEGIN; CREATE TABLE cpt2 (id INT)"))
    send(conn, m.f_query("COPY cpt2 FROM stdin"), m.f_copy_data(b"7\n"), m.f_copy_done())
    send(conn, m.f_query("COMMIT"))
    out = send(other, m.f_query("SELECT id FROM cpt2"))
    assert [b for k, b in out if k == b"D"] == [b"\x00\x01\x00\x00\x00\x017"]


def test_copy_fail_rolls_back_nothing_written(pdb: tarndb.Database) -> None:
    conn, _ = connect(pdb)
    send(conn, m.f_query("CREATE TABLE cf (id INT)"))
    send(conn, m.f_query("COPY cf FROM STDIN"), m.f_copy_data(b"1\n"))
    out = send(conn, m.f_copy_fail("client gave up"))
    assert error(out)["C"] == "57014"
    out = send(conn, m.f_query("COPY cf FROM STDIN"), m.f_copy_data(b"1\nnot-a-number\n"),
               m.f_copy_done())
    assert error(out)["C"] == "22P02"
    out = send(conn, m.f_query("SELECT count(*) FROM cf"))
    assert out[1] == (b"D", b"\x00\x01\x00\x00\x00\x010")


def test_copy_binary_in(pdb: tarndb.Database) -> None:
    conn, _ = connect(pdb)
    send(conn, m.f_query("CREATE TABLE cb (id INT8, v FLOAT4[])"))
    vec = struct.pack("!iiiii", 1, 0, 700, 2, 1) + struct.pack("!ifif", 4, 1.0, 4, 2.0)
    data = (b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
            + struct.pack("!hiq", 2, 8, 7) + struct.pack("!i", len(vec)) + vec
            + struct.pack("!hiqi", 2, 8, 8, -1) + b"\xff\xff")
    out = send(conn, m.f_query("COPY cb FROM STDIN (FORMAT binary)"), m.f_copy_data(data),
               m.f_copy_done())
    assert out[-2:] == [(b"C", b"COPY 2\x00"), (b"Z", b"I")]
    out = send(conn, m.f_query("SELECT id, v FROM cb ORDER BY id"))
    assert [b for k, b in out if k == b"D"] == [
        b"\x00\x02\x00\x00\x00\x017\x00\x00\x00\x05{1,2}",
        b"\x00\x02\x00\x00\x00\x018\xff\xff\xff\xff"]


def test_role_statements(pdb: tarndb.Database) -> None:
    conn, _ = connect(pdb)
    out = send(conn, m.f_query("CREATE USER alice WITH PASSWORD 'wonder'"))
    assert out[0] == (b"C", b"CREATE ROLE\x00")
    alice, out = connect(pdb, user="alice", password="wonder")
    assert out[-1] == (b"Z", b"I")
    # a non-superuser may change its own password but not create roles
    out = send(alice, m.f_query("ALTER USER alice PASSWORD 'land'"))
    assert out[0] == (b"C", b"ALTER ROLE\x00")
    assert error(send(alice, m.f_query("CREATE ROLE bob")))["C"] == "42501"
    _, out = connect(pdb, user="alice", password="wonder")
    assert error(out)["C"] == "28P01"
    assert send(conn, m.f_query("DROP USER alice"))[0] == (b"C", b"DROP ROLE\x00")
    assert error(send(conn, m.f_query("DROP ROLE alice")))["C"] == "42704"


def test_malformed_message_is_fatal_08p01(pdb: tarndb.Database) -> None:
    conn, _ = connect(pdb)
    out = m.split_backend(conn.receive_data(b"B\x00\x00\x00\x05\x00"))
    e = error(out)
    assert (e["S"], e["C"]) == ("FATAL", "08P01")
    assert conn.closed
    assert conn.receive_data(m.f_query("SELECT 1")) == b""


def test_terminate_closes(pdb: tarndb.Database) -> None:
    conn, _ = connect(pdb)
    assert conn.receive_data(m.f_terminate()) == b""
    assert conn.closed


def test_parse_options() -> None:
    assert parse_options("-c search_path=ws -c application_name=x\\ y --DateStyle=ISO") == [
        ("search_path", "ws"), ("application_name", "x y"), ("DateStyle", "ISO")]


def test_search_path_option_selects_workspace(pdb: tarndb.Database) -> None:
    s = pdb.session()
    s.execute("CREATE SCHEMA IF NOT EXISTS wsx")
    s.execute("CREATE TABLE wsx.only_here (x INT)")
    s.close()
    conn, _ = connect(pdb, options="-c search_path=wsx")
    out = send(conn, m.f_query("SELECT count(*) FROM only_here"))
    assert kinds(out) == b"TDCZ"


def test_superuser_password_generated_once(tmp_path: Path) -> None:
    db = tarndb.open(str(tmp_path / "lake"))
    try:
        pw = roles.ensure_superuser(db)
        assert pw and len(pw) >= 16
        assert roles.ensure_superuser(db) is None
        conn, out = connect(db, password=pw)
        assert out[-1] == (b"Z", b"I")
        # TARNDB_PASSWORD given later replaces it
        assert roles.ensure_superuser(db, "new") is None
        _, out = connect(db, password="new")
        assert out[-1] == (b"Z", b"I")
    finally:
        db.close()


def test_gssenc_declined_and_protocol_negotiation(pdb: tarndb.Database) -> None:
    conn = ServerConnection(pdb)
    assert conn.receive_data(struct.pack("!ii", 8, m.GSSENC_REQUEST)) == b"N"
    out = m.split_backend(conn.receive_data(m.f_startup(
        {"user": "postgres", "database": "postgres", "_pq_.compression": "on"},
        version=(3 << 16) | 2)))
    assert out[0] == (b"v", struct.pack("!ii", 0, 1) + b"_pq_.compression\x00")
    assert out[1][0] == b"R"


def test_prepared_key_lookup_answers_byte_for_byte(pdb: tarndb.Database) -> None:
    """A prepared key lookup executed again and again, as psycopg sends it (Bind, Describe
    of the unnamed portal, Execute, Sync in one read): every execution gets the full answer
    in bytes (the kept Describe/Execute messages, the kept shape and the one-row DataRow),
    a missing key no DataRow, and the text and binary formats of each column."""
    conn, _ = connect(pdb)
    out = send(conn, m.f_parse("lk", "SELECT id, name FROM items WHERE id = $1", [20]),
               m.f_sync())
    assert kinds(out) == b"1Z"
    desc_text = m.b_row_description([m.FieldDesc("id", 20, 8), m.FieldDesc("name", 25)])
    desc_bin = m.b_row_description([m.FieldDesc("id", 20, 8, format=1),
                                    m.FieldDesc("name", 25, format=1)])
    for i in range(3):
        for key, name in ((1, b"a"), (2, b"b"), (99, None)):
            for fmt, desc in ((0, desc_text), (1, desc_bin)):
                raw = conn.receive_data(
                    m.f_bind("", "lk", [struct.pack("!q", key)], [1], [fmt]) +
                    m.f_describe("P", "") + m.f_execute("", 0) + m.f_sync())
                row = b""
                if name is not None:
                    cols: list[bytes | None] = [
                        struct.pack("!q", key) if fmt else str(key).encode(), name]
                    row = m.b_data_row(cols)
                tag = b"SELECT 1" if name is not None else b"SELECT 0"
                assert raw == (b"2\x00\x00\x00\x04" + desc + row +
                               m.b_command_complete(tag.decode()) + m.b_ready_for_query("I")), \
                    (i, key, fmt)


def test_parameter_status_once_per_change(pdb: tarndb.Database) -> None:
    """A reported setting's change is sent once, by the statement that made it; the
    statements after it send none until it changes again (the settings are compared with
    what the last statement left)."""
    conn, _ = connect(pdb)
    out = send(conn, m.f_query("SET application_name = 'one'"))
    assert (b"S", b"application_name\x00one\x00") in out
    for _ in range(2):
        assert kinds(send(conn, m.f_query("SELECT 1"))) == b"TDCZ"
    out = send(conn, m.f_query("SET application_name = 'two'"))
    assert [k for k, _ in out].count(b"S") == 1
    assert (b"S", b"application_name\x00two\x00") in out
    assert kinds(send(conn, m.f_query("SET application_name = 'two'"))) == b"CZ"
    out = send(conn, m.f_query("SET TimeZone = 'Europe/Paris'"))
    assert (b"S", b"TimeZone\x00Europe/Paris\x00") in out
    assert kinds(send(conn, m.f_query("SELECT 1"))) == b"TDCZ"
