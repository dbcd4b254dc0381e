"""``tarndb.db.connect``: the seeds' ``deeplake.db`` connection manager, over psycopg 3.

>>> from tarndb.db import connect                                  # doctest: +SKIP
>>> conn = connect(org_id=None, workspace_id="ws", host="127.0.0.1", port=5433,
...                user="postgres", password="...")
>>> with conn.get_connection() as pg_conn:
...     with pg_conn.cursor() as cur:
...         cur.execute("SELECT 1")
...     pg_conn.commit()
>>> conn.close()

Connections are pooled: ``get_connection()`` lends one and takes it back when the block ends
(rolling back whatever the block left uncommitted, and dropping connections that broke).
psycopg is an optional dependency, imported on first use.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("tarndb.db.connect needs psycopg 3: pip install 'psycopg[binary]'") \
            from e
    return psycopg


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class ConnectionManager:
    """A small pool of psycopg connections to one database, with the workspace as schema."""

    def __init__(self, *, org_id: str | None = None, workspace_id: str | None = None,
                 host: str = "127.0.0.1", port: int = 5433, user: str = "postgres",
                 password: str | None = None, database: str = "postgres",
                 sslmode: str = "prefer", max_size: int = 10, connect_timeout: int = 30,
                 create_workspace: bool = True, **connect_kwargs: Any) -> None:
        self.org_id = org_id
        self.workspace_id = workspace_id
        self.max_size = max_size
        self._kwargs: dict[str, Any] = dict(host=host, port=int(port), user=user,
                                            dbname=database, sslmode=sslmode,
                                            connect_timeout=connect_timeout, **connect_kwargs)
        if password is not None:
            self._kwargs["password"] = password
        if workspace_id:
            # Unqualified names resolve in the workspace, then in public, as with
            # search_path = "ws", public (backslash-escaped for libpq's options syntax).
            sp = (_quote_ident(workspace_id) + ",public").replace("\\", "\\\\") \
                .replace(" ", "\\ ")
            opts = self._kwargs.get("options", "")
            self._kwargs["options"] = (opts + " " if opts else "") + f"-c search_path={sp}"
        self._create_workspace = create_workspace and bool(workspace_id)
        self._idle: list[Any] = []
        self._lent = 0
        self._lock = threading.Condition()
        self._closed = False

    # -- pool ----------------------------------------------------------------------------------

    def _new(self) -> Any:
        psycopg = _psycopg()
        conn = psycopg.connect(**self._kwargs)
        if self._create_workspace:
            with conn.cursor() as cur:
                cur.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote_ident(self.workspace_id or '')}")
            conn.commit()
            self._create_workspace = False
        return conn

    def _acquire(self, timeout: float | None) -> Any:
        with self._lock:
            if self._closed:
                raise RuntimeError("ConnectionManager is closed")
            while not self._idle and self._lent >= self.max_size:
                if not self._lock.wait(timeout):
                    raise TimeoutError("no connection available in the pool")
            self._lent += 1
            conn = self._idle.pop() if self._idle else None
        if conn is None or conn.closed:
            try:
                conn = self._new()
            except BaseException:
                with self._lock:
                    self._lent -= 1
                    self._lock.notify()
                raise
        return conn

    def _release(self, conn: Any) -> None:
        psycopg = _psycopg()
        keep = not conn.closed and not conn.broken
        if keep and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            try:
                conn.rollback()  # what the block did not commit is not kept
            except psycopg.Error:
                keep = False
        with self._lock:
            self._lent -= 1
            if keep and not self._closed:
                self._idle.append(conn)
                conn = None
            self._lock.notify()
        if conn is not None and not conn.closed:
            conn.close()

    @contextmanager
    def get_connection(self, timeout: float | None = 60.0) -> Iterator[Any]:
        """Lend a psycopg connection for the ``with`` block."""
        conn = self._acquire(timeout)
        try:
            yield conn
        finally:
            self._release(conn)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            self._lock.notify_all()
        for c in idle:
            c.close()

    def __enter__(self) -> ConnectionManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(org_id: str | None = None, workspace_id: str | None = None, host: str = "127.0.0.1",
            port: int = 5433, user: str = "postgres", password: str | None = None,
            database: str = "postgres", sslmode: str = "prefer",
            **kwargs: Any) -> ConnectionManager:
    """A :class:`ConnectionManager` for a tarndb (or any Postgres) server.

    ``org_id`` is accepted for compatibility with ``deeplake.db.connect`` and not used (the
    Postgres protocol has no org); ``workspace_id`` is where unqualified table names resolve
    (then ``public``), sent as ``options='-c search_path="ws",public'`` so it works whatever
    ``database`` names; the workspace is created if it does not exist.
    """
    return ConnectionManager(org_id=org_id, workspace_id=workspace_id, host=host, port=port,
                             user=user, password=password, database=database, sslmode=sslmode,
                             **kwargs)


__all__ = ["ConnectionManager", "connect"]
