"""Bad input over real sockets: malformed and random messages, hang-ups at every point,
disconnects mid-query. The server must end only the offending connection."""

from __future__ import annotations

import random
import socket
import struct
import threading
import time
from pathlib import Path

import pytest

import tarndb
from tarndb.pgwire import messages as m
from tarndb.pgwire.scram import ScramClient
from tarndb.pgwire.server import ServerThread

from .conftest import PASSWORD, Server

psycopg = pytest.importorskip("psycopg")

HEAVY = "SELECT sum(hash(i)) FROM range(30000000000) t(i)"


class Raw:
    """A minimal plaintext protocol client built on the sans-io message helpers."""

    def __init__(self, server: Server, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection((server.host, server.port), timeout=timeout)
        self.server = server
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv_until(self, kinds: bytes) -> list[tuple[bytes, bytes]]:
        """Messages up to and including the first whose type is in ``kinds`` (or EOF)."""
        out: list[tuple[bytes, bytes]] = []
        while True:
            while len(self.buf) >= 5:
                (n,) = struct.unpack_from("!i", self.buf, 1)
                if len(self.buf) < n + 1:
                    break
                msg = (self.buf[:1], self.buf[5:n + 1])
                self.buf = self.buf[n + 1:]
                out.append(msg)
                if msg[0] in kinds:
                    return out
            data = self.sock.recv(65536)
            if not data:
                return out
            self.buf += data

    def login(self) -> None:
        self.send(m.f_startup({"user": "postgres", "database": "postgres"}))
        self.recv_until(b"R")
        cli = ScramClient("postgres", self.server.password)
        self.send(m.f_sasl_initial("SCRAM-SHA-256", cli.first()))
        cont = self.recv_until(b"R")[-1][1][4:]
        self.send(m.f_password(cli.final(cont)))
        got = self.recv_until(b"ZE")
        assert got[-1][0] == b"Z", got

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def assert_healthy(server: Server) -> None:
    assert server.alive()
    with psycopg.connect(server.dsn(), connect_timeout=10) as c:
        assert c.execute("SELECT 40 + 2").fetchone() == (42,)


def test_malformed_message_closes_only_that_connection(pg_server: Server) -> None:
    other = psycopg.connect(pg_server.dsn(), autocommit=True)
    r = Raw(pg_server)
    r.login()
    r.send(b"B\x00\x00\x00\x05\x00")  # Bind cut short
    got = r.recv_until(b"E")
    fields = m.parse_error_fields(got[-1][1])
    assert fields["S"] == "FATAL" and fields["C"] == "08P01"
    assert r.sock.recv(10) == b""  # the server hung up
    r.close()
    assert other.execute("SELECT 1").fetchone() == (1,)
    other.close()


def test_oversized_message_refused(pg_server: Server) -> None:
    r = Raw(pg_server)
    r.login()
    r.send(b"Q" + struct.pack("!i", 0x7FFFFFF0))
    got = r.recv_until(b"E")
    assert m.parse_error_fields(got[-1][1])["C"] == "08P01"
    r.close()
    assert_healthy(pg_server)


def test_bad_startup_packets(pg_server: Server) -> None:
    for data in (b"\x00\x00\x00\x04", b"\x00\x00\xff\xff" + b"x" * 100,
                 struct.pack("!ii", 8, 1234), m.f_startup({"database": "postgres"}),
                 b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"):
        r = Raw(pg_server)
        r.send(data)
        got = r.recv_until(b"E")
        assert got and got[-1][0] == b"E", data
        r.close()
    assert_healthy(pg_server)


def _session_bytes() -> bytes:
    return (m.f_query("SELECT 1; SELECT 'x'") + m.f_parse("s1", "SELECT $1::int8", [20])
            + m.f_bind("", "s1", [b"5"]) + m.f_describe("P", "") + m.f_execute("", 0)
            + m.f_sync() + m.f_query("BEGIN") + m.f_query("SELECT 2") + m.f_terminate())


def test_hang_up_at_every_point(pg_server: Server) -> None:
    startup = m.f_startup({"user": "postgres", "database": "postgres"})
    for i in range(len(startup)):
        r = Raw(pg_server)
        r.send(startup[:i])
        r.close()
    data = _session_bytes()
    for i in range(0, len(data), 3):
        r = Raw(pg_server)
        r.login()
        r.send(data[:i])
        r.close()
    assert_healthy(pg_server)


def test_fuzz_random_and_mutated_messages(pg_server: Server) -> None:
    rng = random.Random(20261123)
    valid = [m.f_query("SELECT 1"), m.f_parse("a", "SELECT $1", [23]), m.f_bind("", "a", [b"1"]),
             m.f_describe("S", "a"), m.f_execute("", 1), m.f_sync(), m.f_flush(),
             m.f_close("S", "a"), m.f_copy_data(b"1\n"), m.f_copy_done(),
             m.f_query("COPY (SELECT 1) TO STDOUT"), m.f_password(b"xx")]
    deadline = time.time() + 6
    rounds = 0
    while time.time() < deadline:
        r = Raw(pg_server, timeout=2.0)
        try:
            if rng.random() < 0.8:
                r.login()
            else:
                r.send(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64))))
            msgs = [bytearray(rng.choice(valid)) for _ in range(rng.randint(1, 8))]
            for msg in msgs:
                for _ in range(rng.randint(0, 3)):  # flip, drop or insert bytes
                    op = rng.random()
                    pos = rng.randrange(len(msg))
                    if op < 0.4:
                        msg[pos] = rng.getrandbits(8)
                    elif op < 0.7 and len(msg) > 1:
                        del msg[pos]
                    else:
                        msg.insert(pos, rng.getrandbits(8))
            if rng.random() < 0.2:
                msgs.append(bytearray(bytes([rng.getrandbits(8)]) + struct.pack(
                    "!i", rng.randint(-10, 1 << 31 - 1)) + b"junk"))
            r.send(b"".join(msgs) + m.f_sync())
            r.sock.settimeout(0.5)
            try:
                r.recv_until(b"Z")
            except (TimeoutError, OSError):
                pass
        except (ConnectionError, OSError, AssertionError):
            pass
        finally:
            r.close()
        rounds += 1
    assert rounds > 20
    assert_healthy(pg_server)


def test_disconnect_mid_query_releases_session(thread_server: tuple) -> None:
    server, srv, _db = thread_server
    r = Raw(server)
    r.login()
    assert srv.server.connection_count == 1
    r.send(m.f_query(HEAVY))
    time.sleep(0.5)
    r.close()
    deadline = time.time() + 10
    while srv.server.connection_count and time.time() < deadline:
        time.sleep(0.05)
    assert srv.server.connection_count == 0
    # the cancelled statement no longer occupies the engine: a new query answers quickly
    t0 = time.time()
    with psycopg.connect(server.dsn()) as c:
        assert c.execute("SELECT 1").fetchone() == (1,)
    assert time.time() - t0 < 5


def test_cancel_request_with_wrong_key_is_ignored(thread_server: tuple) -> None:
    server, srv, _db = thread_server
    with psycopg.connect(server.dsn(), autocommit=True) as c:
        pid = c.info.backend_pid
        result: dict[str, object] = {}

        def go() -> None:
            try:
                c.execute("SELECT count(*) FROM range(100000)").fetchone()
                result["ok"] = True
            except Exception as e:  # noqa: BLE001 - asserted below
                result["err"] = e

        s = socket.create_connection((server.host, server.port))
        s.sendall(m.f_cancel(pid, 12345))
        assert s.recv(10) == b""
        s.close()
        t = threading.Thread(target=go)
        t.start()
        t.join(10)
        assert result.get("ok") is True


def test_bytes_after_ssl_request_are_not_read_as_encrypted(pg_server: Server) -> None:
    """Plaintext sent behind an SSLRequest, before the handshake, would be taken for TLS
    traffic (CVE-2021-23214): the server answers 'S' and hangs up."""
    r = Raw(pg_server)
    try:
        r.send(m.f_ssl_request() + m.f_startup({"user": "postgres"}))
        assert r.sock.recv(1) == b"S"
        r.sock.settimeout(5)
        assert r.sock.recv(100) == b""
    finally:
        r.close()
    assert_healthy(pg_server)


def test_connections_over_the_limit_get_53300(thread_server: tuple) -> None:
    # Logged-in connections count against max_connections; sockets still logging in do not
    # (tests/security/test_limits.py: they cannot lock real users out).
    server, srv, _db = thread_server
    srv.server.max_connections = 2
    held = [psycopg.connect(server.dsn()), psycopg.connect(server.dsn())]
    try:
        with pytest.raises(psycopg.OperationalError, match="too many clients"):
            psycopg.connect(server.dsn(), connect_timeout=5)
    finally:
        for r in held:
            r.close()
    deadline = time.time() + 5
    while srv.server._clients and time.time() < deadline:
        time.sleep(0.01)
    with psycopg.connect(server.dsn()) as c:
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_stopping_the_server_ends_running_statements(tmp_path: Path) -> None:
    db = tarndb.open(str(tmp_path / "lake"))
    srv = ServerThread(db, port=0, password=PASSWORD, data_dir=tmp_path).start()
    server = Server("127.0.0.1", srv.port, PASSWORD, tmp_path)
    outcome: list[BaseException | None] = []
    started = threading.Event()

    def heavy() -> None:
        try:
            with psycopg.connect(server.dsn()) as c:
                started.set()
                c.execute(HEAVY)
            outcome.append(None)
        except BaseException as e:  # noqa: BLE001 - what the client saw is the result
            outcome.append(e)

    t = threading.Thread(target=heavy)
    t.start()
    assert started.wait(10)
    time.sleep(0.3)
    t0 = time.monotonic()
    srv.stop()
    assert time.monotonic() - t0 < 8
    t.join(10)
    assert not t.is_alive()
    assert outcome and isinstance(outcome[0], psycopg.Error)
    assert srv.server.connection_count == 0
    db.close()
