"""Every setting tarndb reads, declared once.

The same table drives the CLI flags (``--pg-port``), the environment variables
(``TARNDB_PG_PORT``) and the settings reference in the docs (``tarndb settings --markdown``).
Precedence: flag, then environment, then default.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    help: str
    type: type = str
    #: which commands take it as a flag
    commands: tuple[str, ...] = ("serve",)
    secret: bool = False

    @property
    def env(self) -> str:
        return "TARNDB_" + self.name.upper().replace("-", "_")

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")


SETTINGS: list[Setting] = [
    Setting("data", "./tarndb-data",
            "Lake root: a local directory or an s3:// URI (S3 credentials and endpoint from "
            "the usual AWS_* variables).",
            commands=("serve", "sql", "token", "ingest", "trainset", "backup", "restore",
                      "vacuum")),
    Setting("host", "127.0.0.1", "Address the Postgres and HTTP servers listen on."),
    Setting("pg_port", 5433, "Postgres protocol port.", int),
    Setting("max_connections", 500, "Postgres connections served at once; the next one is "
            "refused with SQLSTATE 53300.", int),
    Setting("http_port", 8080, "HTTP API and web UI port.", int),
    Setting("password", None, "Password of the postgres superuser; generated and printed "
            "at first start when unset.", secret=True),
    Setting("token", None, "Admin API token to create at first start (otherwise one is "
            "generated and printed).", secret=True),
    Setting("tls_cert", None, "TLS certificate (PEM) for the Postgres port; a self-signed "
            "one is generated into the data directory when unset."),
    Setting("tls_key", None, "TLS private key (PEM) matching --tls-cert."),
    Setting("require_tls", False, "Refuse Postgres connections that did not negotiate TLS "
            "(like hostssl in pg_hba.conf): clients must connect with sslmode=require.", bool),
    Setting("require_tls_roles", None, "Roles (comma-separated) that may log in only over TLS "
            "even without --require-tls, like hostssl lines for them in pg_hba.conf."),
    Setting("http_tls", False, "Serve the HTTP API and web UI over HTTPS, with the Postgres "
            "port's certificate (--tls-cert/--tls-key, or the generated one).", bool),
    Setting("authentication_timeout", 60.0, "Seconds a Postgres client has, in all, to "
            "finish startup and authentication before it is disconnected.", float),
    Setting("superuser_reserved_connections", 3, "Postgres connection slots (of "
            "--max-connections) kept for superusers.", int),
    Setting("max_pending_logins", 128, "Postgres connections still logging in at once; past "
            "this the oldest of them is hung up, so idle sockets cannot lock users out.", int),
    Setting("auth_failure_delay", 0.5, "Seconds before a failed Postgres login is answered, "
            "doubled for each further failure from the same address (at most 10 s).", float),
    Setting("openai_models", False, "Let SQL name openai:MODEL embedding models (outbound "
            "calls with the server's OPENAI_API_KEY); registered models are always allowed.",
            bool),
    Setting("workspace", "public", "Default workspace (schema) for unqualified names.",
            commands=("serve", "sql", "trainset")),
    Setting("version_retention", None, "Drop untagged table versions older than this "
            "(e.g. '30 days') as tables are written; unset keeps every version until "
            "tarndb_cleanup() drops it. Tagged versions (and so training sets) are never "
            "dropped.", commands=("serve", "sql")),
    Setting("orphan_grace", "1 day", "Unlisted table datasets (left by a CREATE TABLE or a "
            "Ray create whose process died before COMMIT) are removed once their newest file "
            "is older than this (seconds, or e.g. '6 hours'); creates in progress are never "
            "touched.", commands=("serve", "vacuum")),
    Setting("orphan_sweep_s", 3600.0, "Seconds between the server's sweeps for unlisted table "
            "datasets (one server of the lake sweeps at a time; 0: never; tarndb vacuum "
            "sweeps once).", float),
    Setting("api_url", None, "Base URL of a tarndb HTTP API for client commands (tarndb "
            "trainset ... --api-url http://host:8080); unset: use --data directly.",
            commands=("trainset",)),
    Setting("api_token", None, "API token (Bearer) for --api-url.", commands=("trainset",),
            secret=True),
    Setting("org", "default", "Name of the server's org (its id is made once and printed "
            "at start); HTTP clients' X-Activeloop-Org-Id header may carry either, and must "
            "name their token's org."),
    Setting("max_upload_bytes", 16 << 30, "Largest file an upload may carry.", int),
    Setting("max_body_bytes", 256 << 20, "Largest JSON request body.", int),
    Setting("query_timeout_s", 300.0, "HTTP statement timeout when a request gives none.",
            float),
    Setting("max_concurrency", 16, "HTTP requests running statements at once.", int),
    Setting("max_pending", 64, "HTTP requests queued beyond that before answering 429.", int),
    Setting("demo", True, "Load a small demo workspace into an empty lake at start.", bool),
    Setting("log_level", "info", "Logging level: debug, info, warning, error."),
    Setting("log_format", "text", "Log lines as text, or as JSON objects (json)."),
    Setting("log_statements", False, "Log every statement (kind, milliseconds, outcome, "
            "user, workspace) to the tarndb.statements logger.", bool),
    Setting("memory_limit", "50%", "Memory DuckDB may use for queries, all sessions together "
            "(e.g. 4GB, or a percentage of RAM); past it a query spills to disk or fails with "
            "53200.", commands=("serve", "sql")),
    Setting("temp_limit", "10GiB", "Disk DuckDB may use for spilled query state (in a "
            "private directory under the system's temp directory), all sessions together; past "
            "it 53400 (temporary file size exceeds temp_file_limit).",
            commands=("serve", "sql")),
    Setting("session_memory_limit", None, "Memory one session's statements may use (e.g. "
            "256MB): each session then runs on a DuckDB instance of its own held to it, "
            "past it 53200; sessions may lower it (SET tarndb.memory_limit), only superusers "
            "raise it. Unset: sessions share --memory-limit.", commands=("serve", "sql")),
    Setting("session_temp_limit", None, "Disk one session's spilled query state may use "
            "(e.g. 1GB), as PostgreSQL's temp_file_limit: past it 53400; sessions may lower "
            "it (SET temp_file_limit), only superusers raise it. Unset: sessions share "
            "--temp-limit.", commands=("serve", "sql")),
    Setting("max_result_bytes", 1 << 30, "Largest result one statement may return; past it "
            "54000 (program_limit_exceeded).", int, commands=("serve", "sql")),
]

BY_NAME = {s.dest: s for s in SETTINGS}


def _parse_bool(v: str) -> bool:
    return v.strip().lower() in ("1", "true", "yes", "on")


@dataclass
class Settings:
    values: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.values[name]
        except KeyError:
            raise AttributeError(name) from None


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    for s in SETTINGS:
        if command not in s.commands:
            continue
        # argparse %-formats help texts: a literal "%" (memory_limit's "50%") must be doubled.
        if s.type is bool:
            parser.add_argument(s.flag, dest=s.dest, default=None,
                                action=argparse.BooleanOptionalAction,
                                help=f"{s.help} [env {s.env}]".replace("%", "%%"))
        else:
            parser.add_argument(s.flag, dest=s.dest, default=None, type=s.type,
                                help=f"{s.help} [env {s.env}; default {s.default}]"
                                .replace("%", "%%"))


def resolve(args: argparse.Namespace | None = None, environ: Mapping[str, str] | None = None
            ) -> Settings:
    env: Mapping[str, str] = os.environ if environ is None else environ
    out: dict[str, Any] = {}
    for s in SETTINGS:
        value = getattr(args, s.dest, None) if args is not None else None
        if value is None and s.env in env:
            raw = env[s.env]
            value = _parse_bool(raw) if s.type is bool else s.type(raw)
        if value is None:
            value = s.default
        out[s.dest] = value
    return Settings(out)


def markdown() -> str:
    lines = ["| flag | environment | default | meaning |", "| --- | --- | --- | --- |"]
    for s in SETTINGS:
        default = "(generated)" if s.secret else ("" if s.default is None else f"`{s.default}`")
        lines.append(f"| `{s.flag}` | `{s.env}` | {default} | {s.help} |")
    return "\n".join(lines)
