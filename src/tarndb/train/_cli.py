"""``tarndb trainset build|download|show|release``; mounted by ``tarndb.cli``.

``build`` runs the seed's whole loop in one command: for each ``--objective``, retrieve the
top-k rows, pin and save the training set's spec, and (with ``--download``) fetch its files::

    tarndb trainset build --api-url http://127.0.0.1:8080 --api-token $TOKEN --workspace ws \\
        --table video_chunks --k 10 --objective "robot arm picking up small objects" \\
        --objective "human-robot handover of tools" -o specs/ --download /tmp/training_data

The source is an embedded lake (``--data``) or a server (``--api-url`` + ``--api-token``);
``download``, ``show`` and ``release`` default to the source the spec was built from.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import settings as S
from ..errors import TarnError


def _source_args(p: argparse.ArgumentParser) -> None:
    S.add_arguments(p, "trainset")


def add_cli(subparsers: Any) -> argparse.ArgumentParser:
    ts = subparsers.add_parser("trainset", help="training sets: build from objectives or SQL, "
                               "download, inspect, release")
    sub = ts.add_subparsers(dest="trainset_command", required=True)

    b = sub.add_parser("build", help="retrieve top-k rows per objective (or run a query), "
                       "pin and save the spec, optionally download the files")
    what = b.add_mutually_exclusive_group(required=True)
    what.add_argument("--objective", action="append",
                      help="training objective in words (repeat for several sets)")
    what.add_argument("--query", help="a SELECT defining the set (instead of objectives)")
    b.add_argument("--param", action="append", default=[],
                   help="a $n parameter of --query/--where (JSON, else text); repeat in order")
    b.add_argument("--table", help="table to retrieve from (objectives), e.g. video_chunks")
    b.add_argument("--column", default="embedding", help="embedding column [embedding]")
    b.add_argument("--k", type=int, default=20, help="rows per objective [20]")
    b.add_argument("--where", help="SQL condition narrowing the rows, e.g. \"start_s > 100\"")
    b.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE",
                   help="equality filter on a column, or a JSON key as column.key "
                        "(e.g. metadata.camera=cam1)")
    b.add_argument("--model", help="embedding model for the objectives [workspace default]")
    b.add_argument("--as-of", help="read the table as of a version, tag or timestamp")
    b.add_argument("--columns", help="comma-separated columns to keep [all but vectors]")
    b.add_argument("--file-column", default="file_id", help="column of file ids [file_id]")
    b.add_argument("--key-column", default="id", help="column of row ids [id]")
    b.add_argument("--no-pin", action="store_true",
                   help="do not tag versions or pin files (read-only tokens); the set then "
                        "lasts only as long as version retention keeps its versions")
    b.add_argument("-o", "--output", default=None,
                   help="spec file (one set) or folder (several) [trainset.json / trainsets/]")
    b.add_argument("--download", metavar="DIR", default=None,
                   help="also download the files (one subfolder per objective when several)")
    b.add_argument("--workers", type=int, default=8, help="parallel downloads [8]")
    _source_args(b)
    b.set_defaults(func=_guard(cmd_build))

    d = sub.add_parser("download", help="download a saved training set's files "
                       "(parallel, resumable, sha256-verified)")
    d.add_argument("spec")
    d.add_argument("directory")
    d.add_argument("--workers", type=int, default=8, help="parallel downloads [8]")
    _source_args(d)
    d.set_defaults(func=_guard(cmd_download))

    s = sub.add_parser("show", help="load a spec, check its rows reproduce, print a summary")
    s.add_argument("spec")
    s.add_argument("--rows", type=int, default=5, help="rows to print [5]")
    _source_args(s)
    s.set_defaults(func=_guard(cmd_show))

    r = sub.add_parser("release", help="drop a training set's version tags and file pin")
    r.add_argument("spec")
    _source_args(r)
    r.set_defaults(func=_guard(cmd_release))
    return ts


def _explicit(args: argparse.Namespace, name: str) -> bool:
    return getattr(args, name, None) is not None or S.BY_NAME[name].env in os.environ


def _open_db(args: argparse.Namespace, spec_source: dict[str, Any] | None = None) -> Any:
    """What to read from: ``--api-url``, else ``--data``, else (for a saved spec) the source
    the spec was built from."""
    cfg = S.resolve(args)
    if spec_source and not _explicit(args, "api_url") and not _explicit(args, "data"):
        if spec_source.get("kind") == "http":
            cfg.values["api_url"] = spec_source.get("base_url")
        elif spec_source.get("uri"):
            cfg.values["data"] = spec_source["uri"]
    if cfg.api_url:
        if not cfg.api_token:
            raise TarnError("--api-url needs --api-token (or TARNDB_API_TOKEN)")
        from ..client.http import Client

        return Client(cfg.api_url, cfg.api_token, cfg.workspace)
    import tarndb

    return tarndb.open(str(cfg.data))


def _param(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "objective"


def _progress_printer(label: str) -> Any:
    def show(done: int, total: int) -> None:
        if sys.stderr.isatty():
            print(f"\r{label}: {done}/{total} files", end="" if done < total else "\n",
                  file=sys.stderr, flush=True)
    return show


def cmd_build(args: argparse.Namespace) -> int:
    from ._set import TrainingSet

    db = _open_db(args)
    params = [_param(p) for p in args.param]
    workspace = S.resolve(args).workspace if _explicit(args, "workspace") else None
    filters: dict[str, Any] = {}
    for f in args.filter:
        key, eq, value = f.partition("=")
        if not eq or not key:
            raise TarnError(f"--filter takes KEY=VALUE, not {f!r}")
        filters[key] = _param(value)
    try:
        if args.query:
            sets = [("query", TrainingSet.from_query(
                args.query, params, db=db, file_column=args.file_column or None,
                key_column=args.key_column or None, pin=not args.no_pin,
                workspace=workspace))]
        else:
            if not args.table:
                raise TarnError("--objective needs --table")
            sets = []
            for objective in args.objective:
                print(f"\n--- Objective: {objective} ---", flush=True)
                ts = TrainingSet.from_objective(
                    objective, table=args.table, db=db, column=args.column, k=args.k,
                    where=args.where, params=params, filters=filters or None,
                    model=args.model, as_of=args.as_of,
                    columns=args.columns.split(",") if args.columns else None,
                    file_column=args.file_column or None, key_column=args.key_column or None,
                    pin=not args.no_pin, workspace=workspace)
                sets.append((objective, ts))
                _finish(args, ts, objective, several=len(args.objective) > 1)
            return 0
        _finish(args, sets[0][1], None, several=False)
        return 0
    finally:
        _close(db)


def _finish(args: argparse.Namespace, ts: Any, objective: str | None, several: bool) -> None:
    if several:
        out = Path(args.output or "trainsets") / f"{_slug(objective or 'query')}.json"
    else:
        out = Path(args.output or "trainset.json")
    ts.save(out)
    files = sum(1 for f in ts.files if f is not None)
    print(f"{len(ts)} rows, {files} files; spec saved to {out}", flush=True)
    if args.download:
        target = Path(args.download) / _slug(objective) if several and objective \
            else Path(args.download)
        paths = ts.download(target, workers=args.workers,
                            progress=_progress_printer(str(target)))
        n = len({p for p in paths if p is not None})
        print(f"Downloaded {n} files for training to {target}", flush=True)


@contextmanager
def _spec_and_db(args: argparse.Namespace) -> Iterator[tuple[Any, Any]]:
    """The spec file named on the command line and the database its set comes from."""
    from ._spec import TrainingSpec

    spec = TrainingSpec.read(args.spec)
    db = _open_db(args, spec.source)
    try:
        yield spec, db
    finally:
        _close(db)


def cmd_download(args: argparse.Namespace) -> int:
    from ._set import TrainingSet

    with _spec_and_db(args) as (spec, db):
        ts = TrainingSet.load(spec, db)
        paths = ts.download(args.directory, workers=args.workers,
                            progress=_progress_printer(args.directory))
        n = len({p for p in paths if p is not None})
        print(f"{len(ts)} rows; {n} files verified in {args.directory}", flush=True)
        return 0


def cmd_show(args: argparse.Namespace) -> int:
    from ._set import TrainingSet
    from ._spec import canonical

    with _spec_and_db(args) as (spec, db):
        ts = TrainingSet.load(spec, db)
        summary = {
            "id": spec.id, "created_at": spec.created_at, "kind": spec.kind,
            "objective": spec.objective, "query": spec.query, "model": spec.model,
            "tables": [t.to_json() for t in spec.tables], "rows": len(ts),
            "files": sum(1 for f in spec.files if f is not None),
            "bytes": sum(f.size for f in spec.files if f is not None),
            "reproduced": True, "columns": ts.columns,
        }
        print(json.dumps(summary, indent=1))
        for row in ts.rows[:max(0, args.rows)]:
            print(json.dumps(canonical(row))[:300])
        return 0


def cmd_release(args: argparse.Namespace) -> int:
    from ._set import release_spec

    with _spec_and_db(args) as (spec, db):
        release_spec(spec, db)
        print(f"released training set {spec.id}: tags "
              f"{', '.join(f'{t.name}@{t.version}' for t in spec.tables if t.tag) or 'none'}"
              f"; file pin {spec.file_pin or 'none'}")
        return 0


def _close(db: Any) -> None:
    close = getattr(db, "close", None)
    if close is not None:
        close()


def _guard(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Errors a user can act on print as one line (exit status 1), not a traceback."""
    def run(args: argparse.Namespace) -> int:
        try:
            return int(func(args) or 0)
        except TarnError as e:
            print(f"ERROR: {e.message}", file=sys.stderr)
            return 1
    return run
