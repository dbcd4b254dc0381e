"""Search: what ``<#>``, the deeplake_* functions and ``USING deeplake_index`` run on.

Every top-k function takes a Lance dataset pinned at the query's version, the column name and
the query, and returns :class:`Hits` ``(row_keys, scores)``: ``__rid`` values (int64) and
similarities (float32, higher is better), best first, ties broken by lower ``__rid``. It
never returns fewer than ``k`` rows when at least ``k`` rows match, and never a row that
does not match the filter. ``hits.plan`` says which path ran (for EXPLAIN).

Module-level entry points (they use the table's indexes when there are any)::

    vector_topk(ds, column, query, k, *, filter_sql=None, allowed_row_keys=None,
                exact=False, metric='cosine') -> Hits  # float4[] <#> float4[]: cosine
                          # metric 'l2' / 'dot': pgvector's <-> / <#> (scores: higher is
                          # nearer; an index answers when its ``metric`` option matches)
    maxsim_topk(ds, column, query, k, *, filter_sql=None, allowed_row_keys=None,
                exact=False, candidates=None) -> Hits  # float4[][] <#> float4[][]: MaxSim
    bm25_topk(ds, column, text, k, *, filter_sql=None, allowed_row_keys=None,
              exact=False) -> Hits                     # text <#> 'query': BM25
    hybrid_topk(ds, vector_column, text_column, vector_query, text_query, k, *,
                w_vec=0.5, w_text=0.5, method='dbsf_coverage', depth=100, filter_sql=None,
                allowed_row_keys=None, exact=False, rescore=True) -> Hits
                                                       # deeplake_hybrid_record
    hybrid_fuse(vec_hits, text_hits, w_vec, w_text, method='dbsf_coverage', k=None)
                          # or 'dbsf_adaptive', 'dbsf', 'minmax', 'rrf', 'softmax'

Filters: ``filter_sql`` is a Lance (DataFusion) SQL predicate over the table's columns;
``allowed_row_keys`` is an array of ``__rid`` values (e.g. what DuckDB computed for a WHERE
clause that Lance cannot evaluate). Both are prefilters: the top-k is taken among allowed
rows only. BM25 collection statistics stay those of the whole table.

Scalar functions (row by row, for SELECT lists without ORDER BY ... LIMIT):
:func:`cosine_similarity`, :func:`maxsim`, :func:`cosine_scores` and :func:`maxsim_scores`
(vectorised over many rows), :func:`contains` (``contains(col, 'text')`` / ``col @> 'text'``).

Errors: a query whose dimension differs from the column's raises
:class:`tarndb.errors.DataError` (SQLSTATE 22000); unknown index types or fusion methods raise
:class:`tarndb.errors.InvalidParameterValue`; duplicate indexes
:class:`tarndb.errors.DuplicateObject`; unknown ones :class:`tarndb.errors.UndefinedObject`.

Indexes (see :class:`IndexManager`)::

    mgr = IndexManager.open(table_uri)          # one per table and process
    mgr.create_index(ds, name, column, index_type=None, options=None, if_not_exists=False)
    mgr.drop_index(name, if_exists=False)
    mgr.after_write(ds)       # after INSERT/UPDATE/DELETE: folds in when enough changed
    mgr.refresh(ds)           # fold every pending change in now (e.g. a background job)
    mgr.list_indexes(); mgr.index_for(column)

Index types: float4[] ``clustered`` (default; Lance IVF_FLAT) and ``clustered_quantized``
(IVF_PQ + exact refine); float4[][] ``pooled_quantized`` (default; a first stage over each
bag's normalised mean vector, then exact MaxSim of the best ``candidates`` bags, default
max(20 k, 200)); text ``bm25`` (default) and alias ``inverted_index``. State lives in
``<table uri>/_tarn_indexes/<name>/``; rows written after the last fold are searched exactly.
The pooled first stage is the same search a float4[] index runs over those mean vectors (one
product over the in-memory copy below ``ann_min_rows``, the in-memory IVF probe with the
calibrated count for that depth above it); the rerank gathers the candidates' bags from the
index's packed copy of them and scores them with one product.

Recall target, not a probe fraction: a vector index calibrates its IVF probe count on its own
rows when it is built and when a refresh changed its rows by 20% (``IndexInfo.tuning``,
recall@10 >= 0.95 by default, option ``recall_target``). Where the target needs most lists
(isotropic vectors) it answers by one exact product over its in-memory copy instead.
:func:`ann_params` reads the session's override, ``SET tarndb.probes = n`` (``auto``: the
calibrated count), and pgvector's ``SET hnsw.ef_search`` / ``SET ivfflat.probes`` for
indexes made ``USING hnsw`` / ``USING ivfflat``; ``params=AnnParams(nprobes=n)`` is the same
through the Python API. The options ``nprobes`` / ``nprobe_fraction`` fix the count per
index (docs/search-tuning.md).

Exact scans (no index, pinned versions, fresh rows) score each fragment's vectors from a
process-wide cache of decoded, normalised matrices (``TARNDB_EXACT_CACHE_BYTES``), filter
first. BM25 without an index tokenizes the column per query: above 100k rows
(``TARNDB_BM25_ADHOC_MAX_ROWS``) it raises ProgramLimitExceeded with the CREATE INDEX to run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lance

from tarndb.errors import InvalidParameterValue

from ._bm25 import BM25Index, BM25Params
from ._fusion import DEFAULT_FUSION, FUSION_METHODS, hybrid_fuse, leg_confidence
from ._kernels import (
    PackedBags,
    cosine_scores,
    cosine_similarity,
    maxsim,
    maxsim_scores,
    pack_bags,
)
from ._lance_vector import AnnParams
from ._manager import Hits, IndexInfo, IndexManager, column_kind
from ._text import ENGLISH_STOP_WORDS, Tokenizer, TokenizerConfig, contains, exact_text_match


def _manager_for(ds: lance.LanceDataset) -> IndexManager:
    return IndexManager.open(ds.uri)


def vector_topk(ds: lance.LanceDataset, column: str, query: Any, k: int, *,
                filter_sql: str | None = None, allowed_row_keys: Any = None,
                exact: bool = False, params: AnnParams | None = None,
                metric: str = "cosine") -> Hits:
    """Top-k rows by cosine similarity, or by L2 distance / inner product with ``metric``
    ``l2`` / ``dot`` (see the module docstring)."""
    return _manager_for(ds).vector_topk(ds, column, query, k, filter_sql=filter_sql,
                                    allowed_row_keys=allowed_row_keys, exact=exact,
                                    params=params, metric=metric)


def maxsim_topk(ds: lance.LanceDataset, column: str, query: Any, k: int, *,
                filter_sql: str | None = None, allowed_row_keys: Any = None,
                exact: bool = False, candidates: int | None = None,
                params: AnnParams | None = None) -> Hits:
    """Top-k rows by MaxSim (see the module docstring)."""
    return _manager_for(ds).maxsim_topk(ds, column, query, k, filter_sql=filter_sql,
                                    allowed_row_keys=allowed_row_keys, exact=exact,
                                    candidates=candidates, params=params)


PROBES_SETTING = "tarndb.probes"
EF_SEARCH_SETTING = "hnsw.ef_search"
IVF_PROBES_SETTING = "ivfflat.probes"
# pgvector's ranges for its settings.
_PGVECTOR_RANGES = {EF_SEARCH_SETTING: (1, 1000), IVF_PROBES_SETTING: (1, 32768)}
#: The settings :func:`ann_params` reads (and validates at SET).
ANN_SETTINGS = (PROBES_SETTING, EF_SEARCH_SETTING, IVF_PROBES_SETTING)


def _pgvector_setting(settings: Mapping[str, Any], name: str) -> int | None:
    raw = settings.get(name)
    if raw is None or str(raw).strip().strip("'").lower() in ("", "default"):
        return None
    text = str(raw).strip().strip("'")
    try:
        n = int(text)
    except ValueError:
        raise InvalidParameterValue(
            f'invalid value for parameter "{name}": "{text}"') from None
    lo, hi = _PGVECTOR_RANGES[name]
    if not lo <= n <= hi:
        raise InvalidParameterValue(
            f'{n} is outside the valid range for parameter "{name}" ({lo} .. {hi})')
    return n


def ann_params(settings: Mapping[str, Any]) -> AnnParams | None:
    """The session's override of the index's calibrated search knobs: ``SET tarndb.probes =
    n`` probes n IVF lists per query (``auto``, the default, uses the calibrated count);
    pgvector's ``SET hnsw.ef_search`` / ``SET ivfflat.probes`` set the probe depth of
    indexes made ``USING hnsw`` / ``USING ivfflat`` (see :class:`AnnParams`). None when
    nothing is overridden; InvalidParameterValue for a value out of range."""
    ef = _pgvector_setting(settings, EF_SEARCH_SETTING)
    ivf = _pgvector_setting(settings, IVF_PROBES_SETTING)
    raw = str(settings.get(PROBES_SETTING, "auto") or "auto").strip().strip("'").lower()
    n: int | None = None
    if raw not in ("auto", "default", "0"):
        try:
            n = int(raw)
        except ValueError:
            n = -1
        if n < 1:
            raise InvalidParameterValue(
                f'invalid value for parameter "{PROBES_SETTING}": "{raw}"',
                hint="a number of IVF lists (1 or more), or auto for the calibrated count")
    if n is None and ef is None and ivf is None:
        return None
    return AnnParams(nprobes=n, ef_search=ef, ivf_probes=ivf)


def bm25_topk(ds: lance.LanceDataset, column: str, query: str, k: int, *,
              filter_sql: str | None = None, allowed_row_keys: Any = None,
              exact: bool = False) -> Hits:
    """Top-k rows by BM25 (see the module docstring)."""
    return _manager_for(ds).bm25_topk(ds, column, query, k, filter_sql=filter_sql,
                                  allowed_row_keys=allowed_row_keys, exact=exact)


def hybrid_topk(ds: lance.LanceDataset, vector_column: str, text_column: str,
                vector_query: Any, text_query: str, k: int, *, w_vec: float = 0.5,
                w_text: float = 0.5, method: str = DEFAULT_FUSION, depth: int = 100,
                filter_sql: str | None = None, allowed_row_keys: Any = None,
                exact: bool = False, rescore: bool = True) -> Hits:
    """Hybrid top-k, both legs to ``depth`` and fused (see the module docstring)."""
    return _manager_for(ds).hybrid_topk(ds, vector_column, text_column, vector_query,
                                    text_query, k, w_vec=w_vec, w_text=w_text, method=method,
                                    depth=depth, filter_sql=filter_sql,
                                    allowed_row_keys=allowed_row_keys, exact=exact,
                                    rescore=rescore)


__all__ = [
    "DEFAULT_FUSION",
    "ENGLISH_STOP_WORDS",
    "FUSION_METHODS",
    "AnnParams",
    "BM25Index",
    "BM25Params",
    "Hits",
    "IndexInfo",
    "IndexManager",
    "ANN_SETTINGS",
    "EF_SEARCH_SETTING",
    "IVF_PROBES_SETTING",
    "PROBES_SETTING",
    "PackedBags",
    "Tokenizer",
    "TokenizerConfig",
    "ann_params",
    "bm25_topk",
    "column_kind",
    "contains",
    "cosine_scores",
    "cosine_similarity",
    "exact_text_match",
    "hybrid_fuse",
    "hybrid_topk",
    "leg_confidence",
    "maxsim",
    "maxsim_scores",
    "maxsim_topk",
    "pack_bags",
    "vector_topk",
]
