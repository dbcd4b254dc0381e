"""The asyncio Postgres server around the sans-io core in :mod:`.protocol`.

The event loop only moves bytes: each chunk a client sends goes to that connection's
:class:`~.protocol.ServerConnection` in a worker thread (statements block on Lance and DuckDB),
so a slow query holds one worker while every other session carries on. While a chunk is being
processed the loop keeps reading the socket: a hang-up cancels the running statement and
releases the session at once.

``serve_pg(db, host, port)`` is what ``tarndb serve`` runs; :class:`ServerThread` runs the same
server on a background thread (tests, notebooks).
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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from . import roles
from .protocol import ServerConfig, ServerConnection

log = logging.getLogger("tarndb.pgwire")

READ_CHUNK = 1024 * 1024
#: A client has this long to finish startup and authentication.
STARTUP_TIMEOUT_S = 60.0
# How long a statement runs before the server also watches its socket for a hang-up.
QUICK_STATEMENT_S = 0.02
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
    """The Postgres protocol server over one Database."""

    def __init__(self, db: Any, host: str = "127.0.0.1", port: int = 5433, *,
                 tls_cert: str | None = None, tls_key: str | None = None,
                 password: str | None = None, data_dir: str | os.PathLike[str] | None = None,
                 tls: bool = True, require_tls: bool = False, max_workers: int = 128,
                 max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self.db = db
        self.host = host
        self.port = port
        self.password = password
        self.ssl_context: ssl.SSLContext | None = None
        if tls:
            if (tls_cert is None) != (tls_key is None):
                raise ValueError("give both tls_cert and tls_key, or neither")
            if tls_cert is None or tls_key is None:
                base = Path(data_dir) if data_dir is not None else _default_data_dir(db)
                tls_cert, tls_key = ensure_certificate(base / "tls")
            self.ssl_context = make_ssl_context(tls_cert, tls_key)
        self.config = ServerConfig(tls_available=self.ssl_context is not None,
                                   require_tls=require_tls, max_message=max_message)
        self.executor = ThreadPoolExecutor(max_workers=max_workers,
                                           thread_name_prefix="tarndb-pg")
        self._server: asyncio.base_events.Server | None = None
        self._conns: dict[int, ServerConnection] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        #: The password generated at first start (printed once by serve_pg), else None.
        self.generated_password: str | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # Role statements run through the engine's statement hooks, for every front end.
        roles.install(self.db)
        self.generated_password = await loop.run_in_executor(
            self.executor, roles.ensure_superuser, self.db, self.password)
        self._server = await asyncio.start_server(self._on_client, self.host, self.port,
                                                  limit=READ_CHUNK, reuse_address=True)
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]
        log.info("tarndb Postgres protocol listening on %s:%s", self.host, self.port)

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        for conn in list(self._conns.values()):
            _cancel_quietly(conn)
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self.executor.shutdown(wait=False, cancel_futures=True)

    @property
    def connection_count(self) -> int:
        return len(self._conns)

    # -- one client ----------------------------------------------------------------------------

    def _new_key(self) -> tuple[int, int]:
        while True:
            pid = secrets.randbelow(2**31 - 2) + 1
            if pid not in self._conns:
                return pid, secrets.randbelow(2**31)

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        pid, secret = self._new_key()
        conn = ServerConnection(self.db, self.config, pid=pid, secret=secret)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            await self._serve(conn, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, TimeoutError):
            pass
        except asyncio.CancelledError:
            pass
        except Exception:  # noqa: BLE001 - one broken connection must never stop the server
            log.exception("pg connection %s failed", pid)
        finally:
            self._conns.pop(pid, None)
            if not conn.closed:
                await self._run(conn.connection_lost)
            with contextlib.suppress(Exception):
                writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self.executor, fn, *args)
        except RuntimeError:  # executor shut down while stopping
            return None

    async def _serve(self, conn: ServerConnection, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        registered = False
        pending = bytearray()
        eof = False
        while not conn.closed:
            if not pending:
                if eof:
                    break
                if not registered:
                    data = await asyncio.wait_for(reader.read(READ_CHUNK), STARTUP_TIMEOUT_S)
                else:
                    data = await reader.read(READ_CHUNK)
                if not data:
                    break
                pending += data
            # Hand the buffer over instead of copying it (COPY streams hundreds of MB).
            chunk, pending = pending, bytearray()
            fut = loop.run_in_executor(self.executor, conn.receive_data, chunk)
            # Most statements finish in a millisecond: wait for them plainly, and only then
            # pay for a concurrent read (a task, a wait on two futures, a cancel).
            await asyncio.wait({fut}, timeout=QUICK_STATEMENT_S)
            # Keep reading while the worker runs: a hang-up cancels the running statement.
            while not fut.done():
                if eof or len(pending) > READ_CHUNK * 16:
                    await asyncio.wait({fut})
                    break
                read = asyncio.ensure_future(reader.read(READ_CHUNK))
                done, _ = await asyncio.wait({fut, read}, return_when=asyncio.FIRST_COMPLETED)
                if read in done:
                    more = read.result()
                    if more:
                        pending += more
                    else:
                        eof = True
                        _cancel_quietly(conn)
                else:
                    # The read stays in flight: wait for it briefly below, or cancel it.
                    read.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        more = await read
                        if more:
                            pending += more
                        else:
                            eof = True
            out = fut.result()
            if out:
                writer.write(out)
                await writer.drain()
            if conn.cancel_request is not None:
                self._cancel(*conn.cancel_request)
                break
            if conn.wants_tls:
                assert self.ssl_context is not None
                await writer.start_tls(self.ssl_context)
                conn.tls_started()
            if not registered and conn.session is not None:
                self._conns[conn.pid] = conn
                registered = True

    def _cancel(self, pid: int, secret: int) -> None:
        target = self._conns.get(pid)
        if target is None or target.secret != secret:
            return  # Postgres answers nothing either way
        _cancel_quietly(target)


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
                   on_ready: Callable[[PgServer], None] | None = None) -> None:
    """Run the Postgres protocol server until cancelled (what ``tarndb serve`` awaits)."""
    server = PgServer(db, host, port, tls_cert=tls_cert, tls_key=tls_key, password=password,
                      data_dir=data_dir, require_tls=require_tls)
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
    """The server on a background thread with its own event loop.

    >>> with ServerThread(db, password="secret") as srv:   # doctest: +SKIP
    ...     psycopg.connect(host="127.0.0.1", port=srv.port, user="postgres", ...)
    """

    def __init__(self, db: Any, host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> None:
        self.server = PgServer(db, host, port, **kwargs)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="tarndb-pg-server", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stopped: asyncio.Future[None] | None = None

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def host(self) -> str:
        return self.server.host

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._amain())
        except BaseException as e:  # noqa: BLE001 - reported to the starting thread
            self._error = e
            self._ready.set()
        finally:
            self._loop.close()

    async def _amain(self) -> None:
        self._stopped = self._loop.create_future()
        await self.server.start()
        self._ready.set()
        try:
            await self._stopped
        finally:
            await self.server.stop()

    def start(self, timeout: float = 30.0) -> ServerThread:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("pg server did not start")
        if self._error is not None:
            raise self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._stopped is not None and self._loop.is_running():
            self._loop.call_soon_threadsafe(self._signal_stop)
        self._thread.join(timeout)

    def _signal_stop(self) -> None:
        if self._stopped is not None and not self._stopped.done():
            self._stopped.set_result(None)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
