"""PyTorch datasets over a training set (torch is imported only here, on first use).

Sharding: the row order of an epoch (0..n-1, or a permutation of ``seed + epoch``) is split
first by distributed rank (``order[rank::world_size]``) and then by DataLoader worker
(``[worker::num_workers]``), so the ranks' workers together see every row exactly once. Ranks
may differ by one row when ``n`` does not divide evenly; no row is repeated to even them out
(``DistributedSampler`` pads by repeating rows, which breaks "exactly once").
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..embeddings._base import require
from ._items import Items

torch = require("torch", extra="train", purpose="PyTorch datasets of training sets")
from torch.utils.data import Dataset, IterableDataset, get_worker_info  # noqa: E402


def _to_torch(value: Any) -> Any:
    if isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim in (3, 4):
        arr = value if value.flags.writeable else value.copy()
        t = torch.from_numpy(arr)
        # (H, W, C) -> (C, H, W); (T, H, W, C) -> (T, C, H, W): torchvision's layouts.
        return t.permute(2, 0, 1) if t.ndim == 3 else t.permute(0, 3, 1, 2)
    return value


def _rank_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is not None or world_size is not None:
        r, w = int(rank or 0), int(world_size or 1)
    else:
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            r, w = dist.get_rank(), dist.get_world_size()
        else:
            r, w = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    if w < 1 or not 0 <= r < w:
        raise ValueError(f"rank {r} is not within world_size {w}")
    return r, w


class _Base:
    def __init__(self, items: Items, transform: Callable[[Any], Any] | None) -> None:
        self.items = items
        self.transform = transform

    def _get(self, i: int) -> dict[str, Any]:
        out = self.items.item(i)
        key = self.items.data_key
        if key in out:
            value = _to_torch(out[key])
            out[key] = self.transform(value) if self.transform is not None else value
        out.setdefault("index", i)
        return out


class TrainingSetIterable(_Base, IterableDataset):  # type: ignore[misc]
    """Every row once per epoch across ranks and workers (see the module docstring)."""

    def __init__(self, items: Items, transform: Callable[[Any], Any] | None, *,
                 shuffle: bool, seed: int, rank: int | None, world_size: int | None) -> None:
        super().__init__(items, transform)
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.rank, self.world_size = _rank_world(rank, world_size)

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for ``epoch`` (call before each epoch, as with DistributedSampler)."""
        self.epoch = int(epoch)

    def indices(self) -> np.ndarray:
        n = len(self.items)
        order = (np.random.default_rng(self.seed + self.epoch).permutation(n) if self.shuffle
                 else np.arange(n))
        return order[self.rank::self.world_size]

    def __len__(self) -> int:
        return len(self.indices())

    def __iter__(self) -> Iterator[dict[str, Any]]:
        mine = self.indices()
        info = get_worker_info()
        if info is not None:
            mine = mine[info.id::info.num_workers]
        for i in mine:
            yield self._get(int(i))


class TrainingSetMap(_Base, Dataset):  # type: ignore[misc]
    """Map-style: ``ds[i]`` is row ``i``; pair it with a sampler of your choice."""

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -len(self.items) <= i < len(self.items):
            raise IndexError(i)
        return self._get(int(i) % len(self.items))


def make_dataset(items: Items, transform: Callable[[Any], Any] | None, *, shuffle: bool,
                 seed: int, rank: int | None, world_size: int | None, iterable: bool) -> Any:
    if iterable:
        return TrainingSetIterable(items, transform, shuffle=shuffle, seed=seed, rank=rank,
                                   world_size=world_size)
    return TrainingSetMap(items, transform)


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch items: equal-shape tensors and arrays are stacked, numbers become tensors, and
    everything else (text, JSON, ids, NULLs, images of different sizes) stays a list."""
    out: dict[str, Any] = {}
    for key in batch[0]:
        values = [b[key] for b in batch]
        first = values[0]
        if isinstance(first, torch.Tensor) and all(
                isinstance(v, torch.Tensor) and v.shape == first.shape for v in values):
            out[key] = torch.stack(values)
        elif isinstance(first, np.ndarray) and all(
                isinstance(v, np.ndarray) and v.shape == first.shape for v in values):
            out[key] = torch.from_numpy(np.stack(values))
        elif all(isinstance(v, bool) for v in values):
            out[key] = torch.tensor(values, dtype=torch.bool)
        elif all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            out[key] = torch.tensor(values, dtype=torch.int64)
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            out[key] = torch.tensor(values, dtype=torch.float64)
        else:
            out[key] = values
    return out
