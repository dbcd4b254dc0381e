"""Per-session memory and temp-space limits.

DuckDB bounds memory and spilled temp files per *database instance*, not per connection: on
the one instance every session shares (``Database.duckdb``), one session's sort can take the
whole budget from the others. A session that is held to limits of its own therefore runs its
statements on a DuckDB instance of its own (an :class:`Engine`), created with
``memory_limit`` = the session's memory limit, a private temp directory and
``max_temp_directory_size`` = its temp limit, and with every global definition of the shared
instance (macros, types, Python UDFs, ``enable_external_access = false``,
``lock_configuration = true``) replayed onto it (:class:`Recorder`).

Engines are costly to make (about 70 ms: DuckDB's start plus the catalog emulation) and cost
about 6 MB idle, so :class:`Engines` keeps a few with the server's default session limits
ready (made by a background thread) and takes back the engine of a session that ends: a new
session takes one from the pool with a cursor, as it took a cursor of the shared instance
before (when none is ready, it starts on the shared instance and moves to an engine at its
first statement, so that session starts never wait for one to be made). An engine with other
limits (a session that lowered them, or a superuser that raised
them) is made when the session's next statement needs it, and closed when it is let go.

The server-wide total stays bounded: a statement running on an engine reserves the engine's
memory limit from the server's ``memory_limit`` (:meth:`Engines.enter`), and waits while the
statements already running hold all of it (it is cancelled like any statement: cancel
request, ``statement_timeout``). DuckDB's allocator is shared by all instances of the
process and is flushed at the end of each statement past ``allocator_flush_threshold``, so
idle engines do not keep what their last statement used.

Settings (PostgreSQL's names where there is one): ``temp_file_limit`` (kB, or with a unit;
-1: the server's session limit) and ``tarndb.memory_limit`` (same units). A session may lower
them; only a superuser may raise them past the server's session limits (42501, as
PostgreSQL refuses ``SET temp_file_limit`` to non-superusers). Past its memory limit a
statement fails with 53200 (out_of_memory), past its temp limit with 53400
(configuration_limit_exceeded, "temporary file size exceeds temp_file_limit (...kB)").
"""

from __future__ import annotations

import atexit
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import duckdb

from .. import errors as E

if TYPE_CHECKING:
    from .session import Session

log = logging.getLogger(__name__)

MEMORY = "tarndb.memory_limit"
TEMP = "temp_file_limit"
#: The session settings this module owns (their default, -1: the server's session limit).
NAMES = (MEMORY, TEMP)
#: Below this DuckDB cannot run ordinary statements; a smaller memory limit is refused.
MIN_MEMORY = 8 << 20
#: Idle engines with the server's session limits kept ready for new sessions.
SPARE = 2
#: Engines with the default limits kept for reuse when their sessions end (idle ones past
#: this are closed: each costs ~6 MB and a thread).
KEEP = 8
#: Longest a statement waits for the server's memory budget before failing with 53200.
MAX_WAIT_S = 60.0

#: Statement kinds that run no query: they take no share of the server's memory budget.
_LIGHT = frozenset({"variable_set_stmt", "variable_show_stmt", "transaction_stmt",
                    "discard_stmt", "listen_stmt", "unlisten_stmt", "notify_stmt",
                    "deallocate_stmt", "prepare_stmt"})

_UNITS = {"b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40,
          "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}
_DECIMAL = {"kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_SIZE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([a-z%]*)\s*$", re.IGNORECASE)


def parse_size(text: str | int, default_unit: int = 1, decimal: bool = False
               ) -> int | None:
    """Bytes in a size: ``'64MB'``, ``'1.5GiB'``, ``'50%'`` (of physical memory), a bare
    number in ``default_unit`` bytes (PostgreSQL: kB for its memory settings). Units are
    PostgreSQL's (kB, MB, GB, TB: powers of 1024) or DuckDB's (KiB, MiB, ...; with
    ``decimal``, KB/MB/GB/TB are powers of 1000 as DuckDB reads them). None for a negative
    value (no limit of the session's own). Raises 22023 for anything else."""
    m = _SIZE.match(str(text).strip("'\""))
    if not m:
        raise E.InvalidParameterValue(f'invalid value for size: "{text}"',
                                      hint='Valid units are "B", "kB", "MB", "GB" and "TB".')
    number, unit = float(m.group(1)), m.group(2).lower()
    if number < 0:
        return None
    if unit == "%":
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        return int(total * number / 100)
    if unit and unit not in _UNITS:
        raise E.InvalidParameterValue(f'invalid value for size: "{text}"',
                                      hint='Valid units are "B", "kB", "MB", "GB" and "TB".')
    if decimal and unit in _DECIMAL:
        return int(number * _DECIMAL[unit])
    return int(number * (_UNITS[unit] if unit else default_unit))


def format_size(n: int | None) -> str:
    """PostgreSQL's way of showing a size setting: ``-1``, ``64MB``, ``1GB``, ``1536kB``."""
    if n is None:
        return "-1"
    for unit, size in (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("kB", 1 << 10)):
        if n % size == 0:
            return f"{n // size}{unit}"
    return f"{n}B"


@dataclass(eq=False)
class Engine:
    """One DuckDB instance with limits of its own."""
    con: duckdb.DuckDBPyConnection
    memory: int
    temp: int
    temp_dir: str
    #: the session cursors taken from it and not yet given back
    cursors: int = 0

    def close(self) -> None:
        try:
            self.con.close()
        except duckdb.Error:  # already closed
            pass
        shutil.rmtree(self.temp_dir, ignore_errors=True)


@dataclass
class _Held:
    engine: Engine | None = None
    reserved: int = 0
    depth: int = 0


class Recorder:
    """Stands in for the shared DuckDB connection (``Database.duckdb``): forwards everything
    to it, and remembers the definitions made through it (``create_function``, and
    ``execute`` of anything but a query) so that :class:`Engines` can make them on every
    engine, those made later included. Modules that define SQL functions once per database
    (``tarndb.embeddings``, ``tarndb.deepmemory``, sequences) need not know engines exist."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self._ops: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self._lock = threading.RLock()
        self._engines: weakref.WeakSet[Engine] = weakref.WeakSet()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)

    def _record(self, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        with self._lock:
            out = getattr(self._con, method)(*args, **kwargs)
            self._ops.append((method, args, kwargs))
            for engine in list(self._engines):
                _replay(engine.con, [(method, args, kwargs)])
            return out

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        if sql.lstrip()[:6].upper() in ("SELECT", "WITH", "FROM") or args or kwargs:
            return self._con.execute(sql, *args, **kwargs)
        return self._record("execute", (sql,), {})

    def create_function(self, *args: Any, **kwargs: Any) -> Any:
        return self._record("create_function", args, kwargs)

    def attach(self, engine: Engine) -> None:
        """Make every definition so far on ``engine`` (and later ones as they come)."""
        with self._lock:
            _replay(engine.con, self._ops)
            self._engines.add(engine)

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        return self._con


def _replay(con: duckdb.DuckDBPyConnection,
            ops: list[tuple[str, tuple[Any, ...], dict[str, Any]]]) -> None:
    batch: list[str] = []

    def flush() -> None:
        # Consecutive statements go as one script (~10% less CPU than a call each); if it
        # fails, one by one, so that one failure does not lose the rest.
        if len(batch) > 1:
            try:
                con.execute(";\n".join(batch))
                batch.clear()
                return
            except duckdb.Error:
                pass
        for sql in batch:
            _run(con, "execute", (sql,), {})
        batch.clear()

    for method, args, kwargs in ops:
        if method == "execute":
            batch.append(args[0])
            continue
        flush()
        _run(con, method, args, kwargs)
    flush()


def _run(con: duckdb.DuckDBPyConnection, method: str, args: tuple[Any, ...],
         kwargs: dict[str, Any]) -> None:
    try:
        getattr(con, method)(*args, **kwargs)
    except duckdb.Error:
        # It worked on the shared instance: a failure here is a definition made twice
        # (CREATE TYPE of a type an earlier op made); anything else is logged.
        log.debug("replaying %s %r on an engine failed", method, args[:1], exc_info=True)


_open_pools: weakref.WeakSet[Engines] = weakref.WeakSet()


@atexit.register
def _close_pools() -> None:
    """A database left open at exit: stop its filler outside DuckDB first (a daemon thread
    inside DuckDB when the interpreter exits aborts the process)."""
    for pool in list(_open_pools):
        pool.close()


class Engines:
    """The DuckDB instances of sessions held to limits of their own (see the module doc)."""

    def __init__(self, recorder: Recorder, *, session_memory: int | None,
                 session_temp: int | None, total_memory: int, total_temp: int,
                 threads: int = 2) -> None:
        if session_memory is not None and session_memory < MIN_MEMORY:
            raise E.InvalidParameterValue(
                f"session_memory_limit must be at least {format_size(MIN_MEMORY)}")
        if session_memory is not None and session_memory > total_memory:
            raise E.InvalidParameterValue(
                f"session_memory_limit ({format_size(session_memory)}) exceeds memory_limit "
                f"({format_size(total_memory)})")
        if session_temp is not None and session_temp > total_temp:
            raise E.InvalidParameterValue(
                f"session_temp_limit ({format_size(session_temp)}) exceeds temp_limit "
                f"({format_size(total_temp)})")
        self.recorder = recorder
        #: the server's limits for each session (None: sessions share the one instance)
        self.session_memory = session_memory
        self.session_temp = session_temp
        #: the server's limits for all sessions together
        self.total_memory = total_memory
        self.total_temp = total_temp
        self.threads = threads
        #: superusers' check (pgwire installs the roles' one; embedded: everyone is)
        self.is_superuser: Callable[[str | None], bool] = lambda user: True
        self._cv = threading.Condition()
        self._idle: dict[tuple[int, int], list[Engine]] = {}
        self._held: weakref.WeakKeyDictionary[Session, _Held] = weakref.WeakKeyDictionary()
        self._reserved = 0
        self._closed = False
        self._filler: threading.Thread | None = None
        if self.per_session:
            self._filler = threading.Thread(target=self._fill, name="tarndb-engines",
                                            daemon=True)
            self._filler.start()
            _open_pools.add(self)

    @property
    def per_session(self) -> bool:
        """Whether every session has limits of its own by default."""
        return self.session_memory is not None or self.session_temp is not None

    @property
    def default_key(self) -> tuple[int, int]:
        return (self.session_memory or self.total_memory, self.session_temp or self.total_temp)

    # -- making engines ---------------------------------------------------------------------

    def make(self, memory: int, temp: int) -> Engine:
        temp_dir = tempfile.mkdtemp(prefix="tarndb-session-")
        config: dict[str, Any] = {"threads": self.threads, "memory_limit": f"{memory}B",
                  "max_temp_directory_size": f"{temp}B", "temp_directory": temp_dir,
                  # Its 8 threads for remote I/O (files are not reachable from SQL anyway)
                  # would be 8 threads per session.
                  "async_threads": 0,
                  # Give memory back to the system after each statement rather than keep
                  # up to 128 MB per thread cached: idle engines must not hold it.
                  "allocator_flush_threshold": f"{min(memory // 4, 16 << 20)}B"}
        try:
            con = duckdb.connect(config=config)
        except duckdb.Error:
            shutil.rmtree(temp_dir, ignore_errors=True)
            raise
        engine = Engine(con, memory, temp, temp_dir)
        self.recorder.attach(engine)  # globals, then enable_external_access, lock_configuration
        return engine

    def _fill(self) -> None:
        while True:
            with self._cv:
                while not self._closed and \
                        len(self._idle.get(self.default_key, ())) >= SPARE:
                    self._cv.wait()
                if self._closed:
                    return
            try:
                engine = self.make(*self.default_key)
            except Exception:  # noqa: BLE001 - sessions make their own when the pool is empty
                log.exception("preparing a session engine failed")
                time.sleep(1.0)
                continue
            with self._cv:
                if self._closed:
                    engine.close()
                    return
                self._idle.setdefault(self.default_key, []).append(engine)
                self._cv.notify_all()

    def _take(self, key: tuple[int, int]) -> Engine:
        with self._cv:
            idle = self._idle.get(key)
            engine = idle.pop() if idle else None
            if key == self.default_key:
                self._cv.notify_all()  # the filler makes the next spare one
        return engine if engine is not None else self.make(*key)

    def _give_back(self, engine: Engine) -> None:
        key = (engine.memory, engine.temp)
        with self._cv:
            if engine.cursors > 0:
                return
            idle = self._idle.setdefault(key, [])
            if not self._closed and key == self.default_key and len(idle) < KEEP:
                idle.append(engine)
                self._cv.notify_all()
                return
        engine.close()

    # -- sessions ---------------------------------------------------------------------------

    def limits_of(self, session: Session) -> tuple[int | None, int | None]:
        """The memory and temp limits ``session`` is held to now (None: the shared
        instance's), its settings clamped to what its role may have: a session's settings
        can come from places that do not check them (startup options), so they are checked
        again here, where they take effect."""
        settings = session.settings
        if settings.get(MEMORY, "-1") == "-1" and settings.get(TEMP, "-1") == "-1":
            return self.session_memory, self.session_temp  # the common case: no SET
        su = self.is_superuser(session.user)
        out: list[int | None] = []
        for name, default, total in ((MEMORY, self.session_memory, self.total_memory),
                                     (TEMP, self.session_temp, self.total_temp)):
            try:
                asked = parse_size(session.settings.get(name, "-1"), 1024)
            except E.TarnError:
                asked = None
            cap = total if su or default is None else default
            value = default if asked is None else min(asked, cap)
            if name == MEMORY and value is not None:
                value = max(value, MIN_MEMORY)
            out.append(value)
        return out[0], out[1]

    def check_setting(self, session: Session, name: str, value: str) -> str:
        """``SET temp_file_limit`` / ``SET tarndb.memory_limit``: the value as SHOW gives it
        back. Lowering is allowed to everyone, raising past the server's session limit only
        to superusers (42501), and past the server's total limit to no one (22023)."""
        n = parse_size(value, 1024)
        if n is None:
            return "-1"
        default, total, server = (self.session_memory, self.total_memory, "memory_limit") \
            if name == MEMORY else (self.session_temp, self.total_temp, "temp_limit")
        if name == MEMORY and n < MIN_MEMORY:
            raise E.InvalidParameterValue(
                f'{n // 1024} kB is outside the valid range for parameter "{name}" '
                f"({MIN_MEMORY // 1024} kB .. {total // 1024} kB)")
        if default is not None and n > default and not self.is_superuser(session.user):
            raise E.InsufficientPrivilege(f'permission denied to set parameter "{name}"',
                                          detail=f"The server's limit per session is "
                                          f"{format_size(default)}.")
        if n > total:
            raise E.InvalidParameterValue(
                f'{n // 1024} kB is outside the valid range for parameter "{name}" '
                f"(.. {total // 1024} kB, the server's {server})")
        return format_size(n)

    def cursor(self, session: Session | None) -> duckdb.DuckDBPyConnection | None:
        """A cursor of an engine for a new session (None: a cursor of the shared instance
        will do: the session has no limits of its own, or no engine is ready and its first
        statement gets one, see :meth:`enter`; session starts, one at a time in pgwire, do
        not wait ~70 ms each for an engine to be made in a burst of connections)."""
        if session is None or not self.per_session:
            return None
        with self._cv:
            idle = self._idle.get(self.default_key)
            if not idle:
                return None
            engine = idle.pop()
            engine.cursors += 1
            self._cv.notify_all()  # the filler makes the next spare one
        self._held.setdefault(session, _Held()).engine = engine
        return engine.con.cursor()

    def enter(self, session: Session, kind: str = "") -> None:
        """Before a statement: give ``session`` the engine its limits call for (a new cursor
        with the session's DuckDB variables), and reserve the engine's memory limit from the
        server's budget, waiting while other statements hold it (statements that run no
        query, like SET and COMMIT, do not wait)."""
        held = self._held.get(session)
        if held is not None and held.depth:
            held.depth += 1
            return
        memory, temp = self.limits_of(session)
        want = None if memory is None and temp is None else \
            (memory or self.total_memory, temp or self.total_temp)
        have = None if held is None or held.engine is None else \
            (held.engine.memory, held.engine.temp)
        if want != have:
            self._switch(session, want)
            held = self._held.get(session)
        if held is None or held.engine is None or kind in _LIGHT:
            return
        need = held.engine.memory
        deadline = time.monotonic() + MAX_WAIT_S
        with self._cv:
            while self._reserved + need > self.total_memory and self._reserved > 0:
                if getattr(session, "_cancelled", False):
                    raise E.QueryCanceled("canceling statement due to user request")
                stop = getattr(session, "_deadline", None)
                now = time.monotonic()
                if stop is not None and now >= stop:
                    raise E.QueryCanceled("canceling statement due to statement timeout")
                if now >= deadline:
                    raise E.OutOfMemory(
                        "out of memory",
                        detail=f"Running statements hold the server's memory_limit "
                        f"({format_size(self.total_memory)}) for longer than "
                        f"{MAX_WAIT_S:.0f} s.")
                self._cv.wait(min(0.05, max(0.001, (stop or deadline) - now)))
            self._reserved += need
        held.reserved = need
        held.depth = 1

    def exit(self, session: Session) -> None:
        """After a statement: give its reservation back."""
        held = self._held.get(session)
        if held is None or held.depth == 0:
            return
        held.depth -= 1
        if held.depth:
            return
        with self._cv:
            self._reserved -= held.reserved
            held.reserved = 0
            self._cv.notify_all()

    def _switch(self, session: Session, key: tuple[int, int] | None) -> None:
        """Move ``session`` to an engine with limits ``key`` (None: the shared instance),
        carrying its DuckDB variables over."""
        old = session.cursor
        try:
            variables = old.execute(
                "SELECT name, CAST(value AS VARCHAR) FROM duckdb_variables()").fetchall()
        except duckdb.Error:
            variables = []
        if key is None:
            new = self.recorder.connection.cursor()
            engine = None
        else:
            engine = self._take(key)
            with self._cv:
                engine.cursors += 1
            new = engine.con.cursor()
        for name, value in variables:
            if value is None:
                continue
            quoted = str(value).replace("'", "''")
            new.execute(f"SET VARIABLE {name} = '{quoted}'")
        session.cursor = new
        self.release(session, old)
        self._held.setdefault(session, _Held()).engine = engine

    def release(self, session: Session, cursor: Any = None) -> None:
        """The session ended (or left its engine): close the cursor, give the engine back."""
        held = self._held.get(session)
        if cursor is not None:
            try:
                cursor.close()
            except duckdb.Error:
                pass
        if held is None or held.engine is None:
            return
        engine, held.engine = held.engine, None
        if held.reserved:
            with self._cv:
                self._reserved -= held.reserved
                held.reserved = 0
                held.depth = 0
                self._cv.notify_all()
        with self._cv:
            engine.cursors -= 1
        self._give_back(engine)

    def close(self) -> None:
        with self._cv:
            self._closed = True
            engines = [e for es in self._idle.values() for e in es]
            self._idle.clear()
            # engines of sessions still open when the database closes
            engines += [h.engine for h in list(self._held.values()) if h.engine is not None]
            self._cv.notify_all()
        # A daemon thread still inside DuckDB when the interpreter exits aborts the process.
        if self._filler is not None and self._filler is not threading.current_thread():
            self._filler.join(30)
        for e in engines:
            e.close()
