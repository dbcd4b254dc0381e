"""Deep Memory on BEIR SciFact: recall@k with and without the model (all / seen / unseen).

    python benchmarks/deepmemory.py [--variants titles,first-sentence,none,linear,...]
                                    [--seeds 0] [--live-embedding] [--synthetic-only]

Trains through ``VectorStore.deep_memory.train`` on the 809 train queries and evaluates on
the 300 test queries with the packaged MiniLM. "seen" test queries have a relevant document
that was relevant to some training query; "unseen" ones do not (104 of 300: the measure of
a lift on documents no query has touched). The job validates on a held-out split of
*documents* (train queries about them are held out with them), and its own figure ("job
val") is recall@10 on those held-out real queries. ``--synthetic-only`` trains on no
queries at all, only the synthetic queries the variant makes (its figure is then on
held-out documents' synthetic queries, labelled so), and every test query is unseen.
Variants:

- ``titles``: the default model (rank-32 residual adapter pulled toward the identity, weight
  averaging, early stopping on held-out queries) with the documents' titles as pseudo-queries
  (what ``pseudo_queries="auto"`` picks on this table);
- ``first-sentence``: the same with each document's first sentence as its pseudo-query;
- ``none``: the same without pseudo-queries;
- ``sentences`` / ``keywords`` / ``all``: synthetic queries over the whole corpus: two
  sentences drawn from each document / its six most distinctive words (TF-IDF) / titles,
  sentences and keywords together (``pseudo_queries="sentences"`` ...); the first run embeds
  ~10k sentences with MiniLM (cached afterwards);
- ``linear``: a plain full-rank linear adapter (no pull toward the identity, no averaging,
  no pseudo-queries): what memorises the training documents.

MiniLM embeddings are cached under ~/.cache/tarndb/search (outside the repo), so the job
times exclude embedding unless ``--live-embedding`` makes the job embed its queries and
pseudo-queries with the model, as a server does. The targets are asserted by
tests/deepmemory/test_scifact.py.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "deepmemory"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import _dm_scifact as dm  # noqa: E402

from tarndb.deepmemory import AdapterConfig  # noqa: E402

VARIANTS: dict[str, tuple[str | None, dict[str, Any]]] = {
    "titles": ("auto", {}),
    "first-sentence": ("first_sentence", {}),
    "none": (None, {}),
    "sentences": ("sentences", {}),
    "keywords": ("keywords", {}),
    "all": ("all", {}),
    "linear": (None, {"rank": 384, "reg": 0.0, "ema": 0.0}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--variants", default="titles,first-sentence,none,linear")
    ap.add_argument("--seeds", default="0", help="comma-separated training seeds")
    ap.add_argument("--live-embedding", action="store_true",
                    help="the job embeds queries and pseudo-queries with MiniLM itself")
    ap.add_argument("--synthetic-only", action="store_true",
                    help="train on no queries, only the variant's synthetic queries")
    args = ap.parse_args()
    summary = []
    for name in args.variants.split(","):
        pseudo, overrides = VARIANTS[name]
        for seed in (int(s) for s in args.seeds.split(",")):
            cfg = AdapterConfig(**{**overrides, "seed": seed})
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory() as d:
                run = dm.run(f"{d}/lake", pseudo_queries=pseudo, config=cfg,
                             embedding_function="minilm" if args.live_embedding else None,
                             synthetic_only=args.synthetic_only)
                res = run.job["results"]
                print(f"\n== {name}, seed {seed}: {res['pseudo_queries']} pseudo-queries; job "
                      f"{run.job_seconds:.1f} s (training {res['train_seconds']:.1f} s, best "
                      f"epoch {res['best_epoch']} of {res['epochs_run']}); "
                      f"total {time.perf_counter() - t0:.0f} s; job val: recall@10 "
                      f"{res['baseline_recall@10']:.3f} -> {res['recall@10']:.3f} on "
                      f"{res['val_queries']} {res['validation']} held-out queries)")
                print(dm.table(run.report))
                rep = run.report
                summary.append((name, seed, rep, run.job_seconds, res["train_seconds"]))
                run.store.db.close()
    print("\nchange in recall (points), with model minus without; job and training seconds")
    print(f"{'variant':<16}{'seed':>5}{'all@10':>8}{'all@100':>8}{'seen@10':>8}{'unseen@1':>9}"
          f"{'unseen@10':>10}{'unseen@100':>11}{'job s':>7}{'train s':>8}")

    def change(part: dict[str, Any], k: int) -> float:
        if "with model" not in part:  # no such queries (no seen ones without training queries)
            return float("nan")
        return 100 * (part["with model"][f"recall@{k}"] - part["without model"][f"recall@{k}"])

    for name, seed, rep, job_s, train_s in summary:
        print(f"{name:<16}{seed:>5}{change(rep, 10):>+8.1f}{change(rep, 100):>+8.1f}"
              f"{change(rep['seen'], 10):>+8.1f}{change(rep['unseen'], 1):>+9.1f}"
              f"{change(rep['unseen'], 10):>+10.1f}{change(rep['unseen'], 100):>+11.1f}"
              f"{job_s:>7.1f}{train_s:>8.1f}")


if __name__ == "__main__":
    main()
