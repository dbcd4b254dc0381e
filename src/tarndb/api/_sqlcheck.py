"""What a token may run: read-only tokens only read, scoped tokens only touch their workspaces.

The check parses the statement with libpg_query (postgast) before it reaches the engine. Only
restricted tokens pay for the parse; long numeric lists (inline embeddings) are collapsed first
because they cannot change what a statement does and cost far more to parse than the rest.
"""

from __future__ import annotations

import re
from typing import Any

import postgast
from postgast import pg_query_pb2 as pb

from ..errors import InsufficientPrivilege
from .tokens import Token

_NUM = r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+\-]?\d+)?"
# 32+ comma-separated numbers; the replacement has no quote or comment characters, so the
# tokens around it are unchanged even when the list sits inside a string or a comment.
_NUM_LIST = re.compile(rf"{_NUM}(?:\s*,\s*{_NUM}){{31,}}")

_READ_TOP = (pb.SelectStmt, pb.VariableShowStmt, pb.ExplainStmt, pb.TransactionStmt,
             pb.VariableSetStmt)
_WRITE_NODES = (pb.InsertStmt, pb.UpdateStmt, pb.DeleteStmt, pb.MergeStmt, pb.IntoClause,
                pb.LockingClause)
# Functions that change state although called from a SELECT.
_WRITE_FUNCS = {"nextval", "setval", "set_config", "pg_advisory_lock", "lo_import",
                "lo_export", "lo_unlink", "pg_terminate_backend", "pg_cancel_backend"}
_SYSTEM_SCHEMAS = {"pg_catalog", "information_schema"}


def _funcname(node: Any) -> str:
    parts = [n.string.sval for n in node.funcname if n.HasField("string")]
    return parts[-1].lower() if parts else ""


def check_statement(sql: str, token: Token, workspace: str) -> None:
    """Raise :class:`InsufficientPrivilege` if ``token`` may not run ``sql`` in ``workspace``."""
    read_only = not token.has_role("write")
    scoped = token.workspaces is not None
    if not read_only and not scoped:
        return
    from ..sql.ast import parse

    tree = parse(_NUM_LIST.sub("0", sql))  # SyntaxError_, or 54000 when nested too deeply
    for raw in tree.stmts:
        kind = raw.stmt.WhichOneof("node")
        stmt = getattr(raw.stmt, kind) if kind else None
        if read_only and not isinstance(stmt, _READ_TOP):
            raise InsufficientPrivilege(
                f"token {token.id} has the read role and cannot run {type(stmt).__name__}")
        if isinstance(stmt, pb.VariableSetStmt) and scoped and stmt.name.lower() == "search_path":
            raise InsufficientPrivilege("a workspace-scoped token cannot change search_path")
    for _, node in postgast.walk(tree):
        if read_only and isinstance(node, _WRITE_NODES):
            raise InsufficientPrivilege(
                f"token {token.id} has the read role and cannot modify data")
        if isinstance(node, pb.FuncCall):
            name = _funcname(node)
            if (read_only and name in _WRITE_FUNCS) or (scoped and name == "set_config"):
                raise InsufficientPrivilege(f"token {token.id} cannot call {name}()")
        if scoped and isinstance(node, pb.RangeVar):
            schema = node.schemaname or ""
            if schema and schema not in _SYSTEM_SCHEMAS and not token.allows_workspace(schema):
                raise InsufficientPrivilege(
                    f'token {token.id} has no access to workspace "{schema}"')
