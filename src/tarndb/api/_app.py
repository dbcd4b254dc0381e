"""The Starlette application: routes, auth, error shape, and the bridge to the engine.

Every engine call and every blocking lake read or write runs in a worker thread (bounded by
``max_concurrency``) so the event loop only moves bytes. Requests beyond what the workers plus
``max_pending`` can absorb get 429 with Retry-After instead of an unbounded queue.
"""

from __future__ import annotations

import email.utils
import functools
import importlib.metadata
import json
import logging
import re
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import anyio
import anyio.to_thread
import postgast
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..errors import (
    InsufficientPrivilege,
    InternalError,
    InvalidRequest,
    NotFound,
    TarnError,
)
from ..files import FileMeta, FileStore, check_workspace, parse_file_id
from ._encode import dumps, result_json, to_param
from ._errors import MethodNotAllowed, PayloadTooLarge, TooManyRequests, Unauthenticated
from ._multipart import receive_upload
from ._protocol import SENDFILE
from ._ranges import RangeNotSatisfiable, parse_range
from ._settings import ApiSettings
from ._sqlcheck import check_statement
from .orgs import ensure_org
from .tokens import ROLES, Token, TokenStore

log = logging.getLogger("tarndb.api")

_CHUNK = 1 << 20
_TABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]{0,62}$")
# Column types from a schema dict go into DDL text: no quotes, comments or statement breaks.
_TYPE_RE = re.compile(r"^[A-Za-z0-9_ \[\](),.]{1,200}$")
_CACHE_CONTROL = "private, max-age=31536000, immutable"
_PARSE_INLINE_MAX = 64 << 10
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class _State:
    def __init__(self, db: Any, settings: ApiSettings) -> None:
        self.db = db
        self.settings = settings
        self.store = FileStore.from_db(db)
        self.tokens = TokenStore(db.catalog)
        self.limiter = anyio.CapacityLimiter(settings.max_concurrency)
        self.io_limiter = anyio.CapacityLimiter(settings.max_concurrency)
        self.inflight = 0
        self._known_ws: set[str] = set()

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a statement (or other engine work) on a worker thread."""
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs),
                                              limiter=self.limiter)

    async def run_io(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run short lake I/O (file bytes, metadata, token lookups) on a worker thread. A
        separate pool, so downloads and auth do not queue behind long queries."""
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs),
                                              limiter=self.io_limiter)

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[None]:
        s = self.settings
        if self.inflight >= s.max_concurrency + s.max_pending:
            raise TooManyRequests("the server is busy; retry shortly")
        self.inflight += 1
        try:
            yield
        finally:
            self.inflight -= 1

    def ensure_workspace(self, ws: str) -> None:
        if ws in self._known_ws:
            return
        ensure = getattr(self.db.catalog, "ensure_workspace", None)
        if ensure is not None:
            ensure(ws)
        self._known_ws.add(ws)


def _state(request: Request) -> _State:
    st: _State = request.app.state.tarn
    return st


# -- request helpers ---------------------------------------------------------------------


async def authorize(request: Request, role: str, workspace: str | None = None) -> Token:
    """The caller's token, checked for org, workspace and role."""
    st = _state(request)
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        raise Unauthenticated("missing or malformed Authorization: Bearer <token> header")
    fresh, token = st.tokens.cached(credential)
    if not fresh:
        token = await st.run_io(st.tokens.authenticate, credential)
    if token is None:
        raise Unauthenticated("invalid or revoked token")
    org = request.headers.get("x-activeloop-org-id", "").strip()
    if org and org != token.org:
        own = await st.run_io(ensure_org, st.tokens.catalog, token.org)
        if not own.matches(org):
            raise InsufficientPrivilege(
                f"this token belongs to org {own.name!r} (id {own.id}), not {org!r}",
                detail=f"token org: {own.name}; org id: {own.id}",
                hint=f"send X-Activeloop-Org-Id: {own.id} (or {own.name}), or omit the header")
    if workspace is not None:
        check_workspace(workspace)
        if not token.allows_workspace(workspace):
            raise InsufficientPrivilege(f"this token has no access to workspace {workspace!r}")
    if not token.has_role(role):
        raise InsufficientPrivilege(f"this requires the {role} role; the token has {token.role}")
    return token


async def json_body(request: Request) -> dict[str, Any]:
    limit = _state(request).settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    try:
        # Bodies with inline embeddings run to megabytes; parse those off the event loop.
        body = (json.loads(bytes(buf)) if len(buf) < _PARSE_INLINE_MAX
                else await _state(request).run(json.loads, bytes(buf)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidRequest("request body is nested too deeply") from None
    if not isinstance(body, dict):
        raise InvalidRequest("request body must be a JSON object")
    if _SURROGATE_ESCAPE.search(buf):
        # JSON may spell a lone UTF-16 surrogate, which no UTF-8 consumer downstream takes.
        try:
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRequest("request body contains an unpaired surrogate") from None
    return body


def _params(value: Any, name: str = "params") -> list[Any] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise InvalidRequest(f"{name} must be a JSON array")
    return [to_param(v) for v in value]


def _query_text(body: dict[str, Any]) -> str:
    sql = body.get("query")
    if not isinstance(sql, str) or not sql.strip():
        raise InvalidRequest("query must be a non-empty string")
    return sql


def _timeout_s(body: dict[str, Any], settings: ApiSettings) -> float:
    ms = body.get("timeout_ms")
    if ms is None:
        return settings.query_timeout_s
    if isinstance(ms, bool) or not isinstance(ms, (int, float)) or ms <= 0:
        raise InvalidRequest("timeout_ms must be a positive number")
    return min(ms / 1000.0, settings.query_timeout_s)


def _int_arg(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"{name} must be an integer") from None
    if not lo <= value <= hi:
        raise InvalidRequest(f"{name} must be between {lo} and {hi}")
    return value


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _check_table_name(name: str) -> str:
    if not isinstance(name, str) or not _TABLE_RE.match(name):
        raise InvalidRequest(f"invalid table name: {name!r}")
    return name


def _with_session(db: Any, ws: str, timeout_s: float, work: Callable[[Any], Any],
                  token: Token | None = None) -> Any:
    """Run ``work(session)`` on a fresh session, cancelling it after ``timeout_s``.

    With ``token`` the engine enforces the token's limits too (its workspaces; read-only for
    the read role), behind the statement check, as it does for token logins over pgwire."""
    if token is None:
        session = db.session(workspace=ws)
    else:
        from ..pgwire.roles import token_role

        allowed = None if token.workspaces is None else set(token.workspaces)
        # A token's session runs as its own non-superuser role (an unscoped admin token as
        # the superuser), so role statements are checked against it, as over pgwire.
        session = db.session(workspace=ws, user=token_role(token), allowed_workspaces=allowed,
                             read_only=not token.has_role("write"))
    timer = threading.Timer(timeout_s, session.cancel)
    timer.daemon = True
    timer.start()
    try:
        return work(session)
    finally:
        timer.cancel()
        session.close()


def _json_response(payload: bytes, status: int = 200) -> Response:
    return Response(payload, status_code=status, media_type="application/json")


# -- endpoints: misc ---------------------------------------------------------------------


async def health(request: Request) -> Response:
    try:
        ver = importlib.metadata.version("tarndb")
    except importlib.metadata.PackageNotFoundError:  # a source tree without metadata
        ver = "unknown"
    return JSONResponse({"status": "ok", "version": ver})


async def ready(request: Request) -> Response:
    """Readiness for a load balancer: the lake's catalog answers and the SQL engine runs.
    ``/health`` only says the process is up."""
    st = _state(request)

    def check() -> None:
        st.db.catalog.refresh(force=True)
        st.db.execute("SELECT 1")

    try:
        await st.run_io(check)
    except Exception as e:  # noqa: BLE001 - any failure means "do not send traffic here"
        log.warning("not ready: %s", e)
        return JSONResponse({"status": "unavailable", "reason": type(e).__name__},
                            status_code=503)
    return JSONResponse({"status": "ready"})


async def metrics_endpoint(request: Request) -> Response:
    """Counters and histograms in the Prometheus text format (see tarndb/metrics.py)."""
    from prometheus_client import CONTENT_TYPE_LATEST

    from .. import metrics

    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)


async def me(request: Request) -> Response:
    token = await authorize(request, "read")
    org = await _state(request).run_io(ensure_org, _state(request).tokens.catalog, token.org)
    return JSONResponse({**token.to_json(), "org_id": org.id})


async def openapi(request: Request) -> Response:
    from .openapi import openapi_document

    return JSONResponse(openapi_document())


# -- endpoints: SQL ----------------------------------------------------------------------


async def query(request: Request) -> Response:
    st = _state(request)
    ws = request.path_params["ws"]
    token = await authorize(request, "read", ws)
    body = await json_body(request)
    sql = _query_text(body)
    params = _params(body.get("params"))
    timeout = _timeout_s(body, st.settings)

    def work() -> bytes:
        check_statement(sql, token, ws)
        if token.has_role("write"):
            st.ensure_workspace(ws)
        res = _with_session(st.db, ws, timeout, lambda s: s.execute(sql, params), token)
        return dumps(result_json(res))

    async with st.admit():
        return _json_response(await st.run(work))


class _BatchFailed(TarnError):
    """Carries which parameter set failed; the original error's fields are kept."""

    def __init__(self, cause: TarnError, index: int) -> None:
        super().__init__(cause.message, position=cause.position, detail=cause.detail,
                         hint=cause.hint, column=cause.column, table=cause.table)
        self.sqlstate = cause.sqlstate  # type: ignore[misc]
        self.http_status = cause.http_status  # type: ignore[misc]
        self.code = cause.code  # type: ignore[misc]
        self.index = index

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["batch_index"] = self.index
        return out


async def query_batch(request: Request) -> Response:
    st = _state(request)
    ws = request.path_params["ws"]
    token = await authorize(request, "read", ws)
    body = await json_body(request)
    sql = _query_text(body)
    batch = body.get("params_batch")
    if not isinstance(batch, list) or not all(isinstance(p, list) for p in batch):
        raise InvalidRequest("params_batch must be a JSON array of arrays")
    params_batch = [_params(p, "params_batch[i]") for p in batch]
    timeout = _timeout_s(body, st.settings)

    def run_all(session: Any) -> dict[str, Any]:
        session.execute("BEGIN")
        affected = 0
        rows: list[Any] = []
        last: Any = None
        try:
            # An INSERT of one VALUES row runs as one statement for the whole batch; when
            # that fails (or the statement is another kind) each set runs on its own, so
            # the error names the set that caused it.
            batched = session.execute_many(sql, params_batch) if len(params_batch) > 1 \
                else None
            for i, params in enumerate(params_batch):
                if batched is not None:
                    last = batched[i]
                else:
                    try:
                        last = session.execute(sql, params)
                    except TarnError as exc:
                        raise _BatchFailed(exc, i) from exc
                affected += last.rowcount
                if last.returns_rows:
                    rows.extend(list(r) for r in last.rows)
            session.execute("COMMIT")
        except BaseException:
            if session.transaction_status != "I":
                session.execute("ROLLBACK")
            raise
        out: dict[str, Any] = {"rows_affected": affected, "row_count": affected,
                               "statements": len(params_batch)}
        if last is not None:
            out["command"] = last.command
            if last.returns_rows:
                out["columns"] = [c.name for c in last.columns]
                out["rows"] = rows
        return out

    def work() -> bytes:
        check_statement(sql, token, ws)
        if token.has_role("write"):
            st.ensure_workspace(ws)
        return dumps(_with_session(st.db, ws, timeout, run_all, token))

    async with st.admit():
        return _json_response(await st.run(work))


# -- endpoints: tables -------------------------------------------------------------------


def _describe(db: Any, ws: str, name: str, with_count: bool = True) -> dict[str, Any]:
    info = db.catalog.table(ws, name)
    out: dict[str, Any] = {
        "name": info.name,
        "workspace": info.workspace,
        "columns": [{"name": c.name, "type": c.type.pg_name, "not_null": c.not_null,
                     "default": c.default_sql, "serial": c.serial,
                     "generated": c.generated_sql} for c in info.columns],
        "primary_key": list(info.primary_key),
        "indexes": [{"name": i.name, "column": i.column, "index_type": i.index_type}
                    for i in info.indexes],
    }
    if with_count:
        sql = f"SELECT count(*) FROM {_quote_ident(ws)}.{_quote_ident(name)}"
        session = db.session(workspace=ws)
        try:
            out["row_count"] = session.execute(sql).scalar()
        finally:
            session.close()
    return out


async def list_tables(request: Request) -> Response:
    st = _state(request)
    ws = request.path_params["ws"]
    await authorize(request, "read", ws)

    def work() -> list[dict[str, Any]]:
        return [_describe(st.db, ws, t.name, with_count=False)
                for t in st.db.catalog.tables(ws)]

    return JSONResponse({"tables": await st.run(work)})


def _create_table_sql(ws: str, body: dict[str, Any]) -> tuple[str, str]:
    name = _check_table_name(body.get("name"))  # type: ignore[arg-type]
    schema = body.get("schema", body.get("columns"))
    if isinstance(schema, dict):
        cols = list(schema.items())
    elif isinstance(schema, list) and all(isinstance(c, dict) for c in schema):
        cols = [(c.get("name"), c.get("type")) for c in schema]
    else:
        raise InvalidRequest('schema must be {"column": "TYPE", ...} or [{"name", "type"}]')
    if not cols:
        raise InvalidRequest("a table needs at least one column")
    parts = []
    for col, typ in cols:
        if not isinstance(col, str) or not col or len(col) > 63 or "\x00" in col:
            raise InvalidRequest(f"invalid column name: {col!r}")
        if not isinstance(typ, str) or not _TYPE_RE.match(typ):
            raise InvalidRequest(f"invalid type for column {col!r}: {typ!r}")
        parts.append(f"{_quote_ident(col)} {typ}")
    ine = "IF NOT EXISTS " if body.get("if_not_exists") else ""
    sql = (f"CREATE TABLE {ine}{_quote_ident(ws)}.{_quote_ident(name)} "
           f"({', '.join(parts)}) USING deeplake")
    try:
        stmts = postgast.parse(sql).stmts
    except postgast.PgQueryError as exc:
        raise InvalidRequest(f"invalid table definition: {exc}") from None
    if len(stmts) != 1 or stmts[0].stmt.WhichOneof("node") != "create_stmt":
        raise InvalidRequest("invalid table definition")
    return name, sql


async def create_table(request: Request) -> Response:
    st = _state(request)
    ws = request.path_params["ws"]
    token = await authorize(request, "write", ws)
    body = await json_body(request)
    name, sql = _create_table_sql(ws, body)

    def work() -> dict[str, Any]:
        check_statement(sql, token, ws)
        st.ensure_workspace(ws)
        _with_session(st.db, ws, st.settings.query_timeout_s, lambda s: s.execute(sql))
        return _describe(st.db, ws, name)

    async with st.admit():
        return JSONResponse(await st.run(work), status_code=201)


async def get_table(request: Request) -> Response:
    st = _state(request)
    ws = request.path_params["ws"]
    await authorize(request, "read", ws)
    name = _check_table_name(request.path_params["name"])
    async with st.admit():
        return JSONResponse(await st.run(_describe, st.db, ws, name))


async def drop_table(request: Request) -> Response:
    st = _state(request)
    ws = request.path_params["ws"]
    await authorize(request, "write", ws)
    name = _check_table_name(request.path_params["name"])
    sql = f"DROP TABLE {_quote_ident(ws)}.{_quote_ident(name)}"

    def work() -> None:
        st.db.catalog.table(ws, name)  # 404 rather than a SQL error for a missing table
        _with_session(st.db, ws, st.settings.query_timeout_s, lambda s: s.execute(sql))

    async with st.admit():
        await st.run(work)
    return JSONResponse({"dropped": name, "workspace": ws})


# -- endpoints: files --------------------------------------------------------------------


async def upload_file(request: Request) -> Response:
    st = _state(request)
    ws = request.path_params["ws"]
    await authorize(request, "write", ws)
    async with st.admit():
        await st.run_io(st.ensure_workspace, ws)
        meta = await receive_upload(request, st.store, ws, st.settings.max_upload_bytes,
                                    st.run_io)
    return JSONResponse(meta.to_json(), status_code=201,
                        headers={"Location": f"/workspaces/{ws}/files/{meta.id}"})


async def list_files(request: Request) -> Response:
    st = _state(request)
    ws = request.path_params["ws"]
    await authorize(request, "read", ws)
    limit = _int_arg(request, "limit", 100, 1, 1000)
    offset = _int_arg(request, "offset", 0, 0, 1 << 62)
    async with st.admit():
        files, total = await st.run_io(st.store.list, ws, limit, offset)
    nxt = offset + len(files) if offset + len(files) < total else None
    return JSONResponse({"files": [f.to_json() for f in files], "total": total,
                         "limit": limit, "offset": offset, "next_offset": nxt})


async def _file_meta(request: Request, role: str) -> tuple[_State, FileMeta]:
    st = _state(request)
    ws = request.path_params["ws"]
    await authorize(request, role, ws)
    file_id = parse_file_id(request.path_params["file_id"])
    pin = request.query_params.get("pin")
    if pin and role == "read":
        # ?pin=NAME: a file deleted since a training set pinned it stays readable through it.
        meta: FileMeta = await st.run_io(st.store.get_pinned, ws, file_id, pin)
    else:
        meta = await st.run_io(st.store.get, ws, file_id)
    return st, meta


async def get_file(request: Request) -> Response:
    _, meta = await _file_meta(request, "read")
    return JSONResponse(meta.to_json())


async def delete_file(request: Request) -> Response:
    st = _state(request)
    _, meta = await _file_meta(request, "write")
    await st.run_io(st.store.delete, meta.workspace, meta.id)
    return JSONResponse({"deleted": str(meta.id)})


def _disposition(kind: str, filename: str) -> str:
    fallback = filename.encode("ascii", "replace").decode("ascii")
    fallback = fallback.replace('"', "'").replace("\\", "_").replace("?", "_")
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _etag_matches(header: str, etag: str) -> bool:
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or any(t.removeprefix("W/") == etag for t in tags)


async def _serve_file(request: Request, kind: str) -> Response:
    st, meta = await _file_meta(request, "read")
    headers = {
        "ETag": meta.etag,
        "Cache-Control": _CACHE_CONTROL,
        "Last-Modified": email.utils.format_datetime(meta.created_at, usegmt=True),
        "Accept-Ranges": "bytes",
        "Content-Disposition": _disposition(kind, meta.filename),
        # Uploaded HTML or SVG must not run as this origin's page.
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox",
    }
    inm = request.headers.get("if-none-match")
    if inm is not None and _etag_matches(inm, meta.etag):
        return Response(status_code=304, headers=headers)
    rng = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if rng and if_range is not None and if_range.strip() != meta.etag:
        rng = None  # the client's copy is stale: send the whole new representation
    span = parse_range(rng, meta.size)
    start, end = span if span is not None else (0, meta.size)
    status = 200
    if span is not None:
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{meta.size}"
    headers["Content-Length"] = str(end - start)
    if request.method == "HEAD" or end == start:
        return Response(status_code=status, headers=headers, media_type=meta.content_type)
    if SENDFILE in request.scope.get("extensions", {}):
        local = await st.run_io(st.store.open_local, meta)
        if local is not None:
            return _SendfileResponse(st, local, start, end, status, headers, meta.content_type)
    reader = await st.run_io(st.store.open, meta)

    async def body() -> AsyncIterator[bytes]:
        try:
            await st.run_io(reader.seek, start)
            left = end - start
            while left > 0:
                data = await st.run_io(reader.read, min(_CHUNK, left))
                if not data:
                    break
                left -= len(data)
                yield data
        finally:
            with anyio.CancelScope(shield=True):
                await st.run_io(reader.close)

    return StreamingResponse(body(), status_code=status, headers=headers,
                             media_type=meta.content_type)


class _SendfileResponse(Response):
    """Headers, then bytes ``start`` to ``end`` of an open local file sent by the server
    with ``sendfile`` (the ``tarndb.sendfile`` extension of api/_protocol.py): no copy
    through Python. Servers without the extension get the streamed response instead."""

    def __init__(self, st: _State, file: Any, start: int, end: int, status: int,
                 headers: dict[str, str], media_type: str) -> None:
        super().__init__(None, status, headers, media_type)
        self._st, self._file, self._start, self._end = st, file, start, end

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code,
                        "headers": self.raw_headers})
            await send({"type": SENDFILE, "file": self._file, "offset": self._start,
                        "count": self._end - self._start})
        finally:
            with anyio.CancelScope(shield=True):
                await self._st.run_io(self._file.close)


async def file_content(request: Request) -> Response:
    return await _serve_file(request, "inline")


async def file_download(request: Request) -> Response:
    return await _serve_file(request, "attachment")


# -- endpoints: tokens -------------------------------------------------------------------


def _within(token: Token, admin: Token) -> bool:
    if token.org != admin.org:
        return False
    if admin.workspaces is None:
        return True
    return token.workspaces is not None and set(token.workspaces) <= set(admin.workspaces)


async def create_token(request: Request) -> Response:
    st = _state(request)
    admin = await authorize(request, "admin")
    body = await json_body(request)
    org = body.get("org", admin.org)
    if org != admin.org:
        raise InsufficientPrivilege("an admin can only create tokens for its own org")
    role = body.get("role", "read")
    if role not in ROLES:
        raise InvalidRequest(f"role must be one of {', '.join(ROLES)}")
    workspaces = body.get("workspaces", "*" if admin.workspaces is None else
                          list(admin.workspaces))
    name = body.get("name", "")
    if not isinstance(name, str):
        raise InvalidRequest("name must be a string")
    plaintext, token = await st.run_io(st.tokens.create, org=org, role=role,
                                    workspaces=workspaces, name=name)
    if not _within(token, admin):
        await st.run_io(st.tokens.revoke, token.id)
        raise InsufficientPrivilege("an admin can only grant workspaces it has itself")
    return JSONResponse({"token": plaintext, **token.to_json()}, status_code=201)


async def list_tokens(request: Request) -> Response:
    st = _state(request)
    admin = await authorize(request, "admin")
    tokens = await st.run_io(st.tokens.list, admin.org)
    return JSONResponse({"tokens": [t.to_json() for t in tokens if _within(t, admin)]})


async def revoke_token(request: Request) -> Response:
    st = _state(request)
    admin = await authorize(request, "admin")
    token_id = request.path_params["token_id"]
    if not re.fullmatch(r"[0-9a-f]{16}", token_id):
        raise InvalidRequest(f"invalid token id: {token_id!r}")
    token = await st.run_io(st.tokens.get, token_id)
    if not _within(token, admin):
        raise NotFound(f"token {token_id!r} not found")
    await st.run_io(st.tokens.revoke, token_id)
    return JSONResponse({"revoked": token_id})


# -- errors ------------------------------------------------------------------------------


def error_response(exc: TarnError) -> Response:
    headers: dict[str, str] = {}
    if exc.http_status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="tarndb"'
    if isinstance(exc, TooManyRequests):
        headers["Retry-After"] = "1"
    if isinstance(exc, RangeNotSatisfiable):
        headers["Content-Range"] = f"bytes */{exc.size}"
    return JSONResponse({"error": exc.to_dict()}, status_code=exc.http_status, headers=headers)


async def _on_tarn_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TarnError)
    if isinstance(exc, TooManyRequests):
        resp = error_response(exc)
        resp.headers["Retry-After"] = str(_state(request).settings.retry_after_s)
        return resp
    return error_response(exc)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    err: TarnError
    if exc.status_code == 404:
        err = NotFound(f"no such endpoint: {request.method} {request.url.path}")
    elif exc.status_code == 405:
        err = MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}")
    else:
        err = InvalidRequest(str(exc.detail))
        resp = error_response(err)
        resp.status_code = exc.status_code
        return resp
    return error_response(err)


async def _on_disconnect(request: Request, exc: Exception) -> Response:
    # Nobody is listening any more; the upload code has already cleaned up.
    return Response(status_code=400)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    from ..engine.duck_errors import translate
    from ..errors import DiskFull

    err = translate(exc)
    if isinstance(err, DiskFull):  # an upload or a write that found the disk full: 507
        log.error("%s %s: %s", request.method, request.url.path, exc)
        return error_response(err)
    log.exception("unhandled error in %s %s", request.method, request.url.path)
    return error_response(InternalError(f"internal error: {type(exc).__name__}"))


# -- the app -----------------------------------------------------------------------------


def routes() -> list[Route]:
    ws = "/workspaces/{ws}"
    return [
        Route("/health", health, methods=["GET"]),
        Route("/ready", ready, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        Route("/me", me, methods=["GET"]),
        Route("/openapi.json", openapi, methods=["GET"]),
        Route("/tokens", create_token, methods=["POST"]),
        Route("/tokens", list_tokens, methods=["GET"]),
        Route("/tokens/{token_id}", revoke_token, methods=["DELETE"]),
        Route(f"{ws}/tables/query", query, methods=["POST"]),
        Route(f"{ws}/tables/query/batch", query_batch, methods=["POST"]),
        Route(f"{ws}/tables", list_tables, methods=["GET"]),
        Route(f"{ws}/tables", create_table, methods=["POST"]),
        Route(f"{ws}/tables/{{name}}", get_table, methods=["GET"]),
        Route(f"{ws}/tables/{{name}}", drop_table, methods=["DELETE"]),
        Route(f"{ws}/files", upload_file, methods=["POST"]),
        Route(f"{ws}/files", list_files, methods=["GET"]),
        Route(f"{ws}/files/{{file_id}}", get_file, methods=["GET"]),
        Route(f"{ws}/files/{{file_id}}", delete_file, methods=["DELETE"]),
        Route(f"{ws}/files/{{file_id}}/content", file_content, methods=["GET"]),
        Route(f"{ws}/files/{{file_id}}/download", file_download, methods=["GET"]),
        *_jobs_routes(),
    ]


def _jobs_routes() -> list[Route]:
    from . import _jobs  # imports this module: loaded once the app's helpers exist

    return _jobs.routes()


def create_app(db: Any, settings: ApiSettings | None = None) -> Starlette:
    """The HTTP API over ``db`` (a :class:`tarndb.engine.Database`)."""
    app = Starlette(
        routes=routes(),
        exception_handlers={
            TarnError: _on_tarn_error,
            HTTPException: _on_http_error,
            ClientDisconnect: _on_disconnect,
            Exception: _on_unexpected,
        },
    )
    app.state.tarn = _State(db, settings or ApiSettings())
    from ..pgwire import roles

    roles.install(db)  # role statements and their privilege checks, as over pgwire
    from ._jobs import resume_in_background

    resume_in_background(db)  # training jobs a stopped server left unfinished
    return app


def bootstrap_admin_token(db: Any, settings: ApiSettings) -> str | None:
    """On first start, the admin token to print once (None when one exists or the operator
    supplied ``TARNDB_TOKEN``)."""
    return TokenStore(db.catalog).ensure_admin(settings.org, settings.token)
