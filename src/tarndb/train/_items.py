"""One training example at a time: a row's values and its file, read and decoded.

``Items`` is what the PyTorch datasets and ``batches()`` share. It holds plain rows, file
references and a :class:`FileReader` (which connects lazily per process), so it pickles into
DataLoader workers cheaply and safely.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from ._decode import VideoOptions, decode_image, decode_video
from ._source import FileReader
from ._spec import ChecksumMismatch, FileRef


def check_bytes(ref: FileRef, data: bytes, verify: bool) -> None:
    if len(data) != ref.size:
        raise ChecksumMismatch(f"file {ref.id} ({ref.filename}) has {len(data)} bytes; the "
                               f"training set recorded {ref.size}")
    if verify and hashlib.sha256(data).hexdigest() != ref.sha256:
        raise ChecksumMismatch(f"file {ref.id} ({ref.filename}) does not match the sha256 "
                               "the training set recorded")


@dataclass
class Items:
    columns: list[str]
    #: the training set's rows, whole; ``picks`` are the positions of ``columns`` in them
    rows: list[tuple[Any, ...]]
    picks: list[int]
    files: list[FileRef | None]
    reader: FileReader | None
    decode: str | None
    verify: bool
    video: VideoOptions
    data_key: str
    _size_cache: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.rows)

    def payload(self, i: int) -> Any:
        """Row ``i``'s file as the decode mode asks (None without a file or a mode)."""
        ref = self.files[i]
        if self.decode is None or ref is None or self.reader is None:
            return None
        if self.decode == "video" and not self.verify:
            path = self.reader.local_path(ref)
            if path is not None:
                # ffmpeg reads the blob in place; a size check stands in for reading it twice.
                size = os.stat(path).st_size
                if size != ref.size:
                    raise ChecksumMismatch(f"file {ref.id} has {size} bytes; the training "
                                           f"set recorded {ref.size}")
                return decode_video(path, self.video)
        data = self.reader.read(ref)
        check_bytes(ref, data, self.verify)
        if self.decode == "bytes":
            return data
        if self.decode == "image":
            return decode_image(data)
        return decode_video(data, self.video)

    def _sizes(self) -> tuple[np.ndarray, np.ndarray]:
        if self._size_cache is None:
            present = np.fromiter((f is not None for f in self.files), np.bool_,
                                  len(self.files))
            sizes = np.fromiter((f.size if f is not None else 0 for f in self.files),
                                np.int64, len(self.files))
            self._size_cache = (sizes, present)
        return self._size_cache

    def binary_column(self, idx: np.ndarray,
                      run: Callable[[Callable[[int], None], range], Any] = map) -> pa.Array:
        """Rows ``idx``'s files as one Arrow binary column, read straight into its buffer
        (sizes are known up front), so bytes are copied once, from the file."""
        all_sizes, all_present = self._sizes()
        sizes = all_sizes[idx]
        offsets = np.zeros(len(idx) + 1, np.int64)
        np.cumsum(sizes, out=offsets[1:])
        # Arrow's pool keeps freed memory, so a batch does not fault in fresh pages the way a
        # new numpy array of this size (an mmap) would; about a third of the copy's cost.
        data = pa.allocate_buffer(int(offsets[-1]))
        view = memoryview(data)  # type: ignore[arg-type]
        reader = self.reader
        files = self.files
        rows = idx.tolist()
        starts = offsets.tolist()

        def fill(j: int) -> None:
            ref = files[rows[j]]
            if ref is None or reader is None:
                return
            part = view[starts[j]:starts[j + 1]]
            got = reader.read_into(ref, part)
            if got != ref.size:
                raise ChecksumMismatch(f"file {ref.id} ({ref.filename}) has {got} bytes; the "
                                       f"training set recorded {ref.size}")
            if self.verify and hashlib.sha256(part).hexdigest() != ref.sha256:
                raise ChecksumMismatch(f"file {ref.id} ({ref.filename}) does not match the "
                                       "sha256 the training set recorded")

        for _ in run(fill, range(len(rows))):
            pass
        large = starts[-1] >= 2**31
        present = all_present[idx]
        validity = None if present.all() else pa.array(present, pa.bool_()).buffers()[1]
        return pa.Array.from_buffers(
            pa.large_binary() if large else pa.binary(), len(rows),
            [validity, pa.py_buffer(offsets if large else offsets.astype(np.int32)), data])

    def item(self, i: int) -> dict[str, Any]:
        row = self.rows[i]
        out = {c: row[j] for c, j in zip(self.columns, self.picks, strict=True)}
        if self.decode is not None:
            out[self.data_key] = self.payload(i)
        return out
