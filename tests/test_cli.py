"""The tarndb command and the settings table it shares with the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tarndb import settings as S


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tarndb.cli", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


def test_sql_command_runs_statements_and_reports_errors(tmp_path: Path) -> None:
    data = str(tmp_path / "lake")
    out = run("sql", "--data", data, "CREATE TABLE t (id INT, v TEXT); "
              "INSERT INTO t VALUES (1, 'a'), (2, NULL); SELECT * FROM t ORDER BY id")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["CREATE TABLE", "INSERT 0 2", "id\tv", "1\ta", "2\tNULL",
                                       "(2 rows)"]
    bad = run("sql", "--data", data, "SELECT nope FROM t")
    assert bad.returncode == 1 and "SQLSTATE 42703" in bad.stderr
    via_env = run("sql", "SELECT count(*) FROM t", env={"TARNDB_DATA": data})
    assert via_env.stdout.splitlines()[1] == "2"


def test_settings_precedence_flag_env_default() -> None:
    parser = __import__("tarndb.cli", fromlist=["build_parser"]).build_parser()
    args = parser.parse_args(["serve", "--pg-port", "6000"])
    cfg = S.resolve(args, {"TARNDB_PG_PORT": "7000", "TARNDB_HTTP_PORT": "9000"})
    assert cfg.pg_port == 6000 and cfg.http_port == 9000 and cfg.host == "127.0.0.1"
    cfg = S.resolve(parser.parse_args(["serve", "--no-demo"]), {"TARNDB_DEMO": "1"})
    assert cfg.demo is False


def test_settings_docs_come_from_the_same_table() -> None:
    out = run("settings", "--markdown")
    assert out.returncode == 0
    for s in S.SETTINGS:
        assert f"`{s.flag}`" in out.stdout and f"`{s.env}`" in out.stdout
