"""Ray Data over tarndb tables: read a pinned version, write in parallel with one commit.

``pip install 'tarndb[ray]'``; Ray is imported only when these functions are called.

>>> import tarndb.ray
>>> ds = tarndb.ray.read_table("s3://lake/prod", "ws.docs", columns=["id", "emb"])
>>> ds = ds.map_batches(train_step)                                   # any Ray Data pipeline
>>> tarndb.ray.write_table(ds, "ws.docs_scored", "s3://lake/prod", mode="create")

- :func:`read_table` reads the table's Lance fragments at one version (the newest when the
  call is made, or the one named), with the table's Postgres column names and their stored
  Arrow types; tarndb's internal columns (``__rid``) are never shown.
- :func:`read_training_set` gives a :class:`~tarndb.train.TrainingSet`'s rows (pinned and
  hash-checked when the set was loaded) as a Ray Dataset, for Ray Train.
- :func:`write_table` converts and checks rows on the Ray workers as INSERT would (stored
  types, defaults, serial values, NOT NULL, CHECK), writes them as fragments of the table's
  dataset in parallel, and the calling process publishes every fragment in one commit
  through the write path (unique keys checked at that moment, under the table's lake-wide
  lock): readers see all of the rows or none of them (engine/bulk.py).

Reading and writing through the lake needs the lake's credentials, not a tarndb token: it is
an operator's tool, with the same reach as ``tarndb.open``.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from . import errors as E

if TYPE_CHECKING:
    import ray.data

    from .engine.catalog import TableInfo
    from .engine.database import Database

__all__ = ["EmbedResult", "WriteResult", "embed_table", "ingest_images", "ingest_traces",
           "ingest_videos", "read_table",
           "read_training_set",
           "write_table"]


def _ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise E.FeatureNotSupported("tarndb.ray needs Ray Data",
                                    hint="pip install 'tarndb[ray]'") from None
    return ray


# -- opening the lake -----------------------------------------------------------------------

_open: dict[tuple[str, tuple[tuple[str, str], ...]], Database] = {}


def _database(lake: Any, storage_options: dict[str, str] | None = None) -> Database:
    """``lake`` as a Database: one already open, or a lake URI (opened once per process)."""
    from .engine.database import Database

    if isinstance(lake, Database):
        return lake
    if lake is None:
        lake = os.environ.get("TARNDB_DATA")
        if not lake:
            raise E.InvalidParameterValue("no lake given (pass its URI or set TARNDB_DATA)")
    if not isinstance(lake, (str, os.PathLike)):
        raise E.InvalidParameterValue(
            "a lake is a tarndb.Database or a lake URI (a directory or s3://...)")
    uri = os.fspath(lake)
    key = (uri, tuple(sorted((storage_options or {}).items())))
    db = _open.get(key)
    if db is None:
        import tarndb

        db = _open[key] = tarndb.open(uri, storage_options=storage_options)
    return db


def _split(table: str) -> tuple[str, str]:
    """``ws.table``, ``"ws"."table"`` or ``table`` (in ``public``) -> (workspace, table)."""
    parts: list[str] = []
    cur, quoted, i = "", False, 0
    while i < len(table):
        ch = table[i]
        if ch == '"':
            if quoted and table[i + 1:i + 2] == '"':
                cur += '"'
                i += 1
            else:
                quoted = not quoted
        elif ch == "." and not quoted:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    parts.append(cur)
    if len(parts) > 2 or not all(parts):
        raise E.InvalidParameterValue(f'not a table name: "{table}" (use "workspace.table")')
    return ("public", parts[0]) if len(parts) == 1 else (parts[0], parts[1])


def _quoted(workspace: str, name: str) -> str:
    return ".".join('"' + p.replace('"', '""') + '"' for p in (workspace, name))


def _table(db: Database, table: str) -> TableInfo:
    ws, name = _split(table)
    info = db.catalog.find_table(ws, name)
    if info is None:
        raise E.UndefinedTable(f'relation "{ws}.{name}" does not exist', table=name)
    return info


# -- reading --------------------------------------------------------------------------------

def read_table(lake: Any, table: str, *, version: int | str | None = None,
               columns: list[str] | None = None, filter: str | None = None,  # noqa: A002
               storage_options: dict[str, str] | None = None, **read_args: Any
               ) -> ray.data.Dataset:
    """A Ray Dataset of ``table`` (``"ws.table"``) at one version.

    ``version`` is a table version number or tag (``trainset-<id>``); by default the newest
    version when this is called, so every block comes from the same commit. ``columns``
    defaults to every column of the table, in its order; ``filter`` is a Lance (SQL) predicate
    over the table's columns, pushed down to the fragment scans. Other keyword arguments go
    to ``ray.data.read_lance`` (``concurrency``, ``override_num_blocks``...); by default a
    read makes one block per fragment, or one per ~20,000 rows when that is more (at most
    200), where Ray would split any table into ~200 blocks."""
    _ray()
    import ray.data as rd

    db = _database(lake, storage_options)
    info = _table(db, table)
    names = info.column_names
    wanted = list(columns) if columns is not None else names
    for c in wanted:
        if c not in names:
            raise E.UndefinedColumn(f'column "{c}" does not exist', column=c)
    store = db.store(info)
    if version is None:
        version = store.dataset().version
    else:
        try:
            store.dataset().checkout_version(version)
        except Exception as e:  # noqa: BLE001 - Lance words a missing version its own way
            raise E.InvalidParameterValue(
                f'table "{info.name}" has no version {version!r}') from e
    if "override_num_blocks" not in read_args:
        read_args["override_num_blocks"] = _blocks(store.dataset().checkout_version(version))
    scanner = dict(read_args.pop("scanner_options", None) or {})
    if filter is not None:
        scanner["filter"] = filter  # pushed down to each fragment's scan
    ds = rd.read_lance(store.uri, version=version, columns=wanted,
                       storage_options=db.lake.storage_options or None,
                       scanner_options=scanner or None, **read_args)
    if filter is None:
        # Only the table's columns (Ray's schema() of a bare read lists the dataset's).
        return ds.select_columns(wanted)
    # A real step after a filtered read: Ray counts a bare read from fragment metadata,
    # which knows nothing of the filter. Its types are the table's stored ones.
    schema = pa.schema([pa.field(c, _column_type(info, c)) for c in wanted])
    conform: Any = functools.partial(_conform_batch, schema=schema)
    return ds.map_batches(conform, batch_format="pyarrow", zero_copy_batch=True)


#: Rows per block a read aims at, at least (Ray's own default asks for ~200 blocks whatever
#: the size: 8,000 rows became 185 blocks of 43 rows, each a task in every later stage).
_ROWS_PER_BLOCK = 20_000
_MAX_BLOCKS = 200


def _blocks(ds: Any) -> int:
    """How many blocks to read a table version as: one per fragment at least (a read task
    reads whole fragments), more for a big table, up to Ray's default of 200."""
    fragments = len(ds.get_fragments())
    rows = ds.count_rows()
    return max(1, min(_MAX_BLOCKS, max(fragments, rows // _ROWS_PER_BLOCK)))


def _column_type(info: TableInfo, name: str) -> pa.DataType:
    col = info.column(name)
    assert col is not None
    return col.type.arrow


def _conform_batch(batch: pa.Table, *, schema: pa.Schema) -> pa.Table:
    return pa.Table.from_arrays([batch.column(f.name).cast(f.type) for f in schema],
                                schema=schema)


def read_training_set(training_set: Any, db: Any = None) -> ray.data.Dataset:
    """A training set's rows as a Ray Dataset (for Ray Train's ``datasets=``).

    ``training_set`` is a :class:`~tarndb.train.TrainingSet`, or the path of a saved spec
    (``trainset.json``) loaded from ``db`` (checked against its recorded row hashes)."""
    ray = _ray()
    from .train import TrainingSet

    ts = training_set
    if not isinstance(ts, TrainingSet):
        if db is None:
            raise E.InvalidParameterValue("loading a saved training set needs db=")
        source = _database(db) if isinstance(db, (str, os.PathLike)) else db
        ts = TrainingSet.load(ts, source)
    return ray.data.from_arrow(ts.arrow())


# -- writing --------------------------------------------------------------------------------

@dataclass
class WriteResult:
    table: str
    version: int
    rows: int
    fragments: int


def _plain(batch: pa.Table) -> pa.Table:
    """Ray's tensor columns (extension types) as plain Arrow lists."""
    cols = []
    for name in batch.column_names:
        col = batch.column(name)
        if isinstance(col.type, pa.ExtensionType):
            chunks = [c.to_numpy() if hasattr(c, "to_numpy") else c for c in col.chunks]
            arrays = []
            for c in chunks:
                if isinstance(c, pa.Array):
                    arrays.append(c.storage if isinstance(c, pa.ExtensionArray) else c)
                else:
                    arrays.append(pa.array(list(c)))
            col = pa.chunked_array(arrays) if arrays else pa.chunked_array(
                [], col.type.storage_type)
        cols.append(col)
    return pa.Table.from_arrays(cols, names=batch.column_names)


def _write_batch(batch: pa.Table, *, uri: str, storage_options: dict[str, str],
                 workspace: str, name: str, new_table: str | None = None) -> pa.Table:
    """Runs on a Ray worker: one batch as stored rows in uncommitted fragments.

    ``new_table``: the JSON definition of a table being created, not in the catalog yet."""
    import json
    import pickle

    from .engine import bulk
    from .engine.catalog import TableInfo

    try:
        db = _database(uri, storage_options)
        if new_table is not None:
            info = TableInfo.from_json(json.loads(new_table))
        else:
            info = _table(db, _quoted(workspace, name))
        rows = bulk.prepare_rows(db, info, _plain(batch), new=new_table is not None)
        part = bulk.write_fragments(db, info, rows)
    except E.TarnError as e:
        # Returned, not raised: Ray keeps only the text of a task's exception, and the
        # caller should get the SQLSTATE (23505, 23502...) as if it had inserted the rows.
        return pa.table({"fragments": pa.array([[]], pa.list_(pa.string())),
                         "rows": pa.array([0], pa.int64()), "keys": pa.array([b""]),
                         "schema": pa.array([b""]), "error": pa.array([pickle.dumps(e)])})
    keys = b""
    if part.keys is not None:
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, part.keys.schema) as w:
            w.write_table(part.keys)
        keys = sink.getvalue().to_pybytes()
    return pa.table({
        "fragments": pa.array([part.fragments], pa.list_(pa.string())),
        "rows": pa.array([part.rows], pa.int64()),
        "keys": pa.array([keys], pa.binary()),
        "schema": pa.array([part.schema.serialize().to_pybytes()], pa.binary()),
        "error": pa.array([b""], pa.binary()),
    })


def _tarn_cause(e: BaseException) -> E.TarnError | None:
    """The tarndb error behind a Ray task failure (Ray wraps a worker's exception)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [e]
    while todo:
        x = todo.pop()
        if x is None or id(x) in seen:
            continue
        seen.add(id(x))
        if isinstance(x, E.TarnError):
            return x
        todo += [x.__cause__, x.__context__, getattr(x, "cause", None)]
    return None


def _create_sql(workspace: str, name: str, schema: pa.Schema,
                primary_key: list[str] | None) -> str:
    from .engine.scan import quote_ident
    from .engine.types import ColumnType, from_arrow

    cols = []
    for f in schema:
        t = f.type.storage_type if isinstance(f.type, pa.ExtensionType) else f.type
        ctype = from_arrow(t)
        if ctype.is_vector:
            ctype = ColumnType("float4", 1)
        shape = getattr(f.type, "shape", None)  # Ray's tensor columns
        if shape is not None and isinstance(f.type, pa.ExtensionType):
            base = from_arrow(getattr(f.type, "scalar_type", pa.float32())).base
            ctype = ColumnType(base, len(shape))
        cols.append(f"{quote_ident(f.name)} {ctype.pg_name}")
    if primary_key:
        cols.append("PRIMARY KEY (" + ", ".join(quote_ident(c) for c in primary_key) + ")")
    return f"CREATE TABLE {quote_ident(workspace)}.{quote_ident(name)} ({', '.join(cols)})"


def write_table(dataset: ray.data.Dataset, table: str, lake: Any = None, *,
                mode: str = "append", primary_key: list[str] | None = None,
                storage_options: dict[str, str] | None = None,
                batch_size: int | None = None, concurrency: int | None = None) -> WriteResult:
    """Write ``dataset`` into ``table`` (``"ws.table"``) on ``lake`` in one atomic commit.

    ``mode="append"`` adds the rows to an existing table (its column names; columns left out
    get their defaults and serial values); ``mode="create"`` creates the table from the
    dataset's schema (42P07 if it exists; ``primary_key`` names its key) in the same step
    that publishes the rows: the table appears with all of them or not at all, even if this
    process is killed part-way. Ray workers convert, check and write the rows as fragments
    in parallel (``batch_size`` rows per task, default one Ray block; ``concurrency`` tasks
    at a time); this process then checks unique keys and publishes every fragment at once.
    On any error nothing is published: readers never see part of the rows."""
    _ray()
    import json
    import pickle

    from .engine import bulk
    from .engine.scan import quote_ident

    if mode not in ("append", "create"):
        raise E.InvalidParameterValue(f'mode must be "append" or "create", not "{mode}"')
    db = _database(lake, storage_options)
    ws, name = _split(table)
    creating = None  # the session whose open transaction holds CREATE TABLE
    if mode == "create":
        if db.catalog.find_table(ws, name) is not None:
            raise E.DuplicateTable(f'relation "{name}" already exists', table=name)
        schema = dataset.schema()
        if schema is None:
            raise E.InvalidParameterValue("the dataset has no schema (is it empty?)")
        arrow_schema = getattr(schema, "base_schema", schema)
        if not isinstance(arrow_schema, pa.Schema):
            arrow_schema = pa.schema(list(zip(schema.names, schema.types, strict=True)))
        db.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(ws)}")
        # The dataset is made now; the catalog entry only by bulk.commit_new_table.
        creating = db.session(workspace=ws)
        creating.begin()
        try:
            creating.execute(_create_sql(ws, name, arrow_schema, primary_key))
        except BaseException:
            creating.rollback()
            creating.close()
            raise
    try:
        if creating is not None:
            found = creating.find_table(ws, name)
            assert found is not None
            info = found
        else:
            info = _table(db, _quoted(ws, name))
        if info.read_only:
            raise E.InsufficientPrivilege(f'table "{info.name}" is read-only')
        kwargs: dict[str, Any] = {"uri": db.lake.uri,
                                  "storage_options": dict(db.lake.storage_options),
                                  "workspace": ws, "name": name,
                                  "new_table": (json.dumps(info.to_json())
                                                if creating is not None else None)}
        write: Any = functools.partial(_write_batch, **kwargs)
        mapped = dataset.map_batches(write, batch_format="pyarrow", batch_size=batch_size,
                                     concurrency=concurrency, zero_copy_batch=True)
        parts = []
        for row in mapped.iter_rows():
            if row["error"]:
                raise pickle.loads(row["error"])  # noqa: S301 - from our own workers
            keys = None
            if row["keys"]:
                keys = pa.ipc.open_stream(pa.py_buffer(row["keys"])).read_all()
            schema_b = pa.ipc.read_schema(pa.py_buffer(row["schema"]))
            parts.append(bulk.Fragments(list(row["fragments"]), int(row["rows"]), keys,
                                        schema_b))
        if creating is not None:
            version = bulk.commit_new_table(db, creating, info, parts)
        else:
            version = bulk.commit_fragments(db, info, parts)
    except BaseException as e:
        cause = _tarn_cause(e)
        if creating is not None and creating.in_transaction:
            creating.rollback()  # ROLLBACK of CREATE TABLE: the dataset is removed
        if cause is not None and cause is not e:
            raise cause from e  # a worker's 23502, 23505... as if raised here
        raise
    finally:
        if creating is not None:
            creating.close()
    return WriteResult(f"{ws}.{name}", version, sum(p.rows for p in parts),
                       sum(len(p.fragments) for p in parts))


# -- distributed embedding ----------------------------------------------------------------------

@dataclass
class EmbedResult:
    into: str
    rows: int
    chunks: int
    skipped: int


_models: dict[tuple[str, str | None, str], Any] = {}


def _embed_task(batch: pa.Table, *, uri: str, storage_options: dict[str, str],
                workspace: str, model: str | None, key: str, column: str) -> pa.Table:
    """Runs on a Ray worker: the model is loaded once per worker process, then applied to
    batches of (key, text)."""
    from .embeddings import get_model

    m = _models.get((uri, model, workspace))
    if m is None:
        db = _database(uri, storage_options)
        m = _models[(uri, model, workspace)] = get_model(model, db=db, workspace=workspace)
    return _embed_batch(m, batch, key, column)


def _embed_batch(model: Any, batch: pa.Table, key: str, column: str) -> pa.Table:
    texts = batch.column(column).to_pylist()
    keep = [i for i, t in enumerate(texts) if t is not None]
    batch = batch.take(pa.array(keep, pa.int64())) if len(keep) < len(texts) else batch
    vecs = model.embed([texts[i] for i in keep]) if keep else None
    emb = pa.array([] if vecs is None else list(vecs.astype("float32")),
                   pa.list_(pa.float32()))
    return pa.table({key: batch.column(key), "embedding": emb})


def _chunks(keys: list[Any], size: int) -> list[list[Any]]:
    keys = sorted(keys)
    return [keys[i:i + size] for i in range(0, len(keys), size)]


def _literal(v: Any) -> str:
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return repr(int(v)) if isinstance(v, int) else repr(v)


def embed_table(lake: Any, table: str, column: str, *, into: str, key: str | None = None,
                model: str | None = None, use_ray: bool = True, chunk_rows: int = 50_000,
                batch_size: int = 256, concurrency: int | None = None,
                storage_options: dict[str, str] | None = None,
                progress: Any = None) -> EmbedResult:
    """Embed ``column`` of ``table`` with a registry model into the table ``into``
    (``key``, ``embedding FLOAT4[]``; made when missing), resumably.

    Rows are taken in chunks of ``chunk_rows`` keys; each chunk is embedded (with
    ``use_ray`` by Ray tasks, ``concurrency`` at a time, each worker process loading the
    model once; else in this process) and committed into ``into`` as one transaction. Keys
    already in ``into`` are skipped, so a run that was killed goes on where its last commit
    ended. ``key`` defaults
    to the table's one-column primary key. Join the result back in SQL
    (``SELECT ... FROM docs JOIN docs_emb USING (id)``)."""
    import pyarrow.compute as pc

    from .engine.scan import quote_ident

    db = _database(lake, storage_options)
    info = _table(db, table)
    if key is None:
        if len(info.primary_key) != 1:
            raise E.InvalidParameterValue(
                f'table "{info.name}" has no one-column primary key: name the key column')
        key = info.primary_key[0]
    for c in (key, column):
        if info.column(c) is None:
            raise E.UndefinedColumn(f'column "{c}" does not exist', column=c)
    key_col = info.column(key)
    assert key_col is not None
    ws, name = _split(into)
    target = f"{quote_ident(ws)}.{quote_ident(name)}"
    if db.catalog.find_table(ws, name) is None:
        db.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(ws)}")
        db.execute(f"CREATE TABLE IF NOT EXISTS {target} ({quote_ident(key)} "
                   f"{key_col.type.pg_name} PRIMARY KEY, embedding FLOAT4[])")
    src = f"{quote_ident(info.workspace)}.{quote_ident(info.name)}"
    done = set(db.execute(f"SELECT {quote_ident(key)} FROM {target}").arrow()
               .column(0).to_pylist())
    todo = [k for k in db.execute(f"SELECT {quote_ident(key)} FROM {src}").arrow()
            .column(0).to_pylist() if k is not None and k not in done]
    chunks = _chunks(todo, max(1, chunk_rows))
    rows = 0
    for i, chunk in enumerate(chunks):
        lo, hi = chunk[0], chunk[-1]
        col = "`" + key.replace("`", "``") + "`"  # Lance's SQL quotes names with backticks
        flt = f"{col} >= {_literal(lo)} AND {col} <= {_literal(hi)}"
        wanted = set(chunk)
        if use_ray:
            _ray()
            ds = read_table(db, table, columns=[key, column], filter=flt)
            skip = pa.array([k for k in done if lo <= k <= hi], key_col.type.arrow)
            if len(skip):
                ds = ds.map_batches(functools.partial(_drop_keys, key=key, skip=skip),
                                    batch_format="pyarrow")
            embed: Any = functools.partial(
                _embed_task, uri=db.lake.uri, storage_options=dict(db.lake.storage_options),
                workspace=info.workspace, model=model, key=key, column=column)
            ds = ds.map_batches(embed, batch_format="pyarrow", batch_size=batch_size,
                                concurrency=concurrency)
            n = write_table(ds, into, db).rows
        else:
            from .embeddings import get_model

            m = get_model(model, db=db, workspace=info.workspace)
            got = db.execute(f"SELECT {quote_ident(key)}, {quote_ident(column)} FROM {src} "
                             f"WHERE {quote_ident(key)} BETWEEN $1 AND $2", [lo, hi]).arrow()
            got = got.filter(pc.is_in(got.column(0), value_set=pa.array(
                list(wanted), got.schema.field(0).type)))
            out = _embed_batch(m, got.rename_columns([key, column]), key, column)
            s = db.session(workspace=ws)
            try:
                s.insert_arrow(target, out)
            finally:
                s.close()
            n = out.num_rows
        rows += n
        if progress is not None:
            progress(f"chunk {i + 1}/{len(chunks)}: {n} rows embedded into {into}")
    return EmbedResult(f"{ws}.{name}", rows, len(chunks), len(done))


def _drop_keys(batch: pa.Table, *, key: str, skip: pa.Array) -> pa.Table:
    import pyarrow.compute as pc

    return batch.filter(pc.invert(pc.is_in(batch.column(key), value_set=skip)))


# -- distributed image ingestion -----------------------------------------------------------------

def _ingest_task(batch: pa.Table, *, uri: str, storage_options: dict[str, str],
                 workspace: str, model: str | None, embedding_column: str,
                 schema: pa.Schema) -> pa.Table:
    """Runs on a Ray worker: images (path, key, annotations) uploaded to the file store and
    turned into rows, as ``tarndb ingest images`` does in one process."""
    import json
    import logging
    from pathlib import Path

    from .ingest._common import FileStoreUploader
    from .ingest._images import ImageRecord, _build_row, _embed_rows

    db = _database(uri, storage_options)
    up = FileStoreUploader(db, workspace)
    rows = []
    for path, key, meta in zip(batch.column("path").to_pylist(), batch.column("key").to_pylist(),
                               batch.column("meta").to_pylist(), strict=True):
        try:
            rows.append(_build_row(ImageRecord(Path(path), key, json.loads(meta)),
                                   json.loads(meta), up))
        except Exception as e:  # noqa: BLE001 - one bad file must not stop the run
            logging.getLogger(__name__).warning("skipping %s: %s", path, e)
    if rows and model is not None:
        from .embeddings import get_model

        m = _models.get((uri, model, workspace))
        if m is None:
            m = _models[(uri, model, workspace)] = get_model(model, db=db, workspace=workspace)
        _embed_rows(m, rows, embedding_column)
    for r in rows:
        r.pop("_text", None)
        r.pop("_path", None)
    return pa.Table.from_pylist(rows, schema=schema)


def _ingest_table(db: Any, workspace: str, table: str, base: Any, arrow: dict[str, Any],
                  embed_model: str | None, embedding_column: str, key: str
                  ) -> tuple[pa.Schema, set[Any]]:
    """Create the ingest table (with an embedding column when a model is given); its Arrow
    schema without ``id``, and the ``key`` values already in it (a resumed run skips
    them)."""
    from .ingest._common import ensure_table, existing_keys

    columns = list(base)
    if embed_model:
        from .embeddings import get_model

        multi = get_model(embed_model, db=db, workspace=workspace).multi
        columns.append((embedding_column, "FLOAT4[][]" if multi else "FLOAT4[]"))
    schema = pa.schema([(n, arrow[t]) for n, t in columns if n != "id"])
    session = db.session(workspace=workspace)
    try:
        ensure_table(session, workspace, table, columns)
        return schema, existing_keys(session, workspace, table, key)
    finally:
        session.close()


def ingest_images(lake: Any, folder: str | os.PathLike[str], table: str = "images",
                  workspace: str = "public", *, annotations: str | None = None,
                  embed_model: str | None = None, embedding_column: str = "embedding",
                  chunk_rows: int = 1000, batch_size: int = 32, concurrency: int | None = None,
                  limit: int | None = None, storage_options: dict[str, str] | None = None,
                  progress: Any = None) -> Any:
    """``tarndb ingest images`` on a Ray cluster: the same table, rows and file store, with
    the uploads, header reads and embeddings done by Ray tasks (every worker must see
    ``folder``: a shared mount). Each chunk of ``chunk_rows`` images is one commit; images
    whose path is already in the table are skipped, so a killed run goes on where it
    stopped. Returns the :class:`~tarndb.ingest.IngestReport`."""
    import json
    import time
    from pathlib import Path

    from .ingest._common import IngestReport
    from .ingest._images import (
        _ARROW,
        BASE_COLUMNS,
        find_annotations,
        iter_images,
        load_annotations,
    )

    ray = _ray()
    t0 = time.perf_counter()
    db = _database(lake, storage_options)
    root = Path(folder).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"no such folder: {root}")
    report = IngestReport(table=f"{workspace}.{table}")
    ann_path = Path(annotations) if annotations else find_annotations(root)
    ann = load_annotations(ann_path, root) if ann_path else {}
    schema, done = _ingest_table(db, workspace, table, BASE_COLUMNS, _ARROW, embed_model,
                                 embedding_column, "path")
    items: list[dict[str, Any]] = []
    for p in iter_images(root):
        key = p.relative_to(root).as_posix()
        if key in done:
            report.skipped += 1
            continue
        items.append({"path": str(p), "key": key,
                      "meta": json.dumps(ann.get(key) or ann.get(p.name) or {})})
        if limit is not None and len(items) >= limit:
            break
    task: Any = functools.partial(
        _ingest_task, uri=db.lake.uri, storage_options=dict(db.lake.storage_options),
        workspace=workspace, model=embed_model, embedding_column=embedding_column,
        schema=schema)
    target = _quoted(workspace, table)
    for i in range(0, len(items), max(1, chunk_rows)):
        chunk = items[i:i + max(1, chunk_rows)]
        ds = ray.data.from_items(chunk).map_batches(
            task, batch_format="pyarrow", batch_size=batch_size, concurrency=concurrency)
        n = write_table(ds, target, db).rows
        report.inserted += n
        report.failed += len(chunk) - n
        if progress is not None:
            progress(f"{report.inserted}/{len(items)} images -> {workspace}.{table}")
    report.seconds = time.perf_counter() - t0
    return report


# -- distributed video and trace ingestion ------------------------------------------------------

def _video_id_task(batch: dict[str, Any]) -> dict[str, Any]:
    """Runs on a Ray worker: each video's stable id (a hash of its bytes)."""
    from pathlib import Path

    from .ingest._video import video_id_for

    paths = list(batch["path"])
    return {"path": paths, "video_id": [video_id_for(Path(str(p))) for p in paths]}


def _video_task(batch: pa.Table, *, uri: str, storage_options: dict[str, str],
                workspace: str, model: str | None, embedding_column: str,
                chunk_s: float, schema: pa.Schema) -> pa.Table:
    """Runs on a Ray worker: videos cut into clips (ffmpeg stream copy), the clips uploaded
    to the file store and embedded, as ``tarndb ingest videos`` does in one process. A video
    that fails gives no rows (the driver counts it as failed)."""
    import json
    import logging
    from pathlib import Path

    from .ingest._common import FileStoreUploader
    from .ingest._video import _clip_rows, _embed_clips, ffmpeg_exe

    db = _database(uri, storage_options)
    up = FileStoreUploader(db, workspace)
    exe = ffmpeg_exe()
    m = None
    if model is not None:
        from .embeddings import get_model

        m = _models.get((uri, model, workspace))
        if m is None:
            m = _models[(uri, model, workspace)] = get_model(model, db=db, workspace=workspace)
    rows: list[dict[str, Any]] = []
    for path, vid, meta in zip(batch.column("path").to_pylist(),
                               batch.column("video_id").to_pylist(),
                               batch.column("meta").to_pylist(), strict=True):
        extra = json.loads(meta)
        try:
            got = _clip_rows(Path(path), vid, chunk_s, exe, up, extra, max_workers=2,
                             frames=m is not None and m.supports_images)
            if m is not None:
                _embed_clips(m, got, embedding_column, extra, Path(path))
        except Exception as e:  # noqa: BLE001 - one bad file must not stop the run
            logging.getLogger(__name__).warning("skipping %s: %s", path, e)
            continue
        for r in got:
            r.pop("_clip", None)
        rows.extend(got)
    return pa.Table.from_pylist(rows, schema=schema)


def ingest_videos(lake: Any, source: Any, table: str = "videos", workspace: str = "public", *,
                  chunk_duration_s: float | None = None, embed_model: str | None = None,
                  embedding_column: str = "embedding",
                  metadata: dict[str, dict[str, Any]] | None = None, chunk_videos: int = 16,
                  concurrency: int | None = None,
                  storage_options: dict[str, str] | None = None, progress: Any = None) -> Any:
    """``tarndb ingest videos`` on a Ray cluster: the same table, clips and file store, with
    the hashing, cutting, uploads and embeddings done by Ray tasks, one video per task (every
    worker must see the videos: a shared mount). Each chunk of ``chunk_videos`` videos is one
    commit, so a video is wholly in the table or not at all; videos whose ``video_id`` is
    already there are skipped, so a killed run goes on where it stopped. Returns the
    :class:`~tarndb.ingest.IngestReport` (``inserted`` counts clips, ``failed`` videos)."""
    import json
    import time

    from .ingest._common import IngestReport, existing_keys
    from .ingest._video import _ARROW_V, BASE_COLUMNS, DEFAULT_CHUNK_S, iter_videos

    ray = _ray()
    t0 = time.perf_counter()
    db = _database(lake, storage_options)
    chunk_s = DEFAULT_CHUNK_S if chunk_duration_s is None else float(chunk_duration_s)
    paths = [p.resolve() for p in iter_videos(source)]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"no such video: {missing[0]}")
    report = IngestReport(table=f"{workspace}.{table}")
    schema, done = _ingest_table(db, workspace, table, BASE_COLUMNS, _ARROW_V, embed_model,
                                 embedding_column, "video_id")
    ids: list[dict[str, Any]] = []
    if paths:
        ids = ray.data.from_items([{"path": str(p)} for p in paths]).map_batches(
            _video_id_task, batch_size=1, concurrency=concurrency).take_all()
    vid_of = {str(r["path"]): str(r["video_id"]) for r in ids}
    items: list[dict[str, Any]] = []
    for p in paths:
        vid = vid_of[str(p)]
        if vid in done:
            report.skipped += 1
            continue
        done.add(vid)  # the same video twice in one run: once
        extra = dict((metadata or {}).get(p.name) or (metadata or {}).get(vid) or {})
        items.append({"path": str(p), "video_id": vid, "meta": json.dumps(extra)})
    task: Any = functools.partial(
        _video_task, uri=db.lake.uri, storage_options=dict(db.lake.storage_options),
        workspace=workspace, model=embed_model, embedding_column=embedding_column,
        chunk_s=chunk_s, schema=schema)
    target = _quoted(workspace, table)
    step = max(1, chunk_videos)
    for i in range(0, len(items), step):
        chunk = items[i:i + step]
        ds = ray.data.from_items(chunk, override_num_blocks=len(chunk)).map_batches(
            task, batch_format="pyarrow", batch_size=1, concurrency=concurrency)
        report.inserted += write_table(ds, target, db).rows
        s = db.session(workspace=workspace)
        try:
            present = existing_keys(s, workspace, table, "video_id")
        finally:
            s.close()
        lost = [c for c in chunk if c["video_id"] not in present]
        report.failed += len(lost)
        report.errors.extend(f"{os.path.basename(c['path'])}: no clips (see the Ray worker's "
                             "log)" for c in lost)
        if progress is not None:
            progress(f"{i + len(chunk)}/{len(items)} videos -> {workspace}.{table}")
    report.seconds = time.perf_counter() - t0
    return report


def _trace_units(source: Any, lines_per_task: int) -> tuple[str, list[dict[str, Any]]]:
    """The trace files of ``source`` as units of work: each ``.traj`` file whole, each JSONL
    file in ranges of ``lines_per_task`` lines (numbered as the one-process ingester numbers
    them, so rows without a run id get the same one either way)."""
    from pathlib import Path

    p = Path(source).resolve()
    if p.is_dir():
        root = str(p)
        files = [f for f in sorted(p.rglob("*")) if f.is_file() and (
            f.suffix == ".traj" or (f.suffix == ".jsonl" and f.name != "manifest.jsonl"))]
    elif p.is_file():
        root, files = str(p.parent), [p]
    else:
        raise FileNotFoundError(f"no such file or folder: {p}")
    units: list[dict[str, Any]] = []
    for f in files:
        if f.suffix == ".traj":
            units.append({"file": str(f), "start": 0, "stop": 0})
            continue
        with f.open("rb") as fh:
            n = sum(1 for _ in fh)
        for start in range(0, n, max(1, lines_per_task)):
            units.append({"file": str(f), "start": start,
                          "stop": min(n, start + max(1, lines_per_task))})
    return root, units


def _trace_task(batch: dict[str, Any], *, root: str, folder: bool) -> pa.Table:
    """Runs on a Ray worker: trace rows of a few units (see :func:`_trace_units`), each with
    its unit's number and its position in it (the driver keeps the first of each run id)."""
    import itertools
    import json
    from pathlib import Path

    from .ingest._traces import TRACE_SCHEMA, _manifest, record_from_json, record_from_traj

    rows: list[dict[str, Any]] = []

    def add(row: dict[str, Any], unit: int, pos: int) -> None:
        rows.append({**row, "_unit": unit, "_pos": pos})

    manifest = _manifest(Path(root)) if folder else {}
    for unit, file, start, stop in zip(batch["unit"], batch["file"], batch["start"],
                                       batch["stop"], strict=True):
        f = Path(str(file))
        if f.suffix == ".traj":
            add(record_from_traj(f, Path(root), manifest), int(unit), 0)
            continue
        with f.open(encoding="utf-8") as fh:
            for i, line in enumerate(itertools.islice(fh, int(start), int(stop)), int(start)):
                if line.strip():
                    add(record_from_json(json.loads(line), i, f.name), int(unit), i)
    schema = TRACE_SCHEMA.append(pa.field("_unit", pa.int64())).append(
        pa.field("_pos", pa.int64()))
    return pa.Table.from_pylist(rows, schema=schema)


def _keep_rows(batch: pa.Table, *, keep: set[tuple[int, int]]) -> pa.Table:
    mask = [(u, p) in keep for u, p in zip(batch.column("_unit").to_pylist(),
                                           batch.column("_pos").to_pylist(), strict=True)]
    return batch.filter(pa.array(mask, pa.bool_())).drop_columns(["_unit", "_pos"])


def ingest_traces(lake: Any, source: Any, table: str = "agent_traces",
                  workspace: str = "public", *, chunk_units: int = 256,
                  lines_per_task: int = 1000, concurrency: int | None = None,
                  storage_options: dict[str, str] | None = None, progress: Any = None) -> Any:
    """``tarndb ingest traces`` on a Ray cluster: the same table and rows, parsed by Ray tasks
    (every worker must see ``source``: a shared mount), a ``.traj`` file or ``lines_per_task``
    JSONL lines per task. Each chunk of ``chunk_units`` such units is one commit; runs whose
    ``run_id`` is already in the table (or earlier in the run) are skipped, so a killed run
    goes on where it stopped. Returns the :class:`~tarndb.ingest.IngestReport`."""
    import time

    from .ingest._common import IngestReport, ensure_table, existing_keys
    from .ingest._traces import TRACE_COLUMNS

    ray = _ray()
    t0 = time.perf_counter()
    db = _database(lake, storage_options)
    root, units = _trace_units(source, lines_per_task)
    report = IngestReport(table=f"{workspace}.{table}")
    session = db.session(workspace=workspace)
    try:
        ensure_table(session, workspace, table, TRACE_COLUMNS)
        done = existing_keys(session, workspace, table, "run_id")
    finally:
        session.close()
    from pathlib import Path

    task: Any = functools.partial(_trace_task, root=root, folder=Path(source).is_dir())
    target = _quoted(workspace, table)
    step = max(1, chunk_units)
    for i in range(0, len(units), step):
        chunk = [{"unit": i + j, **u} for j, u in enumerate(units[i:i + step])]
        parsed = ray.data.from_items(chunk, override_num_blocks=len(chunk)).map_batches(
            task, batch_size=1, concurrency=concurrency).materialize()
        # The first row of each run id, in the order of the source (as the one-process
        # ingester keeps them); the rest, and runs already in the table, are skipped.
        order = parsed.select_columns(["run_id", "_unit", "_pos"]).to_arrow_refs()
        ids = pa.concat_tables(ray.get(order)) if order else pa.table({})
        keep: set[tuple[int, int]] = set()
        if ids.num_rows:
            ids = ids.sort_by([("_unit", "ascending"), ("_pos", "ascending")])
            for rid, u, p in zip(ids.column("run_id").to_pylist(),
                                 ids.column("_unit").to_pylist(),
                                 ids.column("_pos").to_pylist(), strict=True):
                if rid in done:
                    report.skipped += 1
                    continue
                done.add(rid)
                keep.add((u, p))
        if keep:
            rows = parsed.map_batches(functools.partial(_keep_rows, keep=keep),
                                      batch_format="pyarrow", batch_size=None)
            report.inserted += write_table(rows, target, db).rows
        if progress is not None:
            progress(f"{report.inserted} traces -> {workspace}.{table}")
    report.seconds = time.perf_counter() - t0
    return report
