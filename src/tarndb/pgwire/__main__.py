"""``python -m tarndb.pgwire --data PATH``: the Postgres protocol server alone.

``tarndb serve`` runs it together with the HTTP API; this entry point exists for tests and for
running the protocol server by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m tarndb.pgwire")
    p.add_argument("--data", default=os.environ.get("TARNDB_DATA", "./tarndb-data"))
    p.add_argument("--host", default=os.environ.get("TARNDB_HOST", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("TARNDB_PG_PORT", "5433")))
    p.add_argument("--tls-cert", default=os.environ.get("TARNDB_TLS_CERT"))
    p.add_argument("--tls-key", default=os.environ.get("TARNDB_TLS_KEY"))
    p.add_argument("--port-file", help="write the bound port here once listening")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    import tarndb

    from .server import PgServer, serve_pg

    db = tarndb.open(args.data)

    def ready(server: PgServer) -> None:
        if args.port_file:
            tmp = args.port_file + ".tmp"
            with open(tmp, "w") as f:
                f.write(str(server.port))
            os.replace(tmp, args.port_file)

    data_dir = args.data if "://" not in args.data else None
    try:
        asyncio.run(serve_pg(db, args.host, args.port, tls_cert=args.tls_cert,
                             tls_key=args.tls_key, password=os.environ.get("TARNDB_PASSWORD"),
                             data_dir=data_dir, on_ready=ready))
    except KeyboardInterrupt:
        pass
    finally:
        db.close()


if __name__ == "__main__":
    main()
