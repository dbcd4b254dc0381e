"""ANN over a side Lance dataset that Lance's own vector indexes can read.

Engine tables store ``float4[]`` as ``list<float32>``, which Lance refuses to index (it needs
a fixed-size list), so each vector index keeps a side dataset::

    <index dir>/vectors.lance   __rid int64, vec fixed_size_list<float32, d>
                                [, bag list<fixed_size_list<float32, d>>]   (multi-vectors)

``vec`` is L2-normalised, and the Lance index uses the L2 metric: for unit vectors
``|a - b|^2 = 2 - 2 cos(a, b)``, so L2 order is cosine order, and a zero vector (kept at zero)
lands at distance 1, i.e. cosine 0, exactly as the exact kernel scores it. For multi-vector
rows ``vec`` is the normalised mean of the normalised token vectors (the first stage) and
``bag`` keeps the normalised token vectors for the exact MaxSim rerank.

Lance handles the incremental part: appended rows live in unindexed fragments that every
``nearest`` query also scans exactly, deletions are honoured through deletion files, and
``optimize_indices`` folds new fragments into the index. Prefiltering goes through
``row_addr_allowlist`` (row addresses of the allowed rows, applied before the k-NN).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import lance
import numpy as np
import numpy.typing as npt
import pyarrow as pa
from lance.dataset import serialize_row_addrs

from ._kernels import PackedBags, normalize_rows

I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]

# Below this many rows Lance's flat search over the side dataset is fast (a few ms) and
# exact; an IVF index would only lose recall (on SciFact, 5k rows, IVF cost 0.008 nDCG@10).
# Per index: option ``ann_min_rows``.
MIN_ROWS_FOR_ANN = 50_000

# Vector indexes up to this many floats (256 MB) keep an in-memory copy of the side data for
# exact scans (small tables, selective filters): a numpy product beats a Lance flat scan
# several times over.
MATRIX_CACHE_FLOATS = 64 << 20

LANCE_INDEX_TYPES = {"clustered": "IVF_FLAT", "clustered_quantized": "IVF_PQ",
                     "pooled_quantized": "IVF_PQ"}


@dataclass
class AnnParams:
    """Search knobs; the defaults meet recall@10 >= 0.95 on the benchmark data."""

    nprobe_fraction: float = 0.1
    min_nprobes: int = 16
    refine_factor: int = 20


def fsl(matrix: F32) -> pa.FixedSizeListArray:
    m = np.ascontiguousarray(matrix, dtype=np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(m.reshape(-1)), int(m.shape[1]))


def bags_to_arrow(packed: PackedBags) -> pa.ListArray:
    inner = fsl(packed.vectors) if packed.vectors.shape[0] else pa.FixedSizeListArray.from_arrays(
        pa.array(np.zeros(0, np.float32)), max(packed.dim, 1))
    return pa.ListArray.from_arrays(pa.array(packed.offsets.astype(np.int32)), inner)


def pooled(packed: PackedBags) -> F32:
    """Normalised mean of each bag's (normalised) vectors; empty bags give zero."""
    lengths = np.diff(packed.offsets)
    sums = np.zeros((len(packed), packed.dim), np.float32)
    nonempty = np.flatnonzero(lengths > 0)
    if nonempty.size:
        sums[nonempty] = np.add.reduceat(packed.vectors, packed.offsets[nonempty], axis=0)
    return normalize_rows(sums)


class SideVectorIndex:
    """The side dataset of one vector or multi-vector index (see module docstring)."""

    def __init__(self, uri: str, *, multi: bool, index_type: str, dim: int,
                 version: int | None = None, storage_options: dict[str, str] | None = None,
                 ) -> None:
        self.uri = uri
        self.multi = multi
        self.index_type = index_type
        self.dim = dim
        self.storage_options = storage_options
        self._ds: lance.LanceDataset | None = None
        self._version = version
        self._addr_cache: tuple[int, I64, npt.NDArray[np.uint64]] | None = None
        self._parts_cache: tuple[int, int] | None = None
        self._matrix_cache: tuple[int, I64, F32] | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def _schema(self) -> pa.Schema:
        fields = [pa.field("__rid", pa.int64()),
                  pa.field("vec", pa.list_(pa.float32(), self.dim))]
        if self.multi:
            fields.append(pa.field("bag", pa.list_(pa.list_(pa.float32(), self.dim))))
        return pa.schema(fields)

    @property
    def ds(self) -> lance.LanceDataset | None:
        if self._ds is None:
            try:
                self._ds = lance.dataset(self.uri, version=self._version,
                                         storage_options=self.storage_options)
            except (FileNotFoundError, ValueError, OSError):
                return None
        return self._ds

    @property
    def version(self) -> int | None:
        ds = self.ds
        return None if ds is None else int(ds.version)

    def _table(self, rids: I64, vectors: F32 | None, bags: PackedBags | None) -> pa.Table:
        if self.multi:
            assert bags is not None
            cols: list[pa.Array] = [pa.array(bags.row_keys, pa.int64()), fsl(pooled(bags)),
                                    bags_to_arrow(bags)]
        else:
            assert vectors is not None
            cols = [pa.array(rids, pa.int64()), fsl(normalize_rows(vectors))]
        return pa.Table.from_arrays(cols, schema=self._schema())

    def upsert(self, rids: I64, vectors: F32 | None = None, bags: PackedBags | None = None,
               existing: I64 | None = None) -> None:
        """Replace-or-insert rows (an UPDATE of a row arrives as an upsert of its key).

        ``existing``: the sorted keys already stored, when the caller knows them; only
        those are deleted first (a bulk build then issues no deletes at all).
        """
        self.delete(rids if existing is None else np.intersect1d(rids, existing))
        if rids.size == 0:
            return
        table = self._table(rids, vectors, bags)
        if self.ds is None:
            self._ds = lance.write_dataset(table, self.uri, schema=self._schema(),
                                           storage_options=self.storage_options)
        else:
            self._ds = lance.write_dataset(table, self.uri, mode="append",
                                           storage_options=self.storage_options)

    def delete(self, rids: I64) -> None:
        ds = self.ds
        if ds is None or rids.size == 0:
            return
        # Chunked so that a huge delete does not become one enormous SQL literal.
        for i in range(0, rids.size, 20000):
            chunk = rids[i:i + 20000]
            ds.delete(f"__rid IN ({','.join(map(str, chunk.tolist()))})")
        self._ds = lance.dataset(self.uri, storage_options=self.storage_options)

    def ensure_empty(self) -> None:
        if self.ds is None:
            self._ds = lance.write_dataset(self._schema().empty_table(), self.uri,
                                           storage_options=self.storage_options)

    def count(self) -> int:
        ds = self.ds
        return 0 if ds is None else int(ds.count_rows())

    def has_ann(self) -> bool:
        ds = self.ds
        return ds is not None and any(i.get("name") == "vec_idx" for i in _list_indices(ds))

    def train(self, min_rows: int = MIN_ROWS_FOR_ANN) -> bool:
        """(Re)build the Lance index when there are enough rows; returns whether it did."""
        ds = self.ds
        if ds is None:
            return False
        n = int(ds.count_rows())
        if n < max(min_rows, 2):
            return False
        lance_type = LANCE_INDEX_TYPES.get(self.index_type, "IVF_PQ")
        kwargs: dict[str, Any] = {}
        # Half of the usual sqrt(n) lists: bigger lists make a probe worth more recall on
        # real (weakly clustered) embeddings, and PQ/flat scans within a list are cheap.
        parts = max(2, int(math.sqrt(n) / 2))
        if lance_type == "IVF_PQ":
            for div in (16, 8, 4, 2, 1):
                if self.dim % div == 0 and self.dim // div >= 1:
                    kwargs["num_sub_vectors"] = self.dim // div
                    break
        ds.create_index("vec", lance_type, name="vec_idx", metric="L2",
                        num_partitions=parts, replace=True, **kwargs)
        self._ds = lance.dataset(self.uri, storage_options=self.storage_options)
        return True

    def optimize(self) -> None:
        """Fold appended fragments into the Lance index (cheap, incremental)."""
        ds = self.ds
        if ds is not None and self.has_ann():
            ds.optimize.optimize_indices()
            self._ds = lance.dataset(self.uri, storage_options=self.storage_options)

    def num_partitions(self) -> int:
        ds = self.ds
        if ds is None:
            return 0
        if self._parts_cache is not None and self._parts_cache[0] == ds.version:
            return self._parts_cache[1]
        try:
            stats = ds.stats.index_stats("vec_idx")
            parts = int(stats["indices"][0].get("num_partitions", 0)) if stats.get(
                "indices") else 0
        except (ValueError, KeyError, RuntimeError):
            parts = 0
        # index_stats returns every centroid: far too slow to ask on each query.
        self._parts_cache = (int(ds.version), parts)
        return parts

    # -- querying ----------------------------------------------------------------------

    def matrix(self) -> tuple[I64, F32] | None:
        """(sorted row keys, their normalised vectors), cached per version; None when the
        index is multi-vector or too large for MATRIX_CACHE_FLOATS."""
        ds = self.ds
        if ds is None or self.multi:
            return None
        if self._matrix_cache is not None and self._matrix_cache[0] == ds.version:
            return self._matrix_cache[1], self._matrix_cache[2]
        if ds.count_rows() * max(self.dim, 1) > MATRIX_CACHE_FLOATS:
            return None
        t = ds.to_table(columns=["__rid", "vec"])
        keys = t["__rid"].to_numpy().astype(np.int64)
        arr = t["vec"].combine_chunks()
        mat = (arr.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
               .reshape(-1, self.dim) if len(arr) else np.zeros((0, self.dim), np.float32))
        order = np.argsort(keys, kind="stable")
        keys, mat = keys[order], np.ascontiguousarray(mat[order])
        self._matrix_cache = (int(ds.version), keys, mat)
        return keys, mat

    def row_addresses(self, rids: I64) -> npt.NDArray[np.uint64]:
        """Row addresses (for ``row_addr_allowlist``) of the given keys present here."""
        ds = self.ds
        if ds is None:
            return np.zeros(0, np.uint64)
        if self._addr_cache is None or self._addr_cache[0] != ds.version:
            t = ds.to_table(columns=["__rid"], with_row_address=True)
            keys = t["__rid"].to_numpy()
            addrs = t["_rowaddr"].to_numpy()
            order = np.argsort(keys)
            self._addr_cache = (int(ds.version), keys[order], addrs[order])
        _, keys, addrs = self._addr_cache
        if keys.size == 0 or rids.size == 0:
            return np.zeros(0, np.uint64)
        pos = np.clip(np.searchsorted(keys, rids), 0, keys.size - 1)
        return addrs[pos[keys[pos] == rids]]

    def search(self, q: F32, k: int, allowed: I64 | None = None,
               params: AnnParams | None = None, with_bags: bool = False,
               ) -> pa.Table:
        """Nearest rows to the normalised query ``q`` (``__rid``, ``vec`` [, ``bag``]).

        ``allowed`` restricts the search to those row keys before the k-NN (prefilter).
        """
        ds = self.ds
        p = params or AnnParams()
        cols = ["__rid", "vec"] + (["bag"] if with_bags else [])
        if ds is None or k <= 0:
            return self._schema().empty_table().select(cols)
        nearest: dict[str, Any] = {"column": "vec", "q": np.asarray(q, np.float32), "k": k}
        parts = self.num_partitions()
        if parts:
            probes = max(p.min_nprobes, int(math.ceil(parts * p.nprobe_fraction)))
            nearest["minimum_nprobes"] = min(parts, probes)
            if LANCE_INDEX_TYPES.get(self.index_type) != "IVF_FLAT":
                nearest["refine_factor"] = p.refine_factor
        kw: dict[str, Any] = {}
        if allowed is not None:
            addrs = self.row_addresses(allowed)
            if addrs.size == 0:
                return self._schema().empty_table().select(cols)
            kw["row_addr_allowlist"] = serialize_row_addrs(addrs.tolist())
        return ds.scanner(columns=cols, nearest=nearest, prefilter=True,
                          disable_scoring_autoprojection=True, **kw).to_table()


def _list_indices(ds: lance.LanceDataset) -> list[dict[str, Any]]:
    if hasattr(ds, "describe_indices"):
        return [{"name": d.name} for d in ds.describe_indices()]
    found: list[Any] = list(ds.list_indices())  # Lance before describe_indices existed
    return [dict(i) for i in found]
