"""Python functions callable from SQL (``embed()``, ``deep_memory()``), with their errors
and a per-statement memo of their results.

DuckDB turns an exception raised inside a UDF into its own error, with the text
"<prefix><ClassName>: <message>", on whichever thread ran the UDF. :func:`register_arrow`
remembers every ``TarnError`` a UDF raises under that text, so :func:`error_from_message`
(called by :func:`tarndb.engine.duck_errors.translate`) can give the client the original
SQLSTATE and message back.

Functions are registered on the database's own DuckDB connection, once: a function
registered on a session's cursor dies with that cursor while DuckDB's catalog keeps calling it.
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from ..errors import TarnError

_UDF_PREFIX = "Python exception occurred while executing the UDF: "
_errors: OrderedDict[str, TarnError] = OrderedDict()
_errors_lock = threading.Lock()
_KEEP = 64


def remember_error(e: TarnError) -> None:
    with _errors_lock:
        _errors[f"{type(e).__name__}: {e}"] = e
        while len(_errors) > _KEEP:
            _errors.popitem(last=False)


def error_from_message(message: str) -> TarnError | None:
    """The ``TarnError`` a UDF raised inside DuckDB, found from the text of the DuckDB error
    that wraps it (``None`` when the text is not one of ours)."""
    i = message.find(_UDF_PREFIX)
    if i < 0:
        return None
    key = message[i + len(_UDF_PREFIX):].strip()
    with _errors_lock:
        return _errors.get(key)


def register_arrow(conn: Any, name: str, fn: Callable[..., pa.Array], params: list[Any],
                   returns: Any) -> None:
    """Register ``fn`` (Arrow arrays in, an Arrow array out) as SQL function ``name``.

    Nulls are passed through to ``fn`` (it decides what a NULL argument means), and the
    function is declared free of side effects so DuckDB may fold constant calls.
    """
    try:
        import duckdb.func as dfunc
    except ImportError:  # duckdb < 1.4 named the module differently
        import duckdb.functional as dfunc  # type: ignore[no-redef]

    # DuckDB counts the parameters of the function it is given: wraps() makes the wrapper's
    # signature fn's own.
    @functools.wraps(fn)
    def call(*args: pa.Array) -> pa.Array:
        try:
            return fn(*args)
        except TarnError as e:
            remember_error(e)
            raise

    conn.create_function(name, call, params, returns, type=dfunc.ARROW,
                         null_handling=dfunc.SPECIAL, side_effects=False)


# -- per-statement memo -----------------------------------------------------------------------
#
# A statement may evaluate the same Python function call more than once: the top-k planner
# computes ``embed('q')`` to rank with, and DuckDB computes it again for the projected score.
# Functions keep their results here, per DuckDB connection (every session has its own
# cursor, and so its own ``current_connection_id()``), and the session drops them when the
# statement ends (:func:`end_statement`), so a model registered anew is seen by the next one.

#: entries kept per statement; past this a call is simply not memoised (an UPDATE embedding
#: a million rows must not keep a million vectors)
MEMO_MAX_ENTRIES = 256

_memos: dict[int, dict[Any, Any]] = {}
_memo_lock = threading.Lock()
_conn_ids: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()


def statement_memo(conn_id: int | None) -> dict[Any, Any] | None:
    """The memo of the statement running on DuckDB connection ``conn_id`` (None: no memo)."""
    if conn_id is None:
        return None
    with _memo_lock:
        if len(_memos) > 4096:  # cursors used outside sessions never end a statement
            _memos.clear()
        return _memos.setdefault(int(conn_id), {})


def memo_put(memo: dict[Any, Any] | None, key: Any, value: Any) -> None:
    if memo is not None and len(memo) < MEMO_MAX_ENTRIES:
        memo[key] = value


def end_statement(cursor: Any) -> None:
    """Forget what the statement that just ran on ``cursor`` memoised (called by the
    session as each statement ends). Costs nothing unless some statement memoised."""
    if not _memos:
        return
    conn_id = _conn_ids.get(cursor)
    if conn_id is None:
        try:  # once per cursor, and only once a memo exists
            row = cursor.execute("SELECT current_connection_id()").fetchall()[0]
        except Exception:  # noqa: BLE001 - a closed or interrupted cursor: drop every memo
            with _memo_lock:
                _memos.clear()
            return
        conn_id = int(row[0])
        _conn_ids[cursor] = conn_id
    with _memo_lock:
        _memos.pop(conn_id, None)
