"""A Model Context Protocol server for agent memory: ``tarndb mcp`` (stdio transport).

Speaks MCP's JSON-RPC 2.0 over stdin/stdout, one message per line, with the three memory
tools (``search_memory``, ``remember``, ``replay_run``). Written against the protocol itself
so it needs no extra package; any MCP client (Claude Desktop, Cursor, the ``mcp`` SDK) can
launch it as a command.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import IO, Any

from ..errors import InsufficientPrivilege, InvalidPassword, TarnError

PROTOCOL_VERSION = "2025-06-18"

TOOL_SCHEMAS: dict[str, dict[str, Any]] = {
    "search_memory": {
        "description": "Search past agent runs. mode: 'hybrid' (default), 'vector' for "
                       "paraphrases, 'bm25' for exact identifiers and error messages.",
        "inputSchema": {"type": "object", "properties": {
            "query": {"type": "string"},
            "mode": {"type": "string", "enum": ["hybrid", "vector", "bm25"]},
            "k": {"type": "integer", "minimum": 1, "maximum": 100}},
            "required": ["query"]}},
    "remember": {
        "description": "Save a finished run (task and conversation) to memory; returns its "
                       "run_id.",
        "inputSchema": {"type": "object", "properties": {
            "task": {"type": "string"},
            "conversation": {"type": "array", "items": {"type": "object"}},
            "agent": {"type": "string"}},
            "required": ["task"]}},
    "replay_run": {
        "description": "The exact stored conversation of a past run, by run_id.",
        "inputSchema": {"type": "object", "properties": {"run_id": {"type": "string"}},
                        "required": ["run_id"]}},
}


class MCPServer:
    def __init__(self, tools: list[Callable[..., Any]], name: str = "tarndb-memory") -> None:
        self.tools = {t.__name__: t for t in tools}
        self.name = name

    def handle(self, msg: dict[str, Any]) -> dict[str, Any] | None:
        """One JSON-RPC message in, its response out (``None`` for notifications)."""
        method = msg.get("method")
        mid = msg.get("id")
        if mid is None:
            return None  # notifications (initialized, cancelled) need no answer
        try:
            result = self._dispatch(str(method), msg.get("params") or {})
        except _RPCError as e:
            return {"jsonrpc": "2.0", "id": mid, "error": {"code": e.code, "message": str(e)}}
        return {"jsonrpc": "2.0", "id": mid, "result": result}

    def _dispatch(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        if method == "initialize":
            from .. import __version__

            return {"protocolVersion": params.get("protocolVersion") or PROTOCOL_VERSION,
                    "capabilities": {"tools": {"listChanged": False}},
                    "serverInfo": {"name": self.name, "version": __version__}}
        if method == "ping":
            return {}
        if method == "tools/list":
            return {"tools": [{"name": n, **TOOL_SCHEMAS[n]} for n in self.tools
                              if n in TOOL_SCHEMAS]}
        if method == "tools/call":
            name = params.get("name")
            fn = self.tools.get(str(name))
            if fn is None:
                raise _RPCError(-32602, f"unknown tool: {name}")
            try:
                out = fn(**(params.get("arguments") or {}))
            except (TarnError, TypeError, ValueError) as e:
                msg = e.message if isinstance(e, TarnError) else str(e)
                return {"content": [{"type": "text", "text": msg}], "isError": True}
            text = json.dumps(out, default=str, ensure_ascii=False)
            return {"content": [{"type": "text", "text": text}],
                    "structuredContent": {"result": out} if not isinstance(out, dict) else out,
                    "isError": False}
        raise _RPCError(-32601, f"method not found: {method}")

    def serve(self, stdin: IO[str], stdout: IO[str]) -> None:
        for line in stdin:
            if not line.strip():
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                resp: dict[str, Any] | None = {
                    "jsonrpc": "2.0", "id": None,
                    "error": {"code": -32700, "message": "parse error"}}
            else:
                resp = self.handle(msg) if isinstance(msg, dict) else {
                    "jsonrpc": "2.0", "id": None,
                    "error": {"code": -32600, "message": "invalid request"}}
            if resp is not None:
                stdout.write(json.dumps(resp, default=str) + "\n")
                stdout.flush()


class _RPCError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def add_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Mount ``tarndb mcp`` (an MCP stdio server over a lake's agent memory)."""
    from .. import settings as S

    p = subparsers.add_parser("mcp", help="serve agent memory to MCP clients over stdio")
    S.add_arguments(p, "ingest")  # --data
    p.add_argument("--workspace", default=os.environ.get("TARNDB_WORKSPACE", "public"))
    p.add_argument("--table", default="agent_memory", help="memory table")
    p.add_argument("--source", default="agent_traces", help="trace table it is built from")
    p.add_argument("--model", default=None, help="embedding model (workspace default)")
    p.add_argument("--token", default=os.environ.get("TARNDB_MCP_TOKEN"),
                   help="run the tools as this API token (its workspaces, read or write); "
                        "without it they run as the lake's owner [env TARNDB_MCP_TOKEN]")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    import tarndb

    from .. import settings as S
    from . import Memory

    db = tarndb.open(S.resolve(args).data)
    try:
        factory = token_sessions(db, args.token, args.workspace) if args.token else None
        mem = Memory(db, table=args.table, workspace=args.workspace, source=args.source,
                     model=args.model, session_factory=factory)
        MCPServer(mem.tools()).serve(sys.stdin, sys.stdout)
    except TarnError as e:
        print(f"tarndb mcp: {e.message}", file=sys.stderr)
        return 2
    finally:
        db.close()
    return 0


def token_sessions(db: Any, token: str, workspace: str) -> Callable[[], Any]:
    """Sessions held to what ``token`` may do: its workspaces, read-only for a read token,
    a non-superuser role, the same privilege checks as over HTTP and Postgres."""
    from ..api.tokens import TokenStore
    from ..pgwire import roles

    found = TokenStore(db.catalog).authenticate(token)
    if found is None:
        raise InvalidPassword("the API token is not valid (revoked, or never issued)")
    if not found.allows_workspace(workspace):
        raise InsufficientPrivilege(f'permission denied for schema "{workspace}"')
    roles.install(db)
    allowed = None if found.workspaces is None else set(found.workspaces)
    user = roles.token_role(found)
    read_only = not found.has_role("write")
    return lambda: db.session(workspace=workspace, user=user, allowed_workspaces=allowed,
                              read_only=read_only)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tarndb")
    sub = parser.add_subparsers(dest="command", required=True)
    add_cli(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
