"""Training-set loader throughput next to reading the same files straight from disk.

    python benchmarks/train.py [--copies 2] [--epochs 5] [--batch-size 32]

Builds a lake in a temporary directory with the real COCO JPEGs of
``../shared/data/coco_captions_mini`` (scikit-image's sample photos when that folder is
absent), each uploaded ``--copies`` times, makes a training set of every row, and prints for
``num_workers`` 0 and 2 (PyTorch ``DataLoader``, same batch size and collate function):

- raw bytes: a minimal Dataset that reads the very blob files of the lake with ``open()``;
- ``torch_dataset(decode="bytes")`` (sizes checked) and with ``verify=True`` (sha256 too);
- images decoded/s: the raw Dataset decoding with Pillow vs ``decode="image"``;
- ``batches(decode="bytes")`` (no torch) vs a plain read loop;
- ``download()`` (8 threads, sha256-verified) vs copying the same files with shutil.

Each figure is the best of ``--epochs`` passes after one warm-up pass, baseline and loader
alternating within each round (page cache warm: this measures the loader's overhead, not the
disk). MB/s counts file bytes, and decoded pixels for the img/s rows. Target: the loader at
80% or more of the raw rate.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

import tarndb
from tarndb.files import FileStore
from tarndb.train import TrainingSet, collate

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "coco_captions_mini"


def media_files() -> tuple[str, list[Path]]:
    jpgs = sorted((SHARED / "images").rglob("*.jpg")) if SHARED.is_dir() else []
    if jpgs:
        return "COCO val/train2017 JPEGs (shared/data/coco_captions_mini)", jpgs
    import skimage

    d = Path(skimage.__file__).parent / "data"
    return "scikit-image sample photos", sorted(p for p in d.iterdir()
                                                  if p.suffix in (".png", ".jpg"))


def build(lake: Path, files: list[Path], copies: int) -> tuple[TrainingSet, list[str]]:
    db = tarndb.open(str(lake))
    store = FileStore.from_db(db)
    db.execute('CREATE TABLE "ws"."images" (id BIGSERIAL PRIMARY KEY, name TEXT, '
               "file_id FILE_ID)")
    rows = []
    for _ in range(copies):
        for f in files:
            meta = store.put("ws", f.read_bytes(), f.name)
            rows.append((f.name, str(meta.id)))
    values = ", ".join(f"(${2 * i + 1}, ${2 * i + 2})" for i in range(len(rows)))
    db.execute(f"INSERT INTO ws.images (name, file_id) VALUES {values}",
               [v for row in rows for v in row])
    ts = TrainingSet.from_query("SELECT id, name, file_id FROM ws.images ORDER BY id", db=db)
    paths = [str(lake / "ws" / "_files" / f.id[:2] / f.id) for f in ts.files if f]
    return ts, paths


class RawFiles:
    """The baseline: a Dataset over file paths, nothing between it and ``open()``."""

    def __init__(self, paths: list[str], decode: bool) -> None:
        self.paths = paths
        self.decode = decode

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict[str, Any]:
        with open(self.paths[i], "rb") as f:
            data = f.read()
        if not self.decode:
            return {"index": i, "data": data}
        import torch
        from PIL import Image

        arr = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        return {"index": i, "data": torch.from_numpy(arr.copy()).permute(2, 0, 1)}


Pass = tuple[Callable[[], Iterable[Any]], Callable[[Any], tuple[int, int]]]


def measure(passes: list[Pass], epochs: int) -> list[tuple[float, float]]:
    """(rows/s, MB/s) of each pass: the best of ``epochs`` rounds after a warm-up round. The
    passes alternate within a round, so a baseline and the loader it is compared with see
    the same machine (other processes share these cores)."""
    best = [0.0] * len(passes)
    per_row = [0.0] * len(passes)
    for epoch in range(epochs + 1):
        for i, (make, count) in enumerate(passes):
            t = time.perf_counter()
            rows = nbytes = 0
            for batch in make():
                r, b = count(batch)
                rows += r
                nbytes += b
            dt = time.perf_counter() - t
            if epoch:  # the first round warms the page cache and the workers' imports
                best[i] = max(best[i], rows / dt)
                per_row[i] = nbytes / max(rows, 1)
    return [(b, b * s / 1e6) for b, s in zip(best, per_row, strict=True)]


def count_bytes(batch: dict[str, Any]) -> tuple[int, int]:
    return len(batch["data"]), sum(len(x) for x in batch["data"])


def count_images(batch: dict[str, Any]) -> tuple[int, int]:
    data = batch["data"]
    n = len(data)
    return n, sum(int(x.numel()) for x in data)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=2, help="uploads of each image [2]")
    ap.add_argument("--epochs", type=int, default=5, help="timed rounds per figure [5]")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    warnings.filterwarnings("ignore", message="lance is not fork-safe")
    from torch.utils.data import DataLoader

    what, files = media_files()
    tmp = Path(tempfile.mkdtemp(prefix="tarndb-bench-train-"))
    try:
        t = time.perf_counter()
        ts, paths = build(tmp / "lake", files, args.copies)
        total = sum(os.path.getsize(p) for p in paths)
        print(f"data: {len(paths)} files, {total / 1e6:.1f} MB ({what}); "
              f"lake and training set built in {time.perf_counter() - t:.1f} s")
        print(f"cpus: {os.cpu_count()}  python {sys.version.split()[0]}  "
              f"batch size {args.batch_size}  best of {args.epochs} warm passes\n")
        bs = args.batch_size
        lines: list[tuple[str, int, float, float, float | None]] = []

        def loader(ds: Any, workers: int) -> Callable[[], Iterable[Any]]:
            return lambda: DataLoader(ds, batch_size=bs, num_workers=workers,
                                      collate_fn=collate, persistent_workers=False)

        for workers in (0, 2):
            raw, ours, hashed = measure([
                (loader(RawFiles(paths, False), workers), count_bytes),
                (loader(ts.torch_dataset(decode="bytes"), workers), count_bytes),
                (loader(ts.torch_dataset(decode="bytes", verify=True), workers), count_bytes),
            ], args.epochs)
            raw_img, our_img = measure([
                (loader(RawFiles(paths, True), workers), count_images),
                (loader(ts.torch_dataset(decode="image"), workers), count_images),
            ], args.epochs)
            lines += [
                ("raw open().read() Dataset", workers, *raw, None),
                ("torch_dataset(decode='bytes')", workers, *ours, ours[0] / raw[0]),
                ("torch_dataset(bytes, verify=True)", workers, *hashed, hashed[0] / raw[0]),
                ("raw read + Pillow decode", workers, *raw_img, None),
                ("torch_dataset(decode='image')", workers, *our_img, our_img[0] / raw_img[0]),
            ]

        def raw_loop() -> Iterable[Any]:
            for start in range(0, len(paths), bs):
                batch = []
                for p in paths[start:start + bs]:
                    with open(p, "rb") as f:
                        batch.append(f.read())
                yield {"data": batch}

        def arrow_batches() -> Iterable[Any]:
            yield from ts.batches(bs, decode="bytes", workers=0)

        def count_arrow(b: Any) -> tuple[int, int]:
            # One buffer holds every file of the batch (see Items.binary_column).
            return b.num_rows, b.column("data").buffers()[2].size

        raw, arrow = measure([(raw_loop, count_bytes), (arrow_batches, count_arrow)],
                             args.epochs)
        lines += [("raw read loop (no torch)", 0, *raw, None),
                  ("batches(decode='bytes') (no torch)", 0, *arrow, arrow[0] / raw[0])]

        print(f"{'what':<36}{'workers':>8}{'rows/s':>10}{'MB/s':>10}{'vs raw':>9}")
        for name, w, rps, mbs, ratio in lines:
            rel = f"{ratio * 100:7.0f}%" if ratio is not None else ""
            unit = "img/s" if "image" in name or "Pillow" in name else ""
            print(f"{name:<36}{w:>8}{rps:>10.0f}{mbs:>10.1f}{rel:>9} {unit}".rstrip())

        # Downloads: every file to a folder (8 threads, sha256-checked) vs shutil copies.
        def copy_all(dst: Path) -> None:
            dst.mkdir()
            for p in paths:
                shutil.copyfile(p, dst / os.path.basename(p))

        best_copy = best_dl = float("inf")
        for i in range(args.epochs):
            t = time.perf_counter()
            copy_all(tmp / f"copy{i}")
            best_copy = min(best_copy, time.perf_counter() - t)
            t = time.perf_counter()
            ts.download(tmp / f"dl{i}", workers=8)
            best_dl = min(best_dl, time.perf_counter() - t)
        print(f"\n{'shutil.copyfile of every file':<36}{'':>8}{len(paths) / best_copy:>10.0f}"
              f"{total / best_copy / 1e6:>10.1f}")
        print(f"{'download() (8 threads, sha256)':<36}{'':>8}{len(paths) / best_dl:>10.0f}"
              f"{total / best_dl / 1e6:>10.1f}{best_copy / best_dl * 100:>8.0f}%")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
