"""Users and roles, kept in the catalog as ``role`` objects.

A role object is ``{"name", "verifier", "superuser", "login", "oid"}`` where ``verifier`` is a
SCRAM-SHA-256 verifier (see :mod:`.scram`) or None (a role that cannot log in with a password).

:func:`execute_role_statement` runs ``CREATE ROLE/USER``, ``ALTER ROLE/USER`` and
``DROP ROLE/USER``; the SQL engine (or the wire protocol, when the engine refuses them) calls it.
"""

from __future__ import annotations

import re
import secrets
import zlib
from typing import Any

from ..engine.result import Result
from ..errors import DuplicateObject, InsufficientPrivilege, UndefinedObject
from . import scram

KIND = "role"
SUPERUSER = "postgres"
#: pg_authid OID of the bootstrap superuser in PostgreSQL.
SUPERUSER_OID = 10

_ROLE_STMT = re.compile(r"^\s*(create|alter|drop)\s+(role|user)\b", re.IGNORECASE)


def role_oid(name: str) -> int:
    """A stable OID for a role (10 for the superuser, as in PostgreSQL)."""
    if name == SUPERUSER:
        return SUPERUSER_OID
    # Above 2**30, apart from table OIDs (a counter from 16384), like pgcatalog.stable_oid.
    return (1 << 30) + zlib.crc32("\x1f".join(("role", name)).encode()) % (1 << 30)


def get_role(db: Any, name: str) -> dict[str, Any] | None:
    obj = db.catalog.get_object(KIND, name)
    return dict(obj) if obj is not None else None


def list_roles(db: Any) -> dict[str, dict[str, Any]]:
    return {k: dict(v) for k, v in db.catalog.list_objects(KIND).items()}


def _verifier_for(password: str | None) -> str | None:
    if password is None:
        return None
    # psql's \password and some tools send an already hashed verifier; keep it as is.
    if password.startswith(scram.MECHANISM + "$") and scram.is_verifier(password):
        return password
    return scram.make_verifier(password)


def create_role(db: Any, name: str, password: str | None = None, *, superuser: bool = False,
                login: bool = True, if_not_exists: bool = False) -> dict[str, Any]:
    if get_role(db, name) is not None:
        if if_not_exists:
            return get_role(db, name) or {}
        raise DuplicateObject(f'role "{name}" already exists')
    obj = {"name": name, "verifier": _verifier_for(password), "superuser": superuser,
           "login": login, "oid": role_oid(name)}
    db.catalog.put_object(KIND, name, obj)
    return obj


def set_password(db: Any, name: str, password: str | None) -> None:
    obj = get_role(db, name)
    if obj is None:
        raise UndefinedObject(f'role "{name}" does not exist')
    obj["verifier"] = _verifier_for(password)
    db.catalog.put_object(KIND, name, obj)


def drop_role(db: Any, name: str, *, missing_ok: bool = False) -> None:
    if get_role(db, name) is None:
        if missing_ok:
            return
        raise UndefinedObject(f'role "{name}" does not exist')
    if name == SUPERUSER:
        raise InsufficientPrivilege(f'cannot drop role "{name}": it is the bootstrap superuser')
    db.catalog.delete_object(KIND, name)


def ensure_superuser(db: Any, password: str | None = None) -> str | None:
    """Make sure the ``postgres`` superuser exists.

    With ``password`` (``TARNDB_PASSWORD``) the role gets that password (updated when it
    changed). Without one, a first start generates a password and returns it so the caller
    prints it once; later starts return None.
    """
    existing = get_role(db, SUPERUSER)
    if existing is None:
        generated = None
        if password is None:
            generated = password = secrets.token_urlsafe(18)
        create_role(db, SUPERUSER, password, superuser=True)
        return generated
    if password is not None:
        v = existing.get("verifier")
        if not v or not scram.check_password(v, password):
            set_password(db, SUPERUSER, password)
    return None


def is_role_statement(sql: str) -> bool:
    """Cheap test (no parsing) for CREATE/ALTER/DROP ROLE/USER."""
    return bool(_ROLE_STMT.match(sql))


def _opts(stmt: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for node in stmt.options:
        d = node.def_elem
        if not d.HasField("arg"):
            out[d.defname] = None
            continue
        arg = d.arg
        which = arg.WhichOneof("node")
        if which == "string":
            out[d.defname] = arg.string.sval
        elif which == "boolean":
            out[d.defname] = arg.boolean.boolval
        elif which == "integer":
            out[d.defname] = arg.integer.ival
        else:
            out[d.defname] = None
    return out


def _require_superuser(db: Any, current_user: str | None) -> None:
    if current_user is None:
        return  # embedded use: whoever holds the Database is the owner
    role = get_role(db, current_user)
    if role is None or not role.get("superuser"):
        raise InsufficientPrivilege("permission denied to manage roles")


def create_role_stmt(db: Any, s: Any, current_user: str | None) -> Result:
    """CREATE ROLE/USER from its parse node (postgast ``CreateRoleStmt``)."""
    opts = _opts(s)
    _require_superuser(db, current_user)
    from postgast import pg_query_pb2 as pb

    # CREATE USER implies LOGIN; CREATE ROLE does not.
    is_user = s.stmt_type == pb.ROLESTMT_USER
    create_role(db, s.role, opts.get("password"), superuser=bool(opts.get("superuser")),
                login=bool(opts.get("canlogin", is_user)))
    return Result(command="CREATE ROLE")


def alter_role_stmt(db: Any, s: Any, current_user: str | None) -> Result:
    """ALTER ROLE/USER from its parse node (``AlterRoleStmt``)."""
    from postgast import pg_query_pb2 as pb

    name = s.role.rolename
    if s.role.roletype in (pb.ROLESPEC_CURRENT_USER, pb.ROLESPEC_SESSION_USER,
                           pb.ROLESPEC_CURRENT_ROLE):
        name = current_user or SUPERUSER
    opts = _opts(s)
    # Anyone may change their own password; everything else needs a superuser.
    if name != current_user or set(opts) - {"password"}:
        _require_superuser(db, current_user)
    obj = get_role(db, name)
    if obj is None:
        raise UndefinedObject(f'role "{name}" does not exist')
    if "password" in opts:
        obj["verifier"] = _verifier_for(opts["password"])
    if "superuser" in opts:
        obj["superuser"] = bool(opts["superuser"])
    if "canlogin" in opts:
        obj["login"] = bool(opts["canlogin"])
    db.catalog.put_object(KIND, name, obj)
    return Result(command="ALTER ROLE")


def drop_role_stmt(db: Any, s: Any, current_user: str | None) -> Result:
    """DROP ROLE/USER from its parse node (``DropRoleStmt``)."""
    _require_superuser(db, current_user)
    for r in s.roles:
        name = r.role_spec.rolename
        if name == current_user:
            raise InsufficientPrivilege("current user cannot be dropped")
        drop_role(db, name, missing_ok=s.missing_ok)
    return Result(command="DROP ROLE")


_HANDLERS = {
    "create_role_stmt": create_role_stmt,
    "alter_role_stmt": alter_role_stmt,
    "drop_role_stmt": drop_role_stmt,
}


def install(db: Any) -> None:
    """Register the role statements with the engine (``Database.statement_hooks``), so every
    front end (Postgres protocol, HTTP, embedded) runs them the same way."""
    hooks = getattr(db, "statement_hooks", None)
    if not isinstance(hooks, dict):
        return
    for kind, fn in _HANDLERS.items():
        hooks.setdefault(kind, _hook(fn))


def _hook(fn: Any) -> Any:
    def run(session: Any, node: Any, params: Any) -> Result:
        result: Result = fn(session.db, node, getattr(session, "user", None))
        return result
    return run


def execute_role_statement(db: Any, sql: str, current_user: str | None = None) -> Result | None:
    """Run a role statement given as SQL; None when ``sql`` is not one."""
    if not is_role_statement(sql):
        return None
    import postgast

    parsed = postgast.parse(sql)
    if len(parsed.stmts) != 1:
        return None
    stmt = parsed.stmts[0].stmt
    which = stmt.WhichOneof("node")
    handler = _HANDLERS.get(which or "")
    if handler is None:
        return None
    result: Result = handler(db, getattr(stmt, which or ""), current_user)
    return result
