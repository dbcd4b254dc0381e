"""Exact top-k by scanning a Lance dataset: the path without an index, and the fresh-row
path with one. Scans run batch by batch with a running top-k, so memory stays bounded."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import lance
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from ._kernels import (
    F32,
    I64,
    as_query_matrix,
    as_query_vector,
    bags_from_arrow,
    cosine_scores,
    maxsim_scores,
    topk_indices,
    vectors_from_arrow,
)

RID = "__rid"
_BATCH = 65536


def scan(ds: lance.LanceDataset, columns: Sequence[str], filter_sql: str | None = None,
         fragments: Iterable[Any] | None = None) -> Iterable[pa.RecordBatch]:
    kw: dict[str, Any] = {"columns": list(columns), "batch_size": _BATCH}
    if filter_sql:
        kw["filter"] = filter_sql
    if fragments is not None:
        kw["fragments"] = list(fragments)
    return ds.scanner(**kw).to_batches()


def scan_row_keys(ds: lance.LanceDataset, filter_sql: str | None = None,
                  fragments: Iterable[Any] | None = None) -> I64:
    parts = [b.column(0).to_numpy() for b in scan(ds, [RID], filter_sql, fragments)]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


def restrict(keys: I64, allowed: I64 | None) -> npt.NDArray[np.bool_]:
    if allowed is None:
        return np.ones(keys.size, bool)
    return np.isin(keys, allowed)


class TopK:
    """A running top-k over (key, score) batches."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.keys = np.zeros(0, np.int64)
        self.scores = np.zeros(0, np.float32)

    def push(self, keys: I64, scores: F32) -> None:
        if keys.size == 0:
            return
        keys = np.concatenate([self.keys, keys.astype(np.int64)])
        scores = np.concatenate([self.scores, scores.astype(np.float32)])
        # Break ties by key so results do not depend on scan order.
        order = np.argsort(keys, kind="stable")
        keys, scores = keys[order], scores[order]
        idx = topk_indices(scores, self.k)
        self.keys, self.scores = keys[idx], scores[idx]

    def result(self) -> tuple[I64, F32]:
        return self.keys, self.scores


def exact_vector_topk(ds: lance.LanceDataset, column: str, query: Any, k: int,
                      filter_sql: str | None = None, allowed: I64 | None = None,
                      fragments: Iterable[Any] | None = None) -> tuple[I64, F32]:
    q = as_query_vector(query)
    top = TopK(k)
    for batch in scan(ds, [RID, column], filter_sql, fragments):
        keys = batch.column(0).to_numpy().astype(np.int64)
        mat, valid = vectors_from_arrow(batch.column(1))
        keys = keys[valid]
        if mat.shape[0]:
            scores = cosine_scores(mat, q)
            keep = restrict(keys, allowed)
            top.push(keys[keep], scores[keep])
    return top.result()


def exact_maxsim_topk(ds: lance.LanceDataset, column: str, query: Any, k: int,
                      filter_sql: str | None = None, allowed: I64 | None = None,
                      fragments: Iterable[Any] | None = None) -> tuple[I64, F32]:
    q = as_query_matrix(query)
    top = TopK(k)
    for batch in scan(ds, [RID, column], filter_sql, fragments):
        keys = batch.column(0).to_numpy().astype(np.int64)
        packed = bags_from_arrow(batch.column(1), keys)
        if len(packed):
            keep = np.flatnonzero(restrict(packed.row_keys, allowed))
            if keep.size != len(packed):
                packed = packed.take(keep)
            top.push(packed.row_keys, maxsim_scores(packed, q))
    return top.result()


def read_texts(ds: lance.LanceDataset, column: str, filter_sql: str | None = None,
               fragments: Iterable[Any] | None = None) -> tuple[I64, list[str | None]]:
    keys: list[I64] = []
    texts: list[str | None] = []
    for batch in scan(ds, [RID, column], filter_sql, fragments):
        keys.append(batch.column(0).to_numpy().astype(np.int64))
        texts.extend(batch.column(1).to_pylist())
    return (np.concatenate(keys) if keys else np.zeros(0, np.int64)), texts
