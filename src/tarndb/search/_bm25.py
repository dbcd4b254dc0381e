"""An incremental BM25 inverted index, persisted under a directory URI (local or s3://).

Layout (all files written through ``pyarrow.fs``, so any URI that
``pyarrow.fs.FileSystem.from_uri`` understands works)::

    <dir>/manifest.json          params, tokenizer config, segment list (written last)
    <dir>/seg-<uuid>.npz         one immutable segment: vocabulary, postings, doc table
    <dir>/seg-<uuid>-<gen>.del.npy   local doc numbers deleted from that segment

The index is a list of immutable segments plus per-segment deletion masks, like Lucene:
``add`` writes a new segment, ``delete`` only flips mask bits, ``compact`` merges segments.
Collection statistics (N, average length, document frequencies) are always those of the
live documents: document frequencies are counted over live postings at query time, which
costs nothing extra because scoring walks those postings anyway.

BM25 (Robertson/Lucene form): ``idf = ln(1 + (N - df + 0.5) / (df + 0.5))`` and
``score = sum_t qtf_t * idf_t * tf (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl))``.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow.fs as pafs

from tarndb.errors import DataError

from ._kernels import topk_indices
from ._text import Tokenizer, TokenizerConfig

I64 = npt.NDArray[np.int64]
F32 = npt.NDArray[np.float32]

_FORMAT = 1


@dataclass(frozen=True)
class BM25Params:
    k1: float = 0.9
    b: float = 0.4


class _Segment:
    """Immutable postings for a batch of documents, plus a mutable live mask."""

    def __init__(self, name: str, terms: list[str], term_offsets: I64,
                 post_docs: npt.NDArray[np.int32], post_tfs: npt.NDArray[np.int32],
                 doc_rids: I64, doc_lens: npt.NDArray[np.int32],
                 live: npt.NDArray[np.bool_] | None = None) -> None:
        self.name = name
        self.terms = terms
        self.term_index = {t: i for i, t in enumerate(terms)}
        self.term_offsets = term_offsets
        self.post_docs = post_docs
        self.post_tfs = post_tfs
        self.doc_rids = doc_rids
        self.doc_lens = doc_lens
        self.live = np.ones(doc_rids.size, bool) if live is None else live
        self._rid_order = np.argsort(doc_rids, kind="stable")
        self.del_gen = 0
        self.dirty_deletes = False
        self.persisted = False

    @property
    def n_docs(self) -> int:
        return int(self.doc_rids.size)

    def locate(self, rids: I64) -> I64:
        """Local doc numbers of the live docs among ``rids``."""
        if self.n_docs == 0 or rids.size == 0:
            return np.zeros(0, np.int64)
        sorted_rids = self.doc_rids[self._rid_order]
        pos = np.searchsorted(sorted_rids, rids)
        pos = np.clip(pos, 0, sorted_rids.size - 1)
        hit = sorted_rids[pos] == rids
        local = self._rid_order[pos[hit]]
        return local[self.live[local]].astype(np.int64)

    @classmethod
    def build(cls, rids: I64, token_lists: Sequence[list[str]]) -> _Segment:
        vocab: dict[str, int] = {}
        term_ids: list[int] = []
        doc_of: list[int] = []
        lens = np.zeros(len(token_lists), np.int32)
        for d, toks in enumerate(token_lists):
            lens[d] = len(toks)
            for t in toks:
                tid = vocab.get(t)
                if tid is None:
                    tid = vocab[t] = len(vocab)
                term_ids.append(tid)
            doc_of.extend([d] * len(toks))
        terms_unsorted = list(vocab)
        order = sorted(range(len(terms_unsorted)), key=terms_unsorted.__getitem__)
        remap = np.empty(len(order), np.int64)
        remap[np.asarray(order, np.int64)] = np.arange(len(order))
        tids = remap[np.asarray(term_ids, np.int64)] if term_ids else np.zeros(0, np.int64)
        docs = np.asarray(doc_of, np.int64)
        # One key per (term, doc); unique gives sorted postings and term frequencies at once.
        key = tids * max(len(token_lists), 1) + docs
        ukey, tfs = np.unique(key, return_counts=True)
        n_docs = max(len(token_lists), 1)
        post_terms = ukey // n_docs
        post_docs = (ukey % n_docs).astype(np.int32)
        offsets = np.zeros(len(order) + 1, np.int64)
        np.cumsum(np.bincount(post_terms, minlength=len(order)), out=offsets[1:])
        return cls(uuid.uuid4().hex, [terms_unsorted[i] for i in order], offsets,
                   post_docs, tfs.astype(np.int32), np.asarray(rids, np.int64), lens)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        blob = "\0".join(self.terms).encode("utf-8")
        np.savez(buf, terms=np.frombuffer(blob, np.uint8), n_terms=np.int64(len(self.terms)),
                 term_offsets=self.term_offsets, post_docs=self.post_docs,
                 post_tfs=self.post_tfs, doc_rids=self.doc_rids, doc_lens=self.doc_lens)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, name: str, data: bytes) -> _Segment:
        z = np.load(io.BytesIO(data))
        n_terms = int(z["n_terms"])
        blob = z["terms"].tobytes().decode("utf-8")
        terms = blob.split("\0") if n_terms else []
        seg = cls(name, terms, z["term_offsets"], z["post_docs"], z["post_tfs"],
                  z["doc_rids"], z["doc_lens"])
        seg.persisted = True
        return seg


class BM25Index:
    """BM25 over (row_key, text) rows; see the module docstring for the model and layout."""

    def __init__(self, params: BM25Params | None = None,
                 tokenizer: TokenizerConfig | None = None) -> None:
        self.params = params or BM25Params()
        self.tokenizer_config = tokenizer or TokenizerConfig()
        self.tokenize = Tokenizer(self.tokenizer_config)
        self.segments: list[_Segment] = []
        self._n_live = 0
        self._len_live = 0
        self._removed_segments: list[str] = []
        self._saved_to: tuple[str, int, str] | None = None

    # -- maintenance -------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n_live

    @property
    def avgdl(self) -> float:
        return self._len_live / self._n_live if self._n_live else 0.0

    def add(self, row_keys: Iterable[int], texts: Iterable[str | None]) -> None:
        """Index rows; a row key already present is replaced (an UPDATE)."""
        rids = np.asarray(list(row_keys), dtype=np.int64)
        toks = [self.tokenize(t) for t in texts]
        if rids.size != len(toks):
            raise DataError("row_keys and texts differ in length")
        if rids.size == 0:
            return
        if np.unique(rids).size != rids.size:
            # Keep the last text of a repeated key, as a sequence of upserts would.
            _, last = np.unique(rids[::-1], return_index=True)
            keep = np.sort(rids.size - 1 - last)
            rids = rids[keep]
            toks = [toks[i] for i in keep]
        self.delete(rids)
        seg = _Segment.build(rids, toks)
        self.segments.append(seg)
        self._n_live += seg.n_docs
        self._len_live += int(seg.doc_lens.sum())

    def delete(self, row_keys: Iterable[int]) -> int:
        """Remove rows by key; unknown keys are ignored. Returns how many were removed."""
        rids = np.unique(np.asarray(list(row_keys) if not isinstance(row_keys, np.ndarray)
                                    else row_keys, dtype=np.int64))
        removed = 0
        for seg in self.segments:
            local = seg.locate(rids)
            if local.size:
                seg.live[local] = False
                seg.dirty_deletes = True
                removed += int(local.size)
                self._n_live -= int(local.size)
                self._len_live -= int(seg.doc_lens[local].sum())
        return removed

    def row_keys(self) -> I64:
        """Keys of all live rows."""
        parts = [s.doc_rids[s.live] for s in self.segments]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def compact(self) -> None:
        """Merge all segments into one, dropping deleted documents."""
        if len(self.segments) <= 1 and all(s.live.all() for s in self.segments):
            return
        rids: list[I64] = []
        docs: list[list[str]] = []
        for seg in self.segments:
            # Rebuild each live doc's token list from postings (texts are not kept).
            per_doc: list[list[str]] = [[] for _ in range(seg.n_docs)]
            for t, term in enumerate(seg.terms):
                a, b = seg.term_offsets[t], seg.term_offsets[t + 1]
                for d, tf in zip(seg.post_docs[a:b].tolist(), seg.post_tfs[a:b].tolist(),
                                 strict=True):
                    if seg.live[d]:
                        per_doc[d].extend([term] * tf)
            live = np.flatnonzero(seg.live)
            rids.append(seg.doc_rids[live])
            docs.extend(per_doc[i] for i in live.tolist())
        self._removed_segments.extend(s.name for s in self.segments if s.persisted)
        all_rids = np.concatenate(rids) if rids else np.zeros(0, np.int64)
        self.segments = [_Segment.build(all_rids, docs)] if all_rids.size else []

    # -- querying ----------------------------------------------------------------------

    def search(self, query: str, k: int, allowed: npt.ArrayLike | None = None,
               ) -> tuple[I64, F32]:
        """Top-k live rows by BM25 for ``query``, best first.

        ``allowed``: if given, only these row keys may be returned (a prefilter: the
        collection statistics stay those of the whole index).
        """
        keys, scores = self.score_all(query)
        if allowed is not None and keys.size:
            ok = np.isin(keys, np.asarray(allowed, dtype=np.int64))
            keys, scores = keys[ok], scores[ok]
        idx = topk_indices(scores, k)
        return keys[idx], scores[idx]

    def score_rows(self, query: str, row_keys: npt.ArrayLike) -> F32:
        """BM25 scores of the given rows (0 for rows without a query term or not indexed)."""
        return lookup_scores(*self.score_all(query), np.asarray(row_keys, dtype=np.int64))

    def score_all(self, query: str) -> tuple[I64, F32]:
        """(row keys ascending, scores) of every live row matching at least one query term."""
        qterms: dict[str, int] = {}
        for tok in self.tokenize(query):
            qterms[tok] = qterms.get(tok, 0) + 1
        if not qterms or self._n_live == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        k1, b = self.params.k1, self.params.b
        avgdl = self.avgdl or 1.0
        n = float(self._n_live)
        key_parts: list[I64] = []
        w_parts: list[npt.NDArray[np.float64]] = []
        for term, qtf in qterms.items():
            hits: list[tuple[_Segment, npt.NDArray[np.int32], npt.NDArray[np.int32]]] = []
            df = 0
            for seg in self.segments:
                t = seg.term_index.get(term)
                if t is None:
                    continue
                a, e = seg.term_offsets[t], seg.term_offsets[t + 1]
                docs = seg.post_docs[a:e]
                tfs = seg.post_tfs[a:e]
                live = seg.live[docs]
                if not live.all():
                    docs, tfs = docs[live], tfs[live]
                if docs.size:
                    hits.append((seg, docs, tfs))
                    df += int(docs.size)
            if df == 0:
                continue
            idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5))
            for seg, docs, tfs in hits:
                tf = tfs.astype(np.float64)
                norm = k1 * (1.0 - b + b * seg.doc_lens[docs] / avgdl)
                w_parts.append(qtf * idf * tf * (k1 + 1.0) / (tf + norm))
                key_parts.append(seg.doc_rids[docs])
        if not key_parts:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        keys = np.concatenate(key_parts)
        weights = np.concatenate(w_parts)
        ukeys, inv = np.unique(keys, return_inverse=True)
        return ukeys, np.bincount(inv, weights, minlength=ukeys.size).astype(np.float32)

    # -- persistence -------------------------------------------------------------------

    def save(self, uri: str, filesystem: pafs.FileSystem | None = None) -> None:
        """Write new segments, changed deletion masks and then the manifest to ``uri``."""
        fs, root = _fs(uri, filesystem)
        fs.create_dir(root, recursive=True)
        key = (fs.type_name, id(fs) if filesystem is not None else 0, root)
        if key != self._saved_to:
            # A new destination holds none of our files yet: write everything there.
            for seg in self.segments:
                seg.persisted = False
                seg.dirty_deletes = not seg.live.all()
            self._removed_segments.clear()
            self._saved_to = key
        seg_entries: list[dict[str, Any]] = []
        for seg in self.segments:
            if not seg.persisted:
                _write(fs, f"{root}/seg-{seg.name}.npz", seg.to_bytes())
                seg.persisted = True
            entry: dict[str, Any] = {"name": seg.name, "n_docs": seg.n_docs}
            if seg.dirty_deletes:
                seg.del_gen += 1
                buf = io.BytesIO()
                np.save(buf, np.flatnonzero(~seg.live).astype(np.int64))
                _write(fs, f"{root}/seg-{seg.name}-{seg.del_gen}.del.npy", buf.getvalue())
                seg.dirty_deletes = False
            if not seg.live.all():
                entry["del_gen"] = seg.del_gen
            seg_entries.append(entry)
        manifest = {
            "format": _FORMAT,
            "kind": "bm25",
            "params": {"k1": self.params.k1, "b": self.params.b},
            "tokenizer": self.tokenizer_config.to_dict(),
            "segments": seg_entries,
        }
        _write(fs, f"{root}/manifest.json", json.dumps(manifest).encode())
        # Files of merged-away segments are garbage only once the new manifest is in place.
        for name in self._removed_segments:
            _delete_quietly(fs, f"{root}/seg-{name}.npz")
        self._removed_segments.clear()

    @classmethod
    def load(cls, uri: str, filesystem: pafs.FileSystem | None = None) -> BM25Index:
        fs, root = _fs(uri, filesystem)
        manifest = json.loads(_read(fs, f"{root}/manifest.json"))
        if manifest.get("format") != _FORMAT or manifest.get("kind") != "bm25":
            raise DataError(f"{uri} does not hold a tarndb BM25 index of format {_FORMAT}")
        idx = cls(BM25Params(**manifest["params"]),
                  TokenizerConfig.from_dict(manifest["tokenizer"]))
        for entry in manifest["segments"]:
            seg = _Segment.from_bytes(entry["name"], _read(fs, f"{root}/seg-{entry['name']}.npz"))
            if "del_gen" in entry:
                seg.del_gen = int(entry["del_gen"])
                dead = np.load(io.BytesIO(
                    _read(fs, f"{root}/seg-{seg.name}-{seg.del_gen}.del.npy")))
                seg.live[dead] = False
            idx.segments.append(seg)
            idx._saved_to = (fs.type_name, id(fs) if filesystem is not None else 0, root)
            idx._n_live += int(seg.live.sum())
            idx._len_live += int(seg.doc_lens[seg.live].sum())
        return idx


def lookup_scores(keys: I64, scores: F32, row_keys: I64) -> F32:
    """Scores of ``row_keys`` from ascending ``keys``/``scores`` (0 where absent)."""
    out = np.zeros(row_keys.size, np.float32)
    if keys.size and row_keys.size:
        pos = np.clip(np.searchsorted(keys, row_keys), 0, keys.size - 1)
        hit = keys[pos] == row_keys
        out[hit] = scores[pos[hit]]
    return out


def _fs(uri: str, filesystem: pafs.FileSystem | None) -> tuple[pafs.FileSystem, str]:
    if filesystem is not None:
        return filesystem, uri.rstrip("/")
    fs, path = pafs.FileSystem.from_uri(uri)
    return fs, path.rstrip("/")


def _write(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    with fs.open_output_stream(path) as f:
        f.write(data)


def _read(fs: pafs.FileSystem, path: str) -> bytes:
    with fs.open_input_stream(path) as f:
        return bytes(f.read())


def _delete_quietly(fs: pafs.FileSystem, path: str) -> None:
    try:
        fs.delete_file(path)
    except (FileNotFoundError, OSError):
        pass
