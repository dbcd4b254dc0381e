"""``VectorStore`` and its ``.deep_memory``: the Deep Lake vector store API over a tarndb table.

Training runs as a job (:mod:`._jobs`). What a job needs in order to run again after its
process died is kept on the lake under ``_deepmemory/<workspace>/<table>/``:

- ``<job>.inputs.json``: the queries and relevance as given (written before the job starts);
- ``<job>.prepared.npz``: the embedded queries and pseudo-queries (written once embedded), so
  a job trained with a Python embedding function resumes without it;
- ``<job>.npz``: the trained adapter, with the table version it was trained on.

A job resumes from the prepared file, or from the inputs when its embedding function was a
model name (``"minilm"``) any process can load; otherwise it is marked failed.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import (
    DataError,
    FeatureNotSupported,
    InvalidParameterValue,
    NotFound,
    UndefinedColumn,
    UndefinedTable,
)
from . import _jobs, _synthetic
from ._conditions import delete_where, filter_conditions
from ._model import (
    F32,
    I64,
    Adapter,
    AdapterConfig,
    Miner,
    TrainingCancelled,
    normalize,
    recall_at_k,
    topk_indices,
    train_adapter,
)

log = logging.getLogger(__name__)

DEFAULT_TOP_K = (1, 3, 5, 10, 50, 100)
Relevance = Sequence[Sequence[tuple[Any, float]]]
EmbeddingFunction = Callable[[list[str]], Any]
#: ``pseudo_queries`` modes besides a column name
PSEUDO_MODES = ("auto", "first_sentence", "sentences", "keywords", "all", "none")
#: sentences drawn per document by ``pseudo_queries="sentences"`` (and ``"all"``)
SENTENCES_PER_DOC = 2
#: above this many rows, hard negatives come from the table's vector index (when it has one)
#: instead of an exact scan of every query against every document
INDEX_MINING_MIN_ROWS = 200_000
_DEFAULT_TEXT = object()  # VectorStore(text_column=...) not given: "text" if the table has it


# -- the table at one version ---------------------------------------------------------------


@dataclass
class Snapshot:
    """A table's ids and normalised embeddings at one version. Rows without a vector are
    left out: nothing can retrieve them."""

    version: int
    rids: I64
    ids: list[str]
    emb: F32
    texts: list[str] | None
    row_of_id: dict[str, int]
    row_of_rid: dict[int, int]

    @property
    def dim(self) -> int:
        return int(self.emb.shape[1])


def _vectors(col: pa.ChunkedArray | pa.Array, where: str) -> tuple[F32, np.ndarray]:
    """``FLOAT4[]`` values as an (n, dim) matrix and the mask of non-NULL rows."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    if not valid.any():
        return np.zeros((0, 0), np.float32), valid
    present = arr.filter(pa.array(valid))
    lengths = np.asarray(pc.list_value_length(present).to_numpy(zero_copy_only=False))
    dims = sorted({int(x) for x in lengths.tolist()})
    if len(dims) != 1 or dims[0] == 0:
        raise DataError(f"{where} holds vectors of several dimensions {dims[:5]}; Deep Memory "
                        f"needs one")
    flat = np.asarray(present.flatten().to_numpy(zero_copy_only=False), dtype=np.float32)
    return flat.reshape(-1, dims[0]), valid


def load_snapshot(db: Any, info: Any, column: str, id_column: str,
                  text_column: str | None, version: int | None = None) -> Snapshot:
    where = f'column "{column}" of "{info.workspace}"."{info.name}"'
    try:
        ds = db.store(info).dataset(version)
    except (ValueError, OSError) as e:  # dropped by tarndb_cleanup() or version retention
        raise DataError(f'version {version} of "{info.workspace}"."{info.name}" is no longer '
                        f"on the lake ({e})") from None
    cols = ["__rid", column] + ([id_column] if id_column != "__rid" else []) + \
        ([text_column] if text_column else [])
    t = ds.to_table(columns=list(dict.fromkeys(cols)))
    emb, valid = _vectors(t.column(column), where)
    if emb.shape[0] == 0:
        raise DataError(f'"{info.workspace}"."{info.name}" has no embeddings in column '
                        f'"{column}": Deep Memory needs the documents\' vectors')
    keep = np.flatnonzero(valid)
    rids = t.column("__rid").to_numpy()[keep].astype(np.int64)
    all_ids = t.column(id_column).to_pylist()
    ids = [str(all_ids[i]) for i in keep.tolist()]
    texts = None
    if text_column:
        all_texts = t.column(text_column).to_pylist()
        texts = ["" if all_texts[i] is None else str(all_texts[i]) for i in keep.tolist()]
    return Snapshot(int(ds.version), rids, ids, normalize(emb), texts,
                    {d: i for i, d in enumerate(ids)},
                    {int(r): i for i, r in enumerate(rids.tolist())})


def _check_embedding_column(info: Any, column: str) -> None:
    col = info.column(column)
    if col is None:
        raise UndefinedColumn(
            f'"{info.workspace}"."{info.name}" has no embedding column "{column}"; Deep Memory '
            f"needs a FLOAT4[] column of document embeddings", column=column, table=info.name)
    if col.type.ndim != 1 or col.type.base not in ("float4", "float8"):
        raise DataError(f'column "{column}" is {col.type.pg_name}, not a FLOAT4[] embedding '
                        f"column (one vector per row)")


def split_table(table: str, workspace: str | None) -> tuple[str, str]:
    """``"ws.table"`` or ``table`` (in ``workspace``, default ``public``) -> (ws, table)."""
    if "." in table and workspace is None:
        ws, _, name = table.partition(".")
        return ws.strip('"'), name.strip('"')
    return (workspace or "public"), table.strip('"')


def first_sentence(text: str, max_chars: int = 300) -> str:
    """A document's opening sentence (or its first ``max_chars``): it reads like a query
    about the document."""
    m = re.search(r"(?<=[.!?])\s", text)
    head = text[:m.start()] if m else text
    return head[:max_chars].strip()


# -- files on the lake ----------------------------------------------------------------------


def _lake_parts(workspace: str, table: str, name: str) -> list[str]:
    return ["_deepmemory", workspace, table, name]


def _lake_path(db: Any, parts: Sequence[str]) -> tuple[Any, str]:
    fs, base = db.lake.fs
    return fs, "/".join([base.rstrip("/"), *parts])


def _write_file(db: Any, parts: Sequence[str], data: bytes) -> str:
    fs, path = _lake_path(db, parts)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with fs.open_output_stream(tmp) as f:
        f.write(data)
    fs.move(tmp, path)  # readers never see half a file
    return str(db.lake.uri_for(*parts))


def _delete_file(db: Any, parts: Sequence[str]) -> None:
    import pyarrow.fs as pafs

    fs, path = _lake_path(db, parts)
    if fs.get_file_info(path).type != pafs.FileType.NotFound:
        fs.delete_file(path)


def _read_file(db: Any, parts: Sequence[str]) -> bytes | None:
    import pyarrow.fs as pafs

    fs, path = _lake_path(db, parts)
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return None
    with fs.open_input_stream(path) as f:
        return bytes(f.read())


_adapters: dict[tuple[str, str], Adapter] = {}
_adapters_lock = threading.Lock()


def _load_adapter(db: Any, job_id: str, parts: Sequence[str]) -> Adapter:
    key = (str(db.lake.uri), job_id)
    with _adapters_lock:
        hit = _adapters.get(key)
    if hit is not None:
        return hit
    data = _read_file(db, parts)
    if data is None:
        raise NotFound(f"the deep memory model of job {job_id} is missing from the lake "
                       f"({'/'.join(parts)})")
    ad = Adapter.from_bytes(data)
    with _adapters_lock:
        _adapters[key] = ad
    return ad


def model_key(workspace: str, table: str, column: str) -> str:
    return f"{workspace}.{table}.{column}"


def active_model(db: Any, workspace: str, table: str, column: str) -> tuple[str, Adapter]:
    """(job id, adapter) of the model that ranks ``workspace.table.column`` now: the latest
    completed training job of that column (raises NotFound when there is none)."""
    info = db.catalog.table(workspace, table)
    spec = db.catalog.get_object(_jobs.MODEL_KIND, model_key(workspace, table, column))
    # A table dropped and created again under the same name does not inherit the model.
    if spec is None or int(spec.get("table_oid", info.oid)) != int(info.oid):
        raise NotFound(f'no trained deep memory model for "{workspace}"."{table}" column '
                       f'"{column}"; train one with deep_memory.train(...)')
    job_id = str(spec["job_id"])
    return job_id, _load_adapter(db, job_id, spec["model_parts"])


# -- training jobs --------------------------------------------------------------------------


def _embedder(fn: Any, db: Any, workspace: str) -> EmbeddingFunction:
    """A ``list[str] -> vectors`` callable from what users pass as ``embedding_function``:
    a callable, a registered model name (``"minilm"``) or an object with ``embed`` /
    ``embed_documents`` (LangChain style)."""
    if isinstance(fn, str):
        from ..embeddings import get_model

        model = get_model(fn, db=db, workspace=workspace)
        return lambda texts: model.embed(list(texts))
    if not callable(fn):
        for name in ("embed_documents", "embed"):
            method = getattr(fn, name, None)
            if callable(method):
                bound: Callable[[list[str]], Any] = method
                return lambda texts: bound(list(texts))
        raise InvalidParameterValue(
            f"embedding_function must be a callable, a model name or an object with "
            f"embed_documents(); got {type(fn).__name__}")
    return lambda texts: fn(list(texts))


def _loaded_or_callable(fn: Any) -> bool:
    """Whether ``fn`` can embed right now: anything but the name of a registered model that
    this process has not loaded yet."""
    if not isinstance(fn, str):
        return True
    from ..embeddings import loaded_models
    from ..embeddings._registry import canonical_name

    return canonical_name(fn) in loaded_models()


def _declared_dim(name: str, db: Any) -> int | None:
    """The vector size a sentence-transformers model's files declare (the packaged MiniLM,
    ``st:PATH``, a model directory or a registered one), without loading its weights; None
    when it cannot be told that way."""
    from ..embeddings._local import TORCH_MODEL, packaged_minilm_path
    from ..embeddings._registry import DEFAULT_MODEL, MODEL_KIND, canonical_name

    canon = canonical_name(name)
    path: str | None = None
    if canon == DEFAULT_MODEL:
        return 384  # MiniLM, int8 ONNX in the package
    if canon == TORCH_MODEL:
        path = str(packaged_minilm_path())  # raises MissingDependency when not installed
    elif canon.startswith(("st:", "sentence-transformers:")):
        path = canon.partition(":")[2]
    elif os.path.isdir(os.path.expanduser(canon)):
        path = os.path.expanduser(canon)
    else:
        spec = db.catalog.get_object(MODEL_KIND, name)
        if spec is not None and spec.get("kind") == "sentence-transformers":
            path = str(spec.get("path") or "") or None
    if path is None:
        return None
    try:
        with open(os.path.join(path, "modules.json")) as f:
            modules = json.load(f)
        dim: int | None = None
        for m in modules:
            kind = str(m.get("type", ""))
            conf_path = os.path.join(path, str(m.get("path", "")), "config.json")
            if kind.endswith(".Pooling"):
                with open(conf_path) as f:
                    dim = int(json.load(f)["word_embedding_dimension"])
            elif kind.endswith(".Dense"):
                with open(conf_path) as f:
                    dim = int(json.load(f)["out_features"])
        return dim
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _as_matrix(out: Any, n: int, dim: int | None, column: str) -> F32:
    arr = np.asarray(out, dtype=np.float32)
    if arr.ndim == 1 and n == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] != n:
        raise DataError(f"embedding_function returned shape {arr.shape} for {n} texts; "
                        f"expected ({n}, dim)")
    if dim is not None and arr.shape[1] != dim:
        raise DataError(f'embedding dimension mismatch: the embedding_function gives '
                        f'{arr.shape[1]}-d vectors, column "{column}" holds {dim}-d ones')
    return normalize(arr)


class _EmbedClock:
    """Texts embedded so far against all a job embeds, for the ETA of that stage."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.seconds = 0.0

    def eta_s(self) -> float | None:
        if self.done == 0 or self.seconds <= 0:
            return None
        return (self.total - self.done) * self.seconds / self.done


def _embed_batched(embed: EmbeddingFunction, texts: list[str], dim: int, column: str,
                   ctx: _jobs.JobContext, what: str, batch: int = 256,
                   clock: _EmbedClock | None = None) -> F32:
    """Embed in batches so that a cancel takes effect within one batch. The first batch is
    small, so that an ETA is known within a second or so."""
    parts: list[F32] = [np.zeros((0, dim), np.float32)]
    s = 0
    while s < len(texts):
        ctx.check()
        phase = f"embedding {what} {s}/{len(texts)}"
        eta = None if clock is None else clock.eta_s()
        if eta is None:
            ctx.phase(phase)
        else:
            ctx.progress({"eta_s": eta, "stage": "embedding"}, phase=phase)
        size = batch if clock is None or clock.done else min(batch, 16)
        chunk = texts[s:s + size]
        started = time.monotonic()
        parts.append(_as_matrix(embed(chunk), len(chunk), dim, column))
        if clock is not None:
            clock.done += len(chunk)
            clock.seconds += time.monotonic() - started
        s += len(chunk)
    return np.concatenate(parts)


def _pseudo_texts(mode: str | None, db: Any, info: Any, snap: Snapshot,
                  text_column: str | None, version: int) -> tuple[list[int], list[str]]:
    """(document rows, texts) of the pseudo-queries ``mode`` makes (see ``train``)."""
    if mode is None or mode == "none":
        return [], []
    if mode in ("sentences", "keywords", "all"):
        if snap.texts is None:
            raise InvalidParameterValue(f"pseudo_queries='{mode}' needs the store's "
                                        f"text_column")
        parts = [_pseudo_texts("auto", db, info, snap, text_column, version)] \
            if mode == "all" else []
        if mode in ("sentences", "all"):
            parts.append(_synthetic.sentence_queries(snap.texts, SENTENCES_PER_DOC))
        if mode in ("keywords", "all"):
            parts.append(_synthetic.keyword_queries(snap.texts))
        return [r for p in parts for r in p[0]], [t for p in parts for t in p[1]]
    fallback = False  # empty titles fall back to the document's first sentence ("auto")
    if mode == "auto":
        title = info.column("title")
        if title is not None and title.type.ndim == 0 and title.type.base in ("text",
                                                                                 "varchar"):
            mode, fallback = "title", snap.texts is not None
        elif text_column:
            mode = "first_sentence"
        else:
            return [], []
    if mode == "first_sentence":
        if snap.texts is None:
            raise InvalidParameterValue("pseudo_queries='first_sentence' needs the store's "
                                        "text_column")
        texts = [first_sentence(t) for t in snap.texts]
    else:
        col = info.column(mode)
        if col is None:
            raise UndefinedColumn(f'pseudo_queries: column "{mode}" does not exist in '
                                  f'"{info.workspace}"."{info.name}"', column=mode)
        if col.type.ndim != 0 or col.type.base not in ("text", "varchar", "bpchar"):
            raise InvalidParameterValue(f'pseudo_queries: column "{mode}" is not a text '
                                        f"column")
        t = db.store(info).dataset(version).to_table(columns=["__rid", mode])
        by_rid = dict(zip(t.column("__rid").to_pylist(), t.column(mode).to_pylist(),
                          strict=True))
        texts = ["" if by_rid.get(r) is None else str(by_rid[r]) for r in snap.rids.tolist()]
        if fallback and snap.texts is not None:
            # BEIR and MS MARCO passage sets have a title column that is empty throughout
            texts = [t if t.strip() else first_sentence(doc)
                     for t, doc in zip(texts, snap.texts, strict=True)]
    keep = [i for i, s in enumerate(texts) if s.strip()]
    return keep, [texts[i] for i in keep]


def _index_miner(db: Any, info: Any, column: str, snap: Snapshot) -> Miner | None:
    """Hard-negative mining through the table's own vector index, for large tables."""
    if snap.emb.shape[0] < INDEX_MINING_MIN_ROWS or info.index_on(column) is None:
        return None
    from ..search import vector_topk

    ds = db.store(info).dataset(snap.version)

    def mine(queries: F32, k: int) -> I64:
        out = np.full((queries.shape[0], k), -1, dtype=np.int64)
        for i, q in enumerate(queries):
            hits = vector_topk(ds, column, q, k)
            rows = [snap.row_of_rid.get(int(r), -1) for r in hits.row_keys.tolist()][:k]
            out[i, :len(rows)] = rows
        return out

    return mine


def _job_work(db: Any, embed: EmbeddingFunction | None) -> _jobs.Work:
    """The work of a deep memory training job; ``embed`` is the caller's embedding function
    (None when resuming: then the prepared file or the recorded model name is used)."""

    def work(ctx: _jobs.JobContext) -> dict[str, Any]:
        try:
            return _train_job(ctx, db, embed)
        finally:
            # Only a killed process leaves its embedded queries behind (to resume from);
            # they are megabytes per job.
            try:
                _delete_file(db, ctx.record["prepared_parts"])
            except OSError:
                log.warning("could not delete %s", "/".join(ctx.record["prepared_parts"]))

    return work


def _train_job(ctx: _jobs.JobContext, db: Any, embed: EmbeddingFunction | None
               ) -> dict[str, Any]:
    job = ctx.record
    ws, table, column = str(job["workspace"]), str(job["table"]), str(job["column"])
    info = db.catalog.table(ws, table)
    if int(info.oid) != int(job["table_oid"]):
        raise UndefinedTable(f'"{ws}"."{table}" was dropped (or re-created) after the '
                             f"job started")
    version = int(job["table_version"])
    ctx.phase("reading the table")
    snap = load_snapshot(db, info, column, str(job["id_column"]), job.get("text_column"),
                         version)
    prepared = _read_file(db, job["prepared_parts"])
    if prepared is not None:
        kw = _load_prepared(prepared, snap)
    else:
        kw = _prepare(ctx, db, info, snap, embed, version)
        _write_file(db, job["prepared_parts"], _dump_prepared(kw, snap))
    ctx.check()
    ctx.phase("mining hard negatives")
    cfg = AdapterConfig.from_json(job.get("config"))

    def progress(p: dict[str, Any]) -> None:
        ctx.progress(p, phase=f"epoch {p['epoch']}/{p['max_epochs']}")

    started = time.monotonic()
    adapter = train_adapter(
        kw["query_emb"], kw["relevant"], snap.emb, config=cfg,
        pseudo_emb=kw["pseudo_emb"], pseudo_docs=kw["pseudo_docs"],
        miner=_index_miner(db, info, column, snap), progress=progress,
        should_stop=ctx.should_stop)
    seen = sorted({snap.ids[r] for rel in kw["relevant"] for r, s in rel if s > 0})
    adapter.meta.update(job_id=job["id"], workspace=ws, table=table, column=column,
                        table_version=version, table_oid=int(info.oid),
                        seen_doc_ids=seen, pseudo_queries=len(kw["pseudo_docs"]))
    parts = _lake_parts(ws, table, f"{job['id']}.npz")
    uri = _write_file(db, parts, adapter.to_bytes())
    db.catalog.put_object(_jobs.MODEL_KIND, model_key(ws, table, column), {
        "job_id": job["id"], "model_parts": parts, "model_uri": uri,
        "table_version": version, "table_oid": int(info.oid), "dim": adapter.dim,
        "trained_at": time.time()})
    m = adapter.meta
    results = {"recall@10": m["val_recall@10"],
               "baseline_recall@10": m["val_baseline_recall@10"],
               "best_epoch": m["best_epoch"], "epochs_run": m["epochs_run"],
               "train_seconds": time.monotonic() - started,
               "val_queries": m["val_queries"], "validation": m["validation"],
               "val_documents": m["val_documents"], "train_pairs": m["train_pairs"],
               "pseudo_queries": len(kw["pseudo_docs"])}
    return {"results": results, "model_uri": uri, "model_parts": parts}


def _prepare(ctx: _jobs.JobContext, db: Any, info: Any, snap: Snapshot,
             embed_fn: EmbeddingFunction | None, version: int) -> dict[str, Any]:
    """Embed the stored queries and the pseudo-queries (the slow part of a job)."""
    job = ctx.record
    raw = _read_file(db, job["inputs_parts"])
    if raw is None:
        raise NotFound(f"the inputs of job {job['id']} are missing from the lake")
    inputs = json.loads(raw)
    if embed_fn is None:
        model = job.get("embedding_model")
        if not model:
            raise InvalidParameterValue("no embedding function to resume with")
        ctx.phase(f"loading the embedding model {model}")
        embed_fn = _embedder(model, db, str(job["workspace"]))
    relevant = _rows_of(inputs["relevance"], snap)
    column = str(job["column"])
    queries = list(inputs["queries"])
    rows, texts = _pseudo_texts(job.get("pseudo_queries"), db, info, snap,
                                job.get("text_column"), version)
    clock = _EmbedClock(len(queries) + len(texts))
    q = _embed_batched(embed_fn, queries, snap.dim, column, ctx, "queries", clock=clock)
    pe = _embed_batched(embed_fn, texts, snap.dim, column, ctx, "pseudo-queries",
                        clock=clock) if texts else None
    return {"query_emb": q, "relevant": relevant, "pseudo_emb": pe, "pseudo_docs": rows}


def _rows_of(relevance: list[list[list[Any]]], snap: Snapshot) -> list[list[tuple[int, float]]]:
    out: list[list[tuple[int, float]]] = []
    for rel in relevance:
        rows = []
        for doc, score in rel:
            row = snap.row_of_id.get(str(doc))
            if row is None:
                raise InvalidParameterValue(f"document id {doc!r} is not in the table version "
                                            f"the job was started on")
            rows.append((row, float(score)))
        out.append(rows)
    return out


def _dump_prepared(kw: dict[str, Any], snap: Snapshot) -> bytes:
    rq = [i for i, rel in enumerate(kw["relevant"]) for _ in rel]
    rr = [snap.rids[r] for rel in kw["relevant"] for r, _ in rel]
    rs = [s for rel in kw["relevant"] for _, s in rel]
    pe = kw["pseudo_emb"]
    buf = io.BytesIO()
    np.savez(buf, query_emb=kw["query_emb"], rel_query=np.asarray(rq, np.int64),
             rel_rid=np.asarray(rr, np.int64), rel_score=np.asarray(rs, np.float32),
             pseudo_emb=pe if pe is not None else np.zeros((0, snap.dim), np.float32),
             pseudo_rid=snap.rids[np.asarray(kw["pseudo_docs"], np.int64)])
    return buf.getvalue()


def _load_prepared(data: bytes, snap: Snapshot) -> dict[str, Any]:
    with np.load(io.BytesIO(data)) as z:
        q = z["query_emb"].astype(np.float32)
        relevant: list[list[tuple[int, float]]] = [[] for _ in range(q.shape[0])]
        for qi, rid, s in zip(z["rel_query"].tolist(), z["rel_rid"].tolist(),
                              z["rel_score"].tolist(), strict=True):
            relevant[qi].append((snap.row_of_rid[rid], float(s)))
        pe = z["pseudo_emb"].astype(np.float32)
        docs = [snap.row_of_rid[r] for r in z["pseudo_rid"].tolist()]
    return {"query_emb": q, "relevant": relevant, "pseudo_emb": pe if len(docs) else None,
            "pseudo_docs": docs}


def _resume_work(db: Any) -> _jobs.MakeWork:
    def make(job: dict[str, Any]) -> tuple[_jobs.Work | None, str | None]:
        if job.get("kind", "deep_memory") != "deep_memory":
            return None, f"unknown job kind {job.get('kind')!r}"
        if _read_file(db, job["prepared_parts"]) is not None or job.get("embedding_model"):
            return _job_work(db, None), None
        return None, ("its queries were not embedded yet and its embedding function was a "
                      "Python callable that only the stopped process had")

    return make


def recover_jobs(db: Any) -> dict[str, dict[str, Any]]:
    """Every deep memory job of the lake, after resuming (or failing) those whose process
    died. ``tarndb serve`` calls this at start; listing jobs calls it too."""
    return _jobs.recover(db, _resume_work(db))


# -- the public API -------------------------------------------------------------------------


class _Recalls(dict[str, Any]):
    """``evaluate``'s result: keys ``"with model"`` / ``"without model"`` (as Deep Lake returns
    them); ``"with_model"`` / ``"without_model"`` (as its docs spell them) read the same."""

    _ALIASES = {"with_model": "with model", "without_model": "without model"}

    def __missing__(self, key: str) -> Any:
        if key in self._ALIASES:
            return self[self._ALIASES[key]]
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        return super().__contains__(self._ALIASES.get(key, key) if isinstance(key, str)
                                    else key)


def as_recalls(d: dict[str, Any]) -> _Recalls:
    """``evaluate``'s result (a JSON object from a server, say) with the seed's key aliases,
    its ``seen`` / ``unseen`` parts too."""
    out = _Recalls(d)
    for part in ("seen", "unseen"):
        if isinstance(out.get(part), dict):
            out[part] = _Recalls(out[part])
    return out


class VectorStore:
    """A table with an embedding column, searched by vector, with a trainable Deep Memory.

    >>> vs = VectorStore("./lake", table="ws.docs", embedding_column="emb", id_column="doc_id",
    ...                  embedding_function="minilm")
    >>> job_id = vs.deep_memory.train(queries=[...], relevance=[[("doc-1", 1.0)], ...])
    >>> vs.search(embedding_data="a question", k=4, deep_memory=True)

    ``path`` is a lake (a directory or ``s3://`` URI) or an open :class:`tarndb.Database`;
    ``table`` is ``"workspace.table"`` or a name in ``workspace`` (default ``public``).
    Without ``table``, ``path`` may name the table itself: ``"<lake>/<workspace>/<table>"``.
    Column defaults follow Deep Lake's tensors: ``embedding``, ``id`` and ``text`` (used when
    the table has it). ``embedding_function``: a callable ``list[str] -> (n, dim)``, a
    registered model name (``"minilm"``) or an object with ``embed_documents``. ``token``,
    ``runtime``, ``exec_option`` and ``verbose`` are accepted so that Deep Lake code runs
    unchanged, and ignored: access is the lake's.
    """

    def __init__(self, path: Any = None, *, table: str | None = None,
                 workspace: str | None = None, embedding_column: str = "embedding",
                 id_column: str | None = "id", text_column: Any = _DEFAULT_TEXT,
                 embedding_function: Any = None, token: str | None = None,
                 runtime: dict[str, Any] | None = None, exec_option: str | None = None,
                 verbose: bool = False, read_only: bool | None = None,
                 lake: str | None = None) -> None:
        if path is None:
            raise InvalidParameterValue("VectorStore needs a lake path or a tarndb Database")
        self.path = os.fspath(path) if isinstance(path, (str, os.PathLike)) else None
        hub = self.path is not None and self.path.startswith(HUB_PREFIX)
        if hub:
            self.db, self._owns_db, (self.workspace, self.table) = _open_hub(
                str(self.path), lake, workspace)
        else:
            self.db, self._owns_db, (self.workspace, self.table) = _open(path, table,
                                                                         workspace)
        try:
            if hub and not read_only and self.db.catalog.find_table(
                    self.workspace, self.table) is None:
                # Deep Lake makes the dataset on first use, with its default tensors.
                _create_default_table(self.db, self.workspace, self.table, embedding_column,
                                      id_column or "id")
            info = self.db.catalog.table(self.workspace, self.table)
            self.embedding_column = embedding_column
            self.id_column = id_column or "__rid"
            if self.id_column != "__rid" and info.column(self.id_column) is None:
                raise UndefinedColumn(f'id column "{self.id_column}" does not exist in '
                                      f'"{self.workspace}"."{self.table}"',
                                      column=self.id_column)
            if text_column is _DEFAULT_TEXT:
                self.text_column: str | None = "text" if info.column("text") else None
            elif text_column is not None and info.column(text_column) is None:
                raise UndefinedColumn(f'text column "{text_column}" does not exist in '
                                      f'"{self.workspace}"."{self.table}"', column=text_column)
            else:
                self.text_column = text_column
        except Exception:
            self.close()
            raise
        self.embedding_function = embedding_function
        self._lock = threading.Lock()
        self._snap: Snapshot | None = None
        self.deep_memory = DeepMemory(self)

    def __repr__(self) -> str:
        return (f"VectorStore({self.db.lake.uri!r}, table='{self.workspace}.{self.table}', "
                f"embedding_column={self.embedding_column!r})")

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- table access --------------------------------------------------------------------

    def _info(self) -> Any:
        return self.db.catalog.table(self.workspace, self.table)

    def snapshot(self) -> Snapshot:
        """Ids and normalised embeddings at the table's latest version (cached per version)."""
        info = self._info()
        _check_embedding_column(info, self.embedding_column)
        version = int(self.db.store(info).dataset().version)
        with self._lock:
            if self._snap is not None and self._snap.version == version:
                return self._snap
        snap = load_snapshot(self.db, info, self.embedding_column, self.id_column,
                             self.text_column, version)
        with self._lock:
            self._snap = snap
        return snap

    def embedder(self, fn: Any = None) -> EmbeddingFunction:
        fn = fn if fn is not None else self.embedding_function
        if fn is None:
            raise InvalidParameterValue(
                "no embedding_function: pass one to VectorStore(...) or to this call (a "
                "callable list[str] -> vectors, or a model name such as 'minilm')")
        return _embedder(fn, self.db, self.workspace)

    def embed(self, texts: Sequence[str], fn: Any = None, dim: int | None = None) -> F32:
        """Normalised embeddings of ``texts`` with ``fn`` (default: the store's function)."""
        texts = list(texts)
        return _as_matrix(self.embedder(fn)(texts), len(texts), dim, self.embedding_column)

    @property
    def dataset(self) -> Any:
        """The table's Lance dataset at its latest version (Deep Lake's ``.dataset``)."""
        return self.db.store(self._info()).dataset()

    def _qualified(self) -> str:
        return f'"{self.workspace.replace(chr(34), chr(34) * 2)}".' \
               f'"{self.table.replace(chr(34), chr(34) * 2)}"'

    # -- writing ---------------------------------------------------------------------------

    def add(self, text: Sequence[str] | None = None, embedding: Any = None,
            metadata: Sequence[Any] | None = None, id: Sequence[Any] | None = None,  # noqa: A002
            embedding_data: Sequence[str] | None = None, embedding_function: Any = None,
            embedding_tensor: str | None = None, return_ids: bool = True,
            rate_limiter: Any = None, batch_byte_size: int | None = None,
            **tensors: Sequence[Any]) -> list[Any] | None:
        """Add rows, as Deep Lake's ``VectorStore.add``: ``text``, ``metadata``, ``id``
        (default: new UUIDs) and either ``embedding`` (vectors) or texts to embed
        (``embedding_data``, else ``text``) with ``embedding_function`` (default: the
        store's). Other keyword arguments fill columns of the same name. Returns the ids.
        ``rate_limiter`` and ``batch_byte_size`` are accepted and ignored."""
        column = embedding_tensor or self.embedding_column
        given: dict[str, list[Any]] = {}
        if text is not None:
            if self.text_column is None:
                raise UndefinedColumn(f'"{self.workspace}"."{self.table}" has no text column',
                                      column="text")
            given[self.text_column] = list(text)
        if metadata is not None:
            given["metadata"] = list(metadata)
        for name, values in tensors.items():
            given[name] = list(values)
        if embedding is not None:
            given[column] = [None if v is None else np.asarray(v, np.float32).tolist()
                             for v in embedding]
        sizes = {len(v) for v in given.values()}
        to_embed = list(embedding_data) if embedding_data is not None else None
        if embedding is None and (to_embed is not None or (
                text is not None and (embedding_function or self.embedding_function))):
            texts = to_embed if to_embed is not None else list(text or [])
            sizes.add(len(texts))
            if len(sizes) == 1 and texts:
                given[column] = self.embed(texts, embedding_function).tolist()
        if not given:
            raise InvalidParameterValue("add() needs text, embedding or metadata")
        if len(sizes) != 1:
            raise InvalidParameterValue(f"add(): the columns given have different lengths "
                                        f"({', '.join(str(n) for n in sorted(sizes))})")
        n = sizes.pop()
        ids: list[Any] | None = None
        if self.id_column != "__rid":
            import uuid

            ids = list(id) if id is not None else [str(uuid.uuid4()) for _ in range(n)]
            if len(ids) != n:
                raise InvalidParameterValue(f"add(): {len(ids)} ids for {n} rows")
            given = {self.id_column: ids, **given}
        elif id is not None:
            raise InvalidParameterValue("this store has no id column to take ids")
        info = self._info()
        for name in given:
            if info.column(name) is None:
                raise UndefinedColumn(f'column "{name}" does not exist in '
                                      f'"{self.workspace}"."{self.table}"', column=name)
        names = list(given)
        cols = ", ".join('"' + c.replace('"', '""') + '"' for c in names)
        s = self.db.session(workspace=self.workspace)
        try:
            for start in range(0, n, 500):
                rows = range(start, min(n, start + 500))
                params: list[Any] = []
                values = []
                for i in rows:
                    marks = []
                    for c in names:
                        params.append(given[c][i])
                        marks.append(f"${len(params)}")
                    values.append("(" + ", ".join(marks) + ")")
                s.execute(f"INSERT INTO {self._qualified()} ({cols}) VALUES "
                          + ", ".join(values), params)
        finally:
            s.close()
        return ids if return_ids else None

    def delete(self, row_ids: Sequence[int] | None = None, ids: Sequence[Any] | None = None,
               filter: dict[str, Any] | str | None = None, query: str | None = None,  # noqa: A002
               exec_option: str | None = None, delete_all: bool | None = None) -> bool:
        """Delete rows by ``ids``, by a ``filter`` (``{"column": value}`` or a SQL
        condition), or all of them (``delete_all=True``), as Deep Lake's
        ``VectorStore.delete``; returns True."""
        info = self._info()

        def check_column(col: str) -> None:
            if info.column(col) is None:
                raise UndefinedColumn(f'column "{col}" does not exist in '
                                      f'"{self.workspace}"."{self.table}"', column=col)

        clause = delete_where(self.id_column, ids, filter, delete_all, row_ids, query,
                              check_column)
        if clause is None:
            return True
        where, params = clause
        s = self.db.session(workspace=self.workspace)
        try:
            s.execute(f"DELETE FROM {self._qualified()}{where}", params)
        finally:
            s.close()
        return True

    # -- search --------------------------------------------------------------------------

    def search(self, embedding_data: str | Sequence[str] | None = None,
               embedding_function: Any = None, embedding: Any = None, k: int = 4,
               distance_metric: str | None = None, query: str | None = None,
               filter: dict[str, Any] | str | None = None, exec_option: str | None = None,  # noqa: A002
               embedding_tensor: str | None = None, return_tensors: list[str] | None = None,
               return_view: bool = False, deep_memory: bool = False, exact: bool = False
               ) -> dict[str, list[Any]] | list[dict[str, list[Any]]]:
        """Top ``k`` rows for a text (``embedding_data``) or a vector (``embedding``).

        Runs ``SELECT ... ORDER BY emb <#> $1 LIMIT k`` on the engine, so the table's vector
        index and a ``filter`` (``{"column": value}`` or a SQL ``WHERE`` condition) work as
        in SQL. Returns ``{"id": [...], "score": [...], <text column>: [...], <each of
        return_tensors (default: metadata, when the table has it)>: [...]}``, best first, for
        one query, or a list of those for a list of queries. ``deep_memory=True`` adapts
        the query with the table's latest trained model (the documents' vectors are
        unchanged); ``exact`` skips the vector index.
        """
        if query is not None or return_view:
            raise FeatureNotSupported("TQL queries and views are not supported; use SQL")
        if distance_metric not in (None, "cos", "cosine"):
            raise FeatureNotSupported(f"distance_metric {distance_metric!r}: tarndb ranks by "
                                      f"cosine similarity")
        if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
            raise InvalidParameterValue("k must be a positive integer")
        column = embedding_tensor or self.embedding_column
        info = self._info()
        _check_embedding_column(info, column)
        single = True
        if embedding is not None:
            q = np.asarray(embedding, dtype=np.float32)
            single = q.ndim == 1
            q = normalize(q[None, :] if single else q)
        elif embedding_data is not None:
            single = isinstance(embedding_data, str)
            texts = [embedding_data] if isinstance(embedding_data, str) else list(embedding_data)
            if not texts:
                raise InvalidParameterValue("embedding_data is empty")
            q = self.embed(texts, embedding_function)
        else:
            raise InvalidParameterValue("search needs embedding_data (text) or embedding")
        if deep_memory:
            q = self.deep_memory.model(column=column).apply(q)
        out = [self._search_one(info, column, row, k, filter, return_tensors, exact)
               for row in q]
        return out[0] if single else out

    def _search_one(self, info: Any, column: str, q: F32, k: int,
                    filt: dict[str, Any] | str | None, extra: list[str] | None,
                    exact: bool) -> dict[str, list[Any]]:
        def ident(name: str) -> str:
            if info.column(name) is None and name != "__rid":
                raise UndefinedColumn(f'column "{name}" does not exist in '
                                      f'"{self.workspace}"."{self.table}"', column=name)
            return '"' + name.replace('"', '""') + '"'

        if extra is None:  # Deep Lake returns its metadata tensor by default
            extra = ["metadata"] if info.column("metadata") is not None else []
        names = [self.id_column] + ([self.text_column] if self.text_column else []) + \
            [c for c in extra if c not in (self.id_column, self.text_column)]
        params: list[Any] = [q.tolist()]
        conds = filter_conditions(filt, params, check_column=ident)  # refuses a column
        where = " WHERE " + " AND ".join(conds) if conds else ""
        cols = ", ".join(ident(c) for c in names)
        name = self.table
        if exact:
            # The engine answers a pinned version ("t@12") by an exact scan, never from an
            # approximate index.
            name = f"{name}@{int(self.db.store(info).dataset().version)}"
        sql = (f"SELECT {cols}, {ident(column)} <#> $1::float4[] AS __score "
               f'FROM "{self.workspace}"."{name.replace(chr(34), chr(34) * 2)}"{where} '
               f"ORDER BY __score DESC LIMIT {int(k)}")
        s = self.db.session(workspace=self.workspace)
        try:
            rows = s.execute(sql, params).rows
        finally:
            s.close()
        res: dict[str, list[Any]] = {"id": [r[0] for r in rows],
                                     "score": [float(r[-1]) for r in rows]}
        for j, name in enumerate(names[1:], start=1):
            res[name] = [r[j] for r in rows]
        return res

    def close(self) -> None:
        if self._owns_db:
            self._owns_db = False
            self.db.close()


HUB_PREFIX = "hub://"


def _open_hub(path: str, lake: str | None, workspace: str | None
              ) -> tuple[Any, bool, tuple[str, str]]:
    """Seed 002's ``hub://<org>/<dataset>`` (or ``hub://<org>/<workspace>/<dataset>``): the
    table ``<dataset>`` in ``workspace`` (default ``public``) of the lake ``lake`` (default
    ``TARNDB_DATA``, else ``./tarndb-data``). The org must be the lake's, by name or id,
    when the lake has one (a lake a server has run on)."""
    import tarndb

    from ..settings import resolve

    parts = path[len(HUB_PREFIX):].strip("/").split("/")
    if len(parts) not in (2, 3) or not all(p.strip() for p in parts):
        raise InvalidParameterValue(f"{path!r} is not hub://<org>/<dataset> or "
                                    f"hub://<org>/<workspace>/<dataset>")
    org = parts[0]
    ws = parts[1] if len(parts) == 3 else (workspace or "public")
    if len(parts) == 3 and workspace not in (None, ws):
        raise InvalidParameterValue(f"{path!r} names workspace {ws!r}, not {workspace!r}")
    root = lake if lake is not None else str(resolve(None).data)
    db = tarndb.open(root)
    try:
        orgs = db.catalog.list_objects("org")
        if orgs and not any(org in (name, str(spec.get("id"))) for name, spec in orgs.items()):
            known = ", ".join(f"{name} (id {spec.get('id')})" for name, spec in orgs.items())
            raise InvalidParameterValue(f"{path!r}: org {org!r} is not this lake's; the lake "
                                        f"{db.lake.uri} belongs to {known}")
        from ..files import check_workspace

        check_workspace(ws)
    except BaseException:
        db.close()
        raise
    return db, True, (ws, parts[-1])


def _create_default_table(db: Any, ws: str, table: str, embedding_column: str,
                          id_column: str) -> None:
    """Deep Lake's default tensors: id, text, embedding, metadata."""
    def q(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'

    cols = [f"{q(id_column)} TEXT PRIMARY KEY", "text TEXT",
            f"{q(embedding_column)} FLOAT4[]", "metadata JSONB"]
    if id_column == "__rid":
        cols = cols[1:]
    db.execute(f"CREATE SCHEMA IF NOT EXISTS {q(ws)}")
    db.execute(f"CREATE TABLE IF NOT EXISTS {q(ws)}.{q(table)} ({', '.join(cols)})")


def _open(path: Any, table: str | None, workspace: str | None
          ) -> tuple[Any, bool, tuple[str, str]]:
    """(database, whether this store opened it, (workspace, table)) for VectorStore()."""
    if not isinstance(path, (str, os.PathLike)):
        if not hasattr(path, "catalog") or not hasattr(path, "session"):
            raise InvalidParameterValue("VectorStore(path) takes a lake path or URI, or a "
                                        "tarndb Database (tarndb.open(...))")
        if table is None:
            raise InvalidParameterValue("VectorStore(db) needs table='workspace.table'")
        return path, False, split_table(table, workspace)
    import tarndb

    uri = os.fspath(path)
    scheme = uri.partition("://")[0].lower() if "://" in uri else ""
    if scheme in ("http", "https", "tarndb", "postgres", "postgresql"):
        raise FeatureNotSupported(
            f"VectorStore({uri!r}): a store over a server's URL is not supported yet; open "
            f"the server's lake (VectorStore('<lake>', table='ws.table'), or "
            f"'hub://<org>/<dataset>' with TARNDB_DATA set to it), or query the server with "
            f"tarndb.Client / SQL")
    if table is None:
        # Deep Lake names a dataset by one path: here "<lake>/<workspace>/<table>".
        parts = uri.rstrip("/").rsplit("/", 2)
        if len(parts) != 3 or not all(parts):
            raise InvalidParameterValue(f"{uri!r} does not name a table: give "
                                        f"VectorStore(lake, table='workspace.table') or "
                                        f"VectorStore('<lake>/<workspace>/<table>')")
        lake, ws, name = parts
        if "://" not in lake and not os.path.isdir(os.path.join(lake, "_catalog.lance")):
            raise InvalidParameterValue(f"{lake!r} is not a tarndb lake (from the path "
                                        f"{uri!r}, read as <lake>/<workspace>/<table>)")
        return tarndb.open(lake), True, (ws, name)
    return tarndb.open(uri), True, split_table(table, workspace)


class DeepMemory:
    """Train, list, cancel and evaluate query adapters for one VectorStore's table."""

    def __init__(self, store: VectorStore) -> None:
        self.store = store

    @property
    def _db(self) -> Any:
        return self.store.db

    # -- validation ------------------------------------------------------------------------

    def _resolve(self, queries: Any, relevance: Any, snap: Snapshot, what: str
                 ) -> tuple[list[str], list[list[tuple[int, float]]]]:
        """Check queries and relevance and map document ids to rows (raises on bad input)."""
        if queries is None or isinstance(queries, (str, bytes)):
            raise InvalidParameterValue("queries must be a list of strings")
        queries = list(queries)
        if not queries:
            raise InvalidParameterValue(f"no queries to {what} on")
        if relevance is None or isinstance(relevance, (str, bytes)):
            raise InvalidParameterValue("relevance (Deep Lake's corpus) must be, for each query, "
                                        "a list of (document id, score in [0, 1])")
        relevance = list(relevance)
        if len(relevance) != len(queries):
            raise InvalidParameterValue(f"{len(queries)} queries but {len(relevance)} "
                                        f"relevance lists: they must match one to one")
        for i, q in enumerate(queries):
            if not isinstance(q, str) or not q.strip():
                raise InvalidParameterValue(f"query {i} is not a non-empty string")
        rows: list[list[tuple[int, float]]] = []
        unknown: list[str] = []
        for i, rel in enumerate(relevance):
            if isinstance(rel, tuple) and len(rel) == 2 and not isinstance(rel[0],
                                                                           (tuple, list)):
                rel = [rel]  # one (id, score) pair given without its list
            if isinstance(rel, (str, bytes)) or not isinstance(rel, Sequence):
                raise InvalidParameterValue(f"query {i}: relevance must be a list of "
                                            f"(document id, score) pairs")
            if not rel:
                raise InvalidParameterValue(f"query {i} has no relevant documents")
            out: list[tuple[int, float]] = []
            for pair in rel:
                if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                    raise InvalidParameterValue(
                        f"query {i}: relevance entries are (document id, score) pairs, got "
                        f"{pair!r}")
                doc, score = pair
                if isinstance(score, bool) or not isinstance(score, (int, float)):
                    raise InvalidParameterValue(f"query {i}: score {score!r} is not a number")
                s = float(score)
                if math.isnan(s) or not 0.0 <= s <= 1.0:
                    raise InvalidParameterValue(f"query {i}: score {s} is outside [0, 1]")
                row = snap.row_of_id.get(str(doc))
                if row is None:
                    unknown.append(str(doc))
                    continue
                out.append((row, s))
            rows.append(out)
        if unknown:
            shown = ", ".join(repr(u) for u in unknown[:5])
            more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
            raise InvalidParameterValue(
                f"{len(unknown)} document id(s) not found in column "
                f'"{self.store.id_column}" of "{self.store.workspace}"."{self.store.table}" '
                f"(or their row has no embedding): {shown}{more}")
        if not any(s > 0 for rel in rows for _, s in rel):
            raise InvalidParameterValue("every relevance score is 0: nothing to learn from")
        return queries, rows

    # -- training --------------------------------------------------------------------------

    def train(self, queries: Sequence[str] | None = None, relevance: Relevance | None = None,
              embedding_function: Any = None, token: str | None = None, *,
              corpus: Relevance | None = None, pseudo_queries: str | None = "auto",
              config: AdapterConfig | dict[str, Any] | None = None) -> str:
        """Start training a query adapter in the background; returns the job id.

        ``relevance`` (alias ``corpus``, as in Deep Lake's docs): for each query a list of
        ``(document id, score in [0, 1])``. Every input is checked here, before a job starts.

        ``pseudo_queries`` adds synthetic queries made from the documents themselves
        (:mod:`._synthetic`), so that the parts of the corpus no training query is about
        take part too: a text column's name (e.g. ``"title"``), ``"first_sentence"`` (of
        the text column), ``"auto"`` (a ``title`` column if the table has one, with the
        first sentence of the text column for rows whose title is empty; else the first
        sentence of the text column; else none), ``"sentences"`` (two sentences drawn from
        each document), ``"keywords"`` (each document's six most distinctive words),
        ``"all"`` (auto, sentences and keywords) or ``None``. With no ``queries`` and no
        ``relevance`` at all the job trains on the synthetic queries alone. A job left with
        no training pairs at all fails.

        The job holds out *documents* for early stopping and for its reported recall@10:
        about ``config.val_fraction`` of the queries are drawn and every query about their
        documents is held out with them, so the figure is on real queries about documents
        training never saw (``results["validation"] == "real"``); with no real queries, on
        the held-out documents' synthetic queries (``"synthetic"``, and the status box says
        so).
        ``config``: :class:`AdapterConfig` or a dict of its fields. ``token`` is accepted for
        Deep Lake compatibility and ignored.
        """
        store = self.store
        snap = store.snapshot()
        if queries is None and relevance is None and corpus is None:
            # No labelled queries at all: synthetic queries only (validated on held-out
            # documents' synthetic queries, and labelled so).
            if pseudo_queries is None or pseudo_queries == "none":
                raise InvalidParameterValue(
                    "no queries to train on", hint="give queries and relevance, or "
                    "pseudo_queries= 'auto', 'sentences', 'keywords' or 'all' to train on "
                    "synthetic queries made from the documents")
            queries_l: list[str] = []
            rel_rows: list[list[tuple[int, float]]] = []
        else:
            queries_l, rel_rows = self._resolve(queries, relevance if relevance is not None
                                                else corpus, snap, "train")
        cfg = config if isinstance(config, AdapterConfig) else AdapterConfig.from_json(config)
        cfg.check()
        fn = embedding_function if embedding_function is not None else store.embedding_function
        embed: EmbeddingFunction | None = None
        if _loaded_or_callable(fn):
            embed = store.embedder(fn)
            # A wrong model (dimension, shape) must fail this call, not a job later.
            # (Without queries the job checks the vectors of its synthetic queries.)
            if queries_l:
                _as_matrix(embed(queries_l[:1]), 1, snap.dim, store.embedding_column)
        else:
            # A model name not loaded yet: loading takes seconds, so the job loads it and
            # this call returns the job id at once. The dimension its files declare is
            # checked here; the job checks the vectors themselves.
            declared = _declared_dim(str(fn), self._db)
            if declared is not None and declared != snap.dim:
                raise DataError(f"embedding dimension mismatch: the embedding_function gives "
                                f'{declared}-d vectors, column "{store.embedding_column}" '
                                f"holds {snap.dim}-d ones")
        info = store._info()
        mode = pseudo_queries if pseudo_queries is not None else "none"
        if mode not in PSEUDO_MODES and info.column(mode) is None:
            raise UndefinedColumn(f'pseudo_queries: column "{mode}" does not exist (or use '
                                  f"one of {', '.join(PSEUDO_MODES)})", column=mode)
        if mode in ("first_sentence", "sentences", "keywords", "all") and \
                not store.text_column:
            raise InvalidParameterValue(f"pseudo_queries='{mode}' needs the store's "
                                        f"text_column")
        job_id = _jobs.new_job_id()
        ws, table = store.workspace, store.table
        inputs = {"queries": queries_l,
                  "relevance": [[[snap.ids[r], s] for r, s in rel] for rel in rel_rows]}
        inputs_parts = _lake_parts(ws, table, f"{job_id}.inputs.json")
        _write_file(self._db, inputs_parts, json.dumps(inputs).encode())
        record = {"id": job_id, "kind": "deep_memory", "workspace": ws, "table": table,
                  "column": store.embedding_column, "id_column": store.id_column,
                  "text_column": store.text_column, "table_version": snap.version,
                  "table_oid": int(info.oid), "queries": len(queries_l),
                  "pairs": sum(len(r) for r in rel_rows), "pseudo_queries": mode,
                  "embedding_model": fn if isinstance(fn, str) else None,
                  "config": cfg.to_json(), "inputs_parts": inputs_parts,
                  "prepared_parts": _lake_parts(ws, table, f"{job_id}.prepared.npz")}
        return _jobs.start(self._db, record, _job_work(self._db, embed))

    # -- jobs ------------------------------------------------------------------------------

    def jobs(self) -> list[dict[str, Any]]:
        """The records of every job trained on this table, oldest first."""
        jobs = [j for j in recover_jobs(self._db).values()
                if j.get("workspace") == self.store.workspace
                and j.get("table") == self.store.table]
        return sorted(jobs, key=lambda j: (j.get("created_at", 0), j["id"]))

    def job(self, job_id: str) -> dict[str, Any]:
        """One job's record: status, phase, progress, results, error, table_version ..."""
        for j in self.jobs():
            if j["id"] == job_id:
                return j
        raise NotFound(f"no deep memory job {job_id!r} on "
                       f'"{self.store.workspace}"."{self.store.table}"')

    def status(self, job_id: str) -> None:
        """Print the job's status table, as Deep Lake does."""
        print(format_status(self.job(job_id)))

    def list_jobs(self) -> None:
        """Print every job trained on this table."""
        print(format_jobs(self.jobs()))

    def cancel(self, job_id: str) -> bool:
        """Cancel a pending or training job; False when it had already finished."""
        self.job(job_id)
        return _jobs.request_cancel(self._db, job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> dict[str, Any]:
        """Block until the job finishes (or ``timeout`` seconds pass); returns its record."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            _jobs.wait(job_id, 0.5 if left is None else min(left, 0.5))
            job = self.job(job_id)
            if job.get("status") not in _jobs.ACTIVE:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                return job

    # -- the model -------------------------------------------------------------------------

    def model(self, job_id: str | None = None, column: str | None = None) -> Adapter:
        """The adapter of ``job_id``, or the one ranking the table now (the latest completed
        job)."""
        store = self.store
        if job_id is None:
            return active_model(self._db, store.workspace, store.table,
                                column or store.embedding_column)[1]
        job = self.job(job_id)
        if job.get("status") != "completed":
            raise InvalidParameterValue(f"job {job_id} is {job.get('status')}, not completed")
        return _load_adapter(self._db, job_id, job["model_parts"])

    def evaluate(self, relevance: Relevance | None = None,
                 queries: Sequence[str] | None = None, embedding_function: Any = None,
                 embedding: Any = None, top_k: Sequence[int] = DEFAULT_TOP_K, *,
                 corpus: Relevance | None = None, train_relevance: Relevance | None = None,
                 job_id: str | None = None) -> dict[str, Any]:
        """Recall@k of exact search with and without the model on labelled queries.

        Returns ``{"with model": {"recall@k": ...}, "without model": {...}, "queries": n}``,
        plus ``"seen"`` and ``"unseen"`` (the same, for two subsets of the queries) when it
        is known which documents were relevant in training: from ``train_relevance`` (a
        relevance list like the training one) or else from the model itself. A query is
        "seen" when one of its relevant documents was relevant to a training query.
        ``embedding``: precomputed query vectors instead of embedding ``queries``.
        """
        ks = sorted({int(k) for k in top_k})
        if not ks or ks[0] <= 0:
            raise InvalidParameterValue("top_k must be positive integers")
        snap = self.store.snapshot()
        queries_l, rel_rows = self._resolve(queries, relevance if relevance is not None
                                            else corpus, snap, "evaluate")
        adapter = self.model(job_id)
        if embedding is not None:
            q = normalize(np.asarray(embedding, dtype=np.float32))
            if q.shape != (len(queries_l), snap.dim):
                raise DataError(f"embedding has shape {q.shape}, expected "
                                f"({len(queries_l)}, {snap.dim})")
        else:
            q = self.store.embed(queries_l, embedding_function, dim=snap.dim)
        relevant = [[r for r, s in rel if s > 0] for rel in rel_rows]
        adapted = adapter.apply(q)

        def both(idx: list[int]) -> dict[str, Any]:
            sub = [relevant[i] for i in idx]
            return {"with model": recall_at_k(adapted[idx], snap.emb, sub, ks),
                    "without model": recall_at_k(q[idx], snap.emb, sub, ks),
                    "queries": sum(1 for r in sub if r)}

        out = _Recalls(both(list(range(len(relevant)))))
        seen_ids: set[str] | None = None
        if train_relevance is not None:
            seen_ids = {str(d) for rel in train_relevance for d, s in rel if float(s) > 0}
        elif "seen_doc_ids" in adapter.meta:
            seen_ids = set(adapter.meta["seen_doc_ids"])
        if seen_ids is not None:
            seen = [i for i, rel in enumerate(relevant)
                    if any(snap.ids[r] in seen_ids for r in rel)]
            seen_set = set(seen)
            unseen = [i for i, rel in enumerate(relevant) if rel and i not in seen_set]
            for name, idx in (("seen", seen), ("unseen", unseen)):
                out[name] = both(idx) if idx else {"queries": 0}
        return as_recalls(out)

    def rank(self, query_vectors: Any, k: int, *, job_id: str | None = None) -> I64:
        """Exact top-k rows (snapshot positions) for query vectors, ranked with the model."""
        snap = self.store.snapshot()
        q = self.model(job_id).apply(normalize(np.asarray(query_vectors, dtype=np.float32)))
        return topk_indices(q[None, :] if q.ndim == 1 else q, snap.emb, k)


# -- the seed's tables ----------------------------------------------------------------------

_W = 62


def _recall_line(d: dict[str, Any] | None) -> str | None:
    if not d or d.get("recall@10") is None:
        return None
    r = float(d["recall@10"])
    base = float(d.get("baseline_recall@10", r))
    return f"recall@10: {r * 100:.2f}% ({(r - base) * 100:+.2f}%)"


def _validation_line(d: dict[str, Any] | None) -> str | None:
    """A label under the recall@10 figure when it was measured on synthetic queries (no
    real query to hold out). On real held-out queries (about documents training never saw)
    the box is the seed's, unlabelled; ``validation`` in the record says which."""
    d = d or {}
    if d.get("validation") == "synthetic":
        return f"on {d.get('val_queries')} synthetic queries of held-out documents"
    return None


def progress_lines(job: dict[str, Any]) -> list[str]:
    """The PROGRESS cell: ETA and held-out recall@10 (with its change), or None."""
    p = job.get("progress")
    training = job.get("status") == "training"
    if not p and not training:
        return ["None"]
    eta = (p or {}).get("eta_s")
    lines = [f"eta: {float(eta):.1f} seconds" if eta is not None else "eta: estimating"]
    line = _recall_line(p)
    if line:
        lines.append(line)
        label = _validation_line(p)
        if label:
            lines.append(label)
    elif training and job.get("phase"):
        # before the first epoch: what the job does now (loading the model, embedding
        # queries 256/400 ...); the ETA is that stage's
        lines.append(str(job["phase"]))
    return lines


def results_lines(job: dict[str, Any]) -> list[str]:
    """The RESULTS cell."""
    status = job.get("status")
    if status == "failed":
        return [f"failed: {job.get('error') or 'unknown error'}"]
    if status == "cancelled":
        return ["cancelled"]
    line = _recall_line(job.get("results")) if status == "completed" else None
    if not line:
        return ["not available yet"]
    label = _validation_line(job.get("results"))
    return [line, label] if label else [line]


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width, break_on_hyphens=False) or [""]


def format_status(job: dict[str, Any]) -> str:
    """The seed's status box: id, status, progress, results."""
    sep = "-" * _W
    out = [sep, "|" + str(job["id"]).center(_W - 2) + "|", sep]
    for label, values in (("status", [str(job.get("status"))]),
                          ("progress", progress_lines(job)),
                          ("results", results_lines(job))):
        lines = [w for v in values for w in _wrap(v, 29)]
        for i, v in enumerate(lines):
            out.append(f"| {(label if i == 0 else ''):<27}| {v:<29} |")
        out.append(sep)
    return "\n".join(out)


def format_jobs(jobs: list[dict[str, Any]]) -> str:
    """The seed's job list: ID, STATUS, RESULTS, PROGRESS (multi-line cells)."""
    out = [f"{'ID':<28}{'STATUS':<11}{'RESULTS':<29}{'PROGRESS'}"]
    for j in jobs:
        res, prog = results_lines(j), progress_lines(j)
        for i in range(max(len(res), len(prog))):
            out.append(f"{(str(j['id']) if i == 0 else ''):<28}"
                       f"{(str(j.get('status')) if i == 0 else ''):<11}"
                       f"{(res[i] if i < len(res) else ''):<29}"
                       f"{prog[i] if i < len(prog) else ''}".rstrip())
    return "\n".join(out)


__all__ = ["DEFAULT_TOP_K", "DeepMemory", "Snapshot", "TrainingCancelled", "VectorStore",
           "active_model", "as_recalls", "first_sentence", "format_jobs", "format_status",
           "load_snapshot", "recover_jobs", "split_table"]
