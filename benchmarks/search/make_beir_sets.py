"""Judged text sets in BEIR format, built offline from ../shared/data, for quality.py.

    python benchmarks/search/make_beir_sets.py OUT

From coco_captions_mini:

Each of the 239 COCO images has 5 human captions, written independently. The query is an
image's first caption; the one relevant document is the same image's

- ``OUT/coco-cap1``: second caption (one sentence per document: paraphrase, few shared
  words, so BM25 is far behind dense, as on DBpedia-entity);
- ``OUT/coco-cap4``: other four captions joined (more shared words).

239 queries each. Small, but with score distributions unlike SciFact's, which is what a
fusion chosen on SciFact has to survive.

From scifact: ``OUT/scifact-titles``: every tenth abstract's title is a query (519), the one
relevant document is that abstract without its title, among all 5,183 abstracts without
titles (known-item search at SciFact's size, with titles that share words with their text
and titles that paraphrase it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
SRC = DATA / "coco_captions_mini"


def write_set(out: Path, records: list[dict[str, object]], join_from: int, join_to: int) -> None:
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    with open(out / "corpus.jsonl", "w", encoding="utf-8") as c, \
            open(out / "queries.jsonl", "w", encoding="utf-8") as q, \
            open(out / "qrels" / "test.tsv", "w", encoding="utf-8") as r:
        r.write("query-id\tcorpus-id\tscore\n")
        for rec in records:
            caps = rec["captions"]
            assert isinstance(caps, list)
            image = str(rec["image_id"])
            c.write(json.dumps({"_id": image, "title": "",
                                "text": " ".join(caps[join_from:join_to])}) + "\n")
            q.write(json.dumps({"_id": f"q{image}", "text": caps[0]}) + "\n")
            r.write(f"q{image}\t{image}\t1\n")


def write_titles_set(out: Path, corpus: Path, every: int = 10) -> int:
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    n = 0
    with open(corpus, encoding="utf-8") as src, \
            open(out / "corpus.jsonl", "w", encoding="utf-8") as c, \
            open(out / "queries.jsonl", "w", encoding="utf-8") as q, \
            open(out / "qrels" / "test.tsv", "w", encoding="utf-8") as r:
        r.write("query-id\tcorpus-id\tscore\n")
        for i, line in enumerate(src):
            d = json.loads(line)
            c.write(json.dumps({"_id": d["_id"], "title": "", "text": d["text"]}) + "\n")
            if i % every == 0 and (d.get("title") or "").strip():
                q.write(json.dumps({"_id": f"t{d['_id']}", "text": d["title"]}) + "\n")
                r.write(f"t{d['_id']}\t{d['_id']}\t1\n")
                n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--source", type=Path, default=SRC)
    ap.add_argument("--scifact", type=Path, default=DATA / "scifact")
    args = ap.parse_args()
    with open(args.source / "captions.jsonl", encoding="utf-8") as f:
        records = [json.loads(line) for line in f]
    write_set(args.out / "coco-cap1", records, 1, 2)
    write_set(args.out / "coco-cap4", records, 1, 5)
    print(f"wrote {args.out / 'coco-cap1'} and {args.out / 'coco-cap4'}: {len(records)} "
          "queries each")
    if (args.scifact / "corpus.jsonl").exists():
        n = write_titles_set(args.out / "scifact-titles", args.scifact / "corpus.jsonl")
        print(f"wrote {args.out / 'scifact-titles'}: {n} queries")


if __name__ == "__main__":
    main()
