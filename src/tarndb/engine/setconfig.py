"""``set_config(name, value, is_local)``: PostgreSQL's SET written as a function call.

In PostgreSQL ``set_config`` is SET (``is_local``: SET LOCAL) and answers the setting's new
value: ``SHOW`` and ``current_setting()`` see it afterwards, and a reported setting
(``application_name``, ``TimeZone`` ...) reaches the client in a ParameterStatus. pg_dump
and the scripts it writes start with ``SELECT pg_catalog.set_config('search_path', '',
false)``; applications set ``application_name`` or their own ``app.user_id`` this way, often
with ``is_local`` for one transaction (row-level-security style code).

A call is a DuckDB function that sets the value in the calling session through the same
path as the SET statement (its checks, its transaction rules: a setting made in a
transaction that rolls back is undone, a local one lasts until the transaction ends). The
session comes from the token engine/advisory.py gives each session's cursor. The function
is marked as having side effects, so DuckDB never runs it while it only binds a statement
(a Describe sets nothing). ``set_config`` is a catalog macro answering its argument where
tarndb's catalog rewrites run; :func:`rename` points the calls in a statement at this one.
"""

from __future__ import annotations

from typing import Any, cast

import duckdb
from postgast import pg_query_pb2 as pb

from .. import errors as E
from ..sql import ast

FUNCTION = "__tarn_set_config"
_MACRO = "__tarn_set_config3"


def install(con: duckdb.DuckDBPyConnection) -> None:
    """The function and the macro the calls are pointed at (once per Database)."""
    cast(Any, con).create_function(
        FUNCTION, _call,
        [duckdb.sqltype("VARCHAR"), duckdb.sqltype("VARCHAR"), duckdb.sqltype("BOOLEAN"),
         duckdb.sqltype("VARCHAR")],
        duckdb.sqltype("VARCHAR"), null_handling="special", side_effects=True)
    con.execute(f"CREATE OR REPLACE MACRO {_MACRO}(n, v, l) AS {FUNCTION}(CAST(n AS VARCHAR), "
                "CAST(v AS VARCHAR), CAST(l AS BOOLEAN), "
                "CAST(getvariable('tarndb_session') AS VARCHAR))")


def rename(fc: pb.FuncCall) -> None:
    """Point a call of ``[pg_catalog.]set_config(name, value, is_local)`` at this module's
    function; anything else is left alone."""
    if len(fc.args) != 3 or fc.agg_star or fc.agg_distinct or fc.HasField("over"):
        return
    names = ast.names(fc.funcname)
    if [n.lower() for n in names] not in (["set_config"], ["pg_catalog", "set_config"]):
        return
    del fc.funcname[:]
    fc.funcname.add().string.sval = _MACRO


def _call(name: str | None, value: str | None, is_local: bool | None,
          token: str | None) -> str | None:
    from .advisory import session_for
    from .udf import remember_error

    try:
        session = session_for(token or "")
        if session is None:
            raise E.InternalError("set_config() called outside a session")
        if name is None:
            raise E.NullValueNotAllowed("SET requires parameter name")
        return session.set_config(name, value, bool(is_local))
    except E.TarnError as e:
        remember_error(e)  # keeps its SQLSTATE through DuckDB (engine/udf.py)
        raise
