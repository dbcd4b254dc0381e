"""``tarndb serve``: the Postgres protocol, the HTTP API and the web UI in one process, over one
Database."""

from __future__ import annotations

import asyncio
import logging
import shlex
import signal
from typing import Any

from . import __version__
from .settings import Settings

log = logging.getLogger("tarndb")


def api_settings(cfg: Settings) -> Any:
    from .api._settings import ApiSettings

    return ApiSettings(org=cfg.org, token=cfg.token, max_upload_bytes=cfg.max_upload_bytes,
                       max_body_bytes=cfg.max_body_bytes, query_timeout_s=cfg.query_timeout_s,
                       max_concurrency=cfg.max_concurrency, max_pending=cfg.max_pending)


def build_http_app(db: Any, cfg: Settings) -> Any:
    from .api import create_app

    app = create_app(db, api_settings(cfg))
    try:
        from . import web
    except ImportError:
        return app
    mount = getattr(web, "mount", None)
    if mount is not None:
        mount(app)
    return app


def banner(lake_uri: str, cfg: Settings, org: Any, token: str | None) -> str:
    """What ``tarndb serve`` prints once both servers are starting: where to connect, the org
    to send as ``X-Activeloop-Org-Id``, and the admin token or how to get one."""
    lines = [
        f"tarndb {__version__}: lake {lake_uri}",
        f"        Postgres  postgresql://postgres@{cfg.host}:{cfg.pg_port}/postgres"
        "?sslmode=require",
        f"        HTTP API  {'https' if cfg.http_tls else 'http'}://{cfg.host}:"
        f"{cfg.http_port}/  (web UI at /)",
        f"        org       {org.name}  (id {org.id}; X-Activeloop-Org-Id takes either)",
    ]
    if token:
        lines.append("        admin API token (shown once; set TARNDB_TOKEN to choose it): "
                     + token)
    elif cfg.token:
        lines.append("        API token  the one in TARNDB_TOKEN (registered as an org admin)")
    else:
        org_flag = "" if org.name == "default" else f" --org {shlex.quote(org.name)}"
        lines.append("        API tokens were made at first start and are not shown again; "
                     "mint one with:\n"
                     f"          tarndb token --data {shlex.quote(str(cfg.data))} create"
                     f"{org_flag} --role admin")
    return "\n".join(lines)


async def _serve(db: Any, cfg: Settings) -> None:
    import uvicorn

    from .api import bootstrap_admin_token
    from .api._protocol import http_protocol
    from .api.orgs import ensure_org
    from .pgwire.server import serve_pg

    token = bootstrap_admin_token(db, api_settings(cfg))
    app = build_http_app(db, cfg)
    tls: dict[str, Any] = {}
    if cfg.http_tls:
        # HTTPS with the Postgres port's certificate (the generated one when none is given).
        cert, key = cfg.tls_cert, cfg.tls_key
        if not cert or not key:
            from pathlib import Path

            from .pgwire.server import _default_data_dir, ensure_certificate

            base = Path(cfg.data) if "://" not in str(cfg.data) else _default_data_dir(db)
            cert, key = ensure_certificate(base / "tls")
        tls = {"ssl_certfile": cert, "ssl_keyfile": key}
    config = uvicorn.Config(app, host=cfg.host, port=cfg.http_port, log_level=cfg.log_level,
                            lifespan="off", http=http_protocol(), **tls)
    http = uvicorn.Server(config)
    # Signals stop both servers together (below), not uvicorn alone.
    setattr(http, "install_signal_handlers", lambda: None)  # noqa: B010
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    data_dir = cfg.data if "://" not in str(cfg.data) else None
    from .embeddings._registry import allow_openai_in_sql

    allow_openai_in_sql(cfg.openai_models)
    pg = asyncio.create_task(serve_pg(
        db, cfg.host, cfg.pg_port, tls_cert=cfg.tls_cert, tls_key=cfg.tls_key,
        password=cfg.password, data_dir=data_dir, max_connections=cfg.max_connections,
        require_tls=cfg.require_tls, require_tls_roles=cfg.require_tls_roles,
        authentication_timeout=cfg.authentication_timeout,
        superuser_reserved_connections=cfg.superuser_reserved_connections,
        max_pending_logins=cfg.max_pending_logins, auth_failure_delay=cfg.auth_failure_delay))
    web = asyncio.create_task(http.serve())
    org = ensure_org(db.catalog, cfg.org)
    print(banner(db.lake.uri, cfg, org, token), flush=True)
    # What start-up made (modules, the catalog, the demo, the model) lives as long as the
    # server: out of the collector's reach, a full collection no longer walks it (88k
    # objects: a ~20 ms pause every few thousand statements, in any statement's latency).
    import gc

    gc.collect()
    gc.freeze()
    stopper: asyncio.Task[Any] = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([pg, web, stopper], return_when=asyncio.FIRST_COMPLETED)
    http.should_exit = True
    pg.cancel()
    for t in (pg, web):
        try:
            await t
        except (asyncio.CancelledError, Exception):  # noqa: BLE001 - shutting down
            pass
    for t in done:
        exc = None if t.cancelled() else t.exception()
        if exc is not None:
            raise exc


def serve(cfg: Settings) -> int:
    import tarndb

    db = tarndb.open(str(cfg.data), version_retention=cfg.version_retention,
                     memory_limit=cfg.memory_limit, temp_limit=cfg.temp_limit,
                     max_result_bytes=cfg.max_result_bytes,
                     session_memory_limit=cfg.session_memory_limit,
                     session_temp_limit=cfg.session_temp_limit)
    db.log_statements = bool(cfg.log_statements)
    sweeper = None
    try:
        if cfg.demo:
            from .demo import load_demo

            load_demo(db)
        if cfg.orphan_sweep_s and cfg.orphan_sweep_s > 0:
            # Unlisted table datasets left by creates that died (engine/vacuum.py).
            from .engine.vacuum import Sweeper

            sweeper = Sweeper(db, float(cfg.orphan_sweep_s), cfg.orphan_grace)
            sweeper.start()
        asyncio.run(_serve(db, cfg))
    except KeyboardInterrupt:
        pass
    finally:
        if sweeper is not None:
            sweeper.stop()
            sweeper.join(timeout=10)
        db.close()
    return 0


