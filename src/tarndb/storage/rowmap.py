"""Rows by ``__rid`` without scanning the table.

A ranking query ends with the k rows the search picked, named by ``__rid``. A Lance filter
``__rid IN (...)`` reads the ``__rid`` column of every fragment to find them (1M rows:
~15 ms for 10 rows); a take by Lance row id reads only those rows (~1 ms). This module keeps
``__rid -> Lance row id`` per fragment (the row's address in tables without stable row ids,
its stable id in tables that have them: ``_take_rows`` takes whichever the table uses), keyed
by what makes it change (the fragment id and its deletion count: Lance never rewrites a
fragment's rows in place), so a new table version re-reads only its new or changed fragments.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import lance
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from .tables import RID

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]

# Fragments remembered per process (each holds 16 bytes a row), least recently used first.
_MAX_FRAGMENTS = 4096

_lock = threading.Lock()
_fragments: OrderedDict[tuple[str, int, int], tuple[I64, U64]] = OrderedDict()
# The combined, sorted map of the last few table versions read.
_versions: OrderedDict[tuple[str, int], tuple[I64, U64]] = OrderedDict()


def _fragment_key(uri: str, frag: Any) -> tuple[str, int, int]:
    dfile = frag.metadata.deletion_file
    return (uri, int(frag.fragment_id), int(dfile.num_deleted_rows) if dfile else 0)


def _load(ds: lance.LanceDataset) -> tuple[I64, U64]:
    """(``__rid`` ascending, row address) of every live row of ``ds``."""
    uri = ds.uri
    vkey = (uri, int(ds.version))
    with _lock:
        hit = _versions.get(vkey)
        if hit is not None:
            _versions.move_to_end(vkey)
            return hit
    frags = ds.get_fragments()
    keys = [_fragment_key(uri, f) for f in frags]
    with _lock:
        missing = [f for f, k in zip(frags, keys, strict=True) if k not in _fragments]
    if missing:
        t = ds.scanner(columns=[RID], with_row_id=True, with_row_address=True,
                       fragments=missing).to_table()
        rids = t[RID].to_numpy().astype(np.int64)
        addrs = t["_rowid"].to_numpy().astype(np.uint64)
        frag_of = (t["_rowaddr"].to_numpy().astype(np.uint64) >> np.uint64(32)).astype(np.int64)
        with _lock:
            for f in missing:
                m = frag_of == int(f.fragment_id)
                _fragments[_fragment_key(uri, f)] = (rids[m], addrs[m])
    with _lock:
        parts = []
        for k in keys:
            part = _fragments.get(k)
            if part is None:  # evicted meanwhile by another table: rare, read it again
                return _load_uncached(ds)
            _fragments.move_to_end(k)
            parts.append(part)
        while len(_fragments) > _MAX_FRAGMENTS:
            _fragments.popitem(last=False)
    rids = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
    addrs = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.uint64)
    # Bulk loads leave __rid ascending in storage order; updates move rows to new fragments.
    if rids.size > 1 and not bool(np.all(rids[1:] > rids[:-1])):
        order = np.argsort(rids, kind="stable")
        rids, addrs = rids[order], addrs[order]
    with _lock:
        _versions[vkey] = (rids, addrs)
        while len(_versions) > 4:
            _versions.popitem(last=False)
    return rids, addrs


def _load_uncached(ds: lance.LanceDataset) -> tuple[I64, U64]:
    t = ds.scanner(columns=[RID], with_row_id=True).to_table()
    rids = t[RID].to_numpy().astype(np.int64)
    addrs = t["_rowid"].to_numpy().astype(np.uint64)
    order = np.argsort(rids, kind="stable")
    return rids[order], addrs[order]


def live_rids(ds: lance.LanceDataset) -> I64:
    """The ``__rid`` of every live row of ``ds``, ascending (cached per table version)."""
    return _load(ds)[0]


def row_addresses(ds: lance.LanceDataset, rids: Any, ordered: bool = True) -> U64:
    """Row addresses of the live rows of ``ds`` with these ``__rid`` values (absent ones are
    skipped); ``ordered``: in ascending address order (a take reads pages in order), else in
    the order of ``rids`` (an allowlist for a search needs no order)."""
    want = np.asarray(rids, dtype=np.int64).ravel()
    keys, addrs = _load(ds)
    if keys.size == 0 or want.size == 0:
        return np.zeros(0, np.uint64)
    pos = np.clip(np.searchsorted(keys, want), 0, keys.size - 1)
    found = addrs[pos[keys[pos] == want]]
    return np.sort(found) if ordered else found


def rows_by_rid(ds: lance.LanceDataset, rids: Any, columns: list[str] | None = None,
                ) -> pa.Table:
    """The live rows of ``ds`` with these ``__rid`` values (any order)."""
    addrs = row_addresses(ds, rids)
    if addrs.size == 0:
        return ds.to_table(columns=columns, limit=0)
    return ds._take_rows(addrs.astype(np.int64).tolist(), columns=columns)


# -- locating rows for a rewrite -------------------------------------------------------------

# (uri, fragment id, deleted rows) -> (__rid ascending, Lance row id in that order, positions
# of rows this process deleted since the arrays were read: arrays are shared, not copied)
_sorted: OrderedDict[tuple[str, int, int], tuple[I64, U64, frozenset[int]]] = OrderedDict()


def _fragment_sorted(ds: lance.LanceDataset, frag: Any) -> tuple[I64, U64, frozenset[int]]:
    key = _fragment_key(ds.uri, frag)
    with _lock:
        hit = _sorted.get(key)
        if hit is not None:
            _sorted.move_to_end(key)
            return hit
    with _lock:
        scanned = _fragments.get(key)  # the same fragment as the row map read it
    if scanned is not None:
        rids, ids = scanned
    else:
        t = ds.scanner(columns=[RID], with_row_id=True, fragments=[frag]).to_table()
        rids = t[RID].to_numpy().astype(np.int64)
        ids = t["_rowid"].to_numpy().astype(np.uint64)
        with _lock:
            _fragments[key] = (rids, ids)
            while len(_fragments) > _MAX_FRAGMENTS:
                _fragments.popitem(last=False)
    if rids.size > 1 and not bool(np.all(rids[1:] > rids[:-1])):
        order = np.argsort(rids, kind="stable")
        rids, ids = rids[order], ids[order]
    entry = (rids, ids, frozenset[int]())
    with _lock:
        _sorted[key] = entry
        while len(_sorted) > _MAX_FRAGMENTS:
            _sorted.popitem(last=False)
    return entry


def locate(ds: lance.LanceDataset, rids: Any, partial: bool = False
           ) -> dict[int, tuple[I64, U64]] | None:
    """Fragment id -> (``__rid``, Lance row id) of the live rows of ``ds`` with these
    ``__rid`` values, for a rewrite that deletes them fragment by fragment
    (storage/tables.py). None when one of the rids is not a live row (``partial``: those
    are left out). A fragment is read once (its entry is carried over when this process
    deletes rows from it: :func:`note_deleted`)."""
    want = np.unique(np.asarray(rids, dtype=np.int64).ravel())
    if want.size == 0:
        return {}
    out: dict[int, tuple[I64, U64]] = {}
    found = 0
    for frag in ds.get_fragments():
        keys, ids, dead = _fragment_sorted(ds, frag)
        if keys.size == 0 or want[-1] < keys[0] or want[0] > keys[-1]:
            continue
        pos = np.clip(np.searchsorted(keys, want), 0, keys.size - 1)
        hit = keys[pos] == want
        if dead:
            hit &= np.array([int(p) not in dead for p in pos])
        if hit.any():
            out[int(frag.fragment_id)] = (keys[pos[hit]], ids[pos[hit]])
            found += int(hit.sum())
    return out if partial or found == want.size else None


def note_deleted(uri: str, fragment_id: int, deleted_before: int, deleted_after: int,
                 rids: I64) -> None:
    """This process deleted the rows ``rids`` from a fragment (its deletion count went from
    ``deleted_before`` to ``deleted_after``): its entry for the new count, without reading
    the fragment again (a 1M-row fragment takes ~30 ms to read) or copying its arrays."""
    with _lock:
        old = _sorted.get((uri, fragment_id, deleted_before))
        if old is None:
            return
        keys, ids, dead = old
        pos = np.searchsorted(keys, rids)
        gone = dead | {int(p) for p in pos}
        if len(gone) > max(1024, keys.size // 8):  # many deletions: arrays without them
            keep = np.ones(keys.size, bool)
            keep[list(gone)] = False
            entry = (keys[keep], ids[keep], frozenset[int]())
        else:
            entry = (keys, ids, frozenset(gone))
        _sorted[(uri, fragment_id, deleted_after)] = entry
        while len(_sorted) > _MAX_FRAGMENTS:
            _sorted.popitem(last=False)


def _varint(b: list[int], i: int) -> tuple[int, int]:
    out = shift = 0
    while True:
        if i >= len(b) or shift > 63:
            raise ValueError("bad varint")
        byte = b[i]
        out |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            return out, i
        shift += 7


def _id_range(frag: Any) -> tuple[int, int] | None:
    """The stable row ids [start, end) of a fragment whose ids are one range, as Lance gives
    a newly written fragment (its RowIdSequence inline: one segment, a Range), read from
    the metadata; None for any other shape (the fragment is then read)."""
    try:
        b = list(frag.metadata.row_id_meta.asdict()["Inline"])
        if not b or b[0] != 0x0A:
            return None
        seg_len, i = _varint(b, 1)
        if i + seg_len != len(b) or b[i] != 0x0A:
            return None
        range_len, i = _varint(b, i + 1)
        if i + range_len != len(b):
            return None
        start = end = 0
        while i < len(b):
            tag = b[i]
            value, i = _varint(b, i + 1)
            if tag == 0x08:
                start = value
            elif tag == 0x10:
                end = value
            else:
                return None
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    return (start, end) if end - start == frag.metadata.physical_rows else None


def note_written(ds: lance.LanceDataset, fragment_ids: list[int], rids: I64) -> None:
    """This process wrote the fragments ``fragment_ids`` of ``ds`` with the rows ``rids``,
    in order: their entries from the row ids Lance assigned, without reading them."""
    pos = 0
    entries = []
    for fid in fragment_ids:
        frag = ds.get_fragment(fid)
        ids = _id_range(frag) if frag is not None else None
        if frag is None or ids is None:
            return
        n = ids[1] - ids[0]
        part = rids[pos:pos + n]
        pos += n
        order = np.argsort(part, kind="stable")
        entries.append((_fragment_key(ds.uri, frag),
                        (part[order], np.arange(ids[0], ids[1], dtype=np.uint64)[order],
                         frozenset[int]())))
    if pos != rids.size:
        return
    with _lock:
        for key, entry in entries:
            _sorted[key] = entry
        while len(_sorted) > _MAX_FRAGMENTS:
            _sorted.popitem(last=False)
