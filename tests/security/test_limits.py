"""Limits before login, as PostgreSQL has them: a client without credentials cannot make the
server buffer big messages, hold slots that lock real users out, linger past
authentication_timeout, guess passwords at full speed, or learn which roles exist."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from _security_support import (
    ALICE_PASSWORD,
    PASSWORD,
    Stack,
    error_fields,
    seed,
    start_stack,
    stop_stack,
)

from tarndb.pgwire import messages as m


def _startup(stack: Stack, user: str = "postgres") -> socket.socket:
    s = socket.create_connection(("127.0.0.1", stack.pg_port), timeout=30)
    s.sendall(m.f_startup({"user": user, "database": "postgres"}))
    return s


def _read_until_closed(s: socket.socket, timeout: float = 30) -> bytes:
    s.settimeout(timeout)
    out = b""
    try:
        while chunk := s.recv(65536):
            out += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    return out


def _errors(data: bytes) -> list[dict[str, str]]:
    out, pos = [], 0
    while pos + 5 <= len(data):
        kind = data[pos:pos + 1]
        (n,) = struct.unpack_from("!i", data, pos + 1)
        if kind == b"E":
            out.append(error_fields(data[pos + 5:pos + 1 + n]))
        pos += 1 + n
    return out


def test_unauthenticated_big_messages_are_refused_without_buffering(stack: Stack) -> None:
    """20 sockets without credentials each announce a 100 MB message and start sending it:
    each is refused at the length word (FATAL 08P01) and RSS stays within 50 MB."""
    with stack.pg() as c:  # warm up: the first sessions load what every session uses
        c.execute("SELECT 1")
    before = stack.rss_kb()
    socks = []
    for _ in range(20):
        s = _startup(stack)
        # the SASL password message, announced at 100 MB, followed by 1 MB of it
        s.sendall(b"p" + struct.pack("!i", 100 * 1024 * 1024 + 4))
        try:
            s.sendall(b"x" * (1 << 20))
        except (ConnectionResetError, BrokenPipeError):
            pass
        socks.append(s)
    answers = [_read_until_closed(s) for s in socks]
    for s in socks:
        s.close()
    grown_mb = (stack.rss_kb() - before) / 1024
    assert grown_mb < 50, f"RSS grew {grown_mb:.0f} MB"
    for a in answers:
        errs = _errors(a)
        assert errs and (errs[-1]["S"], errs[-1]["C"]) == ("FATAL", "08P01"), a[-200:]
    # a startup packet over 10,000 bytes is refused too
    s = socket.create_connection(("127.0.0.1", stack.pg_port), timeout=30)
    s.sendall(struct.pack("!ii", 10_001, 196608) + b"u" * 100)
    errs = _errors(_read_until_closed(s))
    s.close()
    assert errs[-1]["C"] == "08P01"
    with stack.pg() as c:
        assert c.execute("SELECT count(*) FROM ws2.t").fetchone() == (3,)


def test_idle_startup_sockets_do_not_lock_out_a_real_login(stack: Stack) -> None:
    idle = [_startup(stack) for _ in range(505)]
    try:
        t0 = time.monotonic()
        with stack.pg(user="alice", password=ALICE_PASSWORD) as c:
            assert c.execute("SELECT current_user").fetchone() == ("alice",)
        with stack.pg() as c:
            assert c.execute("SELECT count(*) FROM ws1.t").fetchone() == (2,)
        assert time.monotonic() - t0 < 20
    finally:
        for s in idle:
            s.close()


def _threads(stack: Stack) -> int:
    for line in Path(f"/proc/{stack.proc.pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise RuntimeError("no Threads")


def test_a_flood_of_idle_sockets_holds_a_bounded_number_of_threads(stack: Stack) -> None:
    """Past 4 x max_pending_logins (128) sockets still logging in, each new one hangs up the
    oldest: 700 idle sockets hold at most 512 connection threads, and a login still works."""
    base = _threads(stack)
    idle = [_startup(stack) for _ in range(700)]
    try:
        deadline = time.monotonic() + 20
        while _threads(stack) - base < 500 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _threads(stack) - base <= 512 + 8
        # the first ones were hung up (the server asked for a password, then closed)
        first = _read_until_closed(idle[0], timeout=10)
        assert first[:1] == b"R"
        with stack.pg() as c:
            assert c.execute("SELECT 1").fetchone() == (1,)
    finally:
        for s in idle:
            s.close()


def test_unknown_users_get_a_stable_salt(stack: Stack) -> None:
    def salt(user: str) -> str:
        s = _startup(stack, user)
        try:
            kind = s.recv(1)
            (n,) = struct.unpack("!i", s.recv(4))
            body = s.recv(n - 4)
            assert kind == b"R" and struct.unpack_from("!i", body)[0] == 10, body  # SASL
            first = b"n,,n=,r=clientnonce0123456789"
            s.sendall(b"p" + struct.pack("!i", 4 + len(b"SCRAM-SHA-256\0") + 4 + len(first))
                      + b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first)
            kind = s.recv(1)
            (n,) = struct.unpack("!i", s.recv(4))
            body = s.recv(n - 4)
            assert kind == b"R" and struct.unpack_from("!i", body)[0] == 11, body
            attrs = dict(a.split("=", 1) for a in body[4:].decode().split(","))
            assert attrs["i"] == "4096"
            return attrs["s"]
        finally:
            s.close()

    assert salt("nobody_here") == salt("nobody_here")
    assert salt("nobody_here") != salt("someone_else")
    assert salt("postgres") == salt("postgres")  # a real role: its verifier's salt


# -- a server of its own, with small limits --------------------------------------------------


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base: Path = tmp_path_factory.mktemp("limits")
    s = start_stack(base / "lake", {"TARNDB_AUTHENTICATION_TIMEOUT": "2",
                                    "TARNDB_MAX_CONNECTIONS": "4",
                                    "TARNDB_SUPERUSER_RESERVED_CONNECTIONS": "2",
                                    "TARNDB_AUTH_FAILURE_DELAY": "0.2"})
    try:
        seed(s)
        yield s
    finally:
        stop_stack(s)


def test_authentication_timeout_is_a_total(small: Stack) -> None:
    """A client trickling its startup packet a byte at a time is cut off after
    authentication_timeout in all, not per read."""
    s = socket.create_connection(("127.0.0.1", small.pg_port), timeout=30)
    packet = m.f_startup({"user": "postgres", "database": "postgres", "x" * 200: "y"})
    t0 = time.monotonic()
    closed_at = None
    for b in packet:
        try:
            s.sendall(bytes([b]))
        except (BrokenPipeError, ConnectionResetError):
            closed_at = time.monotonic() - t0
            break
        s.settimeout(0.4)
        try:
            if s.recv(1) == b"":
                closed_at = time.monotonic() - t0
                break
        except TimeoutError:
            pass
        except ConnectionResetError:  # closed with bytes unread: the kernel sends a reset
            closed_at = time.monotonic() - t0
            break
        if time.monotonic() - t0 > 10:
            break
    s.close()
    assert closed_at is not None and 1.5 < closed_at < 4, closed_at


def test_superuser_reserved_connections(small: Stack) -> None:
    held = [small.pg(user="alice", password=ALICE_PASSWORD) for _ in range(2)]
    try:
        with pytest.raises(psycopg.OperationalError,
                           match="remaining connection slots are reserved for roles with the "
                                 "SUPERUSER attribute"):
            small.pg(user="alice", password=ALICE_PASSWORD).close()
        with pytest.raises(psycopg.OperationalError, match="remaining connection slots"):
            small.pg_token("write").close()
        with small.pg() as c1, small.pg() as c2:
            assert c1.execute("SELECT 1").fetchone() == (1,)
            assert c2.execute("SELECT 2").fetchone() == (2,)
            with pytest.raises(psycopg.OperationalError, match="too many clients already"):
                small.pg().close()
    finally:
        for c in held:
            c.close()


def test_failed_logins_are_throttled(small: Stack) -> None:
    times = []
    for _ in range(4):
        t0 = time.monotonic()
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            small.pg(user="alice", password="wrong").close()
        times.append(time.monotonic() - t0)
    # 0.2, 0.4, 0.8, 1.6 s: each failure from this address doubles the wait
    assert times[0] >= 0.2 and times[3] >= 1.6, times
    assert times[3] > times[0] * 4, times
    # the right password still works (and is not delayed)
    t0 = time.monotonic()
    with small.pg(user="alice", password=ALICE_PASSWORD) as c:
        assert c.execute("SELECT 1").fetchone() == (1,)
    assert time.monotonic() - t0 < 1.5
    with small.pg(password=PASSWORD) as c:
        assert c.execute("SELECT 1").fetchone() == (1,)
