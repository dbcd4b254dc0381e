"""``tarndb.Client``: the HTTP API from Python.

Built on httpx because it streams multipart uploads from open files (requests reads the whole
file into memory to build the body). Errors come back as the same :mod:`tarndb.errors` classes
the server raised, matched by their stable ``code``.
"""

from __future__ import annotations

import io
import os
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

import httpx

from .. import errors as _errors
from ..errors import TarnError

_RETRY_ANY = {429, 503}  # the server did not run the request
_RETRY_IDEMPOTENT = {502, 504}
_IDEMPOTENT = {"GET", "HEAD", "DELETE", "OPTIONS"}


def _error_classes() -> dict[str, type[TarnError]]:
    from ..api import _errors as api_errors
    from ..api._ranges import RangeNotSatisfiable
    from ..files import FileTooLarge

    out: dict[str, type[TarnError]] = {}
    for mod in (_errors, api_errors):
        for obj in vars(mod).values():
            if isinstance(obj, type) and issubclass(obj, TarnError):
                out.setdefault(obj.code, obj)
    out[FileTooLarge.code] = FileTooLarge
    out.pop(RangeNotSatisfiable.code, None)  # needs a size; surfaces as a plain TarnError
    return out


class HTTPError(TarnError):
    """An error answer whose code this client does not know (or a non-JSON one)."""

    def __init__(self, message: str, status_code: int, code: str = "http_error",
                 sqlstate: str = "XX000") -> None:
        super().__init__(message)
        self.http_status = status_code  # type: ignore[misc]
        self.code = code  # type: ignore[misc]
        self.sqlstate = sqlstate  # type: ignore[misc]


def _raise_for(resp: httpx.Response) -> None:
    if resp.status_code < 400:
        return
    try:
        err = resp.json()["error"]
        code, message = str(err["code"]), str(err["message"])
    except (ValueError, KeyError, TypeError):
        raise HTTPError(f"HTTP {resp.status_code}: {resp.text[:200]}", resp.status_code) from None
    cls = _error_classes().get(code)
    kwargs = {k: err[k] for k in ("position", "detail", "hint", "column", "table") if k in err}
    exc: TarnError
    if cls is not None:
        exc = cls(message, **kwargs)
        if exc.http_status != resp.status_code or exc.sqlstate != err.get("sqlstate",
                                                                          exc.sqlstate):
            exc = HTTPError(message, resp.status_code, code, err.get("sqlstate", "XX000"))
    else:
        exc = HTTPError(message, resp.status_code, code, err.get("sqlstate", "XX000"))
    exc.response_error = err  # type: ignore[attr-defined]
    raise exc


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[list[Any]]
    row_count: int
    command: str = ""
    column_types: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    def dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r, strict=False)) for r in self.rows]

    def scalar(self) -> Any:
        return self.rows[0][0] if self.rows and self.rows[0] else None

    @classmethod
    def _from_json(cls, d: dict[str, Any]) -> QueryResult:
        return cls(list(d.get("columns", [])), d.get("rows", []), int(d.get("row_count", 0)),
                   d.get("command", ""), list(d.get("column_types", [])),
                   list(d.get("notices", [])))


class Client:
    """A tarndb server's HTTP API, bound to one workspace.

    ``Client(base_url, token, workspace, org=None)``; use as a context manager or call
    :meth:`close`. Requests the server did not run (429, 503, connection refused) are retried
    with exponential backoff; 502 and 504 are retried for idempotent requests only, since a
    write may have happened behind the gateway.
    """

    def __init__(self, base_url: str, token: str, workspace: str, org: str | None = None, *,
                 timeout: float = 120.0, retries: int = 4, backoff_s: float = 0.5,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        if org:
            headers["X-Activeloop-Org-Id"] = org
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.org = org
        self.workspace = workspace
        self.retries = retries
        self.backoff_s = backoff_s
        self._http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers,
                                  timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------

    def _ws(self, path: str) -> str:
        return f"/workspaces/{self.workspace}{path}"

    def _sleep(self, attempt: int, resp: httpx.Response | None) -> None:
        delay = self.backoff_s * (2 ** attempt) * (0.5 + random.random())
        if resp is not None:
            ra = resp.headers.get("retry-after", "")
            if ra.isdigit():
                delay = max(delay, float(ra))
        time.sleep(min(delay, 30.0))

    def _request(self, method: str, path: str, *, rewind: Any = None,
                 **kwargs: Any) -> httpx.Response:
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            if rewind is not None and attempt:
                kwargs = rewind()
            try:
                resp = self._http.request(method, path, **kwargs)
            except httpx.ConnectError:
                if last:
                    raise
                self._sleep(attempt, None)
                continue
            retry = resp.status_code in _RETRY_ANY or (
                resp.status_code in _RETRY_IDEMPOTENT and method in _IDEMPOTENT)
            if retry and not last:
                self._sleep(attempt, resp)
                continue
            _raise_for(resp)
            return resp
        raise AssertionError("unreachable")

    # -- SQL -----------------------------------------------------------------------------

    def query(self, sql: str, params: list[Any] | None = None,
              timeout_ms: int | None = None) -> QueryResult:
        body: dict[str, Any] = {"query": sql}
        if params is not None:
            body["params"] = params
        if timeout_ms is not None:
            body["timeout_ms"] = timeout_ms
        resp = self._request("POST", self._ws("/tables/query"), json=body)
        return QueryResult._from_json(resp.json())

    def query_batch(self, sql: str, params_batch: list[list[Any]]) -> dict[str, Any]:
        """Run ``sql`` once per parameter list, all in one transaction."""
        resp = self._request("POST", self._ws("/tables/query/batch"),
                             json={"query": sql, "params_batch": params_batch})
        out: dict[str, Any] = resp.json()
        return out

    batch = query_batch

    def list_tables(self) -> list[dict[str, Any]]:
        tables: list[dict[str, Any]] = self._request("GET", self._ws("/tables")).json()["tables"]
        return tables

    def describe_table(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = self._request("GET", self._ws(f"/tables/{name}")).json()
        return out

    def create_table(self, name: str, schema: dict[str, str],
                     if_not_exists: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = self._request(
            "POST", self._ws("/tables"),
            json={"name": name, "schema": schema, "if_not_exists": if_not_exists}).json()
        return out

    def drop_table(self, name: str) -> None:
        self._request("DELETE", self._ws(f"/tables/{name}"))

    # -- files ---------------------------------------------------------------------------

    def upload_file(self, source: str | os.PathLike[str] | bytes | IO[bytes],
                    filename: str | None = None,
                    content_type: str | None = None) -> dict[str, Any]:
        """Upload a path, bytes or a binary file object; returns the file's metadata
        (``id``, ``filename``, ``content_type``, ``size``, ``sha256``, ``created_at``).
        Paths and file objects are streamed, never read whole."""
        if isinstance(source, (str, os.PathLike)):
            path = os.fspath(source)
            name = filename or os.path.basename(path)
            with open(path, "rb") as f:
                return self._upload(f, name, content_type)
        if isinstance(source, (bytes, bytearray, memoryview)):
            return self._upload(io.BytesIO(bytes(source)), filename or "file", content_type)
        return self._upload(source, filename or getattr(source, "name", None) or "file",
                            content_type)

    def _upload(self, f: IO[bytes], filename: str, content_type: str | None) -> dict[str, Any]:
        filename = os.path.basename(str(filename))
        try:
            start: int | None = f.tell() if f.seekable() else None
        except (OSError, ValueError):
            start = None

        def files() -> dict[str, Any]:
            part: tuple[Any, ...] = ((filename, f, content_type) if content_type
                                     else (filename, f))
            return {"files": {"file": part}}

        def rewind() -> dict[str, Any]:
            if start is None:
                raise HTTPError("cannot retry an upload from a non-seekable stream", 0)
            f.seek(start)
            return files()

        out: dict[str, Any] = self._request("POST", self._ws("/files"), rewind=rewind,
                                            **files()).json()
        return out

    def download_file(self, file_id: str) -> bytes:
        return self._request("GET", self._ws(f"/files/{file_id}/content")).content

    def download_file_to(self, file_id: str, path: str | os.PathLike[str]) -> str:
        """Stream a file to ``path`` without holding it in memory; returns the path."""
        target = os.fspath(path)
        with self._stream("GET", self._ws(f"/files/{file_id}/download")) as resp, \
                open(target, "wb") as out:
            for chunk in resp.iter_bytes(1 << 20):
                out.write(chunk)
        return target

    def iter_file(self, file_id: str, *, start: int = 0, pin: str | None = None,
                  chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """A file's bytes from offset ``start`` on, streamed in chunks. ``pin`` names a pin
        (a training set's) through which a file deleted since stays readable."""
        headers = {"Range": f"bytes={start}-"} if start else {}
        params = {"pin": pin} if pin else {}
        with self._stream("GET", self._ws(f"/files/{file_id}/content"), headers=headers,
                          params=params) as resp:
            if start and resp.status_code != 206:
                raise HTTPError(f"the server ignored a range request for file {file_id}",
                                resp.status_code)
            yield from resp.iter_bytes(chunk_size)

    @contextmanager
    def _stream(self, method: str, path: str, **kwargs: Any) -> Iterator[httpx.Response]:
        with self._http.stream(method, path, **kwargs) as resp:
            if resp.status_code >= 400:
                resp.read()
                _raise_for(resp)
            yield resp

    def get_file(self, file_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self._request("GET", self._ws(f"/files/{file_id}")).json()
        return out

    def list_files(self, limit: int = 100, offset: int = 0) -> dict[str, Any]:
        out: dict[str, Any] = self._request(
            "GET", self._ws("/files"), params={"limit": limit, "offset": offset}).json()
        return out

    def delete_file(self, file_id: str) -> None:
        self._request("DELETE", self._ws(f"/files/{file_id}"))

    # -- identity ------------------------------------------------------------------------

    def me(self) -> dict[str, Any]:
        out: dict[str, Any] = self._request("GET", "/me").json()
        return out

    def health(self) -> dict[str, Any]:
        out: dict[str, Any] = self._request("GET", "/health").json()
        return out
