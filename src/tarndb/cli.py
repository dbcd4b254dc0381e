"""The ``tarndb`` command.

    tarndb serve [--data PATH|s3://...] [--host] [--pg-port] [--http-port] [--org NAME]
    tarndb sql --data PATH "SELECT ..."
    tarndb token create|list|revoke ...
    tarndb trainset build|download|show|release ...
    tarndb vacuum --data PATH [--orphan-grace '1 day'] [--dry-run]
    tarndb settings [--markdown]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from . import settings as S


def _open(cfg: S.Settings) -> Any:
    import tarndb

    return tarndb.open(cfg.data, version_retention=getattr(cfg, "version_retention", None),
                       memory_limit=getattr(cfg, "memory_limit", None),
                       temp_limit=getattr(cfg, "temp_limit", None),
                       max_result_bytes=getattr(cfg, "max_result_bytes", None),
                       session_memory_limit=getattr(cfg, "session_memory_limit", None),
                       session_temp_limit=getattr(cfg, "session_temp_limit", None))


def cmd_sql(args: argparse.Namespace) -> int:
    from .errors import TarnError

    cfg = S.resolve(args)
    db = _open(cfg)
    session = db.session(workspace=cfg.workspace)
    code = 0
    try:
        for result in session.execute_all(args.statement):
            for notice in result.notices:
                print(f"NOTICE: {notice}", file=sys.stderr)
            if result.returns_rows:
                print("\t".join(result.column_names))
                for row in result.rows:
                    print("\t".join(_text(v) for v in row))
                print(f"({result.rowcount} row{'s' if result.rowcount != 1 else ''})")
            else:
                print(result.command)
    except TarnError as e:
        print(f"ERROR: {e.message} (SQLSTATE {e.sqlstate})", file=sys.stderr)
        code = 1
    finally:
        session.close()
        db.close()
    return code


def _text(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


def cmd_serve(args: argparse.Namespace) -> int:
    from .server import serve

    cfg = S.resolve(args)
    setup_logging(str(cfg.log_level), str(cfg.log_format))
    return serve(cfg)


def setup_logging(level: str, fmt: str = "text") -> None:
    """``--log-format json``: one JSON object a line (python-json-logger), with the
    fields a record carries (a statement's kind, ms, outcome, user, workspace)."""
    handler = logging.StreamHandler()
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}))
    elif fmt == "text":
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        raise SystemExit(f"tarndb: --log-format must be text or json, not {fmt!r}")
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        handlers=[handler], force=True)


def cmd_backup(args: argparse.Namespace) -> int:
    from .backup import backup

    cfg = S.resolve(args)
    db = _open(cfg)
    try:
        report = backup(db, args.dest, workspace=args.workspace,
                        progress=lambda msg: print(msg, file=sys.stderr))
    finally:
        db.close()
    print(f"backed up {len(report.tables)} tables (catalog version {report.catalog_version}, "
          f"{report.files_copied} files) to {args.dest}")
    return 0


def cmd_embed(args: argparse.Namespace) -> int:
    from . import ray as tray

    cfg = S.resolve(args)
    db = _open(cfg)
    try:
        if args.ray is not None:
            import ray

            try:
                ray.init(address=args.ray, log_to_driver=False)
            except ConnectionError:
                if args.ray != "auto":
                    raise
                ray.init(log_to_driver=False)  # no cluster running: a local one
        res = tray.embed_table(db, args.table, args.column, into=args.into, key=args.key,
                               model=args.model, use_ray=args.ray is not None,
                               chunk_rows=args.chunk_rows, concurrency=args.workers,
                               progress=lambda msg: print(msg, file=sys.stderr))
    finally:
        db.close()
    print(f"embedded {res.rows} rows of {args.table}.{args.column} into {res.into} "
          f"in {res.chunks} commits ({res.skipped} already there)")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    import tarndb

    from .backup import backup

    cfg = S.resolve(args)
    src = tarndb.open(args.backup)
    try:
        report = backup(src, str(cfg.data), workspace=args.workspace,
                        progress=lambda msg: print(msg, file=sys.stderr))
    finally:
        src.close()
    print(f"restored {len(report.tables)} tables into {cfg.data}")
    return 0


def cmd_vacuum(args: argparse.Namespace) -> int:
    from .engine.vacuum import grace_seconds, vacuum_orphans
    from .errors import TarnError

    cfg = S.resolve(args)
    try:
        grace = grace_seconds(cfg.orphan_grace)
    except TarnError as e:
        print(f"ERROR: {e.message} (SQLSTATE {e.sqlstate})", file=sys.stderr)
        return 1
    db = _open(cfg)
    try:
        found = vacuum_orphans(db, grace, dry_run=args.dry_run)
    finally:
        db.close()
    if args.json:
        print(json.dumps([vars(o) for o in found]))
        return 0
    for o in found:
        print(f"{o.status:<13} {o.path}  ({o.files} files, {o.bytes} bytes, "
              f"newest {o.age_s:.0f} s old)")
    removed = sum(o.status in ("removed", "would remove") for o in found)
    verb = "would remove" if args.dry_run else "removed"
    print(f"{verb} {removed} of {len(found)} unlisted table datasets")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from .api import tokens

    cfg = S.resolve(args)
    db = _open(cfg)
    try:
        return int(tokens.cli(db, args) or 0)
    finally:
        db.close()


def cmd_settings(args: argparse.Namespace) -> int:
    if args.markdown:
        print(S.markdown())
    else:
        cfg = S.resolve(None)
        for s in S.SETTINGS:
            value = "***" if s.secret and cfg.values[s.dest] else cfg.values[s.dest]
            print(f"{s.env}={value if value is not None else ''}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tarndb", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    from . import __version__

    p.add_argument("--version", action="version", version=f"tarndb {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the Postgres protocol, HTTP API and web UI")
    S.add_arguments(serve, "serve")
    serve.set_defaults(func=cmd_serve)

    sql = sub.add_parser("sql", help="run SQL against a lake and print the results")
    S.add_arguments(sql, "sql")
    sql.add_argument("statement", help="one or more SQL statements")
    sql.set_defaults(func=cmd_sql)

    token = sub.add_parser("token", help="create, list and revoke API tokens")
    S.add_arguments(token, "token")
    try:
        from .api import tokens

        tokens.add_cli_arguments(token)
    except ImportError:
        pass
    token.set_defaults(func=cmd_token)

    from .ingest import add_cli as add_ingest_cli
    from .memory.mcp import add_cli as add_mcp_cli

    add_ingest_cli(sub)
    add_mcp_cli(sub)
    from .train import add_cli as add_trainset_cli

    add_trainset_cli(sub)

    bk = sub.add_parser("backup", help="copy the lake (or one workspace) to another place, "
                        "as it is now, while servers keep running")
    S.add_arguments(bk, "backup")
    bk.add_argument("dest", help="where the copy goes: a new directory or s3:// URI")
    bk.add_argument("--workspace", default=None, help="copy only this workspace")
    bk.set_defaults(func=cmd_backup)

    rs = sub.add_parser("restore", help="copy a backup into a new lake (--data)")
    S.add_arguments(rs, "restore")
    rs.add_argument("backup", help="the backup's directory or s3:// URI")
    rs.add_argument("--workspace", default=None, help="restore only this workspace")
    rs.set_defaults(func=cmd_restore)

    em = sub.add_parser("embed", help="embed a text column into a table of (key, embedding), "
                        "resumably, on a Ray cluster with --ray")
    S.add_arguments(em, "backup")
    em.add_argument("table", help="the source table, ws.table")
    em.add_argument("--column", required=True, help="the text column to embed")
    em.add_argument("--into", required=True,
                    help="the table that gets (key, embedding); made when missing")
    em.add_argument("--key", default=None, help="key column (default: the primary key)")
    em.add_argument("--model", default=None, help="a registry model (default: the default)")
    em.add_argument("--chunk-rows", type=int, default=50_000,
                    help="rows per commit (a killed run resumes after the last one)")
    em.add_argument("--ray", nargs="?", const="auto", default=None, metavar="ADDRESS",
                    help="run on a Ray cluster (default address: auto, else a local one)")
    em.add_argument("--workers", type=int, default=None, help="Ray actors embedding at once")
    em.set_defaults(func=cmd_embed)

    vac = sub.add_parser("vacuum", help="remove table datasets no catalog entry lists (left "
                         "by creates whose process died), older than --orphan-grace")
    S.add_arguments(vac, "vacuum")
    vac.add_argument("--dry-run", action="store_true", help="list them, remove nothing")
    vac.add_argument("--json", action="store_true", help="print the result as JSON")
    vac.set_defaults(func=cmd_vacuum)

    st = sub.add_parser("settings", help="list settings and their environment variables")
    st.add_argument("--markdown", action="store_true", help="print the settings table")
    st.set_defaults(func=cmd_settings)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
