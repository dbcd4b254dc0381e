"""HTTP endpoints for background jobs (Deep Memory training) of a workspace.

- ``GET  /workspaces/{ws}/jobs[?table=NAME]``: the workspace's jobs, newest first;
- ``GET  /workspaces/{ws}/jobs/{id}``: one job (status, phase, progress, results, error);
- ``POST /workspaces/{ws}/jobs/{id}/cancel``: stop a pending or training job;
- ``POST /workspaces/{ws}/deep_memory/train``: check the inputs and start training (202);
- ``POST /workspaces/{ws}/deep_memory/evaluate``: recall@k with and without the model.

Jobs run in threads of this server process (:mod:`tarndb.deepmemory`); the app resumes jobs an
earlier server left unfinished when it is created. Searching with a trained model is SQL:
``emb <#> deep_memory('table', 'emb', $1)`` through ``/tables/query``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import InvalidRequest, NotFound
from ._app import _check_table_name, _state, authorize, json_body

log = logging.getLogger("tarndb.api")

_JOB_ID = re.compile(r"^[0-9a-f]{24}$")
#: record fields a client sees (lake paths and the owner's pid stay inside)
_PUBLIC = ("id", "kind", "workspace", "table", "column", "id_column", "text_column", "status",
           "phase", "progress", "results", "error", "attempts", "table_version", "queries",
           "pairs", "pseudo_queries", "embedding_model", "config")
_TIMES = ("created_at", "started_at", "finished_at", "resumed_at", "heartbeat")


def job_json(job: dict[str, Any]) -> dict[str, Any]:
    """A job record as the API shows it: timestamps in ISO 8601 (UTC)."""
    out = {k: job.get(k) for k in _PUBLIC}
    for k in _TIMES:
        t = job.get(k)
        out[k] = None if t is None else dt.datetime.fromtimestamp(
            float(t), dt.timezone.utc).isoformat()
    return out


def _job_id(request: Request) -> str:
    job_id = request.path_params["job_id"]
    if not _JOB_ID.match(job_id):
        raise NotFound(f"no job {job_id!r}")
    return str(job_id)


def _workspace_jobs(db: Any, ws: str) -> list[dict[str, Any]]:
    from ..deepmemory import recover_jobs

    jobs = [j for j in recover_jobs(db).values() if j.get("workspace") == ws]
    return sorted(jobs, key=lambda j: (j.get("created_at", 0), j["id"]), reverse=True)


def _one(db: Any, ws: str, job_id: str) -> dict[str, Any]:
    for j in _workspace_jobs(db, ws):
        if j["id"] == job_id:
            return j
    raise NotFound(f"no job {job_id!r} in workspace {ws!r}")


async def list_jobs(request: Request) -> Response:
    st = _state(request)
    ws = request.path_params["ws"]
    await authorize(request, "read", ws)
    table = request.query_params.get("table")

    def work() -> list[dict[str, Any]]:
        return [job_json(j) for j in _workspace_jobs(st.db, ws)
                if table is None or j.get("table") == table]

    return JSONResponse({"jobs": await st.run_io(work)})


async def get_job(request: Request) -> Response:
    st = _state(request)
    ws = request.path_params["ws"]
    await authorize(request, "read", ws)
    job_id = _job_id(request)
    return JSONResponse(job_json(await st.run_io(_one, st.db, ws, job_id)))


async def cancel_job(request: Request) -> Response:
    st = _state(request)
    ws = request.path_params["ws"]
    await authorize(request, "write", ws)
    job_id = _job_id(request)

    def work() -> dict[str, Any]:
        from ..deepmemory._jobs import request_cancel

        _one(st.db, ws, job_id)
        cancelled = request_cancel(st.db, job_id)
        return {"id": job_id, "cancelled": cancelled,
                "status": _one(st.db, ws, job_id).get("status")}

    return JSONResponse(await st.run_io(work))


def _str_field(body: dict[str, Any], name: str, default: str | None = None) -> str | None:
    value = body.get(name, default)
    if value is not None and (not isinstance(value, str) or not value):
        raise InvalidRequest(f"{name} must be a non-empty string")
    return value


def _store(db: Any, ws: str, body: dict[str, Any]) -> Any:
    """The VectorStore a train/evaluate body names (table, embedding/id/text columns,
    embedding_model: default the workspace's default model)."""
    from ..deepmemory import VectorStore
    from ..embeddings import default_model_name
    from ..embeddings._registry import check_sql_name

    table = _check_table_name(body.get("table"))  # type: ignore[arg-type]
    kw: dict[str, Any] = {}
    if "text_column" in body:
        kw["text_column"] = _str_field(body, "text_column")
    model = _str_field(body, "embedding_model")
    if model:
        # A client names models as SQL does: the operator's only, never a path (42501).
        check_sql_name(model, db, ws)
    return VectorStore(db, table=table, workspace=ws,
                       embedding_column=_str_field(body, "embedding_column") or "embedding",
                       id_column=_str_field(body, "id_column", "id"),
                       embedding_function=model or default_model_name(db, ws), **kw)


def _query_vectors(body: dict[str, Any]) -> Any:
    """``query_embeddings``: the client's own vectors for ``queries`` (a client whose
    embedding function is its own code), as a ``list[str] -> vectors`` function over exactly
    those texts; None when not given."""
    vecs = body.get("query_embeddings")
    if vecs is None:
        return None
    import numpy as np

    queries = body.get("queries")
    if not isinstance(vecs, list) or not isinstance(queries, list) or \
            len(vecs) != len(queries):
        raise InvalidRequest("query_embeddings must be a JSON array with one vector per query")
    try:
        arr = np.asarray(vecs, dtype=np.float32)
    except (TypeError, ValueError):
        raise InvalidRequest("query_embeddings must be arrays of numbers of one length") \
            from None
    if arr.ndim != 2 or not np.isfinite(arr).all():
        raise InvalidRequest("query_embeddings must be arrays of numbers of one length")
    known = {str(q): arr[i] for i, q in enumerate(queries)}

    def embed(texts: list[str]) -> Any:
        missing = [t for t in texts if t not in known]
        if missing:
            raise InvalidRequest(
                f"no query embedding for {missing[0]!r}: with query_embeddings the job embeds "
                f"nothing itself", hint="send pseudo_queries: null (synthetic queries need a "
                "model on the server)")
        return np.stack([known[t] for t in texts])

    return embed


def _lists(body: dict[str, Any], *names: str) -> None:
    for name in names:
        if name in body and body[name] is not None and not isinstance(body[name], list):
            raise InvalidRequest(f"{name} must be a JSON array")


async def train(request: Request) -> Response:
    st = _state(request)
    ws = request.path_params["ws"]
    await authorize(request, "write", ws)
    body = await json_body(request)
    _lists(body, "queries", "relevance", "query_embeddings")
    pseudo = body.get("pseudo_queries", "auto")
    if pseudo is not None and not isinstance(pseudo, str):
        raise InvalidRequest("pseudo_queries must be a string or null")
    own = _query_vectors(body)
    if own is not None and pseudo not in (None, "none"):
        raise InvalidRequest("query_embeddings need pseudo_queries: null (synthetic queries "
                             "are embedded by a model on the server)")
    config = body.get("config")
    if config is not None and not isinstance(config, dict):
        raise InvalidRequest("config must be a JSON object")

    def work() -> dict[str, Any]:
        vs = _store(st.db, ws, body)
        job_id = vs.deep_memory.train(body.get("queries"), body.get("relevance"),
                                      embedding_function=own, pseudo_queries=pseudo,
                                      config=config)
        return job_json(_one(st.db, ws, job_id))

    async with st.admit():
        # The inputs are checked and the model loaded here (seconds at first use).
        return JSONResponse(await st.run(work), status_code=202)


async def evaluate(request: Request) -> Response:
    st = _state(request)
    ws = request.path_params["ws"]
    await authorize(request, "read", ws)
    body = await json_body(request)
    _lists(body, "queries", "relevance", "train_relevance", "top_k", "query_embeddings")
    top_k = body.get("top_k") or [1, 3, 5, 10, 50, 100]
    if not all(isinstance(k, int) and not isinstance(k, bool) and k > 0 for k in top_k):
        raise InvalidRequest("top_k must be positive integers")

    def work() -> dict[str, Any]:
        vs = _store(st.db, ws, body)
        own = body.get("query_embeddings")
        if own is not None:
            _query_vectors(body)  # checks the shape
        return dict(vs.deep_memory.evaluate(body.get("relevance"), body.get("queries"),
                                            embedding=own, top_k=top_k,
                                            train_relevance=body.get("train_relevance")))

    async with st.admit():
        return JSONResponse(await st.run(work))


def resume_in_background(db: Any) -> None:
    """Resume (or fail) jobs whose server stopped, off the caller's thread: at start, then
    every ``SWEEP_S`` seconds, so a job whose server died is taken over by another server
    on the lake (the job's lease decides which one: deepmemory/_jobs.py)."""
    def run() -> None:
        from ..deepmemory import recover_jobs
        from ..deepmemory._jobs import SWEEP_S

        while not getattr(db, "_closed", False):
            try:
                recover_jobs(db)
            except Exception:  # a lake without jobs, or one closing: nothing to resume
                if getattr(db, "_closed", False):
                    return
                log.exception("resuming deep memory jobs failed")
            time.sleep(SWEEP_S)

    threading.Thread(target=run, name="deepmemory-sweep", daemon=True).start()


def routes() -> list[Route]:
    ws = "/workspaces/{ws}"
    return [
        Route(f"{ws}/jobs", list_jobs, methods=["GET"]),
        Route(f"{ws}/jobs/{{job_id}}", get_job, methods=["GET"]),
        Route(f"{ws}/jobs/{{job_id}}/cancel", cancel_job, methods=["POST"]),
        Route(f"{ws}/deep_memory/train", train, methods=["POST"]),
        Route(f"{ws}/deep_memory/evaluate", evaluate, methods=["POST"]),
    ]
