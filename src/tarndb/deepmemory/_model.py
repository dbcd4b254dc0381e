"""The Deep Memory model: a residual query adapter trained contrastively, and recall@k.

Only queries pass through the adapter; the stored document embeddings are never touched, so a
trained model costs one small matrix product per query and no re-embedding of the corpus.

``q' = normalize(q + B (A q))`` with ``A`` (rank x dim) and ``B`` (dim x rank), ``B`` starting
at zero so that the untrained adapter is exactly the identity. Training minimises InfoNCE over
each query's relevant documents against in-batch positives of the other queries and hard
negatives mined from the whole corpus, plus ``reg * ||B A||^2`` which pulls the adapter back
toward the identity.

Why this shape and not a free linear map: a full-rank map trained on a few hundred queries
learns "move every query toward the documents that were relevant in training", which lifts
queries about those documents and costs every other query (on SciFact -8 points of recall@10
on queries about unseen documents). Low rank, the pull toward the identity, pseudo-queries
made from the documents themselves (so every document, not only the labelled ones, takes
part in the objective), an exponential moving average of the weights, and early stopping on
the held-out queries' InfoNCE over the full corpus (a smooth signal; recall@10 on ~80 queries
moves in steps of one query and stops training at random epochs) are what keep it general.

torch is needed to train (``pip install 'tarndb[embeddings]'``); applying a trained adapter
and computing recall use numpy only.
"""

from __future__ import annotations

import io
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
import numpy.typing as npt

from ..embeddings._base import require
from ..errors import DataError, InvalidParameterValue

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


class TrainingCancelled(Exception):
    """Raised inside a job when its cancel flag is set."""


@dataclass
class AdapterConfig:
    """Training settings; the defaults are what the SciFact figures in the docs were made with."""

    #: rank of the residual update; small ranks generalise, large ones memorise
    rank: int = 32
    #: InfoNCE temperature (MiniLM cosine scores live in a narrow band, so it is small)
    temperature: float = 0.05
    #: hard negatives per example, sampled from the top ``mine_depth`` non-relevant documents
    hard_negatives: int = 16
    mine_depth: int = 64
    #: weight of ``||B A||_F^2``: the pull toward the identity
    reg: float = 0.01
    lr: float = 3e-3
    batch_size: int = 64
    max_epochs: int = 30
    #: epochs without a lower held-out loss before stopping
    patience: int = 4
    #: share of the training queries held out for early stopping (at least 1 query)
    val_fraction: float = 0.1
    #: weight of pseudo-query examples relative to real ones in the loss
    pseudo_weight: float = 0.5
    #: decay of the running average of the weights that is evaluated and kept (0: the raw
    #: weights); averaging removes most of the epoch-to-epoch noise of small training sets
    ema: float = 0.99
    seed: int = 0
    #: torch threads while training: the matrices are small, so more threads mostly add
    #: synchronisation and take cores from the queries served beside the job
    threads: int = 1

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> AdapterConfig:
        """Settings from JSON (an HTTP body, a stored job), checked."""
        if d is None:
            return cls()
        if not isinstance(d, dict):
            raise InvalidParameterValue("config must be an object")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise InvalidParameterValue(f"unknown config setting(s): {', '.join(unknown)}; "
                                        f"known: {', '.join(sorted(known))}")
        out = cls()
        for k, v in d.items():
            want = type(getattr(out, k))
            if isinstance(v, bool) or not isinstance(v, (int, float)) or \
                    (want is int and not float(v).is_integer()):
                kind = "an integer" if want is int else "a number"
                raise InvalidParameterValue(f"config.{k} must be {kind}")
            setattr(out, k, want(v))
        out.check()
        return out

    def check(self) -> None:
        positive = ("rank", "temperature", "batch_size", "max_epochs", "patience", "lr",
                    "mine_depth", "threads")
        for k in positive:
            if getattr(self, k) <= 0:
                raise InvalidParameterValue(f"config.{k} must be positive")
        if self.hard_negatives < 0 or self.hard_negatives > self.mine_depth:
            raise InvalidParameterValue("config.hard_negatives must be in [0, mine_depth]")
        if not 0.0 <= self.val_fraction < 1.0:
            raise InvalidParameterValue("config.val_fraction must be in [0, 1)")
        if not 0.0 <= self.ema < 1.0:
            raise InvalidParameterValue("config.ema must be in [0, 1)")
        if self.reg < 0 or self.pseudo_weight < 0:
            raise InvalidParameterValue("config.reg and config.pseudo_weight must be >= 0")


@dataclass
class Adapter:
    """A trained adapter: numpy weights, applied without torch."""

    a: F32  # (rank, dim)
    b: F32  # (dim, rank)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.a.shape[1])

    def apply(self, queries: npt.ArrayLike) -> F32:
        """Adapt ``(n, dim)`` or ``(dim,)`` query vectors; the result is L2-normalised."""
        q = np.asarray(queries, dtype=np.float32)
        one = q.ndim == 1
        q2 = q[None, :] if one else q
        if q2.ndim != 2 or q2.shape[1] != self.dim:
            raise DataError(f"query dimension {q2.shape[-1]} does not match the deep memory "
                            f"model's dimension {self.dim}")
        out = normalize(q2 + (q2 @ self.a.T) @ self.b.T)
        return out[0] if one else out

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, a=self.a, b=self.b,
                 meta=np.frombuffer(json.dumps(self.meta).encode(), dtype=np.uint8))
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Adapter:
        with np.load(io.BytesIO(data)) as z:
            meta = json.loads(bytes(z["meta"].tobytes()).decode()) if "meta" in z else {}
            return cls(a=z["a"].astype(np.float32), b=z["b"].astype(np.float32), meta=meta)


def normalize(x: npt.ArrayLike) -> F32:
    """Rows scaled to unit length (a zero row stays zero)."""
    arr = np.asarray(x, dtype=np.float32)
    out = arr / np.maximum(np.linalg.norm(arr, axis=-1, keepdims=True), 1e-12)
    return out.astype(np.float32, copy=False)


def topk_indices(queries: F32, docs: F32, k: int) -> I64:
    """Exact top-k by inner product, best first (ties by lower index), ``(n, k)``."""
    k = min(k, docs.shape[0])
    out = np.empty((queries.shape[0], k), dtype=np.int64)
    # Chunked so that a large corpus never needs an n x N score matrix at once.
    step = max(1, 4_000_000 // max(docs.shape[0], 1))
    for s in range(0, queries.shape[0], step):
        sims = queries[s:s + step] @ docs.T
        part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        ps = np.take_along_axis(sims, part, axis=1)
        order = np.lexsort((part, -ps), axis=1)  # score descending, then index ascending
        out[s:s + step] = np.take_along_axis(part, order, axis=1)
    return out


def recall_at_k(queries: F32, docs: F32, relevant: Sequence[Sequence[int]],
                ks: Sequence[int]) -> dict[str, float]:
    """Mean over queries of |relevant in top k| / |relevant| (BEIR recall), exact search.

    Queries without any relevant document are skipped (their recall is undefined).
    """
    keep = [i for i, r in enumerate(relevant) if len(r) > 0]
    if not keep:
        return {f"recall@{k}": 0.0 for k in ks}
    top = topk_indices(np.asarray(queries, dtype=np.float32)[keep], docs, max(ks))
    out: dict[str, float] = {}
    for k in ks:
        total = 0.0
        for row, i in enumerate(keep):
            rel = set(relevant[i])
            total += len(rel.intersection(top[row, :k].tolist())) / len(rel)
        out[f"recall@{k}"] = total / len(keep)
    return out


#: most synthetic queries held out for validation when no real query can be (each costs a
#: row of scores over the whole corpus per epoch)
MAX_SYNTHETIC_VAL = 1000


@dataclass
class Split:
    """Which queries train and which validate (early stopping and the job's figures).

    ``kind`` is ``"real"`` (held-out real queries about documents no training query is
    about), ``"synthetic"`` (no real query could be held out: held-out documents' synthetic
    queries) or ``"none"``. ``val_queries`` index the real queries followed by the synthetic
    ones.
    """

    train_queries: list[int]
    val_queries: list[int]
    val_relevant: list[list[int]]
    val_docs: set[int]
    kind: str


def split_by_document(positives: Sequence[set[int]], pseudo_docs: Sequence[int],
                      fraction: float, rng: np.random.Generator) -> Split:
    """Hold out *documents*, not only queries.

    With at least two real queries: about ``fraction`` of them are drawn, their relevant
    documents are held out, and every real query about a held-out document validates
    instead of training, so the validation figure is recall on queries whose documents
    training never saw (the case a query-level split cannot measure: there most held-out
    queries share documents with training queries). Without real queries the held-out
    documents' synthetic queries validate (labelled ``"synthetic"``).
    """
    n = len(positives)
    real = [i for i in range(n) if positives[i]]
    if fraction <= 0:
        return Split(real, [], [], set(), "none")
    if len(real) >= 2:
        target = min(len(real) - 1, max(1, int(round(len(real) * fraction))))
        val_docs: set[int] = set()
        picked: list[int] = []
        for i in rng.permutation(real).tolist():
            if len(picked) >= target:
                break
            picked.append(i)
            val_docs |= positives[i]
        val = [i for i in real if positives[i] & val_docs]
        train = [i for i in real if not positives[i] & val_docs]
        if not train:
            # Every query shares a document with a drawn one (a hub document): hold out
            # the drawn queries only.
            val, train = sorted(picked), [i for i in real if i not in set(picked)]
        return Split(train, val, [sorted(positives[i]) for i in val], val_docs, "real")
    docs = sorted(set(pseudo_docs))
    if len(docs) >= 2:
        per_doc = max(1.0, len(pseudo_docs) / len(docs))
        k = min(len(docs) - 1, max(1, int(round(len(docs) * fraction))),
                max(1, int(MAX_SYNTHETIC_VAL / per_doc)))
        held = {int(d) for d in rng.permutation(docs)[:k].tolist()}
        val = [n + j for j, d in enumerate(pseudo_docs) if d in held]
        return Split(real, val, [[int(pseudo_docs[j - n])] for j in val], held, "synthetic")
    return Split(real, [], [], set(), "none")


#: ``miner(query_vectors, k) -> (n, k)`` document rows, best first
Miner = Callable[[F32, int], I64]
ProgressFn = Callable[[dict[str, Any]], None]


def mine_hard_negatives(queries: F32, docs: F32, positives: Sequence[set[int]], depth: int,
                        rng: np.random.Generator, miner: Miner | None = None) -> I64:
    """For each query the ``depth`` most similar documents that are not relevant to it.

    ``miner`` searches the table's vector index instead of scanning ``docs`` exactly (for
    large corpora). Tiny corpora pad with random documents.
    """
    want = min(depth + 8, docs.shape[0])
    found = miner(queries, want) if miner is not None else topk_indices(queries, docs, want)
    hard = np.empty((queries.shape[0], depth), dtype=np.int64)
    for i in range(queries.shape[0]):
        cand = [d for d in found[i].tolist() if d >= 0 and d not in positives[i]][:depth]
        while len(cand) < depth:
            cand.append(int(rng.integers(docs.shape[0])))
        hard[i] = cand
    return hard


def train_adapter(query_emb: F32, relevant: Sequence[Sequence[tuple[int, float]]],
                  doc_emb: F32, *, config: AdapterConfig | None = None,
                  pseudo_emb: F32 | None = None, pseudo_docs: Sequence[int] | None = None,
                  miner: Miner | None = None, progress: ProgressFn | None = None,
                  should_stop: Callable[[], bool] | None = None) -> Adapter:
    """Train an adapter (see the module docstring).

    ``query_emb`` (n, dim) and ``doc_emb`` (N, dim) are L2-normalised; ``relevant[i]`` lists
    ``(document row, score)`` for query ``i`` (the score in [0, 1] weights the pair; 0 pairs
    are ignored). ``pseudo_emb`` / ``pseudo_docs``: extra queries, each relevant to one
    document. ``progress`` gets a dict per epoch (epoch, eta_s, held-out recall@10 and its
    baseline); ``should_stop`` is polled between batches and raises
    :class:`TrainingCancelled`.
    """
    torch = require("torch")
    cfg = config or AdapterConfig()
    cfg.check()
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(max(1, min(cfg.threads, os.cpu_count() or 1)))
    try:
        return _train(torch, cfg, query_emb, relevant, doc_emb, pseudo_emb, pseudo_docs,
                      miner, progress, should_stop)
    finally:
        torch.set_num_threads(prev_threads)


def _train(torch: Any, cfg: AdapterConfig, query_emb: F32,
           relevant: Sequence[Sequence[tuple[int, float]]], doc_emb: F32,
           pseudo_emb: F32 | None, pseudo_docs: Sequence[int] | None, miner: Miner | None,
           progress: ProgressFn | None, should_stop: Callable[[], bool] | None) -> Adapter:
    started = time.monotonic()
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    docs_np = normalize(doc_emb)
    q_np = normalize(query_emb)
    n, dim = q_np.shape
    if docs_np.ndim != 2 or docs_np.shape[1] != dim:
        raise DataError(f"query vectors are {dim}-d, documents {docs_np.shape[-1]}-d")

    positives_of: list[set[int]] = [{int(d) for d, s in r if s > 0} for r in relevant]
    n_pseudo = 0 if pseudo_docs is None else len(pseudo_docs)
    pseudo_rows = [int(d) for d in pseudo_docs] if pseudo_docs is not None else []
    all_q = q_np
    if n_pseudo:
        assert pseudo_emb is not None
        all_q = np.concatenate([q_np, normalize(pseudo_emb)])
    split = split_by_document(positives_of, pseudo_rows, cfg.val_fraction, rng)
    val_q, val_rel = split.val_queries, split.val_relevant

    ex_q: list[int] = []
    ex_d: list[int] = []
    ex_w: list[float] = []
    for i in split.train_queries:
        for d, s in relevant[i]:
            if s > 0:
                ex_q.append(i)
                ex_d.append(int(d))
                ex_w.append(float(s))
    for j, d in enumerate(pseudo_rows):
        positives_of.append({d})
        if d not in split.val_docs or split.kind == "real":
            # Synthetic queries cover every document, also those held out from the real
            # pairs (as they do once trained: unseen documents still have their synthetic
            # queries); only a synthetic validation set holds its documents' out.
            ex_q.append(n + j)
            ex_d.append(d)
            ex_w.append(cfg.pseudo_weight)
    if not ex_q or not any(w > 0 for w in ex_w):
        queries_part = "no queries were given" if n == 0 else (
            f"the {len(split.train_queries)} training queries have no relevant document with "
            f"a score above 0 ({len(val_q) if split.kind == 'real' else 0} of {n} queries "
            f"are held out for validation)")
        raise InvalidParameterValue(
            f"no training pairs: {queries_part} and {n_pseudo} pseudo-queries were made",
            hint="give more queries with relevant documents, or pseudo_queries= a text "
                 "column, 'first_sentence', 'sentences' or 'keywords' (the table's text "
                 "column must be set)")

    hard = mine_hard_negatives(all_q, docs_np, positives_of, cfg.mine_depth, rng, miner)
    docs_t = torch.from_numpy(docs_np)
    q_t = torch.from_numpy(all_q)
    a = torch.nn.Parameter(torch.randn(cfg.rank, dim, generator=gen) / math.sqrt(dim))
    b = torch.nn.Parameter(torch.zeros(dim, cfg.rank))
    opt = torch.optim.Adam([a, b], lr=cfg.lr)
    avg_a, avg_b = a.detach().clone(), b.detach().clone()

    val_pairs = [(j, d) for j, i in enumerate(val_q) for d in val_rel[j]]

    def held_out(a_np: F32, b_np: F32) -> tuple[float, float]:
        """(InfoNCE over the whole corpus, recall@10) of the held-out queries."""
        if not val_q:
            return 0.0, 0.0
        qa = Adapter(a_np, b_np).apply(all_q[val_q])
        logits = (qa @ docs_np.T) / cfg.temperature
        top = logits.max(axis=1, keepdims=True)
        lse = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
        loss = float(np.mean([lse[j] - logits[j, d] for j, d in val_pairs]))
        return loss, recall_at_k(qa, docs_np, val_rel, [10])["recall@10"]

    identity = (a.detach().numpy().copy(), np.zeros((dim, cfg.rank), np.float32))
    best_loss, base_recall = held_out(*identity)
    best_recall, best_state, best_epoch, bad = base_recall, identity, 0, 0
    t_q = torch.tensor(ex_q)
    t_d = torch.tensor(ex_d)
    t_w = torch.tensor(ex_w, dtype=torch.float32)
    hard_t = torch.from_numpy(hard)
    n_ex = len(ex_q)
    history: list[dict[str, float]] = []
    epochs_run = 0
    for epoch in range(1, cfg.max_epochs + 1):
        perm = torch.randperm(n_ex, generator=gen)
        for s in range(0, n_ex, cfg.batch_size):
            if should_stop is not None and should_stop():
                raise TrainingCancelled()
            idx = perm[s:s + cfg.batch_size]
            bq, bd, bw = t_q[idx], t_d[idx], t_w[idx]
            qa = torch.nn.functional.normalize(q_t[bq] + (q_t[bq] @ a.T) @ b.T, dim=-1)
            in_batch = qa @ docs_t[bd].T                              # (B, B)
            # A batch-mate's document that is also relevant to this query is no negative
            # (same document twice, or two documents of one query).
            same = (bd[None, :] == bd[:, None]) | (bq[None, :] == bq[:, None])
            in_batch = in_batch.masked_fill(same & ~torch.eye(len(idx), dtype=torch.bool),
                                            float("-inf"))
            parts = [in_batch]
            if cfg.hard_negatives:
                pick = torch.randint(0, cfg.mine_depth, (len(idx), cfg.hard_negatives),
                                     generator=gen)
                neg_ids = torch.gather(hard_t[bq], 1, pick)           # (B, H)
                parts.append(torch.einsum("bd,bhd->bh", qa, docs_t[neg_ids]))
            logits = torch.cat(parts, dim=1) / cfg.temperature
            ce = torch.nn.functional.cross_entropy(logits, torch.arange(len(idx)),
                                                   reduction="none")
            loss = (ce * bw).sum() / bw.sum().clamp_min(1e-6) + cfg.reg * ((b @ a) ** 2).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
            with torch.no_grad():
                avg_a.mul_(cfg.ema).add_(a.detach(), alpha=1 - cfg.ema)
                avg_b.mul_(cfg.ema).add_(b.detach(), alpha=1 - cfg.ema)
        epochs_run = epoch
        state = (avg_a.numpy().copy(), avg_b.numpy().copy())
        val_loss, val_recall = held_out(*state)
        history.append({"epoch": epoch, "val_loss": val_loss, "val_recall@10": val_recall})
        if val_loss < best_loss - 1e-6 or not val_q:
            best_loss, best_recall, best_state, best_epoch, bad = (
                val_loss, val_recall, state, epoch, 0)
        else:
            bad += 1
        stop = bad >= cfg.patience
        if progress is not None:
            elapsed = time.monotonic() - started
            # An upper bound: early stopping may end training sooner.
            left = 0 if stop else cfg.max_epochs - epoch
            progress({"epoch": epoch, "max_epochs": cfg.max_epochs,
                      "eta_s": elapsed / epoch * left, "recall@10": best_recall,
                      "baseline_recall@10": base_recall, "val_loss": best_loss,
                      "validation": split.kind, "val_queries": len(val_q)})
        if stop:
            break
    meta = {"config": cfg.to_json(), "best_epoch": best_epoch, "epochs_run": epochs_run,
            "val_queries": len(val_q), "validation": split.kind,
            "val_documents": len(split.val_docs), "train_pairs": n_ex, "val_recall@10": best_recall,
            "val_baseline_recall@10": base_recall, "val_loss": best_loss,
            "train_seconds": time.monotonic() - started, "history": history}
    return Adapter(best_state[0].astype(np.float32), best_state[1].astype(np.float32), meta)
