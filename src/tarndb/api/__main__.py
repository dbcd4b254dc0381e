"""``python -m tarndb.api --data PATH --port N``: the HTTP API alone, for tests and debugging
(``tarndb serve`` runs it next to the Postgres front end)."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from ._app import bootstrap_admin_token, create_app
from ._protocol import http_protocol
from ._settings import ApiSettings


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tarndb.api")
    ap.add_argument("--data", required=True, help="lake root: a directory or s3://bucket/prefix")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--org", default=None)
    ap.add_argument("--token", default=None, help="register this admin token (TARNDB_TOKEN)")
    args = ap.parse_args(argv)

    import tarndb

    db = tarndb.open(args.data)  # type: ignore[attr-defined]
    settings = ApiSettings.from_env(org=args.org, token=args.token)
    minted = bootstrap_admin_token(db, settings)
    if minted:
        print(f"admin token (shown once): {minted}", flush=True)
    app = create_app(db, settings)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning",
                    timeout_graceful_shutdown=5, http=http_protocol())
    finally:
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
