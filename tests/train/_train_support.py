"""Helpers shared by the training-set tests (imported by name: pytest's importlib mode does
not put test folders on sys.path, conftest.py adds this one)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import tarndb
from tarndb.files import FileStore


@dataclass
class Lake:
    db: tarndb.Database
    store: FileStore
    path: Path
    #: file id -> the bytes uploaded
    uploaded: dict[str, bytes]


def fill_items(lake: Lake, media: list[Path], n: int, ws: str = "ws",
               table: str = "items") -> None:
    """``n`` rows with a 2-d embedding, a camera in JSON metadata and a file each (media
    reused round robin, each upload its own file)."""
    lake.db.execute(f'CREATE TABLE "{ws}"."{table}" (id BIGSERIAL PRIMARY KEY, caption TEXT, '
                    "file_id FILE_ID, metadata JSONB, start_s FLOAT4, embedding FLOAT4[])")
    for i in range(n):
        data = media[i % len(media)].read_bytes()
        meta = lake.store.put(ws, data, media[i % len(media)].name)
        lake.uploaded[str(meta.id)] = data
        lake.db.execute(
            f'INSERT INTO "{ws}"."{table}" (caption, file_id, metadata, start_s, embedding) '
            "VALUES ($1, $2, $3, $4, $5)",
            [f"clip {i}", str(meta.id), {"camera": f"cam{i % 2}"}, float(i * 10),
             [1.0, i / n]])
