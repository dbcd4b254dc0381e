"""Index lifecycle and index-aware top-k: what CREATE INDEX / DROP INDEX / writes call.

State of an index lives beside the table, on the lake::

    <table uri>/_tarn_indexes/<index name>/state.json    definition + sync point
    <table uri>/_tarn_indexes/<index name>/vectors.lance  (vector, multi-vector indexes)
    <table uri>/_tarn_indexes/<index name>/bm25/          (text indexes, see _bm25.py)

Freshness model. ``state.json`` records which table fragments the index covers (fragment id
-> deleted-row count at sync). Lance never rewrites a fragment's rows in place: inserts and
the new side of an UPDATE land in new fragments, deletes add to a fragment's deletion file,
compaction replaces fragments. So at query time, against the pinned table version:

- rows in fragments the index does not cover are *fresh*: they are scored exactly;
- if a covered fragment gained deletions or disappeared, the index is *stale*: its hits are
  restricted to row keys still live in covered fragments (a prefilter), so deleted rows and
  the old side of updated rows are never returned;
- :meth:`IndexManager.refresh` folds fresh rows in and drops dead ones (incremental).

A query at a table version older than the index's sync point falls back to an exact scan.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import lance
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.fs as pafs

from tarndb.errors import (
    DataError,
    DuplicateObject,
    FeatureNotSupported,
    InvalidParameterValue,
    ProgramLimitExceeded,
    UndefinedObject,
)
from tarndb.storage.lake import Lake

from . import _exact
from ._bm25 import BM25Index, BM25Params
from ._exact import RID, TopK, scan_row_keys
from ._fusion import DEFAULT_FUSION, hybrid_fuse
from ._kernels import (
    F32,
    I64,
    METRICS,
    PackedBags,
    as_query_matrix,
    as_query_vector,
    bags_from_arrow,
    cosine_scores,
    matvec,
    maxsim_scores,
    metric_scores,
    normalize_rows,
    normalize_vector,
    vectors_from_arrow,
)
from ._lance_vector import (
    MIN_ROWS_FOR_ANN,
    RECALL_TARGET,
    AnnParams,
    SideVectorIndex,
    VectorMatrix,
    WorkloadSample,
)
from ._text import TokenizerConfig

log = logging.getLogger(__name__)

INDEX_DIR = "_tarn_indexes"
_FORMAT = 1

# pg_deeplake index types (and aliases) per column kind.
VECTOR_TYPES = {"clustered": "clustered", "clustered_quantized": "clustered_quantized",
                "default": "clustered"}
MULTI_TYPES = {"pooled_quantized": "pooled_quantized", "clustered": "pooled_quantized",
               "default": "pooled_quantized"}
TEXT_TYPES = {"bm25": "bm25", "inverted_index": "bm25", "default": "bm25"}

# Filtered queries whose allowed set (among indexed rows) is at most this many rows, or this
# fraction of the index, are answered by an exact scan of those rows: cheaper than ANN and
# exact. Above it, filtered ANN with a row-address allowlist, with exact refill if short.
EXACT_MAX_ROWS = 20000
EXACT_MAX_FRACTION = 0.02
# At or above this selectivity, unfiltered ANN with a deeper k and a postfilter ("ANN with
# refill"), falling back to the prefiltered search when it comes back short.
POSTFILTER_MIN_SELECTIVITY = 0.3
# When the calibrated probe count reads at least this share of the rows, an exact scan of
# the in-memory copy is cheaper than the ANN (a Lance list scan costs ~3x a numpy product
# per row), and exact.
EXACT_SCAN_FRACTION = 0.3
# A vector index's calibration is redone at a refresh that changed its rows by this much.
RETUNE_CHANGE = 0.2


@dataclass
class Hits:
    """Top-k result: ``row_keys`` (``__rid`` values) and ``scores``, best first.

    Unpacks as ``keys, scores = hits``. ``plan`` names the strategy, for EXPLAIN.
    """

    row_keys: I64
    scores: F32
    plan: str = "exact"

    def __iter__(self) -> Any:
        return iter((self.row_keys, self.scores))

    def __len__(self) -> int:
        return int(self.row_keys.size)


@dataclass
class IndexInfo:
    name: str
    column: str
    index_type: str  # canonical: clustered | clustered_quantized | pooled_quantized | bm25
    kind: str  # vector | multivector | text
    options: dict[str, Any] = field(default_factory=dict)
    dim: int = 0
    covered: dict[int, int] = field(default_factory=dict)
    synced_version: int = 0
    side_version: int | None = None
    # Vector indexes: the probe count calibrated on the index's data (see
    # SideVectorIndex.calibrate), recomputed when the lists or the row count change.
    tuning: dict[str, Any] = field(default_factory=dict)

    @property
    def metric(self) -> str:
        """What a vector index ranks by: ``cosine`` (the default), ``l2`` or ``dot`` (the
        ``metric`` option; pgvector's ``vector_l2_ops`` / ``vector_ip_ops``)."""
        return str(self.options.get("metric") or "cosine") if self.kind == "vector" \
            else "cosine"

    def to_json(self) -> dict[str, Any]:
        return {"format": _FORMAT, "name": self.name, "column": self.column,
                "index_type": self.index_type, "kind": self.kind, "options": self.options,
                "dim": self.dim, "covered": {str(k): v for k, v in self.covered.items()},
                "synced_version": self.synced_version, "side_version": self.side_version,
                "tuning": self.tuning}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> IndexInfo:
        return cls(d["name"], d["column"], d["index_type"], d["kind"], d.get("options", {}),
                   int(d.get("dim", 0)), {int(k): int(v) for k, v in d["covered"].items()},
                   int(d["synced_version"]), d.get("side_version"), dict(d.get("tuning") or {}))


@dataclass
class _Freshness:
    usable: bool
    fresh_fragments: list[Any]
    covered_fragments: list[Any]
    stale: bool


def column_kind(ds: lance.LanceDataset, column: str) -> str:
    """``vector`` (float4[]), ``multivector`` (float4[][]) or ``text``; else DataError."""
    try:
        t = ds.schema.field(column).type
    except KeyError as e:
        raise DataError(f"column {column!r} does not exist") from e
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "text"
    if pa.types.is_list(t) or pa.types.is_fixed_size_list(t) or pa.types.is_large_list(t):
        inner = t.value_type
        if pa.types.is_floating(inner) or pa.types.is_integer(inner):
            return "vector"
        if (pa.types.is_list(inner) or pa.types.is_fixed_size_list(inner)) and (
                pa.types.is_floating(inner.value_type)):
            return "multivector"
    raise DataError(f"column {column!r} of type {t} cannot be searched with <#>")


def _canonical_type(kind: str, index_type: str | None) -> str:
    table = {"vector": VECTOR_TYPES, "multivector": MULTI_TYPES, "text": TEXT_TYPES}[kind]
    key = (index_type or "default").lower()
    if key == "exact_text" and kind == "text":
        raise FeatureNotSupported(
            "index_type 'exact_text' is served by the engine's scalar index, not by search/")
    if key not in table:
        allowed = sorted(k for k in table if k != "default")
        raise InvalidParameterValue(
            f"index_type {index_type!r} does not apply to a {kind} column; use one of "
            f"{', '.join(allowed)}")
    return table[key]


def _fragment_state(ds: lance.LanceDataset) -> dict[int, tuple[Any, int]]:
    out: dict[int, tuple[Any, int]] = {}
    for frag in ds.get_fragments():
        dfile = frag.metadata.deletion_file
        out[int(frag.fragment_id)] = (frag, int(dfile.num_deleted_rows) if dfile else 0)
    return out


class IndexManager:
    """The indexes of one table (see the module docstring for storage and freshness).

    One instance per table URI and process (:meth:`open` caches them). Writers are expected
    to be serialised per table by the engine; readers may run concurrently.
    """

    _instances: dict[str, IndexManager] = {}
    _lock = threading.Lock()

    def __init__(self, table_uri: str, storage_options: dict[str, str] | None = None) -> None:
        self.table_uri = table_uri.rstrip("/")
        # Lake fills S3 endpoint/credentials from the environment and maps Lance
        # storage_options onto a pyarrow filesystem, as the rest of the engine does.
        lake = Lake(self.table_uri, storage_options)
        self.storage_options: dict[str, str] | None = lake.storage_options or None
        fs, table_path = lake.fs
        self._fs: pafs.FileSystem = fs
        self._root = f"{table_path.rstrip('/')}/{INDEX_DIR}"
        self._infos: dict[str, IndexInfo] | None = None
        self._bm25: dict[str, BM25Index] = {}
        self._side: dict[str, SideVectorIndex] = {}
        # Per vector index: a sample of the real queries it answered (see _observe).
        self._workload: dict[str, WorkloadSample] = {}
        self._mutex = threading.RLock()
        self._frag_cache: tuple[int, dict[int, tuple[Any, int]]] | None = None

    @classmethod
    def open(cls, table_uri: str, storage_options: dict[str, str] | None = None,
             ) -> IndexManager:
        """The cached manager of a table. On object storage, call it once with the table's
        ``storage_options`` before the module-level top-k functions (which pass none)."""
        key = table_uri.rstrip("/")
        with cls._lock:
            mgr = cls._instances.get(key)
            if mgr is None:
                mgr = cls._instances[key] = cls(key, storage_options)
            return mgr

    def _join(self, *parts: str) -> str:
        return "/".join([self.table_uri, *parts])

    def _dir(self, name: str) -> str:
        return f"{self._root}/{name}"

    # -- catalog of indexes --------------------------------------------------------------

    def reload(self) -> None:
        """Forget cached state (another process may have changed the indexes)."""
        with self._mutex:
            self._infos = None
            self._bm25.clear()
            self._side.clear()

    def _load_infos(self) -> dict[str, IndexInfo]:
        if self._infos is None:
            infos: dict[str, IndexInfo] = {}
            try:
                entries = self._fs.get_file_info(pafs.FileSelector(self._root,
                                                                   allow_not_found=True))
            except FileNotFoundError:
                entries = []
            for entry in entries:
                if entry.type != pafs.FileType.Directory:
                    continue
                try:
                    with self._fs.open_input_stream(f"{entry.path}/state.json") as f:
                        info = IndexInfo.from_json(json.loads(f.read()))
                except FileNotFoundError:
                    continue  # half-created or half-dropped: not an index
                infos[info.name] = info
            self._infos = infos
        return self._infos

    def list_indexes(self) -> list[IndexInfo]:
        return sorted(self._load_infos().values(), key=lambda i: i.name)

    def get(self, name: str) -> IndexInfo:
        info = self._load_infos().get(name)
        if info is None:
            raise UndefinedObject(f'index "{name}" does not exist')
        return info

    def index_for(self, column: str) -> IndexInfo | None:
        for info in self._load_infos().values():
            if info.column == column:
                return info
        return None

    def _save_info(self, info: IndexInfo) -> None:
        self._fs.create_dir(self._dir(info.name), recursive=True)
        with self._fs.open_output_stream(f"{self._dir(info.name)}/state.json") as f:
            f.write(json.dumps(info.to_json()).encode())
        self._load_infos()[info.name] = info

    def create_index(self, ds: lance.LanceDataset, name: str, column: str,
                     index_type: str | None = None, options: dict[str, Any] | None = None,
                     *, if_not_exists: bool = False) -> IndexInfo:
        """CREATE INDEX name ON t USING deeplake_index (column) WITH (index_type = ...).

        Builds from the rows of ``ds`` (an empty table gives an empty index that fills as
        rows arrive). ``options``: text: ``stemmer`` ('english'... or None), ``stopwords``
        ('english' or None), ``k1``, ``b``; vectors: ``nprobe_fraction``, ``refine_factor``,
        ``candidates`` (multi-vector first-stage depth), ``ann_min_rows`` (below it the
        side dataset is searched flat, exactly; default 50000).
        """
        with self._mutex:
            infos = self._load_infos()
            if name in infos:
                if if_not_exists:
                    return infos[name]
                raise DuplicateObject(f'relation "{name}" already exists')
            kind = column_kind(ds, column)
            canonical = _canonical_type(kind, index_type)
            existing = self.index_for(column)
            if existing is not None:
                raise DuplicateObject(
                    f'column "{column}" already has index "{existing.name}"; '
                    "only one index per column")
            # A build that was interrupted (kill -9, a full disk) left a directory without
            # state.json: it is no index, and must not block the name for good.
            if self._fs.get_file_info(self._dir(name)).type == pafs.FileType.Directory:
                self._fs.delete_dir(self._dir(name))
                self._side.pop(name, None)
                self._workload.pop(name, None)
            info = IndexInfo(name, column, canonical, kind, dict(options or {}))
            metric = info.options.get("metric")
            if metric is not None and (kind != "vector" or metric not in METRICS):
                raise InvalidParameterValue(
                    f"metric {metric!r} does not apply to a {kind} index"
                    + (f"; use one of {', '.join(METRICS)}" if kind == "vector" else ""))
            if kind == "text":
                self._bm25[name] = BM25Index(self._bm25_params(info),
                                             self._tokenizer_config(info))
            self._refresh_one(ds, info)
            return info

    def drop_index(self, name: str, *, if_exists: bool = False) -> None:
        with self._mutex:
            if name not in self._load_infos():
                if if_exists:
                    return
                raise UndefinedObject(f'index "{name}" does not exist')
            # state.json goes first so a crash mid-drop leaves no half index behind.
            self._fs.delete_file(f"{self._dir(name)}/state.json")
            self._fs.delete_dir(self._dir(name))
            self._load_infos().pop(name, None)
            self._bm25.pop(name, None)
            self._side.pop(name, None)
            self._workload.pop(name, None)

    # -- maintenance ---------------------------------------------------------------------

    def refresh(self, ds: lance.LanceDataset, name: str | None = None) -> None:
        """Fold rows written since the last sync into the index(es); drop dead rows."""
        with self._mutex:
            for info in list(self._load_infos().values()):
                if name is None or info.name == name:
                    self._refresh_one(ds, info)

    def after_write(self, ds: lance.LanceDataset, fold_threshold: int = 10000) -> None:
        """Cheap hook for after INSERT/UPDATE/DELETE: folds in when enough has changed.

        Until then fresh rows are searched exactly, so skipping a fold is always correct.
        """
        with self._mutex:
            for info in list(self._load_infos().values()):
                fr = self._freshness(ds, info)
                pending = sum(f.count_rows() for f in fr.fresh_fragments)
                if fr.stale or pending >= fold_threshold:
                    self._refresh_one(ds, info)

    def pending_rows(self, ds: lance.LanceDataset, name: str) -> int:
        """Rows of ``ds`` that the index does not cover yet (searched exactly)."""
        fr = self._freshness(ds, self.get(name))
        return sum(f.count_rows() for f in fr.fresh_fragments)

    def _bm25_params(self, info: IndexInfo) -> BM25Params:
        o = info.options
        return BM25Params(k1=float(o.get("k1", 0.9)), b=float(o.get("b", 0.4)))

    def _tokenizer_config(self, info: IndexInfo) -> TokenizerConfig:
        o = info.options
        sw = o.get("stopwords", "english")
        stem = o.get("stemmer", "english")
        return TokenizerConfig(stopwords=None if sw in (None, "none", "") else sw,
                               stemmer=None if stem in (None, "none", "") else stem)

    def _bm25_index(self, info: IndexInfo) -> BM25Index:
        idx = self._bm25.get(info.name)
        if idx is None:
            idx = self._bm25[info.name] = BM25Index.load(
                f"{self._dir(info.name)}/bm25", filesystem=self._fs)
            # Loaded for a query: the query goes on while the rest warms up.
            threading.Thread(target=idx.warm, name="tarndb-bm25-warm", daemon=True).start()
        return idx

    def _side_index(self, info: IndexInfo) -> SideVectorIndex:
        side = self._side.get(info.name)
        if side is None or side.version != info.side_version:
            side = self._side[info.name] = SideVectorIndex(
                self._join(INDEX_DIR, info.name, "vectors.lance"),
                multi=info.kind == "multivector", index_type=info.index_type, dim=info.dim,
                version=info.side_version, storage_options=self.storage_options,
                metric=info.metric)
        return side

    def _refresh_one(self, ds: lance.LanceDataset, info: IndexInfo) -> None:
        frags = _fragment_state(ds)
        fresh = [f for fid, (f, _) in frags.items() if fid not in info.covered]
        covered_now = [f for fid, (f, _) in frags.items() if fid in info.covered]
        stale = any(fid not in frags or frags[fid][1] != dels
                    for fid, dels in info.covered.items())
        fresh_keys: I64 = np.zeros(0, np.int64)
        if info.kind == "text":
            bm = self._bm25.get(info.name) or self._bm25_index(info)
            if fresh:
                keys, texts = _exact.read_texts(ds, info.column, fragments=fresh)
                bm.add(keys, texts)
                fresh_keys = keys
            if stale:
                live = scan_row_keys(ds, fragments=covered_now)
                dead = np.setdiff1d(bm.row_keys(), np.union1d(live, fresh_keys))
                bm.delete(dead)
            if len(bm.segments) > 8:
                bm.compact()
            bm.save(f"{self._dir(info.name)}/bm25", filesystem=self._fs)
            bm.warm()
        else:
            side = self._side_index(info)
            existing = (np.sort(side.ds.to_table(columns=[RID])[RID].to_numpy())
                        if side.ds is not None else np.zeros(0, np.int64))
            for batch in _exact.scan(ds, [RID, info.column], fragments=fresh) if fresh else []:
                keys = batch.column(0).to_numpy().astype(np.int64)
                if info.kind == "vector":
                    mat, valid = vectors_from_arrow(batch.column(1))
                    keys = keys[valid]
                    if mat.shape[0]:
                        self._check_dim(info, mat.shape[1])
                        side.dim = info.dim
                        side.upsert(keys, vectors=mat, existing=existing)
                else:
                    packed = bags_from_arrow(batch.column(1), keys)
                    if len(packed):
                        if packed.dim:
                            self._check_dim(info, packed.dim)
                            side.dim = info.dim
                        side.upsert(packed.row_keys, bags=packed, existing=existing)
                    keys = packed.row_keys
                fresh_keys = np.concatenate([fresh_keys, keys])
            if stale and side.ds is not None:
                live = scan_row_keys(ds, fragments=covered_now)
                side.delete(np.setdiff1d(existing, np.union1d(live, fresh_keys)))
            if info.dim:
                side.ensure_empty()
                if side.has_ann():
                    side.optimize()
                elif side.count():
                    side.train(int(info.options.get("ann_min_rows", MIN_ROWS_FOR_ANN)))
            info.side_version = side.version
            if side.has_ann():
                # Warm the exact-scoring copy and the ANN index now, while the data is hot,
                # rather than on the first queries (1M x 384: a few seconds).
                side.matrix()
                side.bag_store()
                side.prewarm()
                side.ivf_lists()
                self._tune(side, info)
            else:
                info.tuning = {}
        info.covered = {fid: dels for fid, (_, dels) in frags.items()}
        info.synced_version = int(ds.version)
        self._save_info(info)

    def _tune(self, side: SideVectorIndex, info: IndexInfo) -> dict[str, Any]:
        """The index's calibrated probe count (see SideVectorIndex.calibrate), computed again
        when the IVF lists changed or the row count moved by more than RETUNE_CHANGE; with
        the real queries sampled so far, when there are any (see :meth:`_observe`)."""
        t = info.tuning
        parts = side.num_partitions()
        n = side.count()
        target = float(info.options.get("recall_target", RECALL_TARGET))
        if (t and t.get("lists") == parts and t.get("target") == target and "groups" in t
                and abs(n - int(t.get("rows", 0))) <= RETUNE_CHANGE * max(1, int(t["rows"]))):
            return t
        sample = self._workload.get(info.name)
        info.tuning = side.calibrate(target, workload=None if sample is None
                                     else sample.snapshot()) or {}
        return info.tuning

    def _observe(self, side: SideVectorIndex, info: IndexInfo, qn: F32) -> None:
        """Keep ``qn`` in the index's sample of real queries; when the sample is due (see
        WorkloadSample), measure in a background thread the probes those queries need and
        raise (or, once enough were seen, set: never below the rows' count) the index's
        calibrated count. Calibration's rows and midpoints are a guess at the queries; this
        is the measurement, on the same exact top-k over the index's in-memory copy."""
        sample = self._workload.get(info.name)
        if sample is None:
            with self._mutex:
                sample = self._workload.setdefault(info.name, WorkloadSample())
        if sample.add(qn):
            threading.Thread(target=self._learn, args=(side, info, sample), daemon=True,
                             name="tarndb-probe-workload").start()

    def _learn(self, side: SideVectorIndex, info: IndexInfo, sample: WorkloadSample) -> None:
        try:
            tuned = info.tuning
            qs = sample.snapshot()
            if not tuned or qs is None:
                return
            new = side.workload_tuning(tuned, qs)
            if new is None:
                return
            with self._mutex:
                # Unless a refresh recalibrated (or dropped) the index meanwhile.
                if info.tuning is tuned and self._load_infos().get(info.name) is info:
                    info.tuning = new
                    self._save_info(info)
        except Exception:  # noqa: BLE001 - a failed measurement keeps the calibration
            log.debug("probe workload measurement failed", exc_info=True)
        finally:
            sample.done()

    def _check_dim(self, info: IndexInfo, dim: int) -> None:
        if info.dim == 0:
            info.dim = dim
        elif info.dim != dim:
            raise DataError(f'index "{info.name}" holds {info.dim}-dimensional vectors; '
                            f"a row has {dim} dimensions")

    def _fragments_of(self, ds: lance.LanceDataset) -> dict[int, tuple[Any, int]]:
        """:func:`_fragment_state` of ``ds``, kept for its version (a version never changes;
        listing the fragments and reading their metadata was a twentieth of a query)."""
        version = int(ds.version)
        cached = self._frag_cache
        if cached is not None and cached[0] == version:
            return cached[1]
        frags = _fragment_state(ds)
        self._frag_cache = (version, frags)
        return frags

    def _freshness(self, ds: lance.LanceDataset, info: IndexInfo) -> _Freshness:
        if int(ds.version) < info.synced_version:
            return _Freshness(False, [], [], True)
        frags = self._fragments_of(ds)
        fresh = [f for fid, (f, _) in frags.items() if fid not in info.covered]
        covered = [f for fid, (f, _) in frags.items() if fid in info.covered]
        stale = any(fid not in frags or frags[fid][1] != dels
                    for fid, dels in info.covered.items())
        return _Freshness(True, fresh, covered, stale)

    # -- queries -------------------------------------------------------------------------

    def _allowed(self, ds: lance.LanceDataset, filter_sql: str | None,
                 allowed_row_keys: I64 | None, fragments: list[Any] | None,
                 must_be_live: bool = False) -> I64 | None:
        """Sorted row keys the query may return (None: all), from the filter and key list.

        ``fragments`` restricts the filter scan (the covered part of an index); a key list
        alone needs no scan unless ``must_be_live`` (a stale index: keys must be checked
        against the live rows of those fragments).
        """
        if filter_sql is None and not must_be_live:
            return allowed_row_keys
        keys = np.sort(scan_row_keys(ds, filter_sql, fragments))
        if allowed_row_keys is not None:
            keys = np.intersect1d(keys, allowed_row_keys, assume_unique=True)
        return keys

    def vector_topk(self, ds: lance.LanceDataset, column: str, query: Any, k: int, *,
                    filter_sql: str | None = None, allowed_row_keys: Any = None,
                    exact: bool = False, params: AnnParams | None = None,
                    metric: str = "cosine", recall_k: int | None = None) -> Hits:
        """Top-k rows of ``column`` (float4[]) nearest to ``query`` by ``metric``: cosine
        similarity, L2 distance or inner product (scores: higher is nearer; for ``l2`` the
        negated squared distance, recomputed exactly for the k rows). The column's index
        answers when it ranks by that metric. ``recall_k``: the depth whose recall matters
        when the k rows are a candidate pool (a hybrid leg's 100 rows for a top-10): the
        probe count is calibrated for it, not for k."""
        hits = self._vector_topk(ds, column, query, k, filter_sql, allowed_row_keys, exact,
                                 params, metric, recall_k)
        if metric == "l2" and len(hits):
            keys, scores = self._l2_exact(ds, column, as_query_vector(query), hits.row_keys,
                                          None if exact else self.index_for(column))
            hits = Hits(keys, scores, hits.plan)
        return hits

    def _l2_exact(self, ds: lance.LanceDataset, column: str, q: F32, keys: I64,
                  info: IndexInfo | None) -> tuple[I64, F32]:
        """``-|row - q|^2`` of the given rows in float64 (the ranking's ``2 q.row - |row|^2``
        in float32 loses the digits of near neighbours), best first. Vectors come from
        rows written since the index's last fold first (an updated row's live copy), then
        the index's in-memory copy, then the table."""
        todo = np.unique(keys)
        sources: list[tuple[I64, F32]] = []

        def from_table(fragments: list[Any] | None) -> None:
            nonlocal todo
            got, col = self._table_rows(ds, column, todo, fragments)
            mat, valid = vectors_from_arrow(col)
            sources.append((got[valid], mat))
            todo = np.setdiff1d(todo, got)

        if info is not None and info.kind == "vector" and info.dim and info.metric == "l2":
            fr = self._freshness(ds, info)
            if fr.usable:
                if fr.fresh_fragments:
                    from_table(fr.fresh_fragments)
                cached = self._side_index(info).matrix()
                if cached is not None and todo.size:
                    got, mat = cached.rows(todo)
                    sources.append((got, np.asarray(mat)))
                    todo = todo[:0] if got.size == todo.size else \
                        np.setdiff1d(todo, got, assume_unique=True)
        if todo.size:
            from_table(None)
        q64 = q.astype(np.float64)
        out_keys = [g for g, m in sources if g.size]
        d2 = [((m.astype(np.float64) - q64) ** 2).sum(axis=1) for g, m in sources if g.size]
        if not out_keys:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        all_keys = np.concatenate(out_keys)
        neg = -np.concatenate(d2)
        order = np.lexsort((all_keys, -neg))
        return all_keys[order], neg[order].astype(np.float32)

    def _vector_topk(self, ds: lance.LanceDataset, column: str, query: Any, k: int,
                     filter_sql: str | None, allowed_row_keys: Any, exact: bool,
                     params: AnnParams | None, metric: str,
                     recall_k: int | None = None) -> Hits:
        q = as_query_vector(query)
        allowed_user = _as_keys(allowed_row_keys)
        info = None if exact else self.index_for(column)
        if info is None or info.kind != "vector" or info.dim == 0 or info.metric != metric:
            if info is not None and info.dim and info.dim != q.size:
                raise DataError(f"vector dimension mismatch: the query has {q.size} "
                                f"dimensions but the column has {info.dim}")
            return Hits(*_exact.exact_vector_topk(ds, column, q, k, filter_sql, allowed_user,
                                                  metric=metric),
                        plan="exact scan")
        if q.size != info.dim:
            raise DataError(f"vector dimension mismatch: the query has {q.size} dimensions "
                            f"but the column has {info.dim}")
        fr = self._freshness(ds, info)
        if not fr.usable:
            return Hits(*_exact.exact_vector_topk(ds, column, q, k, filter_sql, allowed_user,
                                                  metric=metric),
                        plan="exact scan (table version older than index)")
        top = TopK(k)
        if fr.fresh_fragments:
            top.push(*_exact.exact_vector_topk(ds, column, q, k, filter_sql, allowed_user,
                                               fr.fresh_fragments, metric=metric))
        qn = normalize_vector(q) if metric == "cosine" else q
        side = self._side_index(info)
        allowed = self._allowed(ds, filter_sql, allowed_user, fr.covered_fragments,
                                must_be_live=fr.stale)
        plan = self._side_vector_search(side, qn, k, allowed, params, top, info, recall_k)
        keys, scores = top.result()
        if fr.fresh_fragments:
            plan += f" + exact scan of {len(fr.fresh_fragments)} fresh fragment(s)"
        return Hits(keys, scores, plan)

    def _side_vector_search(self, side: SideVectorIndex, qn: F32, k: int,
                            allowed: I64 | None, params: AnnParams | None, top: TopK,
                            info: IndexInfo, recall_k: int | None = None) -> str:
        n = side.count()
        if allowed is not None and allowed.size == 0:
            return "index (no allowed rows)"
        if side.has_ann():
            side.prewarm(background=True)  # once per version; a no-op afterwards
        else:
            # Small index: exact, from the in-memory copy when it fits the cache budget.
            self._exact_on_side(side, qn, allowed, top)
            what = "all" if allowed is None else f"{allowed.size} filtered"
            return f"exact scan of {what} rows of index {info.name} (below ann_min_rows)"
        if allowed is not None and (allowed.size <= EXACT_MAX_ROWS
                                    or allowed.size <= EXACT_MAX_FRACTION * n):
            self._exact_on_side(side, qn, allowed, top)
            return f"exact scan of {allowed.size} filtered rows (via index {info.name})"
        # Every row's IVF list over the in-memory copy (computed once per version): the
        # probe then runs here, without a Lance query.
        lists = side.ivf_lists(background=True) if side.matrix() is not None else None
        p, tuned = self._ann_params(side, info, params)
        if tuned is not None and "groups" in tuned:
            self._observe(side, info, qn)  # answered with the calibrated count
        # Exact scores of ANN hits come from the in-memory (or mapped) copy when there is
        # one, so Lance returns keys only.
        mat = side.matrix()
        if tuned and mat is not None and tuned["scan_fraction"] >= EXACT_SCAN_FRACTION:
            # On this data the recall target needs so many lists that the ANN reads most of
            # the rows anyway (isotropic vectors): one exact product is cheaper, and exact.
            self._exact_on_side(side, qn, allowed, top)
            what = "all" if allowed is None else f"{allowed.size} filtered"
            return (f"exact scan of {what} rows of index {info.name} (recall "
                    f"{tuned['target']} needs {tuned['nprobes']} of {tuned['lists']} lists)")
        if mat is not None and lists is not None:
            parts = side.num_partitions()
            count = _memory_probes(p, tuned, min(k, recall_k or k), n, allowed, parts)
            found = side.ivf_topk(qn, allowed, count)
            if found is not None:
                want = min(k, n if allowed is None else allowed.size)
                if found[0].size < want:
                    # (The exact scan scores the found rows again: they are not pushed
                    # twice.)
                    self._exact_on_side(side, qn, allowed, top)
                    return f"filtered ANN on {info.name} + exact refill"
                top.push(*found)
                probed = (f"{info.index_type}, {parts} lists, {count} probed"
                          + (" (calibrated)" if tuned else "")
                          + (f" ({p.source})" if p.source else "") + ", in memory")
                if allowed is not None and allowed.size >= POSTFILTER_MIN_SELECTIVITY * n:
                    return (f"ANN on {info.name} ({probed}) + postfilter "
                            f"({allowed.size} of {n} rows pass)")
                kind = "filtered ANN" if allowed is not None else "ANN"
                return f"{kind} on {info.name} ({probed})"
        if allowed is not None and n and allowed.size >= POSTFILTER_MIN_SELECTIVITY * n:
            # Most rows pass: an unfiltered ANN for k / selectivity * 2 rows, filtered
            # afterwards, skips serialising a huge allowlist (at 1M rows, 50%: 100 -> ~15 ms).
            depth = int(math.ceil(2 * k * n / allowed.size)) + 10
            t = side.search(qn, depth, None, p, with_vec=mat is None,
                              refine_here=mat is not None)
            keys = t[RID].to_numpy().astype(np.int64)
            ok = _member(keys, allowed)
            if int(ok.sum()) >= min(k, allowed.size):
                self._push_scored(top, qn, keys[ok], t, ok, mat, info.dim, side.metric)
                return (f"ANN on {info.name} ({depth} rows) + postfilter "
                        f"({allowed.size} of {n} rows pass)")
            # Too few survived: fall through to the prefiltered search (refill).
        if allowed is not None and n:
            # A selective prefilter thins every partition, so probe proportionally more.
            sel = allowed.size / n
            boost = 1 / max(sel, 0.05) ** 0.5
            p = AnnParams(min(1.0, p.nprobe_fraction * boost), p.min_nprobes,
                          p.refine_factor,
                          None if p.nprobes is None else int(math.ceil(p.nprobes * boost)),
                          source=p.source)
        t = side.search(qn, k, allowed, p, with_vec=mat is None,
                        refine_here=mat is not None)
        keys = t[RID].to_numpy().astype(np.int64)
        want = min(k, n if allowed is None else allowed.size)
        if keys.size < want:
            # Under-filled (the prefilter emptied the probed partitions): refill exactly
            # (which scores the ANN's rows too: they are not pushed twice).
            self._exact_on_side(side, qn, allowed, top)
            return f"filtered ANN on {info.name} + exact refill"
        self._push_scored(top, qn, keys, t, None, mat, info.dim, side.metric)
        kind = "filtered ANN" if allowed is not None else "ANN"
        probes = (f", {p.nprobes} probed" + (" (calibrated)" if tuned else "")
                  + (f" ({p.source})" if p.source else "")
                  if p.nprobes is not None else "")
        return (f"{kind} on {info.name} ({info.index_type}, {side.num_partitions()} lists"
                f"{probes})")

    def _ann_params(self, side: SideVectorIndex, info: IndexInfo,
                    params: AnnParams | None) -> tuple[AnnParams, dict[str, Any] | None]:
        """Search knobs for one query, and the calibration they come from (None when the
        probe count is the caller's or the index's fixed ``nprobe_fraction`` option)."""
        o = info.options
        base = AnnParams(**{k_: v for k_, v in o.items()
                            if k_ in ("nprobe_fraction", "refine_factor")})
        if "nprobes" in o:
            base.nprobes = int(o["nprobes"])
        method = o.get("method")
        if params is not None and params.nprobes is not None:
            return params, None  # the caller's knobs, as given (tarndb.probes)
        if params is not None and method == "ivfflat" and params.ivf_probes is not None:
            base.nprobes = int(params.ivf_probes)
            base.source = "ivfflat.probes"
            return base, None
        if base.nprobes is not None or "nprobe_fraction" in o:
            return base, None
        if not info.tuning:
            # An index built before calibration existed: calibrate now, in memory (the next
            # refresh stores it).
            with self._mutex:
                self._tune(side, info)
        if not info.tuning:
            return base, None
        if params is not None and method == "hnsw" and params.ef_search is not None:
            base.nprobes = _ef_search_probes(info.tuning, int(params.ef_search))
            base.source = f"hnsw.ef_search = {int(params.ef_search)}"
            return base, None
        base.nprobes = int(info.tuning["nprobes"])
        return base, info.tuning

    @staticmethod
    def _push_scored(top: TopK, qn: F32, keys: I64, t: pa.Table,
                     ok: npt.NDArray[np.bool_] | None, mat: VectorMatrix | None,
                     dim: int, metric: str = "cosine") -> None:
        if mat is not None:
            top.push(*mat.scores(keys, qn))
            return
        vecs = _fsl_matrix(t["vec"], dim)
        if ok is not None:
            vecs = vecs[ok]
        top.push(keys, metric_scores(vecs, qn, metric))

    def _exact_on_side(self, side: SideVectorIndex, qn: F32, allowed: I64 | None,
                       top: TopK) -> None:
        sds = side.ds
        if sds is None:
            return
        cached = side.matrix()
        if cached is not None:
            top.push(*cached.scores(allowed, qn))
            return
        if allowed is None:
            t = sds.to_table(columns=[RID, "vec"])
        else:
            addrs = side.row_addresses(allowed)
            if addrs.size == 0:
                return
            t = sds._take_rows(addrs.astype(np.int64).tolist(), columns=[RID, "vec"])
        keys = t[RID].to_numpy().astype(np.int64)
        top.push(keys, metric_scores(_fsl_matrix(t["vec"], side.dim), qn, side.metric))

    def maxsim_topk(self, ds: lance.LanceDataset, column: str, query: Any, k: int, *,
                    filter_sql: str | None = None, allowed_row_keys: Any = None,
                    exact: bool = False, candidates: int | None = None,
                    params: AnnParams | None = None) -> Hits:
        """Top-k rows by MaxSim of ``column`` (float4[][]) against ``query`` (m x d)."""
        q = as_query_matrix(query)
        allowed_user = _as_keys(allowed_row_keys)
        info = None if exact else self.index_for(column)
        if info is None or info.kind != "multivector" or info.dim == 0:
            return Hits(*_exact.exact_maxsim_topk(ds, column, q, k, filter_sql, allowed_user),
                        plan="exact MaxSim scan")
        if q.shape[1] != info.dim:
            raise DataError(f"multi-vector dimension mismatch: the query has {q.shape[1]} "
                            f"dimensions but the column has {info.dim}")
        fr = self._freshness(ds, info)
        if not fr.usable:
            return Hits(*_exact.exact_maxsim_topk(ds, column, q, k, filter_sql, allowed_user),
                        plan="exact MaxSim scan (table version older than index)")
        top = TopK(k)
        if fr.fresh_fragments:
            top.push(*_exact.exact_maxsim_topk(ds, column, q, k, filter_sql, allowed_user,
                                               fr.fresh_fragments))
        side = self._side_index(info)
        allowed = self._allowed(ds, filter_sql, allowed_user, fr.covered_fragments,
                                must_be_live=fr.stale)
        n = side.count()
        depth = int(candidates or info.options.get("candidates", max(20 * k, 200)))
        qn = normalize_rows(q)
        plan: str
        bags = side.bag_store()
        if allowed is not None and allowed.size == 0:
            plan = "index (no allowed rows)"
        elif allowed is not None and (allowed.size <= EXACT_MAX_ROWS // 4
                                      or allowed.size <= depth):
            if bags is not None:
                self._rerank_packed(bags.take(allowed), qn, top)
            else:
                addrs = side.row_addresses(allowed)
                if addrs.size and side.ds is not None:
                    t = side.ds._take_rows(addrs.astype(np.int64).tolist(),
                                           columns=[RID, "bag"])
                    self._rerank(t, qn, top)
            plan = f"exact MaxSim of {allowed.size} filtered rows (via index {info.name})"
        else:
            pooled_q = normalize_rows(qn.mean(axis=0, keepdims=True))[0]
            if side.matrix() is not None and bags is not None:
                # The first stage is the index's own vector search over the pooled vectors
                # (exact from the in-memory copy below ann_min_rows, the in-memory IVF
                # probe with calibrated counts above), ``depth`` deep; the rerank is one
                # gather of the candidates' bags from the bag store and one product.
                first = TopK(depth)
                how = self._side_vector_search(side, pooled_q, depth, allowed, params, first,
                                               info)
                self._rerank_packed(bags.take(first.keys), qn, top)
                plan = (f"pooled first stage ({how}; {depth} candidates) + exact MaxSim "
                        "rerank" if n > depth else f"exact MaxSim via {info.name}")
            else:
                if side.has_ann():
                    side.prewarm(background=True)
                t = side.search(pooled_q, depth, allowed,
                                self._ann_params(side, info, params)[0], with_bags=True)
                self._rerank(t, qn, top)
                plan = (f"pooled ANN on {info.name} ({depth} candidates) + exact MaxSim "
                        "rerank" if n > depth else f"exact MaxSim via {info.name}")
        keys, scores = top.result()
        if fr.fresh_fragments:
            plan += f" + exact scan of {len(fr.fresh_fragments)} fresh fragment(s)"
        return Hits(keys, scores, plan)

    @staticmethod
    def _rerank_packed(packed: PackedBags, qn: F32, top: TopK) -> None:
        if len(packed):
            top.push(packed.row_keys, maxsim_scores(packed, qn))

    def _rerank(self, t: pa.Table, qn: F32, top: TopK) -> None:
        if t.num_rows == 0:
            return
        keys = t[RID].to_numpy().astype(np.int64)
        packed = bags_from_arrow(t["bag"], keys)
        top.push(packed.row_keys, maxsim_scores(packed, qn))

    def _bm25_for_query(self, ds: lance.LanceDataset, column: str, exact: bool,
                        ) -> tuple[BM25Index, str]:
        """The BM25 index that reflects ``ds`` exactly (fresh rows added, dead rows gone).

        ``exact`` (pinned versions, oracles) builds a transient index over the column, up to
        ADHOC_BM25_MAX_ROWS rows; above that the table's index answers (BM25 over an index
        is exact, unlike ANN): a pinned query on a 1M-row table would otherwise tokenize the
        whole column.
        """
        info = self.index_for(column)
        if exact and int(ds.count_rows()) <= ADHOC_BM25_MAX_ROWS:
            info = None
        if info is None or info.kind != "text":
            return _adhoc_bm25(ds, column), "BM25 over a transient index (no index)"
        fr = self._freshness(ds, info)
        if not fr.usable:
            return (_adhoc_bm25(ds, column, self._bm25_params(info),
                                self._tokenizer_config(info)),
                    "BM25 over a transient index (table version older than index)")
        idx = self._bm25_index(info)
        plan = f"BM25 index {info.name}"
        if fr.fresh_fragments or fr.stale:
            idx = _fork(idx)
            fresh_keys = np.zeros(0, np.int64)
            if fr.fresh_fragments:
                fresh_keys, texts = _exact.read_texts(ds, column, fragments=fr.fresh_fragments)
                idx.add(fresh_keys, texts)
                plan += f" + {fresh_keys.size} fresh rows"
            if fr.stale:
                live = scan_row_keys(ds, fragments=fr.covered_fragments)
                idx.delete(np.setdiff1d(idx.row_keys(), np.union1d(live, fresh_keys)))
        return idx, plan

    def bm25_topk(self, ds: lance.LanceDataset, column: str, query: str, k: int, *,
                  filter_sql: str | None = None, allowed_row_keys: Any = None,
                  exact: bool = False) -> Hits:
        """Top-k rows by BM25 of ``column`` (text) for ``query``; rows without a query term
        never match (a BM25 ranking only returns rows that score > 0)."""
        allowed_user = _as_keys(allowed_row_keys)
        idx, plan = self._bm25_for_query(ds, column, exact)
        allowed = None
        if filter_sql is not None or allowed_user is not None:
            allowed = self._allowed(ds, filter_sql, allowed_user, None)
        keys, scores = idx.search(query, k, allowed)
        return Hits(keys, scores, plan)

    def vector_scores_for(self, ds: lance.LanceDataset, column: str, query: Any,
                          row_keys: Any) -> F32:
        """Exact similarity (cosine or MaxSim, by column type) of the given rows.

        Rows that do not exist or hold NULL score 0. Reads the index's side dataset by row
        address where it can (fast) and the table for rows the index does not hold yet.
        """
        keys = np.asarray(row_keys, dtype=np.int64)
        out = np.zeros(keys.size, np.float32)
        if keys.size == 0:
            return out
        multi = column_kind(ds, column) == "multivector"
        q = as_query_matrix(query) if multi else as_query_vector(query)
        info = self.index_for(column)
        pos_of = {int(k_): i for i, k_ in enumerate(keys.tolist())}
        todo = np.unique(keys)
        fr = self._freshness(ds, info) if info is not None and info.dim else None
        sources: list[tuple[I64, Any]] = []
        if fr is not None and fr.usable and info is not None:
            if fr.fresh_fragments:
                # Fresh rows first: for an updated row the fresh copy is the live one.
                sources.append(self._table_rows(ds, column, todo, fr.fresh_fragments))
                todo = np.setdiff1d(todo, sources[-1][0])
            side = self._side_index(info)
            # (the in-memory copy holds normalised vectors only for a cosine index)
            cached = None if multi or info.metric != "cosine" else side.matrix()
            if cached is not None:
                got, mat = cached.rows(todo)
                qn = normalize_vector(np.asarray(q, np.float32))
                for k_, s_ in zip(got.tolist(), matvec(mat, qn).tolist(), strict=True):
                    out[pos_of[k_]] = s_
                todo = np.setdiff1d(todo, got, assume_unique=True)
            addrs = side.row_addresses(todo) if todo.size else np.zeros(0, np.uint64)
            if addrs.size and side.ds is not None:
                col = "bag" if multi else "vec"
                t = side.ds._take_rows(addrs.astype(np.int64).tolist(), columns=[RID, col])
                sources.append((t[RID].to_numpy().astype(np.int64), t[col]))
                todo = np.setdiff1d(todo, sources[-1][0])
        if todo.size:
            sources.append(self._table_rows(ds, column, todo, None))
        for got_keys, col in sources:
            if got_keys.size == 0:
                continue
            if multi:
                packed = bags_from_arrow(col, got_keys)
                scores = maxsim_scores(packed, q)
                got_keys = packed.row_keys
            else:
                mat, valid = vectors_from_arrow(col)
                got_keys = got_keys[valid]
                scores = cosine_scores(mat, q) if mat.shape[0] else np.zeros(0, np.float32)
            for k_, s_ in zip(got_keys.tolist(), scores.tolist(), strict=True):
                out[pos_of[k_]] = s_
        return out

    def _table_rows(self, ds: lance.LanceDataset, column: str, keys: I64,
                    fragments: list[Any] | None) -> tuple[I64, pa.ChunkedArray]:
        flt = f"{RID} IN ({','.join(map(str, keys.tolist()))})"
        kw: dict[str, Any] = {"columns": [RID, column], "filter": flt}
        if fragments is not None:
            kw["fragments"] = fragments
        t = ds.scanner(**kw).to_table()
        return t[RID].to_numpy().astype(np.int64), t[column]

    def hybrid_topk(self, ds: lance.LanceDataset, vector_column: str, text_column: str,
                    vector_query: Any, text_query: str, k: int, *, w_vec: float = 0.5,
                    w_text: float = 0.5, method: str = DEFAULT_FUSION, depth: int = 100,
                    filter_sql: str | None = None, allowed_row_keys: Any = None,
                    exact: bool = False, rescore: bool = True) -> Hits:
        """deeplake_hybrid_record: both legs to ``depth`` rows, fused (see hybrid_fuse).

        ``vector_query`` may be 1-D (cosine leg) or 2-D (MaxSim leg); the column decides.
        With ``rescore`` (default) every candidate of either leg is scored on both sides
        exactly before fusing, so a row just below one leg's cut-off is not counted as 0
        there (SciFact, stemmed BM25, min-max: 0.736 nDCG@10 against 0.727 without).
        """
        depth = max(depth, k)
        allowed = None
        if filter_sql is not None or allowed_row_keys is not None:
            # Evaluate the filter once for both legs.
            allowed = self._allowed(ds, filter_sql, _as_keys(allowed_row_keys), None)
        if column_kind(ds, vector_column) == "multivector":
            vec = self.maxsim_topk(ds, vector_column, vector_query, depth,
                                   allowed_row_keys=allowed, exact=exact)
        else:
            # The legs are candidate pools: what must be found is the fused top-k.
            vec = self.vector_topk(ds, vector_column, vector_query, depth,
                                   allowed_row_keys=allowed, exact=exact, recall_k=k)
        idx, tplan = self._bm25_for_query(ds, text_column, exact)
        # The text leg is a pruned top-k (frequent terms are never scanned in full); the
        # rescoring below looks up the few vector-leg rows it lacks.
        tk, ts = idx.search(text_query, depth, allowed)
        legs: tuple[tuple[Any, Any], tuple[Any, Any]]
        if rescore:
            cand = np.union1d(vec.row_keys, tk)
            vs = np.zeros(cand.size, np.float32)
            vs[np.searchsorted(cand, vec.row_keys)] = vec.scores
            missing = np.setdiff1d(cand, vec.row_keys)
            if missing.size:
                vs[np.searchsorted(cand, missing)] = self.vector_scores_for(
                    ds, vector_column, vector_query, missing)
            tscores = np.zeros(cand.size, np.float32)
            tscores[np.searchsorted(cand, tk)] = ts
            text_missing = np.setdiff1d(cand, tk)
            if text_missing.size:
                tscores[np.searchsorted(cand, text_missing)] = idx.score_rows(text_query,
                                                                              text_missing)
            # hybrid_fuse ranks each side over the whole candidate set (for RRF too).
            legs = ((cand, vs), (cand, tscores))
        else:
            legs = ((vec.row_keys, vec.scores), (tk, ts))
        keys, scores = hybrid_fuse(legs[0], legs[1], w_vec, w_text, method, k=k)
        return Hits(keys, scores.astype(np.float32),
                    f"hybrid {method}({vec.plan}; {tplan}; depth {depth}"
                    f"{', rescored' if rescore else ''})")


def _as_keys(allowed: Any) -> I64 | None:
    if allowed is None:
        return None
    keys = np.asarray(allowed, dtype=np.int64)
    # Already sorted and unique (what _allowed returns) is the common case: skip the sort.
    if keys.size > 1 and not bool(np.all(keys[1:] > keys[:-1])):
        keys = np.unique(keys)
    return keys


def _ef_search_probes(tuned: dict[str, Any], ef: int) -> int:
    """pgvector's ``hnsw.ef_search`` as a probe count: HNSW keeps the ef nearest candidates
    it has seen, so ef plays the part of a depth. The count calibrated for that many nearest
    rows (``tuning["deep"]``; depth 10 is the index's own count), interpolated in log depth
    between the calibrated depths, scaled down below 10 and up beyond the deepest one."""
    lists = max(1, int(tuned.get("lists", 1)))
    points = sorted([(10, int(tuned["nprobes"]))]
                    + [(int(d), int(c)) for d, c in (tuned.get("deep") or {}).items()])
    if ef <= points[0][0]:
        count = points[0][1] * ef / points[0][0]
    elif ef >= points[-1][0]:
        count = points[-1][1] * ef / points[-1][0]
    else:
        (d0, c0), (d1, c1) = next((a, b) for a, b in zip(points, points[1:], strict=False)
                                  if a[0] <= ef <= b[0])
        t = math.log(ef / d0) / math.log(d1 / d0) if d1 > d0 else 1.0
        count = c0 + t * (c1 - c0)
    return max(1, min(lists, int(math.ceil(count))))


def _memory_probes(p: AnnParams, tuned: dict[str, Any] | None, k: int, n: int,
                   allowed: I64 | None, parts: int) -> int:
    """Lists to probe in memory for the k nearest (allowed) rows. A filter passing a share
    s of the rows asks for the k / s nearest rows: the count calibrated for that depth
    (``tuning["deep"]``; the deepest one beyond it) when there is one, else the calibrated
    (or given) count scaled by 1 / sqrt(s). Filtered depths are doubled: the
    calibration's queries are rows, and a filter's k / s rows are a sample, not a prefix
    (clustered 100k x 384, 10% filter: recall@10 0.90 at the count for depth k / s)."""
    depth = k if allowed is None or not n else 2 * k * n / max(1, allowed.size)
    base = (p.nprobes if p.nprobes is not None else
            max(p.min_nprobes, int(math.ceil(parts * p.nprobe_fraction))))
    deep = (tuned or {}).get("deep") or {}
    if tuned and deep and depth > 10:
        fits = sorted(int(d) for d in deep if int(d) >= depth) or [max(int(d) for d in deep)]
        count = int(deep[str(fits[0])])
    elif allowed is not None and n:
        count = int(math.ceil(base / max(allowed.size / n, 0.05) ** 0.5))
    else:
        count = base
    return max(1, min(parts, count))


def _member(keys: I64, allowed: I64) -> npt.NDArray[np.bool_]:
    """``np.isin(keys, allowed)`` for sorted unique ``allowed``: a binary search per key,
    not a sort of both (100 keys against 500k allowed: ~10 us instead of ~30 ms)."""
    if allowed.size == 0:
        return np.zeros(keys.size, bool)
    pos = np.clip(np.searchsorted(allowed, keys), 0, allowed.size - 1)
    return np.asarray(allowed[pos] == keys)


def _fsl_matrix(col: pa.ChunkedArray | pa.Array, dim: int) -> F32:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if len(arr) == 0:
        return np.zeros((0, dim), np.float32)
    flat = arr.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return flat.reshape(-1, dim)


def _fork(idx: BM25Index) -> BM25Index:
    """A copy whose adds and deletes leave ``idx`` untouched (segments are shared)."""
    out = copy.copy(idx)
    out.segments = []
    for seg in idx.segments:
        s = copy.copy(seg)
        s.live = seg.live.copy()
        out.segments.append(s)
    out._removed_segments = []
    return out


_ADHOC: dict[tuple[str, int, str, Any], BM25Index] = {}

# BM25 without an index tokenizes the whole column for the query (~100 us a row: 1M rows
# took 221 s). Above this many rows the query is refused with the CREATE INDEX to run.
ADHOC_BM25_MAX_ROWS = int(os.environ.get("TARNDB_BM25_ADHOC_MAX_ROWS", "100000"))


def _table_name(uri: str) -> str:
    """The table's name as the engine spells its directory (``<name>-<8 hex>.lance``)."""
    base = uri.rstrip("/").rsplit("/", 1)[-1].removesuffix(".lance")
    return re.sub(r"-[0-9a-f]{8}$", "", base) or "t"


def _adhoc_bm25(ds: lance.LanceDataset, column: str, params: BM25Params | None = None,
                tok: TokenizerConfig | None = None) -> BM25Index:
    """A BM25 index over the whole column at this version, kept for repeated queries."""
    key = (ds.uri, int(ds.version), column, (params, tok))
    idx = _ADHOC.get(key)
    if idx is None:
        rows = int(ds.count_rows())
        if rows > ADHOC_BM25_MAX_ROWS:
            raise ProgramLimitExceeded(
                f'BM25 over column "{column}" without an index would tokenize all {rows} '
                f"rows for this query (tarndb does that up to {ADHOC_BM25_MAX_ROWS} rows)",
                hint=f'Create a BM25 index (queries then take milliseconds): CREATE INDEX ON '
                     f'{_table_name(ds.uri)} USING deeplake_index ("{column}") '
                     "WITH (index_type = 'bm25')")
        idx = BM25Index(params, tok)
        keys, texts = _exact.read_texts(ds, column)
        idx.add(keys, texts)
        if len(_ADHOC) >= 8:
            _ADHOC.pop(next(iter(_ADHOC)))
        _ADHOC[key] = idx
    return idx

