"""``VectorStore`` over a tarndb server's HTTP API: seed 002's shape with a server in place of
Deep Lake's hosted service.

Paths that reach a server:

- ``http(s)://host:port`` with ``table=`` (``"ws.table"`` or a name in ``workspace``), or
  ``http(s)://host:port/workspaces/<ws>/tables/<table>``;
- ``tarndb://host:port/<ws>/<table>`` (plain HTTP; ``tarndbs://`` for HTTPS);
- ``hub://<org>/<dataset>`` (or ``hub://<org>/<ws>/<dataset>``) when ``TARNDB_API_URL`` names
  the server (or ``lake=`` is its URL): the table ``<dataset>`` in workspace ``public``.

``token=`` is the server's API token (default ``TARNDB_API_TOKEN``, then ``TARNDB_TOKEN``),
sent as a Bearer token with the org (from ``hub://<org>/``, ``org=`` or ``TARNDB_ORG``) as
``X-Activeloop-Org-Id``.
Every call is a request: ``add``/``delete``/``search`` are SQL through ``/tables/query``;
``deep_memory.train`` posts ``/deep_memory/train`` and returns the job id as soon as the
server has checked the inputs (the job runs on the server); ``status``/``list_jobs`` read
``/jobs``. Embeddings: a model *name* (``embedding_function="minilm"``, default the
workspace's default model) is run by the server (``embed()`` in SQL); a callable runs here:
for ``add`` and ``search``, and for ``deep_memory.train``/``evaluate``, whose queries are then
embedded here and sent as ``query_embeddings`` (training then makes no synthetic queries).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from ..errors import FeatureNotSupported, InvalidParameterValue, NotFound
from ._conditions import delete_where, filter_conditions
from ._conditions import ident as _ident
from ._store import as_recalls, format_jobs, format_status, split_table

HUB_PREFIX = "hub://"
URL_ENV = "TARNDB_API_URL"  # the api_url setting of tarndb.settings
_DEFAULT_TEXT = object()
_ACTIVE = ("pending", "training")


def server_target(path: Any, table: str | None, workspace: str | None, lake: Any
                  ) -> tuple[str, str, str, str | None] | None:
    """(base URL, workspace, table, org from the path) when ``path`` reaches a server, else
    None (a local lake)."""
    if not isinstance(path, (str, os.PathLike)):
        return None
    uri = os.fspath(path)
    scheme = uri.partition("://")[0].lower() if "://" in uri else ""
    if scheme == "hub":
        base = lake if isinstance(lake, str) and "://" in lake else os.environ.get(URL_ENV)
        if not base:
            return None
        parts = uri[len(HUB_PREFIX):].strip("/").split("/")
        if len(parts) not in (2, 3) or not all(p.strip() for p in parts):
            raise InvalidParameterValue(f"{uri!r} is not hub://<org>/<dataset> or "
                                        f"hub://<org>/<workspace>/<dataset>")
        ws = parts[1] if len(parts) == 3 else (workspace or "public")
        return base.rstrip("/"), ws, parts[-1], parts[0]
    if scheme in ("tarndb", "tarndbs"):
        u = urlsplit(uri)
        parts = [p for p in u.path.split("/") if p]
        base = f"{'https' if scheme == 'tarndbs' else 'http'}://{u.netloc}"
        if len(parts) == 2:
            return base, parts[0], parts[1], None
        if not parts and table:
            return (base, *split_table(table, workspace), None)
        raise InvalidParameterValue(f"{uri!r} is not tarndb://host:port/<workspace>/<table>")
    if scheme in ("http", "https"):
        u = urlsplit(uri)
        parts = [p for p in u.path.split("/") if p]
        base = f"{u.scheme}://{u.netloc}"
        if len(parts) == 4 and parts[0] == "workspaces" and parts[2] == "tables":
            return base, parts[1], parts[3], None
        if not parts:
            if table is None:
                raise InvalidParameterValue(
                    f"VectorStore({uri!r}) needs table='workspace.table' (or the URL "
                    f"{base}/workspaces/<ws>/tables/<table>)")
            return (base, *split_table(table, workspace), None)
        raise InvalidParameterValue(f"{uri!r} is not a server URL: give {base} with "
                                    f"table=..., or {base}/workspaces/<ws>/tables/<table>")
    return None




class RemoteVectorStore:
    """A table with an embedding column on a tarndb server (see the module docstring)."""

    def __init__(self, base_url: str, workspace: str, table: str, *, token: str | None,
                 org: str | None = None, embedding_column: str = "embedding",
                 id_column: str | None = "id", text_column: Any = _DEFAULT_TEXT,
                 embedding_function: Any = None, read_only: bool | None = None,
                 create: bool = False, client: Any = None) -> None:
        from ..client.http import Client

        token = token or os.environ.get("TARNDB_API_TOKEN") or os.environ.get("TARNDB_TOKEN")
        if not token:
            raise InvalidParameterValue(
                "VectorStore over a server needs token= (a tarndb API token; or set "
                "TARNDB_API_TOKEN)")
        self.path = f"{base_url}/workspaces/{workspace}/tables/{table}"
        self.base_url = base_url
        self.workspace, self.table = workspace, table
        self.client = client or Client(base_url, token, workspace,
                                       org or os.environ.get("TARNDB_ORG"))
        self._owns_client = client is None
        try:
            names = {t.get("name") for t in self.client.list_tables()}
            if table not in names:
                if not create or read_only:
                    raise NotFound(f'no table "{workspace}"."{table}" on {base_url}')
                self._create_default(embedding_column, id_column or "id")
            self.embedding_column = embedding_column
            self.id_column = id_column or "__rid"
            cols = self.columns()
            if self.id_column != "__rid" and self.id_column not in cols:
                from ..errors import UndefinedColumn

                raise UndefinedColumn(f'id column "{self.id_column}" does not exist in '
                                      f'"{workspace}"."{table}"', column=self.id_column)
            if text_column is _DEFAULT_TEXT:
                self.text_column: str | None = "text" if "text" in cols else None
            else:
                self.text_column = text_column
        except Exception:
            self.close()
            raise
        self.embedding_function = embedding_function
        self.deep_memory = RemoteDeepMemory(self)

    def __repr__(self) -> str:
        return (f"VectorStore({self.base_url!r}, table='{self.workspace}.{self.table}', "
                f"embedding_column={self.embedding_column!r})")

    def __enter__(self) -> RemoteVectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_client:
            self._owns_client = False
            self.client.close()

    # -- the table -------------------------------------------------------------------------

    def _qualified(self) -> str:
        return f"{_ident(self.workspace)}.{_ident(self.table)}"

    def _create_default(self, embedding_column: str, id_column: str) -> None:
        """Deep Lake's default tensors: id, text, embedding, metadata."""
        cols = [f"{_ident(id_column)} TEXT PRIMARY KEY", "text TEXT",
                f"{_ident(embedding_column)} FLOAT4[]", "metadata JSONB"]
        if id_column == "__rid":
            cols = cols[1:]
        self.client.query(f"CREATE TABLE IF NOT EXISTS {self._qualified()} "
                          f"({', '.join(cols)})")

    def columns(self) -> dict[str, str]:
        """Column name -> type, as the server describes the table."""
        d = self.client.describe_table(self.table)
        return {str(c["name"]): str(c.get("type", "")) for c in d.get("columns", [])}

    @property
    def dataset(self) -> RemoteDataset:
        """The table on the server (Deep Lake's ``.dataset``): ``count_rows()``,
        ``columns`` and the server's full ``description`` (indexes, primary key)."""
        return RemoteDataset(self)

    def __len__(self) -> int:
        return int(self.client.query(f"SELECT count(*) FROM {self._qualified()}").scalar())

    # -- embeddings ------------------------------------------------------------------------

    def _model_name(self, fn: Any) -> str | None:
        fn = fn if fn is not None else self.embedding_function
        return fn if isinstance(fn, str) or fn is None else None

    def _embed_here(self, texts: list[str], fn: Any) -> list[list[float]] | None:
        """Vectors from a callable (or an object with ``embed_documents``) run here; None
        when the server embeds (a model name, or no function: the workspace's default)."""
        fn = fn if fn is not None else self.embedding_function
        if fn is None or isinstance(fn, str):
            return None
        method = fn if callable(fn) else getattr(fn, "embed_documents", None) or \
            getattr(fn, "embed", None)
        if not callable(method):
            raise InvalidParameterValue("embedding_function must be a callable, a model name "
                                        "or an object with embed_documents()")
        arr = np.asarray(method(list(texts)), dtype=np.float32)
        if arr.ndim == 1 and len(texts) == 1:
            arr = arr[None, :]
        if arr.shape[0] != len(texts):
            raise InvalidParameterValue(f"embedding_function returned {arr.shape[0]} vectors "
                                        f"for {len(texts)} texts")
        norms = np.linalg.norm(arr, axis=1, keepdims=True)
        return list(np.divide(arr, norms, out=np.zeros_like(arr), where=norms > 0).tolist())

    @staticmethod
    def _embed_sql(model: str | None, mark: str) -> str:
        if model is None:
            return f"embed({mark})"
        return f"embed('{model.replace(chr(39), chr(39) * 2)}', {mark})"

    # -- writing ---------------------------------------------------------------------------

    def add(self, text: Sequence[str] | None = None, embedding: Any = None,
            metadata: Sequence[Any] | None = None, id: Sequence[Any] | None = None,  # noqa: A002
            embedding_data: Sequence[str] | None = None, embedding_function: Any = None,
            embedding_tensor: str | None = None, return_ids: bool = True,
            rate_limiter: Any = None, batch_byte_size: int | None = None,
            **tensors: Sequence[Any]) -> list[Any] | None:
        """Add rows, as Deep Lake's ``VectorStore.add`` (see the local store): one
        ``/tables/query/batch`` request per 500 rows, in one transaction each. Texts to embed
        go to the server's ``embed()`` unless ``embedding_function`` is a callable."""
        column = embedding_tensor or self.embedding_column
        given: dict[str, list[Any]] = {}
        if text is not None:
            if self.text_column is None:
                raise InvalidParameterValue(f'"{self.workspace}"."{self.table}" has no text '
                                            f"column")
            given[self.text_column] = list(text)
        if metadata is not None:
            given["metadata"] = [None if m is None else json.dumps(m) for m in metadata]
        for name, values in tensors.items():
            given[name] = list(values)
        if embedding is not None:
            given[column] = [None if v is None else np.asarray(v, np.float32).tolist()
                             for v in embedding]
        to_embed: list[str] | None = None
        if embedding is None and (embedding_data is not None or text is not None):
            to_embed = list(embedding_data) if embedding_data is not None else list(text or [])
            here = self._embed_here(to_embed, embedding_function)
            if here is not None:
                given[column] = here
                to_embed = None
        if not given and to_embed is None:
            raise InvalidParameterValue("add() needs text, embedding or metadata")
        sizes = {len(v) for v in given.values()} | ({len(to_embed)} if to_embed else set())
        if len(sizes) != 1:
            raise InvalidParameterValue(f"add(): the columns given have different lengths "
                                        f"({', '.join(str(n) for n in sorted(sizes))})")
        n = sizes.pop()
        ids: list[Any] | None = None
        if self.id_column != "__rid":
            ids = list(id) if id is not None else [str(uuid.uuid4()) for _ in range(n)]
            if len(ids) != n:
                raise InvalidParameterValue(f"add(): {len(ids)} ids for {n} rows")
            given = {self.id_column: ids, **given}
        elif id is not None:
            raise InvalidParameterValue("this store has no id column to take ids")
        names = list(given)
        marks = []
        for i, c in enumerate(names, start=1):
            cast = "::jsonb" if c == "metadata" else "::float4[]" if c == column else ""
            marks.append(f"${i}{cast}")
        if to_embed is not None:
            names.append(column)
            marks.append(self._embed_sql(self._model_name(embedding_function),
                                         f"${len(marks) + 1}"))
        sql = (f"INSERT INTO {self._qualified()} ({', '.join(_ident(c) for c in names)}) "
               f"VALUES ({', '.join(marks)})")
        rows = [[given[c][i] for c in given] + ([to_embed[i]] if to_embed is not None else [])
                for i in range(n)]
        for start in range(0, n, 500):
            self.client.query_batch(sql, rows[start:start + 500])
        return ids if return_ids else None

    def delete(self, row_ids: Sequence[int] | None = None, ids: Sequence[Any] | None = None,
               filter: dict[str, Any] | str | None = None, query: str | None = None,  # noqa: A002
               exec_option: str | None = None, delete_all: bool | None = None) -> bool:
        """Delete rows by ``ids``, a ``filter`` (``{"column": value}`` or a SQL condition),
        or all (``delete_all=True``); returns True."""
        clause = delete_where(self.id_column, ids, filter, delete_all, row_ids, query)
        if clause is None:
            return True
        where, params = clause
        self.client.query(f"DELETE FROM {self._qualified()}{where}", params)
        return True

    # -- search ----------------------------------------------------------------------------

    def search(self, embedding_data: str | Sequence[str] | None = None,
               embedding_function: Any = None, embedding: Any = None, k: int = 4,
               distance_metric: str | None = None, query: str | None = None,
               filter: dict[str, Any] | str | None = None, exec_option: str | None = None,  # noqa: A002
               embedding_tensor: str | None = None, return_tensors: list[str] | None = None,
               return_view: bool = False, deep_memory: bool = False, exact: bool = False
               ) -> dict[str, list[Any]] | list[dict[str, list[Any]]]:
        """Top ``k`` rows for a text or a vector, as the local store's ``search`` (same
        result shape), by SQL on the server; ``deep_memory=True`` ranks with the table's
        trained model (``deep_memory(...)`` in SQL)."""
        if query is not None or return_view:
            raise FeatureNotSupported("TQL queries and views are not supported; use SQL")
        if distance_metric not in (None, "cos", "cosine"):
            raise FeatureNotSupported(f"distance_metric {distance_metric!r}: tarndb ranks by "
                                      f"cosine similarity")
        if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
            raise InvalidParameterValue("k must be a positive integer")
        column = embedding_tensor or self.embedding_column
        single = True
        queries: list[Any]
        by_text = False
        if embedding is not None:
            q = np.asarray(embedding, dtype=np.float32)
            single = q.ndim == 1
            queries = (q[None, :] if single else q).tolist()
        elif embedding_data is not None:
            single = isinstance(embedding_data, str)
            texts = [embedding_data] if isinstance(embedding_data, str) else list(embedding_data)
            if not texts:
                raise InvalidParameterValue("embedding_data is empty")
            here = self._embed_here(texts, embedding_function)
            by_text = here is None
            queries = texts if here is None else here
        else:
            raise InvalidParameterValue("search needs embedding_data (text) or embedding")
        qv = self._embed_sql(self._model_name(embedding_function), "$1") if by_text \
            else "$1::float4[]"
        if deep_memory:
            qv = (f"deep_memory('{self.table.replace(chr(39), chr(39) * 2)}', "
                  f"'{column.replace(chr(39), chr(39) * 2)}', {qv})")
        cols = self.columns()
        if return_tensors is None:
            return_tensors = ["metadata"] if "metadata" in cols else []
        names = [self.id_column] + ([self.text_column] if self.text_column else []) + \
            [c for c in return_tensors if c not in (self.id_column, self.text_column)]
        numbered: list[Any] = [None]  # $1 is the query
        conds = filter_conditions(filter, numbered)
        extra = numbered[1:]
        where = " WHERE " + " AND ".join(conds) if conds else ""
        if exact:
            raise FeatureNotSupported("exact=True over a server: the table's version is not "
                                      "in its HTTP description; search a local lake for an "
                                      "exact scan")
        name = self.table
        sql = (f"SELECT {', '.join(_ident(c) for c in names)}, "
               f"{_ident(column)} <#> {qv} AS __score FROM {_ident(self.workspace)}."
               f"{_ident(name)}{where} ORDER BY __score DESC LIMIT {int(k)}")
        out = []
        for qp in queries:
            rows = self.client.query(sql, [qp, *extra]).rows
            res: dict[str, list[Any]] = {"id": [r[0] for r in rows],
                                         "score": [float(r[-1]) for r in rows]}
            for j, c in enumerate(names[1:], start=1):
                res[c] = [r[j] for r in rows]
            out.append(res)
        return out[0] if single else out


class RemoteDataset:
    """What a server tells of a store's table, read when asked."""

    def __init__(self, store: RemoteVectorStore) -> None:
        self._store = store
        self.description: dict[str, Any] = dict(store.client.describe_table(store.table))

    @property
    def columns(self) -> dict[str, str]:
        return {str(c["name"]): str(c.get("type", ""))
                for c in self.description.get("columns", [])}

    def count_rows(self) -> int:
        return int(self.description.get("row_count") or 0)

    def __repr__(self) -> str:
        return f"<RemoteDataset {self._store.path}>"


class RemoteDeepMemory:
    """Deep Memory of a :class:`RemoteVectorStore`: jobs run on the server."""

    def __init__(self, store: RemoteVectorStore) -> None:
        self.store = store

    def _body(self, embedding_function: Any, queries: list[str] | None
              ) -> dict[str, Any]:
        """The request body's store and model fields. A model name goes to the server; a
        callable embeds the queries here and they go as ``query_embeddings``."""
        s = self.store
        fn = embedding_function if embedding_function is not None else s.embedding_function
        body: dict[str, Any] = {"table": s.table, "embedding_column": s.embedding_column,
                                "id_column": s.id_column, "queries": queries}
        if s.text_column is not None:
            body["text_column"] = s.text_column
        if isinstance(fn, str) and fn:
            body["embedding_model"] = fn
        elif fn is not None:
            if not queries:
                raise InvalidParameterValue(
                    "with an embedding_function of your own the server cannot make "
                    "synthetic queries: give queries and relevance, or a model name")
            body["query_embeddings"] = s._embed_here(list(queries), fn)
        return body

    @staticmethod
    def _pairs(rel: Any) -> list[list[list[Any]]] | None:
        if rel is None:
            return None
        return [[[d, float(sc)] for d, sc in row] for row in rel]

    def train(self, queries: Sequence[str] | None = None, relevance: Any = None,
              embedding_function: Any = None, *, corpus: Any = None,
              pseudo_queries: str | None = "auto", config: Any = None, **_: Any) -> str:
        """Start training on the server; returns the job id at once (the server checks the
        inputs first, so a wrong column or id fails here). With a callable
        ``embedding_function`` the queries are embedded here and sent with the request, and
        no synthetic queries are made (they would need a model on the server)."""
        body = self._body(embedding_function, None if queries is None else list(queries))
        if "query_embeddings" in body:
            pseudo_queries = None
        body.update(relevance=self._pairs(relevance if relevance is not None else corpus),
                    pseudo_queries=pseudo_queries)
        if config is not None:
            body["config"] = config if isinstance(config, dict) else json.loads(
                json.dumps(config, default=lambda o: o.__dict__))
        r = self.store.client._request("POST", self.store.client._ws("/deep_memory/train"),
                                       json=body)
        return str(r.json()["id"])

    def jobs(self) -> list[dict[str, Any]]:
        r = self.store.client._request("GET", self.store.client._ws("/jobs"),
                                       params={"table": self.store.table})
        data = r.json()
        jobs = data.get("jobs", data) if isinstance(data, dict) else data
        return sorted(jobs, key=lambda j: (str(j.get("created_at") or ""), j["id"]))

    def job(self, job_id: str) -> dict[str, Any]:
        r = self.store.client._request("GET", self.store.client._ws(f"/jobs/{job_id}"))
        out: dict[str, Any] = r.json()
        return out

    def status(self, job_id: str) -> None:
        """Print the job's status table, as Deep Lake does."""
        print(format_status(self.job(job_id)))

    def list_jobs(self) -> None:
        print(format_jobs(self.jobs()))

    def cancel(self, job_id: str) -> bool:
        r = self.store.client._request("POST",
                                       self.store.client._ws(f"/jobs/{job_id}/cancel"))
        return bool(r.json().get("cancelled", r.json().get("status") == "cancelled"))

    def wait(self, job_id: str, timeout: float | None = None) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if job.get("status") not in _ACTIVE:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                return job
            time.sleep(0.5)

    def evaluate(self, relevance: Any = None, queries: Sequence[str] | None = None,
                 embedding_function: Any = None, embedding: Any = None,
                 top_k: Sequence[int] = (1, 3, 5, 10, 50, 100), *, corpus: Any = None,
                 train_relevance: Any = None, **_: Any) -> dict[str, Any]:
        """Recall@k with and without the model, computed on the server."""
        if embedding is not None:
            raise FeatureNotSupported("evaluate(embedding=...) over a server: give queries "
                                      "(the server embeds them)")
        body = self._body(embedding_function, None if queries is None else list(queries))
        body.update(relevance=self._pairs(relevance if relevance is not None else corpus),
                    top_k=[int(k) for k in top_k],
                    train_relevance=self._pairs(train_relevance))
        r = self.store.client._request("POST",
                                       self.store.client._ws("/deep_memory/evaluate"),
                                       json=body)
        # the seed reads recalls["with_model"] / ["without_model"]: the same aliases as local
        return as_recalls(r.json())
