"""Where a training set comes from: an embedded lake (``tarndb.open``) or a server's HTTP API.

Both answer SQL the same way, so building and loading a training set is one code path; they
differ in how file bytes are read. File readers are small picklable objects that open their
connection (a file store or an HTTP client) lazily and again in each process, so a PyTorch
``DataLoader`` can fork or spawn workers from them safely.
"""

from __future__ import annotations

import os
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import httpx
import pyarrow as pa

from ..errors import NotFound, TarnError
from ._spec import FileRef, TrainingSetError

_CHUNK = 1 << 20


@dataclass
class Rows:
    """A query's answer: column names and Postgres type names, rows, Arrow when native."""

    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]
    arrow: pa.Table | None = None


class Source(ABC):
    """SQL and file bytes of one workspace."""

    workspace: str

    @abstractmethod
    def query(self, sql: str, params: list[Any] | None = None) -> Rows: ...

    @abstractmethod
    def reader(self, pin: str | None) -> FileReader: ...

    @abstractmethod
    def describe(self) -> dict[str, Any]: ...

    def close(self) -> None:  # noqa: B027 - most sources hold nothing to release
        return None


class LocalSource(Source):
    """A :class:`tarndb.Database` opened in this process."""

    def __init__(self, db: Any, workspace: str) -> None:
        self.db = db
        self.workspace = workspace

    def query(self, sql: str, params: list[Any] | None = None) -> Rows:
        session = self.db.session(workspace=self.workspace)
        try:
            res = session.execute(sql, params)
        finally:
            session.close()
        return Rows([c.name for c in res.columns], [c.type.pg_name for c in res.columns],
                    list(res.rows), res.arrow() if res.columns else None)

    def reader(self, pin: str | None) -> FileReader:
        lake = self.db.lake
        return LocalFileReader(lake.uri, dict(lake.storage_options or {}), self.workspace)

    def describe(self) -> dict[str, Any]:
        return {"kind": "local", "uri": self.db.lake.uri}


class HttpSource(Source):
    """A tarndb server, through :class:`tarndb.Client` (base URL + token)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.workspace = client.workspace

    def query(self, sql: str, params: list[Any] | None = None) -> Rows:
        res = self.client.query(sql, params)
        rows = [tuple(r) for r in res.rows]
        return Rows(list(res.columns), list(res.column_types), rows, None)

    def reader(self, pin: str | None) -> FileReader:
        c = self.client
        return HttpFileReader(c.base_url, c.token, self.workspace, c.org, pin)

    def describe(self) -> dict[str, Any]:
        return {"kind": "http", "base_url": self.client.base_url}

    def close(self) -> None:
        self.client.close()


def open_source(db: Any, workspace: str | None = None, token: str | None = None,
                org: str | None = None) -> Source:
    """A source from a Database, a :class:`tarndb.Client`, or an ``http(s)://`` URL (with
    ``token`` and ``workspace``)."""
    if isinstance(db, Source):
        return db
    if isinstance(db, str) and db.startswith(("http://", "https://")):
        if not token:
            raise TrainingSetError("a server URL needs an API token (token=...)")
        from ..client.http import Client

        return HttpSource(Client(db, token, workspace or "public", org))
    from ..engine.database import Database

    if isinstance(db, Database):
        return LocalSource(db, workspace or "public")
    from ..client.http import Client

    if isinstance(db, Client):
        if workspace and workspace != db.workspace:
            return HttpSource(Client(db.base_url, db.token, workspace, db.org))
        return HttpSource(db)
    raise TrainingSetError(f"db must be a tarndb.Database, a tarndb.Client or an http(s) URL, "
                           f"not {type(db).__name__}")


# -- file readers ------------------------------------------------------------------------


class FileReader(ABC):
    """Reads the bytes of a training set's files. Picklable; connects lazily per process."""

    #: errors after which a read may simply be tried again (from where it stopped)
    transient: tuple[type[BaseException], ...] = ()

    def local_path(self, ref: FileRef) -> str | None:
        """An OS path holding the file's bytes, when the lake is on this machine's disk."""
        return None

    def read(self, ref: FileRef) -> bytes:
        return b"".join(self.iter_bytes(ref))

    def read_into(self, ref: FileRef, out: memoryview) -> int:
        """Read the file into ``out`` (sized for it); returns the bytes the file has."""
        data = self.read(ref)
        n = min(len(data), len(out))
        out[:n] = data[:n]
        return len(data)

    @abstractmethod
    def iter_bytes(self, ref: FileRef, start: int = 0) -> Iterator[bytes]: ...


class LocalFileReader(FileReader):
    def __init__(self, uri: str, storage_options: dict[str, str], workspace: str) -> None:
        self.uri = uri
        self.storage_options = storage_options
        self.workspace = workspace
        self._store: Any = None
        self._pid = -1
        self._local_base: str | None = None
        self._prefix = ""

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_store"] = None  # filesystem handles (S3 clients) do not survive a fork
        state["_pid"] = -1
        return state

    def _files(self) -> Any:
        if self._store is None or self._pid != os.getpid():
            from ..files import FileStore

            store = FileStore(self.uri, self.storage_options or None)
            self._local_base = store.base_path if store.fs.type_name == "local" else None
            # The store's layout, <ws>/_files/<id[:2]>/<id>, computed once: per-file path
            # building is on the loader's hot path.
            sample = str(uuid.UUID(int=0))
            self._prefix = str(store._blob_path(self.workspace, uuid.UUID(sample)))[
                :-(len(sample) + 3)]
            self._store, self._pid = store, os.getpid()
        return self._store

    def _blob(self, ref: FileRef) -> str:
        if self._store is None or self._pid != os.getpid():
            self._files()
        return f"{self._prefix}{ref.id[:2]}/{ref.id}"

    def read_into(self, ref: FileRef, out: memoryview) -> int:
        path = self._blob(ref)
        if self._local_base is None:
            return super().read_into(ref, out)
        try:
            with open(path, "rb", buffering=0) as f:
                n = 0
                while n < len(out):
                    got = f.readinto(out[n:])
                    if not got:
                        break
                    n += got
                return n + len(f.read(1))  # one byte more means the file grew
        except FileNotFoundError:
            raise _gone(ref) from None

    def local_path(self, ref: FileRef) -> str | None:
        path = self._blob(ref)
        return path if self._local_base is not None else None

    def read(self, ref: FileRef) -> bytes:
        path = self._blob(ref)
        try:
            if self._local_base is not None:
                # Plain file I/O: one syscall path, no Arrow buffer in between.
                with open(path, "rb") as f:
                    return f.read()
            with self._files().fs.open_input_file(path) as f:
                return bytes(f.read())
        except FileNotFoundError:
            raise _gone(ref) from None

    def iter_bytes(self, ref: FileRef, start: int = 0) -> Iterator[bytes]:
        path = self._blob(ref)
        try:
            f: IO[bytes] | Any = (open(path, "rb") if self._local_base is not None  # noqa: SIM115
                                  else self._files().fs.open_input_file(path))
        except FileNotFoundError:
            raise _gone(ref) from None
        with f:
            f.seek(start)
            while chunk := f.read(_CHUNK):
                yield bytes(chunk)


class HttpFileReader(FileReader):
    transient = (httpx.TransportError,)

    def __init__(self, base_url: str, token: str, workspace: str, org: str | None,
                 pin: str | None) -> None:
        self.base_url = base_url
        self.token = token
        self.workspace = workspace
        self.org = org
        self.pin = pin
        self._client: Any = None
        self._pid = -1
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_client"] = None  # sockets must not be shared with a forked child
        state["_pid"] = -1
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _http(self) -> Any:
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                from ..client.http import Client

                self._client = Client(self.base_url, self.token, self.workspace, self.org)
                self._pid = os.getpid()
            return self._client

    def iter_bytes(self, ref: FileRef, start: int = 0) -> Iterator[bytes]:
        try:
            yield from self._http().iter_file(ref.id, start=start, pin=self.pin)
        except NotFound:
            raise _gone(ref) from None


def _gone(ref: FileRef) -> TarnError:
    return NotFound(f"file {ref.id} ({ref.filename}) of this training set is gone from the "
                    "file store (deleted and not pinned, or its pin was released)")
