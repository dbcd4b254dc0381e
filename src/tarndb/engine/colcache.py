"""Narrow columns of recently read table versions, in memory, by ``__rid``.

A ranking query ends with the k rows the search picked; most select a key or a number per
row (``SELECT id ... ORDER BY emb <#> $1 LIMIT 10``). A Lance take of those k rows costs
0.5-2 ms however few columns it reads (row-id translation, page scheduling), more than the
search itself on a small table. Fixed-width columns (integers, floats, booleans, dates and
timestamps) are small: a million int64 values are 8 MB. This module keeps them per fragment,
keyed by what makes a fragment change (its id and deletion count: Lance never rewrites a
fragment's rows in place), as :mod:`tarndb.storage.rowmap` keeps ``__rid``, so a new table
version reads only its new or changed fragments; answers are then a binary search.

The cache is bounded (``_MAX_BYTES``, least recently used out first). Narrow text columns
are kept too (a key lookup's ``SELECT name, ... WHERE id = $1`` otherwise pays a Lance take of
the one row, ~0.6 ms, for a few bytes): a text column whose values average at most
``_NARROW_TEXT`` bytes on disk and whose whole copy is at most ``_MAX_TEXT_BYTES`` (judged per
table version from Lance's per-field data statistics, no read of the data). Wider columns
(long text, arrays, JSON, vectors) are not kept for rankings: a take reads them.

A key lookup (:func:`key_rows`) keeps text of any width up to ``_LOOKUP_TEXT_BYTES`` a column
(:func:`lookup_keeps`), per fragment only: it finds the row by the key's sorted values and
their positions in the fragment, and slices the fragment's arrays, so no per-version copy of
a wide column is made; the LRU bound covers these arrays too.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import lance
import numpy as np
import pyarrow as pa

from ..storage.tables import RID

#: Arrow types kept here (fixed width; decoding them to Python is what a take would give).
_KEPT = (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean, pa.types.is_date,
         pa.types.is_timestamp)
_MAX_BYTES = 256 << 20
#: Text columns kept: at most this many bytes a value on disk on average, and this many in all.
_NARROW_TEXT = 64
_MAX_TEXT_BYTES = 16 << 20
#: Text columns a key lookup keeps (:func:`lookup_keeps`): this many bytes in all.
_LOOKUP_TEXT_BYTES = 32 << 20

_lock = threading.Lock()
# (uri, fragment id, deleted rows, column) -> (__rid in scan order, values)
_fragments: OrderedDict[tuple[str, int, int, str], tuple[np.ndarray, pa.Array]] = OrderedDict()
# (uri, version, column) -> (__rid ascending, values in that order)
_versions: OrderedDict[tuple[str, int, str], tuple[np.ndarray, pa.Array]] = OrderedDict()
_bytes = 0


# (uri, version, column) -> whether it is kept: Lance builds ds.schema anew on every call
# (~40 us), and a ranking asks once per output column.
_kept: dict[tuple[str, int, str], bool] = {}


_integer: dict[tuple[str, int, str], bool] = {}


def _is_integer(ds: lance.LanceDataset, column: str) -> bool:
    key = (ds.uri, int(ds.version), column)
    found = _integer.get(key)
    if found is None:
        found = pa.types.is_integer(ds.schema.field(column).type)
        if len(_integer) > 4096:
            _integer.clear()
        _integer[key] = found
    return found


def cacheable(ds: lance.LanceDataset, column: str) -> bool:
    key = (ds.uri, int(ds.version), column)
    found = _kept.get(key)
    if found is not None:
        return found
    try:
        t = ds.schema.field(column).type
    except KeyError:
        return False
    kept = any(test(t) for test in _KEPT) or \
        ((pa.types.is_string(t) or pa.types.is_large_string(t)) and _narrow_text(ds, column))
    if len(_kept) > 4096:
        _kept.clear()
    _kept[key] = kept
    return kept


#: (uri, column, Lance field id) -> (bytes on disk, live rows then): Lance's per-field
#: statistics read every fragment's metadata (23-40 ms at 300 fragments), too slow for each
#: new table version; they are read again only when the table has grown or shrunk twofold.
_text_sizes: dict[tuple[str, str, int], tuple[int, int]] = {}


def _text_size(ds: lance.LanceDataset, column: str) -> tuple[float, int] | None:
    """(bytes on disk per row, live rows) of text ``column`` of ``ds``, from the manifest's
    statistics (no data read); None when they cannot be had."""
    try:
        field = ds.lance_schema.field(column)
        if field is None:
            return None
        field_id = field.id()
        rows = int(ds.count_rows())
        key = (ds.uri, column, field_id)
        found = _text_sizes.get(key)
        if found is None or not found[1] // 2 <= rows <= 2 * found[1] + 1024:
            stats: Any = ds.stats.data_stats().fields
            found = (int(next(f.bytes_on_disk for f in stats if f.id == field_id)), rows)
            if len(_text_sizes) > 4096:
                _text_sizes.clear()
            _text_sizes[key] = found
    except (KeyError, StopIteration, AttributeError, ValueError, OSError):
        return None
    return (found[0] / found[1] if found[1] else 0.0), rows


def _narrow_text(ds: lance.LanceDataset, column: str) -> bool:
    """Whether text ``column`` of ``ds`` is narrow enough to keep whole (module docstring)."""
    size = _text_size(ds, column)
    if size is None:
        return False
    # In memory: the bytes (at least what is on disk; compression makes it more) and offsets.
    per_row, rows = size
    return rows > 0 and per_row <= _NARROW_TEXT and (per_row + 8) * rows <= _MAX_TEXT_BYTES


# (uri, version, column) -> whether a key lookup keeps it (:func:`lookup_keeps`)
_lookup_kept: dict[tuple[str, int, str], bool] = {}


def lookup_keeps(ds: lance.LanceDataset, column: str) -> bool:
    """Whether a key lookup answers ``column`` from memory (:func:`key_rows`): what
    :func:`cacheable` keeps, and text of any width whose whole copy is at most
    ``_LOOKUP_TEXT_BYTES`` (a lookup keeps it per fragment, never as a per-version copy, so
    it costs its size once; a Lance take of the one row costs 0.3-1 ms)."""
    key = (ds.uri, int(ds.version), column)
    found = _lookup_kept.get(key)
    if found is not None:
        return found
    found = cacheable(ds, column)
    if not found:
        try:
            t = ds.schema.field(column).type
        except KeyError:
            return False
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            size = _text_size(ds, column)
            found = size is not None and (size[0] + 8) * size[1] <= _LOOKUP_TEXT_BYTES
    if len(_lookup_kept) > 4096:
        _lookup_kept.clear()
    _lookup_kept[key] = found
    return found


def _fragment_key(uri: str, frag: Any, column: str) -> tuple[str, int, int, str]:
    dfile = frag.metadata.deletion_file
    return (uri, int(frag.fragment_id), int(dfile.num_deleted_rows) if dfile else 0, column)


def _evict() -> None:
    global _bytes
    while _bytes > _MAX_BYTES and _fragments:
        _, (rids, values) = _fragments.popitem(last=False)
        _bytes -= rids.nbytes + values.nbytes
    while len(_versions) > 8:
        _versions.popitem(last=False)


def _load(ds: lance.LanceDataset, column: str) -> tuple[np.ndarray, pa.Array]:
    global _bytes
    uri, vkey = ds.uri, (ds.uri, int(ds.version), column)
    with _lock:
        hit = _versions.get(vkey)
        if hit is not None:
            _versions.move_to_end(vkey)
            return hit
    frags = ds.get_fragments()
    keys = [_fragment_key(uri, f, column) for f in frags]
    with _lock:
        missing = [f for f, k in zip(frags, keys, strict=True) if k not in _fragments]
    if missing:
        t = ds.scanner(columns=[RID, column], with_row_address=True,
                       fragments=missing).to_table()
        rids = t[RID].to_numpy().astype(np.int64)
        values = t[column].combine_chunks()
        frag_of = (t["_rowaddr"].to_numpy().astype(np.uint64) >> np.uint64(32)).astype(np.int64)
        with _lock:
            for f in missing:
                m = frag_of == int(f.fragment_id)
                part = (rids[m], values.filter(pa.array(m)))
                _fragments[_fragment_key(uri, f, column)] = part
                _bytes += part[0].nbytes + part[1].nbytes
    with _lock:
        parts: list[tuple[np.ndarray, pa.Array]] = []
        for k in keys:
            found = _fragments.get(k)
            if found is None:  # evicted meanwhile: read the whole column once more
                break
            _fragments.move_to_end(k)
            parts.append(found)
    if len(parts) != len(keys):
        t = ds.to_table(columns=[RID, column])
        parts = [(t[RID].to_numpy().astype(np.int64), t[column].combine_chunks())]
    rids = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    values = pa.concat_arrays([p[1] for p in parts]) if parts else \
        pa.array([], ds.schema.field(column).type)
    if rids.size > 1 and not bool(np.all(rids[1:] > rids[:-1])):
        order = np.argsort(rids, kind="stable")
        rids, values = rids[order], values.take(pa.array(order))
    with _lock:
        _versions[vkey] = (rids, values)
        _evict()
    return rids, values


def values_by_rid(ds: lance.LanceDataset, column: str, rids: np.ndarray) -> pa.Array | None:
    """``column``'s values of the rows with these ``__rid`` (in that order), or None when a
    row is not in ``ds``."""
    keys, values = _load(ds, column)
    want = np.asarray(rids, dtype=np.int64)
    if want.size == 0:
        return values.slice(0, 0)
    if keys.size == 0:
        return None
    if want.size == 1:  # a key lookup's one row: a slice, no take kernel
        rid = int(want[0])
        i = int(keys.searchsorted(rid))
        return values.slice(i, 1) if i < keys.size and int(keys[i]) == rid else None
    # (ufunc methods, not np.clip / np.all: their Python wrappers cost more than the work
    # for the k rows of a ranking)
    pos = np.minimum(keys.searchsorted(want), keys.size - 1)
    if not bool((keys[pos] == want).all()):
        return None
    if values.null_count == 0 and (pa.types.is_integer(values.type)
                                   or pa.types.is_floating(values.type)):
        # A numpy gather of the k values: Arrow's take kernel costs ~15 us to dispatch.
        return pa.array(values.to_numpy()[pos], values.type)
    return values.take(pa.array(pos))


# (uri, fragment id, deleted rows, column) -> (the fragment's values sorted, their __rid,
# their positions in the fragment's kept arrays)
_sorted: OrderedDict[tuple[str, int, int, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = \
    OrderedDict()


def rids_for_value(ds: lance.LanceDataset, column: str, value: Any) -> np.ndarray | None:
    """``__rid`` of the rows of ``ds`` whose integer ``column`` equals ``value`` (a key
    lookup: a binary search per fragment), ascending (each row once), or None when the
    column is not an integer one."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or \
            not _is_integer(ds, column):
        return None
    entries = _sorted_entries(ds, column)
    if entries is None:
        return None
    out: list[np.ndarray] = []
    for vals, rids, _, _ in entries:
        span = _span(vals, value)
        if span is not None:
            out.append(rids[span[0]:span[1]])
    if len(out) == 1:
        return out[0].copy()  # one fragment's: ascending already (a copy: callers own it)
    found = np.concatenate(out) if out else np.zeros(0, np.int64)
    if found.size > 1 and not bool(np.all(found[1:] > found[:-1])):
        found = np.sort(found)  # each fragment's are ascending: a short merge
    return found


_INT64 = np.dtype(np.int64)
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def _span(vals: np.ndarray, value: Any) -> tuple[int, int] | None:
    """Where ``value`` is in the sorted ``vals`` (None: not there). The value is cast to the
    array's type first: ``searchsorted`` of a Python int in an int32 array otherwise casts the
    whole array to int64 (~50 us at 100k rows). An int64 array (BIGINT keys, the common
    case) is searched with the Python int itself, once it is known to be in range: casting
    it first made the search twice as slow. Elements are compared as Python ints
    (``item``), cheaper than numpy scalars."""
    v: Any
    if vals.dtype == _INT64 and type(value) is int:
        if not _INT64_MIN <= value <= _INT64_MAX:
            return None
        v = value
    else:
        try:
            v = vals.dtype.type(value)
        except (OverflowError, ValueError, TypeError):  # out of the column type's range
            return None
    size = vals.size
    lo = int(vals.searchsorted(v, "left"))
    if lo >= size or vals.item(lo) != v:
        return None
    hi = lo + 1  # (a key's one row: no second search)
    if hi < size and vals.item(hi) == v:
        hi = int(vals.searchsorted(v, "right"))
    return lo, hi


#: One fragment's key entries: (the key values sorted, their ``__rid``, their positions in
#: the fragment's kept arrays, (the fragment's cache key less the column, the fragment)).
Entry = tuple[np.ndarray, np.ndarray, np.ndarray, Any]

# (uri, version, column) -> the sorted entries of every fragment of that version (a version
# is immutable: a lookup then skips listing the fragments and reading their metadata)
_version_sorted: OrderedDict[tuple[str, int, str], list[Entry]] = OrderedDict()


def _sorted_entries(ds: lance.LanceDataset, column: str) -> list[Entry] | None:
    """(values sorted, their ``__rid``, their positions, the fragment) per fragment of
    ``ds`` (None: evicted meanwhile)."""
    vkey = (ds.uri, int(ds.version), column)
    with _lock:
        found = _version_sorted.get(vkey)
        if found is not None:
            _version_sorted.move_to_end(vkey)
            return found
    _load(ds, column)  # every fragment of this version is in _fragments now
    uri = ds.uri
    entries: list[Entry] = []
    for frag in ds.get_fragments():
        key = _fragment_key(uri, frag, column)
        with _lock:
            entry = _sorted.get(key)
            part = _fragments.get(key)
        if entry is None:
            if part is None:
                return None  # evicted meanwhile: let the caller read Lance
            rids, values = part
            vals = values.to_numpy(zero_copy_only=False)
            pos = np.arange(rids.size, dtype=np.int64)
            if values.null_count:
                valid = np.asarray(values.is_valid().to_numpy(zero_copy_only=False), bool)
                vals, rids, pos = vals[valid], rids[valid], pos[valid]
            order = np.lexsort((rids, vals))  # by value, then __rid
            entry = (vals[order], rids[order], pos[order])
            with _lock:
                _sorted[key] = entry
                while len(_sorted) > 4096:
                    _sorted.popitem(last=False)
        entries.append((*entry, (key[:3], frag)))
    with _lock:
        _version_sorted[vkey] = entries
        while len(_version_sorted) > 8:
            _version_sorted.popitem(last=False)
    return entries


def _fragment_values(ds: lance.LanceDataset, fragment: tuple[tuple[str, int, int], Any],
                     column: str) -> tuple[np.ndarray, pa.Array]:
    """(``__rid``, ``column``'s values) of one fragment's live rows in scan order: kept, or
    read (that fragment alone) and kept."""
    global _bytes
    key = (*fragment[0], column)
    frag = fragment[1]
    with _lock:
        hit = _fragments.get(key)
        if hit is not None:
            _fragments.move_to_end(key)
            return hit
    t = ds.scanner(columns=[RID, column], fragments=[frag]).to_table()
    part = (t[RID].to_numpy().astype(np.int64), t[column].combine_chunks())
    with _lock:
        _fragments[key] = part
        _bytes += part[0].nbytes + part[1].nbytes
        _evict()
    return part


# (uri, version, key column, wanted columns) -> (the key's sorted entries, the wanted columns
# kept in memory, the others): what a lookup of that version decides before the key
_plans: dict[tuple[str, int, str, tuple[str, ...]], tuple[list[Entry], list[str], list[str]]] = {}


def key_rows(ds: lance.LanceDataset, column: str, value: Any, wanted: list[str],
             hidden: set[int] | None = None, limit: int | None = None
             ) -> tuple[dict[str, pa.Array], list[str], np.ndarray,
                        list[tuple[int, int]]] | None:
    """The rows of ``ds`` whose integer ``column`` equals ``value`` (a key lookup), rows
    whose ``__rid`` is in ``hidden`` left out, at most ``limit``, ascending by ``__rid``:
    (the ``wanted`` columns :func:`lookup_keeps` keeps, from memory; the wanted columns it
    does not, for the caller to take from Lance; the rows' ``__rid``; their fragment ids
    and positions among the fragment's live rows, which ``LanceFragment.take`` reads).
    None: not an integer column or value, or the kept arrays were evicted meanwhile (the
    caller reads Lance).

    Each fragment's key values are kept sorted with their positions in the fragment's kept
    arrays (:func:`_sorted_entries`), so a found row's other columns are slices of their
    fragment's arrays: no per-version copy of a wide column, no search by ``__rid``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        return None
    pkey = (ds.uri, int(ds.version), column, tuple(wanted))
    plan = _plans.get(pkey)
    if plan is None:
        if not _is_integer(ds, column):
            return None
        got = _sorted_entries(ds, column)
        if got is None:
            return None
        kept_cols = [c for c in wanted if lookup_keeps(ds, c)]
        plan = (got, kept_cols, [c for c in wanted if c not in kept_cols])
        if len(_plans) >= 64:  # (they hold their versions' sorted entries)
            _plans.clear()
        _plans[pkey] = plan
    entries, kept, rest = plan
    if len(entries) == 1 and not hidden and (limit is None or limit > 0):
        # One fragment (a table loaded at once, or compacted) and a key's one row: the
        # common case, without the loops, sorting and list building below.
        vals, rids, pos, frag = entries[0]
        span = _span(vals, value)
        if span is not None and span[1] - span[0] == 1:
            rid, p = rids.item(span[0]), pos.item(span[0])
            one: dict[str, pa.Array] = {}
            for c in kept:
                frids, values = _fragment_values(ds, frag, c)
                if p >= frids.size or frids.item(p) != rid:
                    return None  # not the row the key entries were sorted from
                one[c] = values.slice(p, 1)
            return one, rest, np.array([rid], dtype=np.int64), [(frag[0][1], p)]
    found: list[tuple[int, int, Any]] = []  # (__rid, position, fragment)
    for vals, rids, pos, frag in entries:
        span = _span(vals, value)
        if span is not None:
            for i in range(span[0], span[1]):
                rid = rids.item(i)
                if not hidden or rid not in hidden:
                    found.append((rid, pos.item(i), frag))
    if len(found) > 1:
        found.sort(key=lambda f: f[0])
    if limit is not None:
        found = found[:max(limit, 0)]
    data: dict[str, pa.Array] = {}
    for c in kept:
        parts = []
        for rid, p, frag in found:
            rids, values = _fragment_values(ds, frag, c)
            if p >= rids.size or rids.item(p) != rid:
                return None  # not the row the key entries were sorted from
            parts.append(values.slice(p, 1))
        data[c] = parts[0] if len(parts) == 1 else (
            pa.concat_arrays(parts) if parts else pa.array([], ds.schema.field(c).type))
    return (data, rest, np.array([f[0] for f in found], dtype=np.int64),
            [(f[2][0][1], f[1]) for f in found])
