"""The Postgres server: sockets and threads around the sans-io core in :mod:`.protocol`.

One thread per connection, like Postgres' process per connection: it reads the socket, feeds
the bytes to that connection's :class:`~.protocol.ServerConnection` and writes the answer
back, with blocking calls that release the GIL while they wait. A statement is one function
call on the thread that read it, with no hand-off between an event loop and a worker pool
(two thread switches, a fifth of a ``SELECT 1``), and TLS is the C ``ssl`` module's socket.

A client that hangs up mid-statement has it cancelled (:class:`~.hangup.HangupWatcher`).

Threads run Python one at a time, but a statement spends much of its time in DuckDB, Lance
and the kernel with the GIL released, so sessions do overlap. Queueing statements for turns
on the GIL (tried: one at a time, first come first served) made no measurable difference to
latency under 50 paced clients and cost a fifth of the throughput flat out, so the threads
simply share the GIL.

``serve_pg(db, host, port)`` is what ``tarndb serve`` awaits; :class:`ServerThread` runs the
same server in the background (tests, notebooks).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import logging
import os
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import metrics
from . import messages as m
from . import roles
from .hangup import HangupWatcher
from .protocol import ServerConfig, ServerConnection, State

log = logging.getLogger("tarndb.pgwire")

# What one read asks the kernel for (a TLS read returns one 16 KB record at most anyway).
READ_CHUNK = 256 * 1024


def _read(sock: socket.socket, view: memoryview) -> bytes:
    """One read into the connection's buffer ``view``, copied out (b"" at EOF). Not
    ``sock.recv(READ_CHUNK)``: that allocates READ_CHUNK bytes per read, and an allocation
    that size is mapped and unmapped by the C library each time (~10 us a read, against
    ~1 us for this: a tenth of a key lookup's server time)."""
    n = sock.recv_into(view)
    return view[:n].tobytes()
# During COPY FROM STDIN, bytes already received are handed to the core in pieces this big.
COPY_GATHER = 1024 * 1024
#: A client has this long, in all, to finish startup and authentication (PostgreSQL's
#: authentication_timeout); then it is disconnected.
STARTUP_TIMEOUT_S = 60.0
#: Logged-in connections served at once; the next one gets SQLSTATE 53300, as from Postgres.
DEFAULT_MAX_CONNECTIONS = 500
#: Of those, the last few are kept for superusers (PostgreSQL's
#: superuser_reserved_connections).
DEFAULT_SUPERUSER_RESERVED = 3
#: Connections that have not finished logging in, at most; when a new one arrives past this,
#: the oldest of them is hung up, so idle sockets can never lock real users out. One still
#: within PENDING_GRACE_S of its start is spared (a burst of real clients logging in at once
#: may go past the limit), up to PENDING_HARD_FACTOR times the limit.
DEFAULT_MAX_PENDING_LOGINS = 128
PENDING_GRACE_S = 2.0
PENDING_HARD_FACTOR = 4
#: A failed login is answered after this delay, doubled for each further failure from the
#: same address within FAILURE_WINDOW_S (at most MAX_FAILURE_DELAY_S): password guessing slows
#: down, a mistyped password costs a moment.
DEFAULT_AUTH_FAILURE_DELAY_S = 0.5
MAX_FAILURE_DELAY_S = 10.0
FAILURE_WINDOW_S = 300.0
#: Largest single message a client may send (a 40k-float literal is ~400 KB).
DEFAULT_MAX_MESSAGE = 256 * 1024 * 1024


def ensure_certificate(directory: str | os.PathLike[str]) -> tuple[str, str]:
    """A self-signed certificate and key under ``directory`` (made on first use)."""
    d = Path(directory)
    cert, key = d / "server.crt", d / "server.key"
    if cert.exists() and key.exists():
        return str(cert), str(key)
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    d.mkdir(parents=True, exist_ok=True)
    pkey = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tarndb")])
    now = dt.datetime.now(dt.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(pkey.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("::1")),
        ]), critical=False)
        .sign(pkey, hashes.SHA256())
    )
    tmp_key = key.with_suffix(".key.tmp")
    # The key is written 0600 before it holds anything: no window where others can read it.
    fd = os.open(tmp_key, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pkey.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))
    tmp_cert = cert.with_suffix(".crt.tmp")
    tmp_cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    os.replace(tmp_key, key)
    os.replace(tmp_cert, cert)
    return str(cert), str(key)


def make_ssl_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


class PgServer:
    """The Postgres protocol server over one Database.

    ``listen()`` / ``shutdown()`` run it from plain threads; ``start()`` / ``serve_forever()``
    / ``stop()`` are the same for an asyncio caller (``tarndb serve`` runs it beside the HTTP
    API's event loop).
    """

    def __init__(self, db: Any, host: str = "127.0.0.1", port: int = 5433, *,
                 tls_cert: str | None = None, tls_key: str | None = None,
                 password: str | None = None, data_dir: str | os.PathLike[str] | None = None,
                 tls: bool = True, require_tls: bool = False,
                 require_tls_roles: str | list[str] | None = None,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 max_message: int = DEFAULT_MAX_MESSAGE,
                 authentication_timeout: float = STARTUP_TIMEOUT_S,
                 superuser_reserved_connections: int = DEFAULT_SUPERUSER_RESERVED,
                 max_pending_logins: int = DEFAULT_MAX_PENDING_LOGINS,
                 auth_failure_delay: float = DEFAULT_AUTH_FAILURE_DELAY_S) -> None:
        self.db = db
        self.host = host
        self.port = port
        self.password = password
        self.max_connections = max_connections
        self.authentication_timeout = authentication_timeout
        self.superuser_reserved_connections = superuser_reserved_connections
        self.max_pending_logins = max(1, max_pending_logins)
        self.auth_failure_delay = auth_failure_delay
        #: Recent failed logins by client address: (count, time of the last).
        self._failures: dict[str, tuple[int, float]] = {}
        if require_tls and not tls:
            raise ValueError("require_tls needs TLS (a certificate)")
        self.ssl_context: ssl.SSLContext | None = None
        if tls:
            if (tls_cert is None) != (tls_key is None):
                raise ValueError("give both tls_cert and tls_key, or neither")
            if tls_cert is None or tls_key is None:
                base = Path(data_dir) if data_dir is not None else _default_data_dir(db)
                tls_cert, tls_key = ensure_certificate(base / "tls")
            self.ssl_context = make_ssl_context(tls_cert, tls_key)
        self.config = ServerConfig(tls_available=self.ssl_context is not None,
                                   require_tls=require_tls, max_message=max_message,
                                   tls_roles=_role_set(require_tls_roles),
                                   admit=self._admit)
        self._hangups: HangupWatcher | None = None
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._lock = threading.Lock()
        #: Logged-in connections by backend pid (what CancelRequest and the count look at).
        self._conns: dict[int, ServerConnection] = {}
        #: Every client socket being served, by its thread (shutdown hangs them all up).
        self._clients: dict[threading.Thread, socket.socket] = {}
        #: Sockets still logging in, oldest first (dicts keep insertion order).
        self._pending: dict[threading.Thread, tuple[socket.socket, float]] = {}
        self._stopping = threading.Event()
        #: The password generated at first start (printed once by serve_pg), else None.
        self.generated_password: str | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def listen(self) -> None:
        """Bind, listen and accept on a background thread; returns at once."""
        # Role statements run through the engine's statement hooks, for every front end.
        roles.install(self.db)
        self.generated_password = roles.ensure_superuser(self.db, self.password)
        listener = _listen_socket(self.host, self.port)
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._hangups = HangupWatcher()
        self._acceptor = threading.Thread(target=self._accept_loop, name="tarndb-pg-accept",
                                          daemon=True)
        self._acceptor.start()
        log.info("tarndb Postgres protocol listening on %s:%s", self.host, self.port)

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop accepting, hang up every client (cancelling what runs), wait for threads."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            self._listener.close()
        if self._acceptor is not None:
            self._acceptor.join(timeout)
        with self._lock:
            conns = list(self._conns.values())
            clients = dict(self._clients)
        for conn in conns:
            _cancel_quietly(conn)
        for sock in clients.values():
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for t in clients:
            t.join(max(0.0, deadline - time.monotonic()))
        if self._hangups is not None:
            self._hangups.close()

    async def start(self) -> None:
        await asyncio.to_thread(self.listen)

    async def serve_forever(self) -> None:
        """Serve until cancelled, then shut down."""
        if self._listener is None:
            await self.start()
        try:
            await asyncio.get_running_loop().create_future()  # only cancellation ends it
        finally:
            await asyncio.shield(asyncio.to_thread(self.shutdown))

    async def stop(self) -> None:
        await asyncio.to_thread(self.shutdown)

    @property
    def connection_count(self) -> int:
        return len(self._conns)

    # -- accepting -----------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError as e:
                if self._stopping.is_set():
                    return
                log.warning("accept failed: %s", e)  # out of file descriptors, most likely
                time.sleep(0.05)
                continue
            t = threading.Thread(target=self._serve_client, args=(sock,),
                                 name="tarndb-pg-conn", daemon=True)
            evict: socket.socket | None = None
            now = time.monotonic()
            with self._lock:
                if len(self._pending) >= self.max_pending_logins:
                    # Hang up the oldest connection still logging in: a flood of idle
                    # sockets then holds a bounded number of threads, and a real client
                    # (the newest) gets its turn.
                    oldest = next(iter(self._pending))
                    old_sock, started = self._pending[oldest]
                    if now - started > PENDING_GRACE_S or \
                            len(self._pending) >= self.max_pending_logins * PENDING_HARD_FACTOR:
                        del self._pending[oldest]
                        evict = old_sock
                self._clients[t] = sock
                self._pending[t] = (sock, now)
            if evict is not None:
                with contextlib.suppress(OSError):
                    evict.shutdown(socket.SHUT_RDWR)
            t.start()

    def _new_key(self) -> tuple[int, int]:
        with self._lock:
            while True:
                pid = secrets.randbelow(2**31 - 2) + 1
                if pid not in self._conns:
                    return pid, secrets.randbelow(2**31)

    # -- one client ----------------------------------------------------------------------------

    def _admit(self, conn: ServerConnection, superuser: bool) -> tuple[str, str] | None:
        """Called by the protocol core once a client has authenticated, before its session
        starts: counts it in, or says why not (PostgreSQL's wording)."""
        with self._lock:
            n = len(self._conns)
            if n >= self.max_connections:
                return ("53300", "sorry, too many clients already")
            reserved = min(self.superuser_reserved_connections, self.max_connections - 1)
            if not superuser and n >= self.max_connections - reserved:
                return ("53300", "remaining connection slots are reserved for roles with the "
                        "SUPERUSER attribute")
            # Counted (and reachable by CancelRequest) before the client learns it is in.
            self._conns[conn.pid] = conn
            metrics.CONNECTIONS.labels("postgres").inc()
            self._pending.pop(threading.current_thread(), None)
        return None

    def _login_failed(self, peer: str) -> float:
        """Record a failed login from ``peer``; returns how long to wait before saying so."""
        now = time.monotonic()
        with self._lock:
            count, last = self._failures.get(peer, (0, 0.0))
            count = count + 1 if now - last < FAILURE_WINDOW_S else 1
            self._failures[peer] = (count, now)
            if len(self._failures) > 10000:  # forget the oldest addresses
                for key in sorted(self._failures, key=lambda k: self._failures[k][1])[:5000]:
                    del self._failures[key]
        return min(self.auth_failure_delay * 2 ** (count - 1), MAX_FAILURE_DELAY_S)

    def _serve_client(self, sock: socket.socket) -> None:
        me = threading.current_thread()
        pid, secret = self._new_key()
        conn = ServerConnection(self.db, self.config, pid=pid, secret=secret)
        try:
            self._converse(conn, sock)
        except (OSError, ssl.SSLError):
            pass  # the client went away or broke TLS: nothing to tell it
        except Exception:  # noqa: BLE001 - one broken connection must never stop the server
            log.exception("pg connection %s failed", pid)
        finally:
            with self._lock:
                if self._conns.pop(pid, None) is not None:
                    metrics.CONNECTIONS.labels("postgres").dec()
                self._pending.pop(me, None)
                sock = self._clients.pop(me, sock)
            if not conn.closed:
                conn.connection_lost()
            _close(sock)

    def _converse(self, conn: ServerConnection, sock: socket.socket) -> None:
        """Startup and login, then the session, watched for a hang-up while it lasts."""
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock = self._exchange(conn, sock, logged_in=False)
        if conn.closed or conn.session is None:
            return
        sock.settimeout(None)
        conn.sink = sock.sendall  # a long answer goes out as it is made
        assert self._hangups is not None
        with self._hangups.watching(sock.fileno(), lambda: _cancel_quietly(conn)):
            self._exchange(conn, sock, logged_in=True)

    def _exchange(self, conn: ServerConnection, sock: socket.socket, *,
                  logged_in: bool) -> socket.socket:
        """Read, answer, repeat: until the connection ends or, before login, until the
        session starts. Returns the socket (TLS-wrapped if the client asked for it).

        Before login the whole of startup and authentication must finish within
        ``authentication_timeout`` (a socket timeout ends it, as an OSError)."""
        deadline = time.monotonic() + self.authentication_timeout
        view = memoryview(bytearray(READ_CHUNK))
        timeout = sock.gettimeout()
        while not conn.closed:
            if not logged_in:
                sock.settimeout(max(0.001, deadline - time.monotonic()))
            else:
                idle = _idle_in_transaction_limit(conn)
                if idle != timeout:  # (setting it is two fcntl calls: only on a change)
                    sock.settimeout(idle)
                    timeout = idle
                if idle is not None:
                    try:
                        data: bytes | bytearray = _read(sock, view)
                    except TimeoutError:
                        # An abandoned transaction must not keep its row locks: end the
                        # connection as PostgreSQL does (FATAL 25P03); closing the session
                        # rolls the transaction back.
                        with contextlib.suppress(OSError):
                            sock.sendall(m.b_error(
                                "25P03", "terminating connection due to idle-in-transaction "
                                "timeout", severity="FATAL"))
                        conn.connection_lost()
                        break
                    if not data:
                        conn.connection_lost()
                        break
                    out = conn.receive_data(data)
                    if out:
                        sock.sendall(out)
                    continue
            data = _read(sock, view)
            if not data:
                conn.connection_lost()
                break
            if conn.state is State.COPY_IN:
                data = _gather(sock, data, view)
            out = conn.receive_data(data)
            if not logged_in and conn.auth_failed and self.auth_failure_delay > 0:
                time.sleep(self._login_failed(_peer(sock)))
            if out:
                sock.sendall(out)
            if logged_in:
                continue
            if conn.cancel_request is not None:
                self._cancel(*conn.cancel_request)
                conn.connection_lost()
                break
            if conn.wants_tls:
                assert self.ssl_context is not None
                if conn.reader.buffered:
                    # Bytes sent after the SSLRequest, before the handshake, were not
                    # encrypted: never read them as if they were (CVE-2021-23214).
                    conn.connection_lost()
                    break
                sock = self.ssl_context.wrap_socket(sock, server_side=True)
                with self._lock:
                    self._clients[threading.current_thread()] = sock
                conn.tls_started()
            if conn.session is not None:
                break  # logged in
        return sock

    def _cancel(self, pid: int, secret: int) -> None:
        target = self._conns.get(pid)
        if target is None or target.secret != secret:
            return  # Postgres answers nothing either way
        _cancel_quietly(target)


def _idle_in_transaction_limit(conn: ServerConnection) -> float | None:
    """Seconds a client may leave its open transaction idle (None: no limit)."""
    session = conn.session
    if session is None or not getattr(session, "in_transaction", False):
        return None
    from ..engine.session import ms_setting

    try:
        return ms_setting(session.settings.get("idle_in_transaction_session_timeout", "0"))
    except Exception:  # noqa: BLE001 - a bad value was refused by SET already
        return None


def _listen_socket(host: str, port: int) -> socket.socket:
    """A listening socket for ``host`` (a name, an IPv4 or an IPv6 address)."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                               flags=socket.AI_PASSIVE)
    family, _, _, _, addr = infos[0]
    return socket.create_server(addr[:2] if family == socket.AF_INET else addr,
                                family=family, backlog=1024)


def _gather(sock: socket.socket, first: bytes | bytearray, view: memoryview) -> bytearray:
    """``first`` and whatever else already arrived, up to COPY_GATHER bytes.

    A TLS read returns one 16 KB record, so a COPY of 300 MB would otherwise be 20,000 trips
    through the protocol core; gathering what the kernel already holds makes them ~300."""
    buf = bytearray(first)
    sock.setblocking(False)
    try:
        while len(buf) < COPY_GATHER:
            try:
                n = sock.recv_into(view)
            except (BlockingIOError, ssl.SSLWantReadError, InterruptedError):
                break
            if not n:
                break  # the next blocking read sees the EOF again
            buf += view[:n]
    finally:
        sock.setblocking(True)
    return buf


def _close(sock: socket.socket) -> None:
    """Close, ending TLS with a close_notify first: libpq reports a TLS connection that just
    drops as an error ("unexpected eof"), a cancel request's included."""
    if isinstance(sock, ssl.SSLSocket):
        with contextlib.suppress(OSError, ValueError):
            sock.settimeout(0.2)
            sock = sock.unwrap()
    with contextlib.suppress(OSError):
        sock.close()


def _role_set(roles_: str | list[str] | None) -> frozenset[str]:
    """``"alice, bob"`` or a list -> the role names."""
    if not roles_:
        return frozenset()
    items = roles_.split(",") if isinstance(roles_, str) else roles_
    return frozenset(r.strip() for r in items if r.strip())


def _peer(sock: socket.socket) -> str:
    try:
        return str(sock.getpeername()[0])
    except (OSError, IndexError):
        return ""


def _cancel_quietly(conn: ServerConnection) -> None:
    session = conn.session
    if session is None:
        return
    try:
        session.cancel()
    except Exception:  # noqa: BLE001 - cancel is best effort
        log.debug("cancel failed", exc_info=True)


def _default_data_dir(db: Any) -> Path:
    uri = str(getattr(getattr(db, "lake", None), "uri", "") or "")
    if uri and "://" not in uri:
        return Path(uri)
    if uri.startswith("file://"):
        return Path(uri[len("file://"):])
    # An object-store lake: keep the certificate with the user's local state.
    return Path.home() / ".tarndb"


async def serve_pg(db: Any, host: str = "127.0.0.1", port: int = 5433, *,
                   tls_cert: str | None = None, tls_key: str | None = None,
                   password: str | None = None,
                   data_dir: str | os.PathLike[str] | None = None,
                   require_tls: bool = False,
                   max_connections: int = DEFAULT_MAX_CONNECTIONS,
                   on_ready: Callable[[PgServer], None] | None = None,
                   **limits: Any) -> None:
    """Run the Postgres protocol server until cancelled (what ``tarndb serve`` awaits).
    ``limits`` are PgServer's (require_tls_roles, authentication_timeout,
    superuser_reserved_connections, max_pending_logins, auth_failure_delay)."""
    server = PgServer(db, host, port, tls_cert=tls_cert, tls_key=tls_key, password=password,
                      data_dir=data_dir, require_tls=require_tls,
                      max_connections=max_connections, **limits)
    await server.start()
    if server.generated_password is not None:
        print(f"tarndb: created superuser 'postgres' with password: {server.generated_password}\n"
              f"        (shown once; set TARNDB_PASSWORD to choose it)\n"
              f"        postgresql://postgres:{server.generated_password}@{host}:{server.port}"
              f"/postgres?sslmode=require", flush=True)
    if on_ready is not None:
        on_ready(server)
    try:
        await server.serve_forever()
    finally:
        await server.stop()


class ServerThread:
    """The server in the background of a synchronous program.

    >>> with ServerThread(db, password="secret") as srv:   # doctest: +SKIP
    ...     psycopg.connect(host="127.0.0.1", port=srv.port, user="postgres", ...)
    """

    def __init__(self, db: Any, host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> None:
        self.server = PgServer(db, host, port, **kwargs)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def host(self) -> str:
        return self.server.host

    def start(self, timeout: float = 30.0) -> ServerThread:  # noqa: ARG002 - kept for callers
        self.server.listen()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.shutdown(timeout)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
