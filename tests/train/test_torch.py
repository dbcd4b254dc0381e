"""PyTorch loading: every row exactly once across ranks and workers; image and video decoding
on real sample media."""

from __future__ import annotations

import io
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _train_support import Lake, fill_items  # noqa: E402

import tarndb.train  # noqa: E402
from tarndb.train import TrainingSet, VideoOptions  # noqa: E402

torch = pytest.importorskip("torch")
from torch.utils.data import DataLoader  # noqa: E402

# Lance warns before every fork of a process that loaded it. Loader workers never call Lance
# (they read blobs as files, or over HTTP), which is what these tests exercise.
pytestmark = pytest.mark.filterwarnings("ignore:lance is not fork-safe")


def _set(lake: Lake, media: list[Path], n: int) -> TrainingSet:
    fill_items(lake, media, n)
    return TrainingSet.from_query("SELECT id, caption, file_id, metadata FROM ws.items "
                                  "ORDER BY id", db=lake.db)


def test_two_workers_and_two_ranks_cover_every_row_once(lake: Lake,
                                                        sample_images: list[Path]) -> None:
    ts = _set(lake, sample_images, 23)  # odd: ranks and workers get uneven shares
    seen: list[int] = []
    per_rank = []
    for rank in range(2):
        ds = ts.torch_dataset(decode="bytes", rank=rank, world_size=2, shuffle=True, seed=7)
        ds.set_epoch(1)
        loader = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=tarndb.train.collate,
                            multiprocessing_context="fork")
        got = []
        for batch in loader:
            assert batch["index"].dtype == torch.int64
            for i, rid, data in zip(batch["index"].tolist(), batch["id"].tolist(),
                                    batch["data"], strict=True):
                assert data == lake.uploaded[ts.files[i].id]  # type: ignore[union-attr]
                assert rid == ts.rows[i]["id"]
                got.append(i)
        per_rank.append(got)
        seen += got
        assert len(got) == len(ds)
    assert sorted(seen) == list(range(23))
    assert {len(g) for g in per_rank} == {11, 12}
    # Another epoch, another order, the same rows.
    ds = ts.torch_dataset(rank=0, world_size=1, shuffle=True, seed=7)
    ds.set_epoch(1)
    one = [int(b["index"]) for b in DataLoader(ds, batch_size=None)]
    ds.set_epoch(2)
    two = [int(b["index"]) for b in DataLoader(ds, batch_size=None)]
    assert sorted(one) == sorted(two) == list(range(23)) and one != two


def test_rank_from_the_environment_and_map_style(lake: Lake, sample_images: list[Path],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    ts = _set(lake, sample_images, 5)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert [d["index"] for d in ts.torch_dataset()] == [1, 3]
    ms = ts.torch_dataset(decode="bytes", iterable=False)
    assert len(ms) == 5 and ms[4]["id"] == ts.rows[4]["id"]
    with pytest.raises(IndexError):
        ms[5]
    # The dataset pickles without any open connection (spawned workers, other hosts).
    clone = pickle.loads(pickle.dumps(ms))
    assert clone[2]["data"] == ms[2]["data"]


def test_image_decoding_matches_pillow(lake: Lake, sample_images: list[Path]) -> None:
    from PIL import Image

    ts = _set(lake, sample_images, len(sample_images))
    seen = 0
    loader = DataLoader(ts.torch_dataset(decode="image", verify=True), batch_size=2,
                        num_workers=2, collate_fn=tarndb.train.collate)
    for batch in loader:
        for i, img in zip(batch["index"].tolist(), batch["data"], strict=True):
            raw = lake.uploaded[ts.files[i].id]  # type: ignore[union-attr]
            want = np.asarray(Image.open(io.BytesIO(raw)).convert("RGB"))
            assert img.dtype == torch.uint8 and tuple(img.shape) == (3, *want.shape[:2])
            assert np.array_equal(img.permute(1, 2, 0).numpy(), want)
            seen += 1
    assert seen == len(sample_images)
    # A transform gets the tensor; same-size outputs stack into one batch tensor.
    ds = ts.torch_dataset(decode="image",
                          transform=lambda t: t[:, :8, :8].float() / 255)
    batch = next(iter(DataLoader(ds, batch_size=3, collate_fn=tarndb.train.collate)))
    assert batch["data"].shape == (3, 3, 8, 8) and batch["data"].dtype == torch.float32
    assert isinstance(batch["metadata"], list) and isinstance(batch["caption"], list)


def test_video_decoding_of_sample_clips(lake: Lake, sample_videos: list[Path]) -> None:
    pytest.importorskip("imageio_ffmpeg")
    import imageio_ffmpeg

    ts = _set(lake, sample_videos, len(sample_videos))
    ds = ts.torch_dataset(decode="video", video=VideoOptions(frames=4))
    items = list(DataLoader(ds, batch_size=None, num_workers=2))
    assert len(items) == len(sample_videos)
    for item in items:
        path = sample_videos[item["index"] % len(sample_videos)]
        gen = imageio_ffmpeg.read_frames(str(path))
        meta = next(gen)
        first = np.frombuffer(next(gen), np.uint8)
        gen.close()
        w, h = meta["size"]
        clip = item["data"]
        assert clip.dtype == torch.uint8 and tuple(clip.shape) == (4, 3, h, w)
        assert np.array_equal(clip[0].permute(1, 2, 0).numpy().reshape(-1), first)
        assert not torch.equal(clip[0], clip[-1])  # frames spread over the clip
    # Scaled to one size, clips of different sources batch together (bytes path: verify).
    ds = ts.torch_dataset(decode="video", verify=True, video=VideoOptions(frames=2,
                                                                            size=(32, 24)))
    batch = next(iter(DataLoader(ds, batch_size=3, collate_fn=tarndb.train.collate)))
    assert batch["data"].shape == (3, 2, 3, 24, 32)
    arrays = next(ts.batches(3, decode="video", format="numpy",
                             video=VideoOptions(frames=2, size=(32, 24))))
    assert arrays["data"].shape == (3, 2, 24, 32, 3)


def test_decode_errors_are_clear(lake: Lake, sample_images: list[Path]) -> None:
    ts = _set(lake, sample_images, 2)
    with pytest.raises(tarndb.train.TrainingSetError, match="decode must be one of"):
        ts.torch_dataset(decode="audio")
    text = lake.store.put("ws", b"just some text, no media here\n" * 20, "notes.mp4")
    lake.db.execute("INSERT INTO ws.items (caption, file_id) VALUES ('text', $1)", [str(text.id)])
    odd = TrainingSet.from_query("SELECT id, file_id FROM ws.items WHERE caption = 'text'",
                                 db=lake.db)
    with pytest.raises(tarndb.train.TrainingSetError, match="not a decodable video"):
        next(iter(odd.torch_dataset(decode="video")))
    with pytest.raises(tarndb.train.TrainingSetError, match="not a decodable image"):
        next(iter(odd.torch_dataset(decode="image")))
    rows_only = TrainingSet.from_query("SELECT id FROM ws.items", db=lake.db)
    with pytest.raises(tarndb.train.TrainingSetError, match="no file column"):
        rows_only.torch_dataset(decode="image")
