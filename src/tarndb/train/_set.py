"""``TrainingSet``: a training set defined by a query, pinned so it can be loaded again.

Building one (from an objective or from SQL):

1. every table the query reads is pinned to its current version (``"t@12"``) and that
   version is tagged ``trainset-<id>``, so cleanup and retention never drop it;
2. the pinned query runs (a ranking on a pinned version is always exact, never an
   approximate index, so running it again gives the same answer);
3. the files the rows refer to are pinned in the file store under the same name: deleting
   such a file hides it from everyone else but keeps its bytes for this set;
4. the spec records the question, the versions, and one hash per returned row, plus each
   row's file id, sha256 and size.

Loading runs the pinned query again and checks the row hashes; file bytes are checked
against the recorded sha256 when downloaded (and, optionally, when streamed).
:meth:`TrainingSet.release` drops the tags and the file pin when the set is no longer needed.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from ..errors import InsufficientPrivilege, NotFound, TarnError
from . import _pinning as P
from ._decode import VideoOptions, check_mode
from ._items import Items
from ._source import FileReader, LocalSource, Rows, Source, open_source
from ._spec import (
    FileRef,
    NotReproducible,
    TableRef,
    TrainingSetError,
    TrainingSpec,
    now_iso,
    row_hash,
    rows_digest,
)

_VECTOR_TYPES = {"real[]", "real[][]", "double precision[]", "double precision[][]"}
_MULTI_TYPES = {"real[][]", "double precision[][]"}


class TrainingSet:
    """Rows (and their files) that a query returned, pinned so they can be had again.

    Build with :meth:`from_objective` or :meth:`from_query`, keep with :meth:`save`, get back
    with :meth:`load`. ``db`` is a :class:`tarndb.Database` (``tarndb.open(path)``), a
    :class:`tarndb.Client`, or a server URL with ``token=`` and ``workspace=``.
    """

    def __init__(self, spec: TrainingSpec, source: Source, result: Rows) -> None:
        self.spec = spec
        self._source = source
        self.columns: list[str] = list(result.columns)
        self.column_types: list[str] = list(result.types)
        self._rows = list(result.rows)
        self._arrow = result.arrow
        self._reader: FileReader | None = None
        self._sizes: tuple[np.ndarray, np.ndarray] | None = None

    # -- building ------------------------------------------------------------------------

    @classmethod
    def from_objective(cls, objective: str, *, table: str, db: Any,
                       column: str = "embedding", k: int = 20, where: str | None = None,
                       params: Sequence[Any] | None = None,
                       filters: Mapping[str, Any] | None = None, model: str | None = None,
                       embedding: Sequence[Any] | None = None,
                       columns: Sequence[str] | None = None, as_of: str | int | None = None,
                       file_column: str | None = "file_id", key_column: str | None = "id",
                       pin: bool = True, workspace: str | None = None,
                       token: str | None = None) -> TrainingSet:
        """The ``k`` rows of ``table`` whose ``column`` embedding is most similar to the
        embedded ``objective`` (``<#>``: cosine, or MaxSim for ``FLOAT4[][]``).

        ``where`` is a SQL condition (``$1``... are ``params``); ``filters`` adds equality
        tests, ``{"camera": "cam1"}`` on a column or ``{"metadata.camera": "cam1"}`` on a
        JSON key. ``model`` names the embedding model (default: the workspace's);
        ``embedding`` gives the query embedding instead. ``columns`` picks the columns
        (default: all but the vector columns) and a ``score`` column is added. ``as_of``
        reads the table as of a version, tag or timestamp.
        """
        if not isinstance(objective, str) or not objective.strip():
            raise TrainingSetError("the objective must be a non-empty text")
        if isinstance(k, bool) or not isinstance(k, int) or k <= 0:
            raise TrainingSetError(f"k must be a positive integer, not {k!r}")
        schema, rel = P.table_ref_parts(table)
        source = open_source(db, workspace=workspace or schema, token=token)
        name = P.display_name(schema, rel)
        found = P.versions(source, schema, rel)
        version = P.resolve(found, None if as_of is None else str(as_of), name)

        def qualified(v: int | None) -> str:
            t = P.quote_ident(rel if v is None else f"{rel}@{v}")
            return f"{P.quote_ident(schema)}.{t}" if schema else t

        probe = source.query(f"SELECT * FROM {qualified(version)} LIMIT 0")
        types = dict(zip(probe.columns, probe.types, strict=True))
        if column not in types:
            raise TrainingSetError(f'table "{name}" has no column "{column}" (it has '
                                   f"{', '.join(probe.columns)})")
        if types[column] not in _VECTOR_TYPES:
            raise TrainingSetError(f'column "{column}" of "{name}" is {types[column]}, not an '
                                   "embedding (FLOAT4[] or FLOAT4[][])")
        multi = types[column] in _MULTI_TYPES
        if columns is None:
            picked = [c for c in probe.columns if types[c] not in _VECTOR_TYPES]
        else:
            picked = list(columns)
            missing = [c for c in picked if c not in types]
            if missing:
                raise TrainingSetError(f'table "{name}" has no column(s) {", ".join(missing)}')

        query_params = list(params or [])
        conds = [f"({where})"] if where else []
        for key, value in (filters or {}).items():
            col, dot, path = str(key).partition(".")
            if col not in types:
                raise TrainingSetError(f'filter on "{key}": table "{name}" has no column '
                                       f'"{col}"')
            query_params.append(str(value) if dot else value)
            target = (f"({P.quote_ident(col)} ->> '{path.replace(chr(39), chr(39) * 2)}')"
                      if dot else P.quote_ident(col))
            conds.append(f"{target} = ${len(query_params)}")

        model_name = model
        if embedding is None:
            fn = "embed_multi" if multi else "embed"
            if model:
                res = source.query(f"SELECT {fn}($1, $2)", [model, objective])
            else:
                res = source.query(f"SELECT {fn}($1)", [objective])
                model_name = _default_model(source)
            vector = res.rows[0][0]
        else:
            vector = np.asarray(embedding, dtype=np.float32).tolist()
        if vector is None or not len(vector):
            raise TrainingSetError("the objective's embedding is empty")

        score = "score" if "score" not in picked else "tarndb_score"
        select = ", ".join(P.quote_ident(c) for c in picked)
        cast = "float4[][]" if multi else "float4[]"
        emb_param = len(query_params) + 1

        def sql(v: int | None) -> str:
            where_sql = f" WHERE {' AND '.join(conds)}" if conds else ""
            return (f"SELECT {select}{', ' if select else ''}{P.quote_ident(column)} <#> "
                    f"${emb_param}::{cast} AS {score} FROM {qualified(v)}{where_sql} "
                    f"ORDER BY {score} DESC LIMIT {k}")

        spec = TrainingSpec(
            id=uuid.uuid4().hex, created_at=now_iso(), workspace=source.workspace,
            kind="objective", query=sql(None), params=query_params, objective=objective,
            table=name, column=column, k=k, where=where,
            filters=dict(filters) if filters else None,
            as_of=None if as_of is None else str(as_of), model=model_name,
            embedding=vector, pinned_query=sql(version),
            pinned_params=query_params + [vector],
            tables=[TableRef(name, version)])
        return cls._build(source, spec, pin=pin, file_column=file_column,
                          key_column=key_column)

    @classmethod
    def from_query(cls, sql: str, params: Sequence[Any] | None = None, *, db: Any,
                   file_column: str | None = "file_id", key_column: str | None = "id",
                   pin: bool = True, workspace: str | None = None, token: str | None = None,
                   objective: str | None = None) -> TrainingSet:
        """The rows any SELECT returns (joins, filters, rankings), with every table it reads
        pinned to the version read."""
        if not isinstance(sql, str) or not sql.strip():
            raise TrainingSetError("the query must be a non-empty SQL text")
        source = open_source(db, workspace=workspace, token=token)
        pinned, tables = P.pin_query(source, sql)
        schemas = {P.table_ref_parts(t.name)[0] for t in tables}
        if workspace is None and isinstance(source, LocalSource) and len(schemas) == 1 and \
                None not in schemas:
            # An embedded lake has no workspace of its own: a query over one workspace's
            # tables reads that workspace's files.
            source = LocalSource(source.db, str(schemas.pop()))
        spec = TrainingSpec(
            id=uuid.uuid4().hex, created_at=now_iso(), workspace=source.workspace,
            kind="query", query=sql, params=list(params or []), objective=objective,
            pinned_query=pinned, pinned_params=list(params or []), tables=tables)
        return cls._build(source, spec, pin=pin, file_column=file_column,
                          key_column=key_column)

    @classmethod
    def _build(cls, source: Source, spec: TrainingSpec, *, pin: bool,
               file_column: str | None, key_column: str | None) -> TrainingSet:
        tag = f"trainset-{spec.id[:20]}"
        tagged: list[TableRef] = []
        pinned_files = False
        try:
            if pin:
                names = [t.name for t in spec.tables]
                for t in spec.tables:
                    # A table read at two versions (a diff) needs a tag per version.
                    t_tag = tag if names.count(t.name) == 1 else f"{tag}-{t.version}"
                    s, r = P.table_ref_parts(t.name)
                    _run_pin(source, f"SELECT tarndb_tag({P.table_literal(s, r)}, "
                                     f"'{t_tag}', {t.version})")
                    tagged.append(TableRef(t.name, t.version, t_tag))
                spec.tables = list(tagged)
            res = source.query(spec.pinned_query, spec.pinned_params)
            spec.columns, spec.column_types = list(res.columns), list(res.types)
            spec.file_column = _pick(res.columns, file_column, "file_column", "file_id")
            spec.key_column = _pick(res.columns, key_column, "key_column", "id")
            if spec.key_column is not None:
                ki = res.columns.index(spec.key_column)
                spec.row_ids = [_jsonable(r[ki]) for r in res.rows]
            ids = _file_ids(res, spec.file_column)
            wanted = sorted({i for i in ids if i is not None})
            metas: dict[str, FileRef] = {}
            if wanted and pin:
                try:
                    out = _run_pin(source, "SELECT tarndb_pin_files($1, $2)", [tag, wanted])
                except NotFound as e:
                    raise TrainingSetError(f"rows of the training set refer to files that are "
                                           f"not in the file store: {e.message}") from e
                pinned_files = True
                spec.file_pin = tag
                doc = out.rows[0][0]
                for m in json.loads(doc) if isinstance(doc, str) else doc:
                    metas[str(m["id"])] = FileRef.from_json(m)
            elif wanted:
                metas = _file_metadata(source, wanted)
            missing = [i for i in wanted if i not in metas]
            if missing:
                raise TrainingSetError(f"{len(missing)} file(s) the rows refer to are not in "
                                       f"the file store of workspace {source.workspace!r}: "
                                       f"{', '.join(missing[:5])}")
            spec.files = [None if i is None else metas[i] for i in ids]
            spec.row_hashes = [row_hash(r) for r in res.rows]
            spec.rows_sha256 = rows_digest(spec.columns, spec.row_hashes)
            spec.source = source.describe()
        except BaseException:
            _undo(source, tag, tagged, pinned_files)
            raise
        return cls(spec, source, res)

    # -- saving and loading --------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the spec as JSON (keep it next to the model checkpoint)."""
        return self.spec.save(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | TrainingSpec, db: Any, *,
             token: str | None = None) -> TrainingSet:
        """The training set a saved spec describes: the same rows (checked row by row) and
        the same files, however the tables and the file store changed since."""
        spec = path if isinstance(path, TrainingSpec) else TrainingSpec.read(path)
        source = open_source(db, workspace=spec.workspace, token=token)
        try:
            res = source.query(spec.pinned_query, spec.pinned_params)
        except TarnError as e:
            versions = ", ".join(f"{t.name}@{t.version}" for t in spec.tables)
            raise NotReproducible(
                f"training set {spec.id}: its pinned query failed ({e.message}). It reads "
                f"{versions}; a version that was cleaned up (untagged) cannot be read again"
            ) from e
        return cls(spec, source, _verify_rows(spec, res))

    def release(self) -> None:
        """Drop this set's version tags and file pin, so cleanup and file deletes may reclaim
        what only it kept. The spec may no longer load once they did."""
        release_spec(self.spec, self._source)

    # -- rows ----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        what = self.spec.objective or self.spec.query
        return f"<TrainingSet {self.spec.id[:8]} {len(self)} rows: {what[:60]!r}>"

    @property
    def files(self) -> list[FileRef | None]:
        """Each row's file (None for a row without one)."""
        return list(self.spec.files)

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, r, strict=True)) for r in self._rows]

    @property
    def row_ids(self) -> list[Any]:
        return list(self.spec.row_ids or range(len(self)))

    def arrow(self) -> pa.Table:
        """The rows as an Arrow table."""
        if self._arrow is None:
            self._arrow = _rows_to_arrow(self.columns, self._rows)
        return self._arrow

    # -- files ---------------------------------------------------------------------------

    def reader(self) -> FileReader:
        if self._reader is None:
            self._reader = self._source.reader(self.spec.file_pin)
        return self._reader

    def read_file(self, i: int, verify: bool = True) -> bytes:
        """The bytes of row ``i``'s file, checked against the recorded sha256."""
        ref = self.spec.files[i]
        if ref is None:
            raise TrainingSetError(f"row {i} has no file")
        from ._items import check_bytes

        data = self.reader().read(ref)
        check_bytes(ref, data, verify)
        return data

    def download(self, directory: str | os.PathLike[str], *, workers: int = 8,
                 verify: bool = True, progress: Callable[[int, int], None] | None = None
                 ) -> list[Path | None]:
        """Every file into ``directory`` (parallel, resumable, sha256-checked), with a
        ``manifest.jsonl`` (row, file id, path) and a copy of the spec; returns each row's
        path (None for rows without a file)."""
        from ._download import download_all

        target = Path(directory)
        refs = [f for f in self.spec.files if f is not None]
        paths = download_all(self.reader(), refs, target, workers=workers, verify=verify,
                             progress=progress)
        out: list[Path | None] = [None if f is None else paths[f.id] for f in self.spec.files]
        ids = self.row_ids
        with open(target / "manifest.jsonl.tmp", "w", encoding="utf-8") as m:
            for i, (ref, p) in enumerate(zip(self.spec.files, out, strict=True)):
                m.write(json.dumps({"index": i, "row_id": _jsonable(ids[i]),
                                    "file_id": ref.id if ref else None,
                                    "path": p.name if p else None,
                                    "sha256": ref.sha256 if ref else None,
                                    "size": ref.size if ref else None}) + "\n")
        os.replace(target / "manifest.jsonl.tmp", target / "manifest.jsonl")
        self.spec.save(target / "trainset.json")
        return out

    # -- feeding training ----------------------------------------------------------------

    def _items(self, decode: str | None, columns: Sequence[str] | None, verify: bool,
               video: VideoOptions | None, data_key: str) -> Items:
        check_mode(decode)
        cols = list(self.columns if columns is None else columns)
        missing = [c for c in cols if c not in self.columns]
        if missing:
            raise TrainingSetError(f"the training set has no column(s) {', '.join(missing)}")
        if decode is not None and data_key in cols:
            raise TrainingSetError(f'a column is named "{data_key}"; pass data_key= to name '
                                   "the decoded file otherwise")
        if decode is not None and self.spec.file_column is None:
            raise TrainingSetError("decode needs files, and this training set has no file "
                                   "column (file_column=...)")
        picks = [self.columns.index(c) for c in cols]
        items = Items(cols, self._rows, picks, self.spec.files, self.reader() if decode else None,
                      decode, verify, video or VideoOptions(), data_key)
        if self._sizes is None:
            self._sizes = items._sizes()
        items._size_cache = self._sizes  # per set, not per call: the files never change
        return items

    def torch_dataset(self, decode: str | None = None,
                      transform: Callable[[Any], Any] | None = None, *,
                      columns: Sequence[str] | None = None, shuffle: bool = False,
                      seed: int = 0, rank: int | None = None, world_size: int | None = None,
                      verify: bool = False, video: VideoOptions | None = None,
                      data_key: str = "data", iterable: bool = True) -> Any:
        """A PyTorch dataset of this set's rows; each item is a dict of the row's columns
        plus ``data``: the file as ``bytes``, an image ``(3, H, W)`` or video ``(T, 3, H, W)``
        uint8 tensor (``decode=``), after ``transform``.

        The default is an ``IterableDataset`` that splits the rows by distributed rank
        (``rank``/``world_size``, else ``torch.distributed``, else ``RANK``/``WORLD_SIZE``)
        and by DataLoader worker, so every row comes exactly once per epoch across all of
        them (``shuffle`` with ``seed`` + ``set_epoch``). ``iterable=False`` gives a
        map-style dataset for your own sampler. Connections open lazily in each worker, so
        any ``num_workers`` and start method work. Batch with
        ``collate_fn=tarndb.train.collate``. ``verify`` hashes every file read (sizes are
        always checked; the store never rewrites a file's bytes).
        """
        from ._torch import make_dataset

        items = self._items(decode, columns, verify, video, data_key)
        return make_dataset(items, transform, shuffle=shuffle, seed=seed, rank=rank,
                            world_size=world_size, iterable=iterable)

    def batches(self, batch_size: int = 64, *, decode: str | None = None,
                columns: Sequence[str] | None = None, format: str = "arrow",  # noqa: A002
                shuffle: bool = False, seed: int = 0, drop_last: bool = False,
                verify: bool = False, video: VideoOptions | None = None,
                data_key: str = "data", workers: int | None = None) -> Iterator[Any]:
        """Batches without torch: ``format="arrow"`` yields ``pyarrow.RecordBatch`` (files
        as a binary column with ``decode="bytes"``); ``format="numpy"`` yields dicts of numpy
        arrays (decoded images/videos stacked when their shapes agree, else lists).
        ``workers`` threads read and decode files (default: 8 from a server; on a local lake
        1 for bytes, where a page-cache read is faster than a thread hand-off, and up to 4
        for decoding)."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size <= 0:
            raise TrainingSetError(f"batch_size must be a positive integer, not {batch_size!r}")
        if format not in ("arrow", "numpy"):
            raise TrainingSetError(f"format must be 'arrow' or 'numpy', not {format!r}")
        if format == "arrow" and decode in ("image", "video"):
            raise TrainingSetError("decoded images and videos come as numpy arrays: use "
                                   "format='numpy' (or decode='bytes' for Arrow)")
        items = self._items(decode, columns, verify, video, data_key)
        # One contiguous batch up front: taking rows from it is one call per batch.
        table = self.arrow().select(items.columns).combine_chunks()
        whole = table.to_batches()[0] if table.num_rows and table.num_columns else None
        names = list(items.columns) + ([data_key] if decode else [])
        order = (np.random.default_rng(seed).permutation(len(self)) if shuffle
                 else np.arange(len(self)))
        from concurrent.futures import ThreadPoolExecutor

        if workers is None:
            local = items.reader is not None and next(
                (items.reader.local_path(f) is not None for f in items.files if f), False)
            # Pillow and ffmpeg decode outside the GIL, so threads help decoding anywhere.
            workers = 8 if not local else 1 if decode == "bytes" else min(4, os.cpu_count() or 1)
        pool = ThreadPoolExecutor(max_workers=workers) if decode and workers > 1 else None
        try:
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                if drop_last and len(idx) < batch_size:
                    break
                part = whole.take(pa.array(idx, pa.int64())) if whole is not None else None
                if format == "arrow":
                    arrays = list(part.columns) if part is not None else []
                    if decode:
                        arrays.append(items.binary_column(idx, pool.map if pool else map))
                    yield pa.RecordBatch.from_arrays(arrays, names=names)
                else:
                    ids = idx.tolist()
                    out: dict[str, Any] = {c: part.column(c).to_numpy(zero_copy_only=False)
                                           for c in items.columns} if part is not None else {}
                    if decode:
                        out[data_key] = _stack(list(pool.map(items.payload, ids)
                                                    if pool is not None
                                                    else map(items.payload, ids)))
                    yield out
        finally:
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)


def release_spec(spec: TrainingSpec, db: Any) -> None:
    """What :meth:`TrainingSet.release` does, from a spec alone (no query is run)."""
    source = open_source(db, workspace=spec.workspace)
    tag = next((t.tag for t in spec.tables if t.tag), None)
    _undo(source, tag or "", [t for t in spec.tables if t.tag], spec.file_pin is not None,
          file_pin=spec.file_pin)


# -- helpers -----------------------------------------------------------------------------


def _run_pin(source: Source, sql: str, params: list[Any] | None = None) -> Rows:
    try:
        return source.query(sql, params)
    except InsufficientPrivilege as e:
        raise InsufficientPrivilege(
            f"pinning a training set (tagging table versions, pinning files) needs write "
            f"access: {e.message}. Pass pin=False (--no-pin) to rely on version retention "
            "instead") from e


def _undo(source: Source, tag: str, tagged: list[TableRef], pinned_files: bool,
          file_pin: str | None = None) -> None:
    for t in tagged:
        s, r = P.table_ref_parts(t.name)
        try:
            source.query(f"SELECT tarndb_untag({P.table_literal(s, r)}, '{t.tag or tag}')")
        except TarnError:
            pass  # already gone
    if pinned_files:
        try:
            source.query("SELECT tarndb_unpin_files($1)", [file_pin or tag])
        except TarnError:
            pass


def _default_model(source: Source) -> str | None:
    db = getattr(source, "db", None)
    if db is None:
        return None  # a server's default; the spec keeps the embedding itself
    from ..embeddings import default_model_name

    return default_model_name(db, source.workspace)


def _pick(columns: list[str], wanted: str | None, what: str, default: str) -> str | None:
    if wanted is None:
        return None
    if wanted in columns:
        return wanted
    if wanted == default:
        return None  # the default name is only used when the query returns it
    raise TrainingSetError(f'{what} "{wanted}" is not a column of the result (it has '
                           f"{', '.join(columns)})")


def _file_ids(res: Rows, column: str | None) -> list[str | None]:
    if column is None:
        return [None] * len(res.rows)
    i = res.columns.index(column)
    out: list[str | None] = []
    for n, row in enumerate(res.rows):
        v = row[i]
        if v is None or v == "":
            out.append(None)
            continue
        try:
            out.append(str(uuid.UUID(str(v))))
        except ValueError:
            raise TrainingSetError(f'row {n}: column "{column}" holds {v!r}, not a file id '
                                   "(a UUID)") from None
    return out


def _file_metadata(source: Source, ids: list[str]) -> dict[str, FileRef]:
    out: dict[str, FileRef] = {}
    ws = P.quote_ident(source.workspace)
    for start in range(0, len(ids), 500):
        part = ids[start:start + 500]
        listed = ", ".join(f"'{i}'" for i in part)  # validated UUID text, nothing to escape
        res = source.query(f"SELECT id, sha256, size, filename, content_type FROM {ws}._files "
                           f"WHERE id IN ({listed})")
        for fid, sha, size, name, ctype in res.rows:
            out[str(fid)] = FileRef(str(fid), str(sha), int(size), name or "file",
                                    ctype or "application/octet-stream")
    return out


def _verify_rows(spec: TrainingSpec, res: Rows) -> Rows:
    if list(res.columns) != list(spec.columns):
        raise NotReproducible(f"training set {spec.id}: the pinned query now returns columns "
                              f"{res.columns}, the spec recorded {spec.columns}")
    hashes = [row_hash(r) for r in res.rows]
    if hashes == spec.row_hashes:
        return res
    # Rows equal but in another order (ties in ORDER BY): put them in the recorded order.
    where: dict[str, list[int]] = {}
    for i, h in enumerate(hashes):
        where.setdefault(h, []).append(i)
    order: list[int] = []
    for h in spec.row_hashes:
        slot = where.get(h)
        if not slot:
            break
        order.append(slot.pop(0))
    if len(order) != len(spec.row_hashes) or len(hashes) != len(spec.row_hashes):
        changed = len(set(spec.row_hashes) ^ set(hashes))
        raise NotReproducible(f"training set {spec.id}: the pinned query returned "
                              f"{len(hashes)} rows, {changed} of them differing from the "
                              f"{len(spec.row_hashes)} recorded (a non-deterministic query?)")
    arrow = res.arrow.take(pa.array(order, pa.int64())) if res.arrow is not None else None
    return Rows(res.columns, res.types, [res.rows[i] for i in order], arrow)


def _jsonable(v: Any) -> Any:
    from ._spec import canonical

    return canonical(v)


def _rows_to_arrow(columns: list[str], rows: list[tuple[Any, ...]]) -> pa.Table:
    arrays = []
    for i, _ in enumerate(columns):
        values = [r[i] for r in rows]
        if any(isinstance(v, dict) or (isinstance(v, list) and any(isinstance(x, dict)
                                                                   for x in v))
               for v in values):
            arrays.append(pa.array([None if v is None else json.dumps(v) for v in values],
                                   pa.string()))
            continue
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            arrays.append(pa.array([None if v is None else json.dumps(_jsonable(v))
                                    for v in values], pa.string()))
    return pa.table(arrays, names=columns)


def _stack(values: list[Any]) -> Any:
    if values and all(isinstance(v, np.ndarray) for v in values) and \
            len({v.shape for v in values}) == 1:
        return np.stack(values)
    return values
