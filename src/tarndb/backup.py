"""``tarndb backup`` / ``tarndb restore``: a whole lake, or one workspace, copied to another
URI (a directory or ``s3://``) as it was at one moment, while servers keep writing.

The copy is itself a lake: ``tarndb serve --data BACKUP`` serves it, and restoring is copying
it back. How a consistent copy is taken from a lake that is being written:

1. **Pin.** The catalog's version and every table's (and file store's) current version are
   read, and each pinned table version is tagged ``tarndb-backup-<time>``, so version cleanup
   and retention cannot drop the files it needs while the copy runs.
2. **Copy files.** Lance never rewrites a file it has written, so copying every file under
   the selected folders gives a superset of what the pinned versions reference. Search
   indexes (``_tarn_indexes``) are not copied: they follow newer versions than the pinned ones.
3. **Restore the pins** at the destination (``LanceDataset.restore``): the pinned version
   becomes each dataset's newest there. Tags are removed on both sides.
4. **Rebuild** the search indexes the catalog lists, over the restored rows.

A one-workspace copy keeps the catalog's roles, tokens and sequences and drops the tables and
schemas of other workspaces from it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import lance
import pyarrow.fs as pafs

from . import errors as E
from .engine.catalog import Catalog, TableInfo
from .storage.lake import Lake

log = logging.getLogger(__name__)

# Left out of a copy: lock files of running servers, the server's TLS key, index state.
_SKIP_TOP = {"_locks", "tls"}
_SKIP_PART = "_tarn_indexes"


@dataclass
class BackupReport:
    """What a backup copied: tables and their pinned versions, file counts."""

    tables: dict[str, int] = field(default_factory=dict)
    catalog_version: int = -1
    files_copied: int = 0
    indexes_rebuilt: list[str] = field(default_factory=list)


def backup(source: Any, dest_uri: str, workspace: str | None = None,
           dest_storage_options: dict[str, str] | None = None,
           progress: Callable[[str], None] | None = None) -> BackupReport:
    """Copy the lake of ``source`` (a :class:`~tarndb.engine.database.Database`) to
    ``dest_uri``, whole or only ``workspace``. The destination must hold no lake yet."""
    say = progress or (lambda _msg: None)
    src: Lake = source.lake
    dest = Lake(dest_uri, dest_storage_options)
    if _exists(dest, "_catalog.lance"):
        raise E.InvalidParameterValue(f"{dest_uri} already holds a lake; back up to a new place")
    cat: Catalog = source.catalog
    cat.refresh(force=True)
    if workspace is not None and not cat.workspace_exists(workspace):
        raise E.InvalidSchemaName(f'schema "{workspace}" does not exist')
    tag = "tarndb-backup-" + dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dt%H%M%S%f")
    report = BackupReport()
    tables = [t for t in cat.all_tables() if workspace is None or t.workspace == workspace]
    pins: dict[str, int] = {}
    try:
        # 1. pin: the catalog first, then each table (a table created after the catalog's
        # pin is not in the copied catalog, and is skipped).
        assert cat._ds is not None
        report.catalog_version = cat._ds.version
        pins["_catalog.lance"] = report.catalog_version
        for info in tables:
            ds = source.store(info).dataset()
            ds.tags.create(tag, ds.version)
            pins[info.path] = ds.version
            report.tables[f"{info.workspace}.{info.name}"] = ds.version
        for ws in _workspaces(cat, workspace):
            files = f"{ws}/_files.lance"
            if _exists(src, files):
                ds = lance.dataset(src.uri_for(files), storage_options=src.storage_options)
                pins[files] = ds.version
        # 2. copy
        roots = ["_catalog.lance"] + (list(_workspaces(cat, workspace)))
        for root in roots:
            say(f"copying {root}")
            report.files_copied += _copy_tree(src, dest, root)
        # 3. restore the pinned versions there
        for path, version in pins.items():
            if not _exists(dest, path):
                continue
            ds = lance.dataset(dest.uri_for(path), version=version,
                               storage_options=dest.storage_options)
            ds.restore()
            with contextlib.suppress(Exception):
                lance.dataset(dest.uri_for(path),
                              storage_options=dest.storage_options).tags.delete(tag)
    finally:
        for info in tables:
            if info.path in pins:
                with contextlib.suppress(Exception):
                    source.store(info).dataset().tags.delete(tag)
    # 4. the catalog of a one-workspace copy names only that workspace's tables
    from .engine.database import Database

    copy = Database(dest.uri, dest.storage_options)
    try:
        if workspace is not None:
            _prune_catalog(copy.catalog, workspace)
        for info in copy.catalog.all_tables():
            if info.path not in pins:  # created after the pin: not copied
                copy.catalog.drop_table(info)
                continue
            report.indexes_rebuilt += _rebuild_indexes(copy, info, say)
    finally:
        copy.close()
    return report


def _workspaces(cat: Catalog, workspace: str | None) -> list[str]:
    return [workspace] if workspace is not None else cat.workspaces()


def _exists(lake: Lake, path: str) -> bool:
    fs, base = lake.fs
    return bool(fs.get_file_info(f"{base}/{path}").type != pafs.FileType.NotFound)


def _copy_tree(src: Lake, dest: Lake, root: str) -> int:
    """Copy every file under ``root`` but index state; returns how many."""
    sfs, sbase = src.fs
    dfs, dbase = dest.fs
    info = sfs.get_file_info(f"{sbase}/{root}")
    if info.type == pafs.FileType.NotFound:
        return 0
    entries = [info] if info.type == pafs.FileType.File else sfs.get_file_info(
        pafs.FileSelector(f"{sbase}/{root}", recursive=True))
    n = 0
    for entry in entries:
        if entry.type != pafs.FileType.File:
            continue
        rel = entry.path[len(sbase) + 1:]
        parts = rel.split("/")
        if parts[0] in _SKIP_TOP or _SKIP_PART in parts:
            continue
        target = f"{dbase}/{rel}"
        dfs.create_dir(target.rsplit("/", 1)[0], recursive=True)
        try:
            with sfs.open_input_stream(entry.path) as i, dfs.open_output_stream(target) as o:
                while chunk := i.read(8 << 20):
                    o.write(chunk)
        except FileNotFoundError:
            continue  # removed meanwhile (a file no pinned version needs: they are tagged)
        n += 1
    return n


def _prune_catalog(cat: Catalog, workspace: str) -> None:
    for other in cat.workspaces():
        if other in (workspace, "public"):
            continue
        for info in cat.tables(other):
            cat.drop_table(info)
        cat.delete_object("schema", other)
    if workspace != "public":
        for info in cat.tables("public"):
            cat.drop_table(info)


def _rebuild_indexes(db: Any, info: TableInfo, say: Callable[[str], None]) -> list[str]:
    from .search import IndexManager

    built = []
    for ix in info.indexes:
        if not db.has_search_state(ix):
            continue
        say(f"rebuilding index {ix.name}")
        mgr = IndexManager.open(db.store(info).uri)
        mgr.create_index(db.store(info).dataset(), ix.name, ix.column,
                         index_type=ix.index_type or None, options=ix.options)
        built.append(f"{info.workspace}.{ix.name}")
    return built
