"""ANN over a side Lance dataset that Lance's own vector indexes can read.

Engine tables store ``float4[]`` as ``list<float32>``, which Lance refuses to index (it needs
a fixed-size list), so each vector index keeps a side dataset::

    <index dir>/vectors.lance   __rid int64, vec fixed_size_list<float32, d>
                                [, bag list<fixed_size_list<float32, d>>]   (multi-vectors)

For a cosine index (the default) ``vec`` is L2-normalised, and the Lance index uses the L2
metric: for unit vectors ``|a - b|^2 = 2 - 2 cos(a, b)``, so L2 order is cosine order, and a
zero vector (kept at zero) lands at distance 1, i.e. cosine 0, exactly as the exact kernel
scores it. An ``l2`` or ``dot`` index (pgvector's ``vector_l2_ops`` / ``vector_ip_ops``)
keeps the vectors as they are, and its Lance index uses that metric. For multi-vector
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
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import lance
import numpy as np
import numpy.typing as npt
import pyarrow as pa
from lance.dataset import serialize_row_addrs

from ..storage import rowmap
from ._kernels import (
    PackedBags,
    bags_from_arrow,
    matvec,
    metric_scores,
    normalize_rows,
    sq_norms,
    take_bags,
)

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

# Capacity of the index cache shared by all side datasets of the process (Lance's own
# default), and the largest index loaded into it in full ahead of queries (prewarm).
INDEX_CACHE_BYTES = 6 << 30
PREWARM_MAX_BYTES = 2 << 30

# Subsets of more than 1/this of the rows are scored by a product over all rows, then picked.
GATHER_MAX_FRACTION_INV = 3
# Filters of at least this many rows keep their gathered rows (VectorMatrix.scores), up to
# this many bytes per copy (TARNDB_FILTER_ROWS_CACHE_BYTES; 0: none).
SUBSET_MIN_ROWS = 256
SUBSET_MAX_BYTES = int(os.environ.get("TARNDB_FILTER_ROWS_CACHE_BYTES", str(256 << 20)))

# The in-memory IVF probe (SideVectorIndex.ivf_topk) needs every row's list: one product of
# the rows with the centroids, n x lists x dim multiply-adds (100k x 158 x 384: 6e9, ~1 s).
# Up to this many it is computed when the index is built or folded; up to the larger figure
# in a background thread on first use (queries go through Lance meanwhile); above, never.
IVF_ASSIGN_SYNC_MAX = 2e10
IVF_ASSIGN_MAX = 4e11

LANCE_INDEX_TYPES = {"clustered": "IVF_FLAT", "clustered_quantized": "IVF_PQ",
                     "pooled_quantized": "IVF_PQ"}

# The Lance metric of each index metric (cosine indexes hold normalised vectors, see above).
LANCE_METRICS = {"cosine": "L2", "l2": "L2", "dot": "dot"}


class VectorMatrix:
    """An index's vectors (``mat``, in storage order; normalised for a cosine index) with
    their row keys, indexed by key."""

    def __init__(self, keys: I64, mat: F32, metric: str = "cosine") -> None:
        self.keys = keys
        self.metric = metric
        self._norms2: F32 | None = None
        self.mapped = isinstance(mat, np.memmap)
        # Gathered copies of the rows of recent filters (see :meth:`scores`).
        self._subsets: OrderedDict[tuple[int, ...], tuple[I64, I64, F32, F32 | None]] = \
            OrderedDict()
        self._subset_bytes = 0
        self._subset_lock = threading.Lock()
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

    def norms2(self) -> F32 | None:
        """The rows' squared norms, for an l2 index (computed once); None otherwise."""
        if self.metric != "l2":
            return None
        if self._norms2 is None:
            self._norms2 = sq_norms(self.mat)
        return self._norms2

    def scores(self, rids: I64 | None, q: F32) -> tuple[I64, F32]:
        """(keys, score by the index's metric, higher is nearer; see ``metric_scores``) of
        the given keys present here (all rows for None). ``q`` is normalised for cosine.

        A large subset is scored by one product over every row and then picked: a gather
        copies each row before the product reads it again (50% of 100k x 384: 5x numpy).
        """
        if rids is None:
            return self.keys, metric_scores(self.mat, q, self.metric, self.norms2())
        kept = self._subset(rids) if rids.size >= SUBSET_MIN_ROWS else None
        if kept is not None:
            return kept[1], metric_scores(kept[2], q, self.metric, kept[3])
        pos = self.positions(rids)
        if pos.size * GATHER_MAX_FRACTION_INV > self.keys.size:
            return self.keys[pos], metric_scores(self.mat, q, self.metric, self.norms2())[pos]
        n2 = self.norms2()
        sub = np.take(self.mat, pos, axis=0)
        sub_n2 = None if n2 is None else n2[pos]
        if rids.size >= SUBSET_MIN_ROWS:
            self._keep_subset(rids, self.keys[pos], sub, sub_n2)
        return self.keys[pos], metric_scores(sub, q, self.metric, sub_n2)

    # A filter's rows gathered once: the same filter (``WHERE tenant = 7``, the same allowed
    # keys) is scored from the kept copy, one product over contiguous rows (10% of 100k x
    # 384: a 15 MB gather per query before). Kept per copy (a version), least recently
    # used out first, up to twice the copy's own size or SUBSET_MAX_BYTES.

    @staticmethod
    def _fingerprint(rids: I64) -> tuple[int, ...]:
        r = rids.astype(np.int64, copy=False)
        # Cheap, not unique: a hit is confirmed by comparing the keys themselves.
        return (int(r.size), int(r[0]), int(r[-1]), int(r.sum()), int((r * r).sum()))

    def _subset(self, rids: I64) -> tuple[I64, I64, F32, F32 | None] | None:
        fp = self._fingerprint(rids)
        with self._subset_lock:
            found = self._subsets.get(fp)
            if found is not None:
                self._subsets.move_to_end(fp)
        if found is None or not np.array_equal(found[0], rids):
            return None
        return found

    def _keep_subset(self, rids: I64, keys: I64, sub: F32, n2: F32 | None) -> None:
        budget = min(SUBSET_MAX_BYTES, 2 * int(self.mat.nbytes))
        size = int(sub.nbytes + keys.nbytes + rids.nbytes)
        if size > budget // 2:
            return
        fp = self._fingerprint(rids)
        with self._subset_lock:
            if fp in self._subsets:
                return
            self._subsets[fp] = (rids.copy(), keys, sub, n2)
            self._subset_bytes += size
            while self._subset_bytes > budget and self._subsets:
                _, old = self._subsets.popitem(last=False)
                self._subset_bytes -= int(old[2].nbytes + old[1].nbytes + old[0].nbytes)


def cache_dir() -> str:
    return os.environ.get("TARNDB_SEARCH_CACHE") or os.path.join(tempfile.gettempdir(),
                                                                 "tarndb-search-cache")


def _cache_stem(uri: str) -> str:
    return hashlib.sha1(uri.rstrip("/").encode()).hexdigest()[:20]


def _cache_base(root: str, uri: str, ds: lance.LanceDataset, dim: int) -> str:
    """Path prefix of the cache files of one side-dataset version."""
    return os.path.join(root, f"{_cache_stem(uri)}-v{int(ds.version)}-d{dim}")


def _prune_other_versions(root: str, uri: str, ds: lance.LanceDataset) -> None:
    """Remove the cache files of this side dataset's earlier versions."""
    stem = _cache_stem(uri)
    current = f"{stem}-v{int(ds.version)}-"
    for old in os.listdir(root):
        if old.startswith(stem + "-") and not old.startswith(current):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(root, old))


def _mapped_matrix(ds: lance.LanceDataset, uri: str, dim: int, n: int,
                   metric: str = "cosine") -> VectorMatrix | None:
    """The side dataset's vectors as a float32 file (mapped), written once per version."""
    nbytes = n * dim * 4
    if nbytes > MATRIX_MMAP_MAX_BYTES:
        return None
    root = cache_dir()
    base = _cache_base(root, uri, ds, dim)
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
            _prune_other_versions(root, uri, ds)
        keys = np.load(base + ".keys.npy")
        if os.path.getsize(base + ".f32") != keys.size * dim * 4:
            return None
        mat = (np.memmap(base + ".f32", dtype=np.float32, mode="r", shape=(keys.size, dim))
               if keys.size else np.zeros((0, dim), np.float32))
        return VectorMatrix(keys.astype(np.int64), mat, metric)
    except OSError:
        return None


class BagStore:
    """The normalised token vectors of a multi-vector index, packed in storage order, with
    their row keys: the exact MaxSim rerank gathers candidates' bags from here (memory or
    a mapped file) instead of a Lance take (200 bags, ~25 ms)."""

    def __init__(self, keys: I64, offsets: I64, vectors: F32) -> None:
        self.keys = keys
        self.offsets = offsets
        self.vectors = vectors.view(np.ndarray) if isinstance(vectors, np.memmap) else vectors
        self._index = VectorMatrix(keys, np.zeros((keys.size, 0), np.float32))

    def __len__(self) -> int:
        return int(self.keys.size)

    def take(self, rids: I64) -> PackedBags:
        """The bags of the given keys present here (in storage order)."""
        return take_bags(self.vectors, self.offsets, self.keys, self._index.positions(rids))


def _mapped_bags(ds: lance.LanceDataset, uri: str, dim: int) -> BagStore | None:
    """The side dataset's bags as a float32 file (mapped), written once per version; None
    past MATRIX_MMAP_MAX_BYTES or when the disk fills up (the bag count is only known
    once written)."""
    root = cache_dir()
    base = _cache_base(root, uri, ds, dim) + ".bags"
    try:
        if not (os.path.exists(base + ".f32") and os.path.exists(base + ".npz")):
            os.makedirs(root, exist_ok=True)
            tmp = f"{base}.{os.getpid()}.{threading.get_ident()}.tmp"
            key_parts: list[I64] = []
            len_parts: list[I64] = []
            written = 0
            with open(tmp + ".f32", "wb") as f:
                for b in ds.scanner(columns=["__rid", "bag"], batch_size=8192).to_batches():
                    packed = bags_from_arrow(b.column(1), b.column(0).to_numpy())
                    key_parts.append(packed.row_keys)
                    len_parts.append(np.diff(packed.offsets))
                    data = np.ascontiguousarray(packed.vectors, dtype=np.float32).tobytes()
                    written += len(data)
                    if written > MATRIX_MMAP_MAX_BYTES or \
                            shutil.disk_usage(root).free < len(data) + (1 << 30):
                        f.close()
                        os.remove(tmp + ".f32")
                        return None
                    f.write(data)
            keys = np.concatenate(key_parts) if key_parts else np.zeros(0, np.int64)
            lengths = np.concatenate(len_parts) if len_parts else np.zeros(0, np.int64)
            offsets = np.zeros(keys.size + 1, np.int64)
            np.cumsum(lengths, out=offsets[1:])
            with open(tmp + ".npz", "wb") as f:
                np.savez(f, keys=keys, offsets=offsets)
            # The index lands first: a reader only trusts the pair once the vectors are in.
            os.replace(tmp + ".npz", base + ".npz")
            os.replace(tmp + ".f32", base + ".f32")
            _prune_other_versions(root, uri, ds)
        z = np.load(base + ".npz")
        keys, offsets = z["keys"].astype(np.int64), z["offsets"].astype(np.int64)
        total = int(offsets[-1])
        if os.path.getsize(base + ".f32") != total * dim * 4:
            return None
        vecs = (np.memmap(base + ".f32", dtype=np.float32, mode="r", shape=(total, dim))
                if total else np.zeros((0, dim), np.float32))
        return BagStore(keys, offsets, vecs)
    except OSError:
        return None


@dataclass
class IvfLists:
    """The IVF lists of an index over its in-memory copy: list ``l`` holds the rows at
    positions ``order[offsets[l]:offsets[l + 1]]`` of ``matrix``. With ``contiguous`` the
    copy is in list order (``order`` is the identity): list ``l`` is the slice
    ``offsets[l]:offsets[l + 1]``, scored without a gather."""

    cents: F32
    c2: F32  # the centroid term of the L2 rank (|c|^2; 1 for a dot index's unit centroids)
    order: I64
    offsets: I64
    row_list: npt.NDArray[np.int32]  # the list of the row at each position
    matrix: VectorMatrix  # the copy these positions are of (one version)
    contiguous: bool = False


@dataclass
class AnnParams:
    """Search knobs.

    ``nprobes``: IVF lists to probe. Unset, an index uses the count calibrated on its own
    data for recall@10 >= RECALL_TARGET (see :meth:`SideVectorIndex.calibrate`); set, it
    overrides that (``SET tarndb.probes``). ``nprobe_fraction`` / ``min_nprobes`` are the
    rule for an index without calibration (or with the ``nprobe_fraction`` option).

    pgvector's knobs, for indexes made with ``USING hnsw`` / ``USING ivfflat``:
    ``ef_search`` (``SET hnsw.ef_search``) probes the count calibrated for the ef_search
    nearest rows (more candidates, more recall, as HNSW's search list); ``ivf_probes``
    (``SET ivfflat.probes``) probes that many lists. ``nprobes`` wins over both; other
    indexes ignore them. ``source``: what set the count, for EXPLAIN.
    """

    nprobe_fraction: float = 0.1
    min_nprobes: int = 16
    refine_factor: int = 20
    nprobes: int | None = None
    ef_search: int | None = None
    ivf_probes: int | None = None
    source: str | None = None


# Calibration: the recall@10 an index is tuned to, the sampled rows used as queries, and the
# margin the sample must clear (200 queries x 10 neighbours: a standard error of ~0.005).
RECALL_TARGET = 0.95
CALIBRATION_QUERIES = 200
CALIBRATION_MARGIN = 0.02
CALIBRATION_SLACK = 1.25
# Deeper neighbour counts calibrated too, when every row's list is known (IvfLists): a
# filter that lets a share s of the rows through asks, in effect, for the k / s nearest
# rows, so a filtered probe takes the count calibrated for that depth ("deep" in tuning).
DEEP_KS = (30, 100, 300, 1000)
# Real queries: the index keeps a uniform sample of up to WORKLOAD_QUERIES of the query
# vectors it answers with its calibrated count (:class:`WorkloadSample`, 256 x 384 floats:
# 384 KiB), and measures the probes they need in the background once it holds
# WORKLOAD_MIN_QUERIES, again each time the number seen doubles (at most every
# WORKLOAD_MAX_INTERVAL queries).
WORKLOAD_QUERIES = 256
WORKLOAD_MIN_QUERIES = 64
WORKLOAD_MAX_INTERVAL = 4096


def _probes_for(needed: npt.NDArray[np.int64], depth: int, goal: float, parts: int,
                slack: float = CALIBRATION_SLACK) -> int:
    """The fewest lists whose probe finds a share ``goal`` of the ``depth`` nearest rows of
    the queries behind ``needed`` (see :meth:`SideVectorIndex._needed_ranks`), times
    ``slack`` (a quarter more lists for the synthetic groups, which stand in for queries
    they are not; none for measured real queries), and at least two."""
    sub = needed[:, :depth]
    hist = np.bincount(sub.ravel(), minlength=parts + 1)[1:parts + 1]
    recall_at = np.cumsum(hist) / max(1, sub.size)
    count = int(np.searchsorted(recall_at, goal - 1e-9) + 1)
    return min(parts, max(2, int(math.ceil(count * slack))))


def _group_counts(needed: npt.NDArray[np.int64], k: int, goal: float, parts: int,
                  slack: float = CALIBRATION_SLACK) -> dict[str, int]:
    """A group's probe counts by depth ("10" for k = 10, then DEEP_KS where its neighbours
    go that deep), each at least the one before (deeper never needs fewer lists)."""
    out = {str(k): _probes_for(needed, min(k, needed.shape[1]), goal, parts, slack)}
    floor = out[str(k)]
    for d in DEEP_KS:
        if needed.shape[1] >= d:
            floor = out[str(d)] = max(floor, _probes_for(needed, d, goal, parts, slack))
    return out


def _groups_used(groups: dict[str, dict[str, int]], workload: int) -> list[str]:
    """The groups whose counts hold: all, except ``between`` (the guess for queries that
    are not rows) once WORKLOAD_MIN_QUERIES real queries measured what they need."""
    return [g for g in groups
            if not (g == "between" and "workload" in groups and workload >= WORKLOAD_MIN_QUERIES)]


def combine_groups(groups: dict[str, dict[str, int]], workload: int, k: int = 10
                   ) -> dict[str, Any]:
    """``nprobes`` (depth k) and ``deep`` (DEEP_KS) as the most lists any group in use
    needs; a depth counts when every group in use went that deep."""
    use = _groups_used(groups, workload)
    out: dict[str, Any] = {"nprobes": max(int(groups[g][str(k)]) for g in use),
                           "groups": groups}
    deep = {str(d): max(int(groups[g][str(d)]) for g in use) for d in DEEP_KS
            if all(str(d) in groups[g] for g in use)}
    if deep:
        out["deep"] = deep
    if workload:
        out["workload_queries"] = workload
    return out


class WorkloadSample:
    """A uniform sample (reservoir) of the query vectors an index has answered, bounded at
    ``size`` vectors, thread-safe. :meth:`add` says when the sample is worth measuring
    again: at ``first`` queries seen, then each time the count seen doubles, at most every
    WORKLOAD_MAX_INTERVAL queries; and never while a measurement runs."""

    def __init__(self, size: int = WORKLOAD_QUERIES, first: int = WORKLOAD_MIN_QUERIES,
                 seed: int = 0) -> None:
        self.size = size
        self.first = first
        self.seen = 0
        self._next = first
        self._vecs: list[F32] = []
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()
        self.busy = False

    def __len__(self) -> int:
        return len(self._vecs)

    def add(self, q: F32) -> bool:
        with self._lock:
            self.seen += 1
            if len(self._vecs) < self.size:
                self._vecs.append(np.array(q, dtype=np.float32))
            else:
                j = int(self._rng.integers(0, self.seen))
                if j < self.size:
                    self._vecs[j] = np.array(q, dtype=np.float32)
            if self.seen < self._next or self.busy:
                return False
            self._next = self.seen + min(self.seen, WORKLOAD_MAX_INTERVAL)
            self.busy = True
            return True

    def snapshot(self) -> F32 | None:
        with self._lock:
            return np.stack(self._vecs) if self._vecs else None

    def done(self) -> None:
        with self._lock:
            self.busy = False


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
                 metric: str = "cosine") -> None:
        self.uri = uri
        self.multi = multi
        # cosine (vectors normalised), l2 or dot (vectors as stored); multi-vector indexes
        # are cosine.
        self.metric = "cosine" if multi else metric
        self.index_type = index_type
        self.dim = dim
        self.storage_options = storage_options
        self._ds: lance.LanceDataset | None = None
        self._version = version
        self._parts_cache: tuple[int, int, F32 | None] | None = None
        self._matrix_cache: tuple[int, VectorMatrix] | None = None
        self._warmed: int | None = None
        self._bags_cache: tuple[int, BagStore] | None = None
        self._ivf_cache: tuple[int, IvfLists] | None = None
        # (version, rows, has the ANN index): asked on every query, fixed per version.
        self._meta_cache: tuple[int, int, bool] | None = None
        self._ivf_started: int | None = None
        self._ivf_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------

    def _schema(self) -> pa.Schema:
        fields = [pa.field("__rid", pa.int64()),
                  pa.field("vec", pa.list_(pa.float32(), self.dim))]
        if self.multi:
            fields.append(pa.field("bag", pa.list_(pa.list_(pa.float32(), self.dim))))
        return pa.schema(fields)

    def _open(self, version: int | None = None) -> lance.LanceDataset:
        # Every open shares the process's session, so the index partitions cached by one
        # version of the side dataset serve the next (an incremental fold keeps most of
        # the index) and a prewarmed index stays warm.
        session = _session()
        kw: dict[str, Any] = {} if session is None else {"session": session}
        return lance.dataset(self.uri, version=version, storage_options=self.storage_options,
                             **kw)

    def prewarm(self, background: bool = False) -> None:
        """Load the ANN index into the shared session's cache, once per version.

        A cold IVF index reads and decodes each probed partition on first use: at 1M x 384
        (500 lists, 50 probed) the first hundred queries take ~10 ms instead of ~3 ms.
        Indexes larger than PREWARM_MAX_BYTES are left to warm up as queries touch them.
        """
        ds = self.ds
        if ds is None or self._warmed == ds.version:
            return
        self._warmed = int(ds.version)
        size = next((int(getattr(d, "total_size_bytes", 0) or 0)
                     for d in _describe(ds) if d.name == "vec_idx"), None)
        if size is None or size > PREWARM_MAX_BYTES:
            return

        def run() -> None:
            # A failed prewarm only costs the cold start it was meant to save.
            with contextlib.suppress(Exception):
                ds.prewarm_index("vec_idx")

        if background:
            threading.Thread(target=run, name="tarndb-prewarm", daemon=True).start()
        else:
            run()

    @property
    def ds(self) -> lance.LanceDataset | None:
        if self._ds is None:
            try:
                self._ds = self._open(self._version)
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
            cols = [pa.array(rids, pa.int64()),
                    fsl(normalize_rows(vectors) if self.metric == "cosine" else vectors)]
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
            lance.write_dataset(table, self.uri, schema=self._schema(),
                                storage_options=self.storage_options)
        else:
            lance.write_dataset(table, self.uri, mode="append",
                                storage_options=self.storage_options)
        self._ds = self._open()

    def delete(self, rids: I64) -> None:
        ds = self.ds
        if ds is None or rids.size == 0:
            return
        # Chunked so that a huge delete does not become one enormous SQL literal.
        for i in range(0, rids.size, 20000):
            chunk = rids[i:i + 20000]
            ds.delete(f"__rid IN ({','.join(map(str, chunk.tolist()))})")
        self._ds = self._open()

    def ensure_empty(self) -> None:
        if self.ds is None:
            lance.write_dataset(self._schema().empty_table(), self.uri,
                                storage_options=self.storage_options)
            self._ds = self._open()

    def _meta(self) -> tuple[int, bool]:
        """(rows, whether the ANN index exists) of the current version, kept per version
        (a version never changes; Lance's count_rows and describe_indices cost ~0.1 ms
        each, on every query)."""
        ds = self.ds
        if ds is None:
            return 0, False
        version = int(ds.version)
        cached = self._meta_cache
        if cached is None or cached[0] != version:
            cached = (version, int(ds.count_rows()),
                      any(i.get("name") == "vec_idx" for i in _list_indices(ds)))
            self._meta_cache = cached
        return cached[1], cached[2]

    def count(self) -> int:
        return self._meta()[0]

    def has_ann(self) -> bool:
        return self._meta()[1]

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
        # The target list size too: without it Lance's optimize_indices (a fold) re-balances
        # to its own default (16k rows) and merges the lists, e.g. 158 -> 7 at 100k rows.
        ds.create_index("vec", lance_type, name="vec_idx", metric=LANCE_METRICS[self.metric],
                        num_partitions=parts, target_partition_size=int(math.ceil(n / parts)),
                        replace=True, **kwargs)
        self._ds = self._open()
        return True

    def optimize(self) -> None:
        """Fold appended fragments into the Lance index (cheap, incremental)."""
        ds = self.ds
        if ds is not None and self.has_ann():
            ds.optimize.optimize_indices()
            self._ds = self._open()

    def num_partitions(self) -> int:
        return self.ivf_layout()[0]

    def ivf_layout(self) -> tuple[int, F32 | None]:
        """(number of IVF lists, their centroids or None), cached per version."""
        ds = self.ds
        if ds is None:
            return 0, None
        if self._parts_cache is not None and self._parts_cache[0] == ds.version:
            return self._parts_cache[1], self._parts_cache[2]
        parts, cents = 0, None
        try:
            stats = ds.stats.index_stats("vec_idx")
            first = stats["indices"][0] if stats.get("indices") else {}
            parts = int(first.get("num_partitions", 0))
            raw = first.get("centroids")
            if raw is not None and len(raw) == parts and parts:
                cents = np.asarray(raw, dtype=np.float32).reshape(parts, -1)
        except (ValueError, KeyError, RuntimeError, TypeError):
            pass
        # index_stats returns every centroid: far too slow to ask on each query.
        self._parts_cache = (int(ds.version), parts, cents)
        return parts, cents

    def calibrate(self, target: float = RECALL_TARGET, k: int = 10,
                  queries: int = CALIBRATION_QUERIES, seed: int = 0,
                  workload: F32 | None = None) -> dict[str, Any] | None:
        """The fewest IVF lists to probe for recall@k >= ``target`` on this index's data.

        An IVF_FLAT probe finds a neighbour exactly when the neighbour's list (its nearest
        centroid) is among the query's ``nprobes`` nearest centroids, so recall at every
        probe count follows from the centroid ranks of the exact neighbours, without running
        a single ANN query; the neighbours come from one pass of matrix products over
        :meth:`matrix`. Quantized indexes refine ``k * refine_factor`` candidates, so the
        same count is a lower bound there.

        Three groups of queries, and the count is the one the hardest group needs:

        - ``rows``: sampled rows (their neighbours: the other rows). Cheap and always there,
          but too easy when the queries are not rows: a row's neighbours are its own
          neighbourhood (on a corpus with near-duplicates, its copies: one list), while a
          question against passages sits away from every row and its neighbours spread over
          many lists (SciFact claims over MiniLM abstracts: rows need 3 of 111 lists, the
          claims 29; recall 0.79 at 3).
        - ``between``: midpoints of random pairs of rows (normalised for cosine). A point
          between two rows is near no row, as such queries are, without assuming anything
          about how far queries are from the data (SciFact: 19 lists, recall 0.97 for the
          real claims; clustered data with queries near rows: 2 -> 3 lists).
        - ``workload``: real query vectors the index has seen (see :class:`WorkloadSample`),
          when given. Once there are WORKLOAD_MIN_QUERIES of them they replace ``between``
          (the guess for unseen queries) by the measurement: the count may fall back to what
          the rows need, never below it. Measured queries take no CALIBRATION_SLACK (the
          margin covers their sampling; SciFact: 28 lists with it, 22-23 without, recall
          0.97-0.98 on the claims either way).

        Returns ``{"nprobes", "lists", "rows", "recall", "target", "scan_fraction",
        "list_fraction", "groups", "deep"}`` (``scan_fraction``: the mean share of rows in
        the probed lists, what an ANN query costs against an exact scan; ``list_fraction``:
        that share for one list; ``recall``: the sampled recall of the hardest group in use
        at ``nprobes``; ``groups``: each group's counts by depth; ``deep``: the counts for
        DEEP_KS nearest rows), or None without an IVF index or the in-memory copy.
        """
        parts, cents = self.ivf_layout()
        known = self._known_lists()
        # The lists' own copy when they are known: their row_list is by its positions.
        m = (known.matrix if known is not None else self.matrix()) if parts else None
        if m is None or cents is None or len(m) < 2:
            return None
        n = len(m)
        rng = np.random.default_rng(seed)
        qi = np.sort(rng.choice(n, size=min(queries, n), replace=False))
        rows_q = np.ascontiguousarray(m.mat[qi], dtype=np.float32)
        other = np.asarray(m.mat[rng.choice(n, size=qi.size)], dtype=np.float32)
        mid = (rows_q + other) * np.float32(0.5)
        if self.metric == "cosine":
            mid = normalize_rows(mid)
        sets: dict[str, tuple[F32, I64 | None]] = {"rows": (rows_q, qi), "between": (mid, None)}
        if workload is not None and (len(workload) == 0 or workload.ndim != 2
                                     or workload.shape[1] != rows_q.shape[1]):
            workload = None  # (queries of another index of that name: not this one's)
        if workload is not None:
            sets["workload"] = (np.asarray(workload, np.float32), None)
        needed = {g: self._needed_ranks(m, known, cents, qs, own, k)
                  for g, (qs, own) in sets.items()}
        goal = min(1.0, target + CALIBRATION_MARGIN)
        groups = {g: _group_counts(r, k, goal, parts, 1.0 if g == "workload" else CALIBRATION_SLACK)
                  for g, r in needed.items()}
        wl = 0 if workload is None else len(workload)
        out: dict[str, Any] = {"lists": parts, "rows": n, "target": target,
                               **combine_groups(groups, wl)}
        use = _groups_used(groups, wl)
        out["recall"] = round(min(float(np.mean(needed[g][:, :min(k, needed[g].shape[1])]
                                                <= out["nprobes"])) for g in use), 4)
        per_probe = self._scan_fraction(m, cents, rows_q, 1, rng)
        out["scan_fraction"] = round(per_probe * out["nprobes"], 4)
        out["list_fraction"] = per_probe
        return out

    def workload_tuning(self, tuned: dict[str, Any], qs: F32, k: int = 10
                        ) -> dict[str, Any] | None:
        """``tuned`` (a :meth:`calibrate` result for this index's current lists) with the
        ``workload`` group measured again on the real queries ``qs`` (only them: the rows'
        and midpoints' counts stay), or None when the lists changed since."""
        parts, cents = self.ivf_layout()
        known = self._known_lists()
        m = (known.matrix if known is not None else self.matrix()) if parts else None
        if (m is None or cents is None or len(m) < 2 or parts != tuned.get("lists")
                or "groups" not in tuned or qs.ndim != 2 or qs.shape[1] != m.mat.shape[1]):
            return None
        goal = min(1.0, float(tuned["target"]) + CALIBRATION_MARGIN)
        ranks = self._needed_ranks(m, known, cents, np.asarray(qs, np.float32), None, k)
        groups = {g: dict(c) for g, c in tuned["groups"].items()}
        groups["workload"] = _group_counts(ranks, k, goal, parts, 1.0)
        out = {**tuned, **combine_groups(groups, len(qs))}
        at = min(k, ranks.shape[1])
        out["workload_recall"] = round(float(np.mean(ranks[:, :at] <= out["nprobes"])), 4)
        per = float(tuned.get("list_fraction") or 1.0 / max(1, parts))
        out["scan_fraction"] = round(per * out["nprobes"], 4)
        return out

    def _known_lists(self) -> IvfLists | None:
        cached, ds = self._ivf_cache, self.ds
        return cached[1] if (cached is not None and ds is not None
                             and cached[0] == ds.version) else None

    def _c2(self, cents: F32) -> F32:
        # A dot index's centroids are unit vectors (Lance's spherical k-means), for which the
        # L2 assignment is the dot one (the largest a.c).
        c2 = np.einsum("ij,ij->i", cents, cents).astype(np.float32)
        return np.ones_like(c2) if self.metric == "dot" else c2

    def _needed_ranks(self, m: VectorMatrix, known: IvfLists | None, cents: F32, qs: F32,
                      own: I64 | None, k: int) -> npt.NDArray[np.int64]:
        """For each query (row), the rank (1 = nearest) among the lists, by distance from
        the query, of the list of each of its exact nearest rows, nearest row first: a
        probe of p lists finds the neighbours whose rank is at most p. ``own``: the rows'
        positions when the queries are rows (a row is not its own neighbour). Down to
        max(DEEP_KS) neighbours when every row's list is known, else k."""
        n, parts = len(m), cents.shape[0]
        norms2 = m.norms2()  # l2: |q - a|^2 ranks as 2 q.a - |a|^2 (q's own norm is constant)
        kk = min(max(k, *DEEP_KS) if known is not None else k, n - (1 if own is not None else 0))
        nq = qs.shape[0]
        best_s = np.full((nq, 0), -np.inf, np.float32)
        best_i = np.zeros((nq, 0), np.int64)
        cols = np.arange(nq)
        for s in range(0, n, 32768):
            sims = (qs @ np.asarray(m.mat[s:s + 32768]).T).astype(np.float32)
            if norms2 is not None:
                sims = 2 * sims - norms2[None, s:s + sims.shape[1]]
            if own is not None:
                at = (own >= s) & (own < s + sims.shape[1])
                sims[cols[at], own[at] - s] = -np.inf
            cand_s = np.concatenate([best_s, sims], axis=1)
            cand_i = np.concatenate([best_i, np.broadcast_to(
                np.arange(s, s + sims.shape[1]), sims.shape)], axis=1)
            if cand_s.shape[1] > kk:
                pick = np.argpartition(-cand_s, kk - 1, axis=1)[:, :kk]
                cand_s = np.take_along_axis(cand_s, pick, axis=1)
                cand_i = np.take_along_axis(cand_i, pick, axis=1)
            best_s, best_i = cand_s, cand_i
        c2 = self._c2(cents)
        # Nearest first, so that every depth's neighbours are a prefix.
        best_i = np.take_along_axis(best_i, np.argsort(-best_s, axis=1, kind="stable"), axis=1)
        if known is not None:
            nb_list = known.row_list[best_i].astype(np.int64)
        else:
            nb = np.asarray(m.mat[best_i.ravel()], dtype=np.float32)
            nb_list = np.argmin(c2[None, :] - 2 * nb @ cents.T, axis=1).reshape(best_i.shape)
        order = np.argsort(c2[None, :] - 2 * qs @ cents.T, axis=1)
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(parts)[None, :].repeat(nq, 0), axis=1)
        return np.asarray(np.take_along_axis(rank, nb_list, axis=1) + 1, dtype=np.int64)

    def _scan_fraction(self, m: VectorMatrix, cents: F32, qs: F32, nprobes: int,
                       rng: np.random.Generator) -> float:
        """The mean share of the rows in the ``nprobes`` lists nearest to each query (list
        sizes from the assignment of a sample of rows)."""
        n = len(m)
        c2 = self._c2(cents)
        sample = np.asarray(m.mat[rng.choice(n, size=min(n, 20000), replace=False)])
        sizes = np.bincount(np.argmin(c2[None, :] - 2 * sample @ cents.T, axis=1),
                            minlength=cents.shape[0]).astype(np.float64)
        sizes /= max(1.0, sizes.sum())
        order = np.argsort(c2[None, :] - 2 * qs @ cents.T, axis=1)
        return round(float(np.mean(sizes[order[:, :nprobes]].sum(axis=1))), 4)

    # -- querying ----------------------------------------------------------------------

    def matrix(self) -> VectorMatrix | None:
        """All vectors (normalised for a cosine index; the pooled ones of a multi-vector
        index), for exact
        scoring of any subset with one gather and a matrix product (selective filters,
        rescoring); cached per version. Up to MATRIX_CACHE_FLOATS in memory, larger ones as
        a memory-mapped file in the local cache directory (see :func:`cache_dir`); None
        when the file does not fit (MATRIX_MMAP_MAX_BYTES, free disk)."""
        ds = self.ds
        if ds is None:
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
            m = VectorMatrix(keys, np.ascontiguousarray(mat), self.metric)
        else:
            m = _mapped_matrix(ds, self.uri, dim, n, self.metric)
        if m is not None:
            self._matrix_cache = (int(ds.version), m)
        return m

    def ivf_lists(self, background: bool = False) -> IvfLists | None:
        """Every row's IVF list (the nearest centroid, as the index assigns rows), cached
        per version; None without an IVF index, an in-memory copy, or while it is computed
        (``background``: in a thread, see IVF_ASSIGN_SYNC_MAX)."""
        ds = self.ds
        if ds is None:
            return None
        version = int(ds.version)
        cached = self._ivf_cache
        if cached is not None and cached[0] == version:
            return cached[1]
        parts, cents = self.ivf_layout()
        m = self.matrix() if parts and cents is not None else None
        if m is None or cents is None or len(m) == 0:
            return None
        cost = float(len(m)) * parts * max(1, self.dim)
        if cost > IVF_ASSIGN_MAX:
            return None
        if background or cost > IVF_ASSIGN_SYNC_MAX:
            with self._ivf_lock:
                if self._ivf_started == version:
                    return None
                self._ivf_started = version
            threading.Thread(target=self._assign, args=(version, m, cents), daemon=True,
                             name="tarndb-ivf-lists").start()
            return None
        return self._assign(version, m, cents)

    def _assign(self, version: int, m: VectorMatrix, cents: F32) -> IvfLists:
        parts = cents.shape[0]
        c2 = (np.ones(parts, np.float32) if self.metric == "dot"
              else np.einsum("ij,ij->i", cents, cents).astype(np.float32))
        lists = np.empty(len(m), np.int32)
        ct = np.ascontiguousarray(cents.T)
        for s in range(0, len(m), 16384):
            block = np.asarray(m.mat[s:s + 16384], dtype=np.float32)
            lists[s:s + block.shape[0]] = np.argmin(c2[None, :] - 2 * (block @ ct), axis=1)
        order = np.argsort(lists, kind="stable").astype(np.int64)
        offsets = np.zeros(parts + 1, np.int64)
        np.cumsum(np.bincount(lists, minlength=parts), out=offsets[1:])
        cents = np.ascontiguousarray(cents, dtype=np.float32)
        if m.mapped:
            out = IvfLists(cents, c2, order, offsets, lists, m)
        else:
            # An in-memory copy is rearranged in list order (one copy while it is built;
            # the old one goes with the cache entry): a probe then scores each probed list
            # in place instead of gathering its rows first (100k x 384, 2 lists: the gather
            # was a third of the query).
            lm = VectorMatrix(m.keys[order], np.ascontiguousarray(m.mat[order]), m.metric)
            out = IvfLists(cents, c2, np.arange(len(m), dtype=np.int64), offsets,
                           lists[order], lm, contiguous=True)
            if self._matrix_cache is not None and self._matrix_cache[0] == version:
                self._matrix_cache = (version, lm)
        self._ivf_cache = (version, out)
        return out

    def ivf_topk(self, q: F32, allowed: I64 | None, nprobes: int
                 ) -> tuple[I64, F32] | None:
        """The rows of the ``nprobes`` lists nearest to ``q`` (the allowed ones), scored
        exactly by the index's metric from the in-memory copy: what an IVF_FLAT probe of
        the Lance index returns, without Lance's per-query cost (~4 ms at 100k x 384 for a
        probe of ~1,300 rows, against ~0.3 ms here). None until :meth:`ivf_lists` is ready
        (the caller then asks Lance). ``allowed``: sorted unique row keys."""
        lists = self.ivf_lists(background=True)
        if lists is None:
            return None
        m = lists.matrix
        parts = lists.offsets.size - 1
        # (single-threaded: BLAS would split 500 x 384 over the machine's threads)
        rank = lists.c2 - 2 * matvec(lists.cents, np.asarray(q, np.float32))
        nprobes = max(1, min(parts, nprobes))
        probe = (np.argpartition(rank, nprobes - 1)[:nprobes] if nprobes < parts
                 else np.arange(parts))
        off = lists.offsets
        qf = np.asarray(q, np.float32)
        if lists.contiguous:
            return self._score_runs(m, _runs(off, probe), qf, allowed)
        pos = np.concatenate([lists.order[off[p]:off[p + 1]] for p in probe.tolist()])
        if allowed is not None:
            keys = m.keys[pos]
            if allowed.size == 0:
                return np.zeros(0, np.int64), np.zeros(0, np.float32)
            at = np.clip(np.searchsorted(allowed, keys), 0, allowed.size - 1)
            pos = pos[allowed[at] == keys]
        pos.sort()  # storage order: locality for a mapped copy
        n2 = m.norms2()
        scores = metric_scores(np.take(m.mat, pos, axis=0), qf,
                               self.metric, None if n2 is None else n2[pos])
        return m.keys[pos], scores

    def _score_runs(self, m: VectorMatrix, runs: list[tuple[int, int]], q: F32,
                    allowed: I64 | None) -> tuple[I64, F32]:
        """Keys and scores of the rows in the slices ``runs`` of a list-ordered copy (the
        allowed ones): a run is scored in place, and a filtered one is gathered first only
        when few of its rows pass (a gather copies a row before the product reads it)."""
        n2 = m.norms2()
        keys_out: list[I64] = []
        scores_out: list[F32] = []
        for a, b in runs:
            keys = m.keys[a:b]
            if allowed is None:
                keys_out.append(keys)
                scores_out.append(metric_scores(m.mat[a:b], q, self.metric,
                                                None if n2 is None else n2[a:b]))
                continue
            if allowed.size == 0:
                break
            at = np.clip(np.searchsorted(allowed, keys), 0, allowed.size - 1)
            ok = np.flatnonzero(allowed[at] == keys)
            if ok.size == 0:
                continue
            if ok.size * GATHER_MAX_FRACTION_INV > keys.size:
                got = metric_scores(m.mat[a:b], q, self.metric,
                                    None if n2 is None else n2[a:b])[ok]
            else:
                got = metric_scores(np.take(m.mat[a:b], ok, axis=0), q, self.metric,
                                    None if n2 is None else n2[a:b][ok])
            keys_out.append(keys[ok])
            scores_out.append(got)
        if not keys_out:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        if len(keys_out) == 1:
            return keys_out[0], scores_out[0]
        return np.concatenate(keys_out), np.concatenate(scores_out)

    def bag_store(self) -> BagStore | None:
        """The bags of a multi-vector index (see :class:`BagStore`), cached per version:
        in memory up to MATRIX_CACHE_FLOATS floats, else a mapped file; None for
        single-vector indexes or when the file does not fit."""
        ds = self.ds
        if ds is None or not self.multi:
            return None
        if self._bags_cache is not None and self._bags_cache[0] == ds.version:
            return self._bags_cache[1]
        dim = max(self.dim, 1)
        store: BagStore | None
        # Small indexes stay in memory (assuming up to 64 vectors a row: the exact count
        # would take a scan of every bag).
        if int(ds.count_rows()) * dim * 64 <= MATRIX_CACHE_FLOATS:
            t = ds.to_table(columns=["__rid", "bag"])
            packed = bags_from_arrow(t["bag"], t["__rid"].to_numpy())
            store = BagStore(packed.row_keys, packed.offsets,
                             np.ascontiguousarray(packed.vectors, dtype=np.float32))
        else:
            store = _mapped_bags(ds, self.uri, dim)
        if store is not None:
            self._bags_cache = (int(ds.version), store)
        return store

    def row_addresses(self, rids: I64) -> npt.NDArray[np.uint64]:
        """Row addresses (for ``row_addr_allowlist``) of the given keys present here."""
        if self.ds is None:
            return np.zeros(0, np.uint64)
        return rowmap.row_addresses(self.ds, rids, ordered=False)

    def search(self, q: F32, k: int, allowed: I64 | None = None,
               params: AnnParams | None = None, with_bags: bool = False,
               with_vec: bool = True, refine_here: bool = False) -> pa.Table:
        """Nearest rows to the query ``q`` (normalised for a cosine index) by the index's
        metric (``__rid`` [, ``vec``] [, ``bag``]).

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
            probes = (p.nprobes if p.nprobes is not None
                      else max(p.min_nprobes, int(math.ceil(parts * p.nprobe_fraction))))
            nearest["minimum_nprobes"] = max(1, min(parts, probes))
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


_SESSION: Any = None
_SESSION_LOCK = threading.Lock()


def _session() -> Any:
    """The Lance session (index and metadata caches) shared by all side datasets; None on a
    Lance without sessions (each open then has its own caches)."""
    global _SESSION
    with _SESSION_LOCK:
        if _SESSION is None and hasattr(lance, "Session"):
            _SESSION = lance.Session(index_cache_size_bytes=INDEX_CACHE_BYTES)
        return _SESSION


def _runs(offsets: I64, probe: npt.NDArray[Any]) -> list[tuple[int, int]]:
    """The row slices of the probed lists of a list-ordered copy, adjacent lists merged."""
    runs: list[tuple[int, int]] = []
    for p in np.sort(probe).tolist():
        a, b = int(offsets[p]), int(offsets[p + 1])
        if a == b:
            continue
        if runs and runs[-1][1] == a:
            runs[-1] = (runs[-1][0], b)
        else:
            runs.append((a, b))
    return runs


def _describe(ds: lance.LanceDataset) -> list[Any]:
    return list(ds.describe_indices()) if hasattr(ds, "describe_indices") else []


def _list_indices(ds: lance.LanceDataset) -> list[dict[str, Any]]:
    if hasattr(ds, "describe_indices"):
        return [{"name": d.name} for d in ds.describe_indices()]
    found: list[Any] = list(ds.list_indices())  # Lance before describe_indices existed
    return [dict(i) for i in found]
