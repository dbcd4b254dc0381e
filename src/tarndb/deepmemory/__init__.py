"""Deep Memory: a query adapter trained on (query, relevant document) pairs that lifts recall.

>>> import tarndb
>>> vs = tarndb.VectorStore("./lake", table="ws.docs", embedding_column="emb",
...                         id_column="doc_id", embedding_function="minilm")
>>> job_id = vs.deep_memory.train(queries=queries, relevance=relevance)  # a background job
>>> vs.deep_memory.status(job_id)           # prints the status box; .job(job_id) -> dict
>>> vs.deep_memory.list_jobs(); vs.deep_memory.cancel(job_id)
>>> vs.deep_memory.evaluate(relevance=test_relevance, queries=test_queries,
...                         train_relevance=relevance)
{'with model': {'recall@1': ...}, 'without model': {...}, 'queries': 300,
 'seen': {...}, 'unseen': {...}}
>>> vs.search(embedding_data="a question", k=4, deep_memory=True)

The model (:mod:`._model`) adapts query vectors only, ``q' = normalize(q + B A q)``: a rank-32
residual that starts at the identity, trained with InfoNCE over in-batch positives and hard
negatives mined from the table's embeddings (its vector index for large tables), pulled toward
the identity, with pseudo-queries made from the documents (a ``title`` column or first
sentences) and early stopping on held-out training queries. The corpus is never re-embedded.

Jobs (:mod:`._jobs`) run in a thread of the calling process (``tarndb serve`` for the HTTP
API); their records are catalog objects, so every process on the lake lists them, and a job
whose process died is resumed by the next process that looks (or marked failed when it
cannot be). A completed job writes its adapter to ``<lake>/_deepmemory/<ws>/<table>/<job>.npz``
with the table version it was trained on, and becomes the model of that table's column.

SQL (:mod:`._sql`, installed by :func:`tarndb.open`): ``deep_memory('ws.table', 'emb',
ARRAY[...]::float4[])`` is the adapted query vector, so ``emb <#> deep_memory(...)`` ranks
with the model over psycopg and HTTP too.

Training needs torch (``pip install 'tarndb[embeddings]'``); applying a model needs numpy.
Errors, all raised before a job starts: :class:`~tarndb.errors.InvalidParameterValue`
(22023: unknown document ids, empty or mismatched queries and relevance, scores outside
[0, 1]), :class:`~tarndb.errors.DataError` (22000: no embeddings, mixed or mismatched
dimensions), :class:`~tarndb.errors.UndefinedColumn` (42703: no such embedding, id or text
column), :class:`~tarndb.errors.UndefinedTable` (42P01), :class:`~tarndb.errors.NotFound`
(42704: unknown job, no trained model).
"""

from __future__ import annotations

from ._jobs import ACTIVE, JOB_KIND, MODEL_KIND, STATUSES
from ._model import (
    Adapter,
    AdapterConfig,
    TrainingCancelled,
    normalize,
    recall_at_k,
    topk_indices,
    train_adapter,
)
from ._sql import install
from ._store import (
    DEFAULT_TOP_K,
    DeepMemory,
    VectorStore,
    active_model,
    format_jobs,
    format_status,
    recover_jobs,
)

__all__ = [
    "ACTIVE", "DEFAULT_TOP_K", "JOB_KIND", "MODEL_KIND", "STATUSES", "Adapter",
    "AdapterConfig", "DeepMemory", "TrainingCancelled", "VectorStore", "active_model",
    "format_jobs", "format_status", "install", "normalize", "recall_at_k", "recover_jobs",
    "topk_indices", "train_adapter",
]
