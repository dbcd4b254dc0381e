"""``tarndb mcp``: an MCP client's conversation with the server process over stdio."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import tarndb

pytest.importorskip("sentence_transformers", reason="needs tarndb[embeddings]")
TRAJ = Path(__file__).resolve().parents[3] / "shared" / "data" / "swe_agent_trajectories"


def test_mcp_stdio_session(tmp_path: Path) -> None:
    if not (TRAJ / "manifest.jsonl").is_file():
        pytest.skip("shared/data/swe_agent_trajectories is not present")
    from tarndb.ingest import ingest_traces
    from tarndb.memory import Memory

    lake = tmp_path / "lake"
    db = tarndb.open(str(lake))
    ingest_traces(db, TRAJ, table="agent_traces", workspace="ws", progress=False)
    Memory(db, workspace="ws").build()
    db.close()

    proc = subprocess.Popen([sys.executable, "-m", "tarndb.memory.mcp", "mcp", "--data",
                             str(lake), "--workspace", "ws"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stdout is not None

    def call(mid: int, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": mid, "method": method,
                                     "params": params or {}}) + "\n")
        proc.stdin.flush()
        resp = json.loads(proc.stdout.readline())
        assert resp["id"] == mid
        return resp

    try:
        init = call(1, "initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                      "clientInfo": {"name": "test", "version": "0"}})
        assert init["result"]["capabilities"]["tools"] is not None
        proc.stdin.write(json.dumps({"jsonrpc": "2.0",
                                     "method": "notifications/initialized"}) + "\n")
        tools = call(2, "tools/list")["result"]["tools"]
        assert {t["name"] for t in tools} == {"search_memory", "remember", "replay_run"}
        hits = call(3, "tools/call", {"name": "search_memory", "arguments": {
            "query": "pydicom PixelRepresentation optional", "mode": "bm25", "k": 2}})
        found = json.loads(hits["result"]["content"][0]["text"])
        assert found[0]["episode"] == "pydicom__pydicom-1458"
        rid = json.loads(call(4, "tools/call", {"name": "remember", "arguments": {
            "task": "Cache the parsed config", "conversation": [
                {"role": "user", "content": "config parsing is slow"}]}})["result"]
            ["content"][0]["text"])
        replay = call(5, "tools/call", {"name": "replay_run", "arguments": {"run_id": rid}})
        assert json.loads(replay["result"]["content"][0]["text"]) == [
            {"role": "user", "content": "config parsing is slow"}]
        bad = call(6, "tools/call", {"name": "search_memory", "arguments": {
            "query": "x", "mode": "fuzzy"}})
        assert bad["result"]["isError"] is True
        assert call(7, "no/such")["error"]["code"] == -32601
    finally:
        proc.stdin.close()
        proc.wait(30)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
