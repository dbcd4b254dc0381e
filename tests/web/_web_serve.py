"""Run the HTTP API with the web UI mounted, as ``tarndb serve`` will: used by the browser tests
as a real server in its own process. ``python _serve.py --data LAKE --port N --token T``."""

from __future__ import annotations

import argparse
import sys

import uvicorn

import tarndb
from tarndb import web
from tarndb.api import ApiSettings, bootstrap_admin_token, create_app


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--org", default="acme")
    ap.add_argument("--token", required=True)
    args = ap.parse_args(argv)
    db = tarndb.open(args.data)  # type: ignore[attr-defined]
    settings = ApiSettings(org=args.org, token=args.token, max_concurrency=4)
    bootstrap_admin_token(db, settings)
    app = web.mount(create_app(db, settings))
    try:
        uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning",
                    timeout_graceful_shutdown=3)
    finally:
        db.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
