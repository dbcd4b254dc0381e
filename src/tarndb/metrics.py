"""What a server counts, for Prometheus (``GET /metrics``) and operators' dashboards.

Kept in one module with prometheus_client's own registry types, so every part (the engine,
the write path, the Postgres server, the HTTP API) records into the same metrics and
``/metrics`` renders them in the Prometheus text format. Recording costs a few microseconds.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

STATEMENTS = Counter(
    "tarndb_statements", "Statements run, by kind and outcome (ok, or the SQLSTATE class)",
    ["kind", "outcome"], registry=REGISTRY)
STATEMENT_SECONDS = Histogram(
    "tarndb_statement_seconds", "Statement latency in the engine, by kind", ["kind"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 60),
    registry=REGISTRY)
COMMITS = Counter(
    "tarndb_commits", "Lance commits made by the write path (a grouped commit counts once)",
    registry=REGISTRY)
WAL_COMMITS = Counter(
    "tarndb_wal_commits", "Insert-only commits made durable in a table's write-ahead log",
    registry=REGISTRY)
WAL_FOLDS = Counter(
    "tarndb_wal_folds", "Lance appends that folded write-ahead logs into tables",
    registry=REGISTRY)
COMMITTED_TRANSACTIONS = Counter(
    "tarndb_committed_changes", "Transactions' table changes published", registry=REGISTRY)
ROWS_WRITTEN = Counter(
    "tarndb_rows_written", "Rows inserted or rewritten by commits", registry=REGISTRY)
ROWS_REMOVED = Counter(
    "tarndb_rows_removed", "Rows updated away or deleted by commits", registry=REGISTRY)
CONFLICTS = Counter(
    "tarndb_commit_conflicts", "Changes refused at commit (40001 or 23505)", ["sqlstate"],
    registry=REGISTRY)
CONNECTIONS = Gauge(
    "tarndb_connections", "Open client connections, by protocol", ["protocol"],
    registry=REGISTRY)
JOBS = Gauge(
    "tarndb_jobs", "Background jobs of this server, by state", ["state"], registry=REGISTRY)


def render() -> bytes:
    """Every metric in the Prometheus text exposition format."""
    return generate_latest(REGISTRY)


def outcome_of(error: BaseException | None) -> str:
    """``ok``, or the two-character SQLSTATE class of the error (``23``, ``40``, ``57``)."""
    if error is None:
        return "ok"
    state = getattr(error, "sqlstate", "XX000")
    return str(state)[:2]
