"""What every ingestion shares: uploads with retry, bounded parallelism, resumable batched
inserts and progress bars.

Resuming works the same way for images, clips and traces: every row carries a natural key
(the image's relative path, the video's id, the trace's run id); a run first reads the keys
already in the table and skips them, and every batch is one ``insert_arrow`` commit, so a run
that is killed leaves whole batches and a re-run inserts exactly the rest. Uploads to the
tarndb file store are deduplicated by (filename, sha256), so bytes uploaded by a killed run
before its batch was inserted are reused rather than stored twice.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import pyarrow as pa

from ..errors import SerializationFailure, TarnError

log = logging.getLogger("tarndb.ingest")

T = TypeVar("T")
R = TypeVar("R")


class Uploader(Protocol):
    """Puts bytes in a file store and returns the new file's id (a UUID string)."""

    def __call__(self, data: bytes, filename: str, content_type: str) -> str: ...


class IngestError(TarnError):
    sqlstate = "58030"
    http_status = 500
    code = "ingest_failed"


class FileStoreUploader:
    """Uploads into the lake's own file store (``tarndb.files``), reusing a file that is
    already there with the same name and bytes."""

    def __init__(self, db: Any, workspace: str) -> None:
        from ..files import FileStore

        self.store = FileStore.from_db(db)
        self.workspace = workspace
        self._known: dict[tuple[str, str], str] | None = None
        self._lock = threading.Lock()

    def _load_known(self) -> dict[tuple[str, str], str]:
        with self._lock:
            if self._known is None:
                import lance

                known: dict[tuple[str, str], str] = {}
                try:
                    ds = lance.dataset(self.store.dataset_uri(self.workspace),
                                       storage_options=self.store.storage_options or None)
                    t = ds.to_table(columns=["id", "filename", "sha256"])
                    for fid, name, sha in zip(t.column("id").to_pylist(),
                                              t.column("filename").to_pylist(),
                                              t.column("sha256").to_pylist(), strict=True):
                        known[(name, sha)] = fid
                except (ValueError, FileNotFoundError, OSError):
                    pass  # no file uploaded to this workspace yet
                self._known = known
            return self._known

    def __call__(self, data: bytes, filename: str, content_type: str) -> str:
        from ..files import clean_filename

        key = (clean_filename(filename), hashlib.sha256(data).hexdigest())
        hit = self._load_known().get(key)
        if hit is not None:
            return hit
        meta = self.store.put(self.workspace, data, filename, content_type)
        with self._lock:
            assert self._known is not None
            self._known[key] = str(meta.id)
        return str(meta.id)


def retry(fn: Callable[[], T], attempts: int = 4, base_delay_s: float = 0.25,
          retry_on: tuple[type[BaseException], ...] = (Exception,),
          what: str = "operation") -> T:
    """Call ``fn`` until it succeeds, sleeping with jittered exponential backoff."""
    for attempt in range(attempts):
        try:
            return fn()
        except retry_on as e:
            if attempt == attempts - 1:
                raise
            delay = base_delay_s * (2 ** attempt) * (0.5 + random.random() / 2)
            log.warning("%s failed (%s); retry %d/%d in %.2fs", what, e, attempt + 1,
                        attempts - 1, delay)
            time.sleep(delay)
    raise AssertionError("unreachable")


def bounded_map(fn: Callable[[T], R], items: Iterable[T], max_workers: int = 8
                ) -> Iterator[R]:
    """``map`` on a thread pool with at most ``2 * max_workers`` items in flight (so a huge
    input is never materialised), yielding results in input order."""
    if max_workers <= 1:
        for it in items:
            yield fn(it)
        return
    limit = 2 * max_workers
    with ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="tarndb-ingest") as ex:
        pending: list[Future[R]] = []
        for it in items:
            pending.append(ex.submit(fn, it))
            if len(pending) >= limit:
                wait(pending[:1], return_when=FIRST_COMPLETED)
                while pending and pending[0].done():
                    yield pending.pop(0).result()
        for f in pending:
            yield f.result()


class Progress:
    """A tqdm bar when tqdm is installed and wanted, otherwise silent counting."""

    def __init__(self, total: int | None, desc: str, enabled: bool = True,
                 unit: str = "it") -> None:
        self.n = 0
        self._bar: Any = None
        if enabled:
            try:
                from tqdm.auto import tqdm

                self._bar = tqdm(total=total, desc=desc, unit=unit, leave=False)
            except ImportError:
                self._bar = None

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class IngestReport:
    table: str
    inserted: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.inserted / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "inserted": self.inserted, "skipped": self.skipped,
                "failed": self.failed, "seconds": round(self.seconds, 3),
                "errors": self.errors[:20]}


def qualified(workspace: str, table: str) -> str:
    return f'"{workspace}"."{table}"'


def ensure_table(session: Any, workspace: str, table: str, columns: Sequence[tuple[str, str]]
                 ) -> None:
    cols = ", ".join(f'"{n}" {t}' for n, t in columns)
    session.execute(f"CREATE TABLE IF NOT EXISTS {qualified(workspace, table)} ({cols}) "
                    "USING deeplake")
    info = session.db.catalog.table(workspace, table)
    have = {c.name for c in info.columns}
    for n, t in columns:
        if n not in have:
            # An older table from a run without embeddings gains the column.
            session.execute(f'ALTER TABLE {qualified(workspace, table)} ADD COLUMN IF NOT '
                            f'EXISTS "{n}" {t.replace(" PRIMARY KEY", "")}')


def existing_keys(session: Any, workspace: str, table: str, column: str) -> set[Any]:
    res = session.execute(f'SELECT DISTINCT "{column}" FROM {qualified(workspace, table)}')
    return {r[0] for r in res.rows}


def insert_batch(session: Any, workspace: str, table: str, rows: list[dict[str, Any]],
                 schema: pa.Schema, attempts: int = 3) -> int:
    """One commit for the batch; retried, since a concurrent writer can make a commit fail."""
    if not rows:
        return 0
    data = pa.Table.from_pylist(rows, schema=schema)
    retry(lambda: session.insert_arrow(f"{workspace}.{table}", data), attempts=attempts,
          retry_on=(SerializationFailure, OSError),
          what=f"insert of {len(rows)} rows into {table}")
    return len(rows)


def batched(items: Iterable[T], n: int) -> Iterator[list[T]]:
    batch: list[T] = []
    for it in items:
        batch.append(it)
        if len(batch) >= n:
            yield batch
            batch = []
    if batch:
        yield batch
