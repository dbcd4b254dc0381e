"""MCP under the privilege model: ``tarndb mcp --token`` runs the memory tools as the token,
so an agent holding a read token for one workspace can neither write nor reach another one.
Each attack checks the refusal and that nothing changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import tarndb
from tarndb.api.tokens import TokenStore


def _lake(path: Path) -> dict[str, str]:
    db = tarndb.open(str(path))
    try:
        for ws in ("ws1", "ws2"):
            db.execute(f'CREATE TABLE "{ws}"."agent_memory" (run_id TEXT PRIMARY KEY, '
                       "task TEXT, conversations JSONB)")
            db.execute(f'INSERT INTO "{ws}"."agent_memory" VALUES ($1, $2, $3)',
                       [f"{ws}-run", f"fix the login bug in {ws}", '[{"role": "user"}]'])
        store = TokenStore(db.catalog)
        return {
            "read1": store.create(org="default", role="read", workspaces=["ws1"])[0],
            "write1": store.create(org="default", role="write", workspaces=["ws1"])[0],
        }
    finally:
        db.close()


def _mcp(lake: Path, token: str, workspace: str, calls: list[tuple[str, dict[str, Any]]]
         ) -> tuple[int, list[dict[str, Any]], str]:
    msgs = [{"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {}}]
    msgs += [{"jsonrpc": "2.0", "id": i + 1, "method": "tools/call",
              "params": {"name": name, "arguments": args}}
             for i, (name, args) in enumerate(calls)]
    env = dict(os.environ, TARNDB_MCP_TOKEN=token)
    proc = subprocess.run(
        [sys.executable, "-m", "tarndb", "mcp", "--data", str(lake), "--workspace", workspace],
        input="".join(json.dumps(m) + "\n" for m in msgs), capture_output=True, text=True,
        env=env, timeout=120)
    answers = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return proc.returncode, [a["result"] for a in answers if a.get("id")], proc.stderr


def _rows(lake: Path, ws: str) -> list[tuple[Any, ...]]:
    db = tarndb.open(str(lake))
    try:
        return db.execute(f'SELECT run_id, task FROM "{ws}"."agent_memory" ORDER BY run_id').rows
    finally:
        db.close()


def test_mcp_tools_are_held_to_the_token(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    tokens = _lake(lake)
    before = {ws: _rows(lake, ws) for ws in ("ws1", "ws2")}

    # read token, own workspace: reading works, writing is refused
    rc, results, _ = _mcp(lake, tokens["read1"], "ws1", [
        ("replay_run", {"run_id": "ws1-run"}),
        ("remember", {"task": "a new memory", "conversation": []}),
    ])
    assert rc == 0
    assert results[0]["isError"] is False and "user" in results[0]["content"][0]["text"]
    assert results[1]["isError"] is True
    assert "read-only" in results[1]["content"][0]["text"]

    # either token, another workspace: refused before any tool runs
    for tok in ("read1", "write1"):
        rc, results, err = _mcp(lake, tokens[tok], "ws2", [
            ("replay_run", {"run_id": "ws2-run"}),
            ("remember", {"task": "planted", "conversation": []}),
        ])
        assert rc == 2 and results == [] and 'permission denied for schema "ws2"' in err

    # a token that is not one
    rc, results, err = _mcp(lake, "tdb_not_a_real_token_at_all", "ws1",
                            [("replay_run", {"run_id": "ws1-run"})])
    assert rc == 2 and results == [] and "not valid" in err
    assert {ws: _rows(lake, ws) for ws in ("ws1", "ws2")} == before  # nothing changed

    # the write token writes its own workspace only
    rc, results, _ = _mcp(lake, tokens["write1"], "ws1",
                          [("remember", {"task": "a new memory", "conversation": []})])
    assert rc == 0 and results[0]["isError"] is False
    assert len(_rows(lake, "ws1")) == 2 and _rows(lake, "ws2") == before["ws2"]
