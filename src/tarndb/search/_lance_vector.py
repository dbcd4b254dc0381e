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

import contextlib
import hashlib
import math
import os
import shutil
import tempfile
import threading
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

# Larger ones (up to this size) keep the copy as a memory-mapped file on local disk instead
# (1M x 384 is 1.5 GB): the OS page cache holds what is hot, and a selective filter (1% of
# 1M rows) is one gather of 10k rows and a product, ~5 ms, where a Lance take of the same
# rows costs ~15 us a row. Directory: $TARNDB_SEARCH_CACHE or <tmp>/tarndb-search-cache.
MATRIX_MMAP_MAX_BYTES = 16 << 30

LANCE_INDEX_TYPES = {"clustered": "IVF_FLAT", "clustered_quantized": "IVF_PQ",
                     "pooled_quantized": "IVF_PQ"}


class VectorMatrix:
    """Normalised vectors (``mat``, in storage order) with their row keys, indexed by key."""

    def __init__(self, keys: I64, mat: F32) -> None:
        self.keys = keys
        # A plain view of a memmap: numpy's memmap.__getitem__ adds work to every gather.
        self.mat = mat.view(np.ndarray) if isinstance(mat, np.memmap) else mat
        self._order = np.argsort(keys, kind="stable")
        self._sorted = keys[self._order]
        # Keys that are one dense run (a bulk load: 0..n-1) need no binary search.
        self._dense = bool(keys.size and int(self._sorted[-1]) - int(self._sorted[0]) + 1
                           == keys.size)

    def __len__(self) -> int:
        return int(self.keys.size)

    def positions(self, rids: I64) -> I64:
        """Storage positions (ascending, for locality) of the given keys present here."""
        if self._sorted.size == 0 or rids.size == 0:
            return np.zeros(0, np.int64)
        if self._dense:
            off = rids - self._sorted[0]
            off = off[(off >= 0) & (off < self._sorted.size)]
            return np.sort(self._order[off])
        pos = np.clip(np.searchsorted(self._sorted, rids), 0, self._sorted.size - 1)
        return np.sort(self._order[pos[self._sorted[pos] == rids]])

    def rows(self, rids: I64 | None) -> tuple[I64, F32]:
        """(keys, vectors) of the given keys present here (all rows for None)."""
        if rids is None:
            return self.keys, self.mat
        pos = self.positions(rids)
        return self.keys[pos], np.take(self.mat, pos, axis=0)


def cache_dir() -> str:
    return os.environ.get("TARNDB_SEARCH_CACHE") or os.path.join(tempfile.gettempdir(),
                                                                 "tarndb-search-cache")


def _mapped_matrix(ds: lance.LanceDataset, uri: str, dim: int, n: int) -> VectorMatrix | None:
    """The side dataset's vectors as a float32 file (mapped), written once per version."""
    nbytes = n * dim * 4
    if nbytes > MATRIX_MMAP_MAX_BYTES:
        return None
    root = cache_dir()
    stem = hashlib.sha1(uri.rstrip("/").encode()).hexdigest()[:20]
    base = os.path.join(root, f"{stem}-v{int(ds.version)}-d{dim}")
    try:
        if not (os.path.exists(base + ".f32") and os.path.exists(base + ".keys.npy")):
            os.makedirs(root, exist_ok=True)
            if shutil.disk_usage(root).free < 2 * nbytes:
                return None
            tmp = f"{base}.{os.getpid()}.{threading.get_ident()}.tmp"
            parts: list[I64] = []
            with open(tmp + ".f32", "wb") as f:
                for b in ds.scanner(columns=["__rid", "vec"], batch_size=65536).to_batches():
                    parts.append(b.column(0).to_numpy().astype(np.int64))
                    vec = b.column(1)
                    if len(vec):
                        flat = vec.flatten().to_numpy(zero_copy_only=False)
                        f.write(np.ascontiguousarray(flat, dtype=np.float32).tobytes())
            keys = np.concatenate(parts) if parts else np.zeros(0, np.int64)
            np.save(tmp + ".keys.npy", keys)
            # Keys land first: a reader only trusts the pair once the matrix is in place.
            os.replace(tmp + ".keys.npy", base + ".keys.npy")
            os.replace(tmp + ".f32", base + ".f32")
            for old in os.listdir(root):  # earlier versions of this index
                if old.startswith(stem + "-") and not old.startswith(os.path.basename(base)
                                                                      + "."):
                    with contextlib.suppress(OSError):
                        os.remove(os.path.join(root, old))
        keys = np.load(base + ".keys.npy")
        if os.path.getsize(base + ".f32") != keys.size * dim * 4:
            return None
        mat = (np.memmap(base + ".f32", dtype=np.float32, mode="r", shape=(keys.size, dim))
               if keys.size else np.zeros((0, dim), np.float32))
        return VectorMatrix(keys.astype(np.int64), mat)
    except OSError:
        return None


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
        self._matrix_cache: tuple[int, VectorMatrix] | None = None

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

    def matrix(self) -> VectorMatrix | None:
        """All normalised vectors of a single-vector index, for exact scoring of any subset
        with one gather and a matrix product (selective filters, rescoring); cached per
        version. Up to MATRIX_CACHE_FLOATS in memory, larger ones as a memory-mapped file
        in the local cache directory (see :func:`cache_dir`); None for multi-vector
        indexes, or when the file does not fit (MATRIX_MMAP_MAX_BYTES, free disk)."""
        ds = self.ds
        if ds is None or self.multi:
            return None
        if self._matrix_cache is not None and self._matrix_cache[0] == ds.version:
            return self._matrix_cache[1]
        n = int(ds.count_rows())
        dim = max(self.dim, 1)
        m: VectorMatrix | None
        if n * dim <= MATRIX_CACHE_FLOATS:
            t = ds.to_table(columns=["__rid", "vec"])
            keys = t["__rid"].to_numpy().astype(np.int64)
            arr = t["vec"].combine_chunks()
            mat = (arr.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
                   .reshape(-1, dim) if len(arr) else np.zeros((0, dim), np.float32))
            m = VectorMatrix(keys, np.ascontiguousarray(mat))
        else:
            m = _mapped_matrix(ds, self.uri, dim, n)
        if m is not None:
            self._matrix_cache = (int(ds.version), m)
        return m

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
               with_vec: bool = True, refine_here: bool = False) -> pa.Table:
        """Nearest rows to the normalised query ``q`` (``__rid`` [, ``vec``] [, ``bag``]).

        ``allowed`` restricts the search to those row keys before the k-NN (prefilter).
        Without ``with_vec`` only keys come back (Lance then skips a take of the vectors,
        which costs as much as the search itself). With ``refine_here`` a quantized index
        returns ``k * refine_factor`` approximate candidates unrefined: the caller rescores
        them exactly from :meth:`matrix` (a gather from memory instead of Lance's refine,
        which takes every candidate row from disk: 2000 rows, ~25 ms).
        """
        ds = self.ds
        p = params or AnnParams()
        cols = ["__rid"] + (["vec"] if with_vec else []) + (["bag"] if with_bags else [])
        if ds is None or k <= 0:
            return self._schema().empty_table().select(cols)
        nearest: dict[str, Any] = {"column": "vec", "q": np.asarray(q, np.float32), "k": k}
        parts = self.num_partitions()
        if parts:
            probes = max(p.min_nprobes, int(math.ceil(parts * p.nprobe_fraction)))
            nearest["minimum_nprobes"] = min(parts, probes)
            if LANCE_INDEX_TYPES.get(self.index_type) != "IVF_FLAT":
                if refine_here:
                    nearest["k"] = k * max(1, p.refine_factor)
                else:
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
