"""BM25 engines side by side: tarndb's in-house index, tantivy (tantivy-py) and Lance's own
full-text index (what lancedb's FTS runs), with bm25s as the quality reference.

    python benchmarks/search/bm25_engines.py                  # SciFact + 100k docs, minutes
    python benchmarks/search/bm25_engines.py --n 1000000      # SciFact repeated to 1M docs

Everything runs in this process, one engine after the other on the same texts and queries,
timed query by query interleaved (on a busy machine the engines share the load). Each engine
uses English analysis (lower case, stop words, Snowball/Porter stemming) and its own BM25
parameters (tarndb k1 0.9 b 0.4 like Anserini; tantivy and Lance 1.2 / 0.75; bm25s Lucene's
variant 1.5 / 0.75). Sections, printed as one table per section, an engine a column:

1. quality: SciFact (BEIR, ``../shared/data/scifact``) test nDCG@10 over its 300 claims;
2. speed: top-10 p50 / p95 over SciFact (5,183 abstracts) and over SciFact repeated to
   ``--n`` documents, for the claims (long queries, ~12 words) and their first 3 words;
   index build time and size on disk;
3. incremental updates and deletes on the ``--n`` index: ``--updates`` new documents and as
   many deleted, the time to apply and persist them, whether the next query sees both (each
   new document holds a word no other holds; each deleted one was the top hit of a query);
4. CJK (Chinese, Japanese, Korean) and stemming probes: small document sets whose right
   answer is known; the count of queries whose right document comes first.

``--before REV`` adds tarndb's index as of git revision REV as a column ("tarndb before"),
for a same-run before/after of changes to ``_bm25.py``.

Needs ``pip install -e '.[bench]'`` (bm25s, PyStemmer, tantivy); an engine that cannot be
imported is reported as not run. The findings are written up in docs/search-tuning.md
("Which BM25 engine") and in ``tarndb/search/_bm25.py``'s docstring.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests" / "search"))

import _scifact  # noqa: E402

K = 10


def _dir_size(path: str) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


class Engine:
    """One BM25 engine over (integer id, text) documents, persisted under ``root``."""

    name = ""

    def __init__(self, root: str, cjk: bool = False) -> None:
        self.root = root

    def build(self, ids: np.ndarray, texts: Sequence[str]) -> None:
        raise NotImplementedError

    def search(self, query: str, k: int) -> list[int]:
        raise NotImplementedError

    def update(self, new_ids: np.ndarray, new_texts: Sequence[str],
               deleted: np.ndarray) -> None:
        """Add documents and delete others, persisted, visible to the next search."""
        raise NotImplementedError

    def size(self) -> int:
        return _dir_size(self.root)


class Tarndb(Engine):
    """tarndb's ``BM25Index``: segments + deletion masks, saved as npz files."""

    name = "tarndb"

    def __init__(self, root: str, cjk: bool = False) -> None:
        super().__init__(root)
        from tarndb.search import BM25Index

        self.idx = BM25Index()  # English stop words + Snowball; CJK bigrams always on

    def build(self, ids: np.ndarray, texts: Sequence[str]) -> None:
        self.idx.add(ids, texts)
        self.idx.warm()
        self.idx.save(self.root)

    def search(self, query: str, k: int) -> list[int]:
        return self.idx.search(query, k)[0].tolist()

    def update(self, new_ids: np.ndarray, new_texts: Sequence[str],
               deleted: np.ndarray) -> None:
        self.idx.add(new_ids, new_texts)
        self.idx.delete(deleted)
        self.idx.save(self.root)


_BEFORE: list[Any] = []  # the _bm25 module of --before, when given


class TarndbBefore(Tarndb):
    """tarndb's index as of ``--before`` (a git revision), on the same texts: the same-run
    before/after of changes to ``_bm25.py``."""

    name = "tarndb before"

    def __init__(self, root: str, cjk: bool = False) -> None:
        Engine.__init__(self, root)
        if not _BEFORE:
            raise ImportError("no --before revision")
        self.idx = _BEFORE[0].BM25Index()


def load_before(rev: str) -> Any:
    """``tarndb.search._bm25`` as of ``rev``, imported beside the current one."""
    from bench_internals import load_before as load_module_before

    return load_module_before(rev, "_bm25")


class Tantivy(Engine):
    """tantivy through tantivy-py: an on-disk index with a fast ``id`` field; queries are
    parsed leniently after removing the query language's punctuation."""

    name = "tantivy"

    def __init__(self, root: str, cjk: bool = False) -> None:
        super().__init__(root)
        import tantivy

        self.t = tantivy
        sb = tantivy.SchemaBuilder()
        sb.add_integer_field("id", stored=True, indexed=True, fast=True)
        sb.add_text_field("body", stored=False, tokenizer_name="bm25", index_option="freq")
        self.schema = sb.build()
        os.makedirs(root, exist_ok=True)
        self.index = tantivy.Index(self.schema, path=root)
        if cjk:
            # tantivy-py has no CJK segmenter (tantivy-jieba / lindera are Rust crates it
            # does not ship); character bigrams are the workable choice.
            an = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.ngram(2, 2)).filter(
                tantivy.Filter.lowercase()).build()
        else:
            an = (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
                  .filter(tantivy.Filter.lowercase())
                  .filter(tantivy.Filter.stopword("english"))
                  .filter(tantivy.Filter.stemmer("english")).build())
        self.index.register_tokenizer("bm25", an)
        self.writer = self.index.writer(heap_size=200_000_000, num_threads=1)

    def build(self, ids: np.ndarray, texts: Sequence[str]) -> None:
        doc = self.t.Document
        for i, text in zip(ids.tolist(), texts, strict=True):
            self.writer.add_document(doc(id=i, body=text))
        self.writer.commit()
        self.writer.wait_merging_threads()
        self.writer = self.index.writer(heap_size=200_000_000, num_threads=1)
        self.index.reload()
        self.searcher = self.index.searcher()

    def search(self, query: str, k: int) -> list[int]:
        q, _ = self.index.parse_query_lenient(re.sub(r"[^\w\s]", " ", query), ["body"])
        s = self.searcher
        return [s.doc(addr)["id"][0] for _, addr in s.search(q, k).hits]

    def update(self, new_ids: np.ndarray, new_texts: Sequence[str],
               deleted: np.ndarray) -> None:
        for i in deleted.tolist():
            self.writer.delete_documents_by_term("id", i)
        doc = self.t.Document
        for i, text in zip(new_ids.tolist(), new_texts, strict=True):
            self.writer.add_document(doc(id=i, body=text))
        self.writer.commit()
        self.index.reload()
        self.searcher = self.index.searcher()


class LanceFts(Engine):
    """Lance's INVERTED index (lancedb's full-text search) on a Lance dataset; new rows
    are appended as fragments the index does not cover until ``optimize_indices``."""

    name = "Lance FTS"

    def __init__(self, root: str, cjk: bool = False) -> None:
        super().__init__(root)
        self.cjk = cjk

    def build(self, ids: np.ndarray, texts: Sequence[str]) -> None:
        import lance
        import pyarrow as pa

        ds = lance.write_dataset(pa.table({"id": ids.astype(np.int64), "body": list(texts)}),
                                 f"{self.root}/fts.lance", mode="overwrite")
        opts: dict[str, Any] = ({"base_tokenizer": "icu"} if self.cjk else
                                {"base_tokenizer": "simple", "stem": True,
                                 "remove_stop_words": True, "lower_case": True})
        ds.create_scalar_index("body", "INVERTED", **opts)
        self.ds = lance.dataset(ds.uri)

    def search(self, query: str, k: int) -> list[int]:
        return self.ds.to_table(columns=["id"], full_text_query=query, limit=k,
                                disable_scoring_autoprojection=True)["id"].to_pylist()

    def update(self, new_ids: np.ndarray, new_texts: Sequence[str],
               deleted: np.ndarray) -> None:
        import lance
        import pyarrow as pa

        lance.write_dataset(pa.table({"id": new_ids.astype(np.int64), "body": list(new_texts)}),
                            self.ds.uri, mode="append")
        ds = lance.dataset(self.ds.uri)
        ds.delete(f"id IN ({','.join(str(i) for i in deleted.tolist())})")
        self.ds = lance.dataset(self.ds.uri)

    def optimize(self) -> None:
        import lance

        self.ds.optimize.optimize_indices()
        self.ds = lance.dataset(self.ds.uri)


class Bm25s(Engine):
    """bm25s (the quality reference): an in-memory sparse matrix; no updates (rebuilt)."""

    name = "bm25s"

    def __init__(self, root: str, cjk: bool = False) -> None:
        super().__init__(root)
        import bm25s
        import Stemmer  # type: ignore[import-not-found,unused-ignore]

        self.bm25s = bm25s
        self.stemmer = Stemmer.Stemmer("english")

    def _tok(self, texts: Sequence[str]) -> Any:
        return self.bm25s.tokenize(list(texts), stopwords="en", stemmer=self.stemmer,
                                   show_progress=False)

    def build(self, ids: np.ndarray, texts: Sequence[str]) -> None:
        self.ids = np.asarray(ids)
        self.texts = list(texts)
        self.r = self.bm25s.BM25()
        self.r.index(self._tok(texts), show_progress=False)
        self.r.save(self.root)

    def search(self, query: str, k: int) -> list[int]:
        toks = self._tok([query])
        if not toks.vocab:
            return []
        res, _ = self.r.retrieve(toks, k=min(k, len(self.ids)), show_progress=False)
        return self.ids[res[0]].tolist()

    def update(self, new_ids: np.ndarray, new_texts: Sequence[str],
               deleted: np.ndarray) -> None:
        keep = ~np.isin(self.ids, deleted)
        self.build(np.concatenate([self.ids[keep], new_ids]),
                   [t for t, ok in zip(self.texts, keep.tolist(), strict=True) if ok]
                   + list(new_texts))


ENGINES: list[type[Engine]] = [Tarndb, Tantivy, LanceFts, Bm25s]


def available(root: str) -> list[type[Engine]]:
    out: list[type[Engine]] = []
    for cls in ([TarndbBefore] if _BEFORE else []) + ENGINES:
        try:
            cls(tempfile.mkdtemp(dir=root))
        except ImportError as e:
            print(f"  {cls.name}: not run ({e}); pip install -e '.[bench]'")
            continue
        out.append(cls)
    return out


def table(title: str, cols: list[str], rows: list[tuple[str, list[str]]]) -> None:
    print(f"\n{title}")
    width = max(14, *(len(c) + 2 for c in cols))
    print(f"  {'':<34}" + "".join(f"{c:>{width}}" for c in cols))
    for label, vals in rows:
        print(f"  {label:<34}" + "".join(f"{v:>{width}}" for v in vals), flush=True)


def timed_interleaved(fns: list[Callable[[int], Any]], nq: int, repeats: int,
                      ) -> list[tuple[float, float]]:
    for fn in fns:
        for i in range(min(3, nq)):
            fn(i)
    lat: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i in range(nq):
            for j, fn in enumerate(fns):
                t0 = time.perf_counter()
                fn(i)
                lat[j].append((time.perf_counter() - t0) * 1000)
    return [(float(np.percentile(x, 50)), float(np.percentile(x, 95))) for x in lat]


def build_all(classes: list[type[Engine]], root: str, tag: str, ids: np.ndarray,
              texts: Sequence[str]) -> tuple[list[Engine], list[float], list[int]]:
    engines, secs, sizes = [], [], []
    for cls in classes:
        e = cls(os.path.join(root, f"{tag}-{cls.name.replace(' ', '_')}"))
        t0 = time.perf_counter()
        e.build(ids, texts)
        secs.append(time.perf_counter() - t0)
        sizes.append(e.size())
        engines.append(e)
    return engines, secs, sizes


def quality(classes: list[type[Engine]], root: str) -> None:
    data = _scifact.load("test")
    ids = np.arange(len(data.doc_ids), dtype=np.int64)
    engines, secs, _ = build_all(classes, root, "scifact", ids, data.doc_texts)
    vals = []
    for e in engines:
        run = {qid: [data.doc_ids[j] for j in e.search(q, K)]
               for qid, q in zip(data.query_ids, data.query_texts, strict=True)}
        vals.append(f"{_scifact.ndcg_at_k(run, data.qrels):.3f}")
    table(f"1. quality: SciFact test nDCG@10 ({len(data.query_ids)} claims, "
          f"{len(ids)} abstracts)", [e.name for e in engines],
          [("nDCG@10", vals), ("build (s)", [f"{s:.2f}" for s in secs])])


def speed_and_updates(classes: list[type[Engine]], root: str, n: int, nq: int,
                      repeats: int, updates: int) -> None:
    data = _scifact.load("test")
    base = data.doc_texts
    claims = (data.query_texts * (nq // len(data.query_texts) + 1))[:nq]
    short = [" ".join(c.split()[:3]) for c in claims]
    for label, size in (("SciFact", len(base)), (f"SciFact repeated to {n}", n)):
        if size > len(base) and n <= len(base):
            continue
        ids = np.arange(size, dtype=np.int64)
        texts = [base[i % len(base)] for i in range(size)]
        engines, secs, sizes = build_all(classes, root, f"speed{size}", ids, texts)
        rows: list[tuple[str, list[str]]] = [
            ("build (s)", [f"{s:.1f}" for s in secs]),
            ("index on disk (MB)", [f"{b / 1e6:.1f}" for b in sizes])]
        for qlabel, qs in (("claims (~12 words)", claims), ("3 words", short)):
            fns = [_searcher(e, qs) for e in engines]
            res = timed_interleaved(fns, nq, repeats)
            rows.append((f"{qlabel}: p50 ms", [f"{p50:.2f}" for p50, _ in res]))
            rows.append((f"{qlabel}: p95 ms", [f"{p95:.2f}" for _, p95 in res]))
        table(f"2. speed: top-{K} over {label} ({size} docs), {nq} queries x {repeats}",
              [e.name for e in engines], rows)
        if size == n:
            incremental(engines, texts, claims, updates)


def _searcher(e: Engine, qs: list[str]) -> Callable[[int], list[int]]:
    return lambda i: e.search(qs[i], K)


def _marker(i: int) -> str:
    letters = "".join(chr(ord("a") + (i // 26 ** p) % 26) for p in range(4))
    return f"quokka{letters}"


def incremental(engines: list[Engine], texts: list[str], claims: list[str],
                updates: int) -> None:
    n = len(texts)
    new_ids = np.arange(n, n + updates, dtype=np.int64)
    new_texts = [f"{_marker(i)} {texts[i]}" for i in range(updates)]
    # Deleted: each engine's top hits for the first claims (so a query shows whether they
    # are gone; the corpus may hold a text more than once, so every copy of it among the
    # top 10), topped up with the oldest rows.
    probe = list(range(0, updates, max(1, updates // 50)))
    apply_s, seen_new, gone, after = [], [], [], []
    for e in engines:
        tops = [(c, h[0]) for c in claims[:50] if (h := e.search(c, 1))]
        watched = [(c, h) for c, h in tops][: max(1, updates // K)]
        dead_l = list(dict.fromkeys(j for c, _ in watched for j in e.search(c, K)))
        dead_l += [j for j in range(updates) if j not in set(dead_l)]
        dead = np.asarray(dead_l[:updates], np.int64)
        t0 = time.perf_counter()
        e.update(new_ids, new_texts, dead)
        apply_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        found = sum(e.search(_marker(i), 1) == [int(new_ids[i])] for i in probe)
        after.append((time.perf_counter() - t0) * 1000 / len(probe))
        seen_new.append(f"{found}/{len(probe)}")
        still = sum(h in e.search(c, K) for c, h in watched)
        gone.append(f"{len(watched) - still}/{len(watched)}")
    rows = [("apply + persist (s)", [f"{s:.2f}" for s in apply_s]),
            ("new docs found at rank 1", seen_new),
            ("deleted top hits gone", gone),
            ("query after update (ms, mean)", [f"{x:.2f}" for x in after])]
    lance = [e for e in engines if isinstance(e, LanceFts)]
    if lance:
        t0 = time.perf_counter()
        lance[0].optimize()
        rows.append(("Lance optimize_indices (s)", [
            f"{time.perf_counter() - t0:.2f}" if isinstance(e, LanceFts) else "-"
            for e in engines]))
    table(f"3. incremental: {updates} docs added and {updates} deleted on {n} docs",
          [e.name for e in engines], rows)
    print("  (bm25s has no updates: its row is a rebuild of the whole index)")


CJK_DOCS = [
    "東京都の天気は晴れです",  # ja: Tokyo's weather is sunny
    "北京今天下雨了",  # zh: it rains in Beijing today
    "서울의 날씨는 맑습니다",  # ko: the weather in Seoul is clear
    "我喜欢机器学习和自然语言处理",  # zh: I like machine learning and NLP
    "明日の大阪は雨が降るでしょう",  # ja: it will probably rain in Osaka tomorrow
    "数据库索引提高查询速度",  # zh: database indexes speed up queries
    "한국어 형태소 분석기",  # ko: Korean morphological analyser
]
CJK_QUERIES = [("天気", 0), ("下雨", 1), ("날씨", 2), ("机器学习", 3), ("大阪", 4),
               ("自然语言", 3), ("查询", 5), ("索引", 5), ("형태소", 6), ("北京", 1)]
STEM_DOCS = [
    "the runner runs every morning along the river",
    "connection pooling keeps database sessions open",
    "she studies mathematics and physics at the university",
    "the queries were cached by the proxy",
    "happily organized libraries of books",
    "an unrelated sentence about weather and clouds",
]
STEM_QUERIES = [("running", 0), ("connected pools", 1), ("studying", 2), ("query cache", 3),
                ("organizing library", 4), ("studied", 2), ("caching queries", 3),
                ("runners", 0)]


def probes(classes: list[type[Engine]], root: str) -> None:
    rows: list[tuple[str, list[str]]] = []
    names = [c.name for c in classes]
    for label, docs, queries, cjk in (
            ("CJK, English analysis", CJK_DOCS, CJK_QUERIES, False),
            ("CJK, CJK analysis", CJK_DOCS, CJK_QUERIES, True),
            ("stemming", STEM_DOCS, STEM_QUERIES, False)):
        vals = []
        for cls in classes:
            if (cjk and cls is Bm25s) or cls is TarndbBefore:
                vals.append("-")
                continue
            e = cls(tempfile.mkdtemp(dir=root), cjk=cjk)
            try:
                e.build(np.arange(len(docs), dtype=np.int64), docs)
                good = sum(e.search(q, 1) == [want] for q, want in queries)
                vals.append(f"{good}/{len(queries)}")
            except Exception as ex:  # noqa: BLE001 - an engine that cannot says why
                vals.append(type(ex).__name__)
        rows.append((label, vals))
    table("4. probes: right document first (CJK analysis: tarndb bigrams, tantivy ngram(2,2), "
          "Lance icu)", names, rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="docs of the large index")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--updates", type=int, default=1000)
    ap.add_argument("--before", default=None,
                    help="a git revision: its tarndb BM25 index as one more column (the "
                         "same-run before/after of changes to _bm25.py)")
    args = ap.parse_args()
    if args.before:
        _BEFORE.append(load_before(args.before))
    if not _scifact.available():
        raise SystemExit(f"SciFact is not at {_scifact.DATA_DIR}")
    root = tempfile.mkdtemp(prefix="tarn-bm25-engines-")
    print(f"bm25_engines: n={args.n} queries={args.queries} repeats={args.repeats} "
          f"updates={args.updates} cpus={os.cpu_count()} load={os.getloadavg()[0]:.2f}",
          flush=True)
    t0 = time.perf_counter()
    try:
        classes = available(root)
        quality(classes, root)
        probes(classes, root)
        speed_and_updates(classes, root, args.n, args.queries, args.repeats, args.updates)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s, load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
