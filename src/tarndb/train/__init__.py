"""Training sets as queries: retrieve, pin, save, reload, download and stream into PyTorch.

>>> import tarndb
>>> from tarndb.train import TrainingSet
>>> db = tarndb.open("./lake")
>>> ts = TrainingSet.from_objective("robot arm picking up small objects",
...                                 table="ws.video_chunks", column="embedding", k=20, db=db)
>>> ts.save("run-17/trainset.json")                       # next to the checkpoint
>>> ts = TrainingSet.load("run-17/trainset.json", db)      # same rows, same bytes, later
>>> ts.download("/data/run-17")                           # parallel, resumable, sha256-checked
>>> loader = torch.utils.data.DataLoader(ts.torch_dataset(decode="video"), batch_size=4,
...                                      num_workers=2, collate_fn=tarndb.train.collate)

``db`` may also be a server: ``tarndb.Client(url, token, workspace)`` or a URL with
``token=``. The CLI is ``tarndb trainset build|download|show|release``.

How a set stays reproducible (see :mod:`tarndb.train._set`): tables are read at pinned
versions that are tagged so cleanup never drops them, rankings on pinned versions are exact,
files are pinned in the file store (a deleted file stays readable for the sets that pinned
it), and loading re-checks every row against its recorded hash and every downloaded file
against its sha256. :meth:`TrainingSet.release` lets go of the tags and the file pin.

Errors: :class:`TrainingSetError` (bad arguments or spec, 22023), :class:`NotReproducible`
(the pinned query no longer gives the recorded rows, 22000), :class:`ChecksumMismatch`
(file bytes differ from the recorded sha256/size, 22000); all ``TarnError``.
"""

from __future__ import annotations

from typing import Any

from ._decode import VideoOptions, decode_image, decode_video
from ._set import TrainingSet
from ._spec import (
    ChecksumMismatch,
    FileRef,
    NotReproducible,
    TableRef,
    TrainingSetError,
    TrainingSpec,
)


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """``collate_fn`` for DataLoaders over :meth:`TrainingSet.torch_dataset` (needs torch)."""
    from ._torch import collate as _collate

    return _collate(batch)


def add_cli(subparsers: Any) -> Any:
    """Mount ``tarndb trainset ...`` on the ``tarndb`` command's subparsers."""
    from ._cli import add_cli as _add_cli

    return _add_cli(subparsers)


__all__ = [
    "ChecksumMismatch", "FileRef", "NotReproducible", "TableRef", "TrainingSet",
    "TrainingSetError", "TrainingSpec", "VideoOptions", "add_cli", "collate", "decode_image",
    "decode_video",
]
