"""Users and roles, kept in the catalog as ``role`` objects.

A role object is ``{"name", "verifier", "superuser", "createrole", "login", "oid"}`` where
``verifier`` is a SCRAM-SHA-256 verifier (see :mod:`.scram`) or None (a role that cannot log in
with a password).

:func:`execute_role_statement` runs ``CREATE ROLE/USER``, ``ALTER ROLE/USER`` and
``DROP ROLE/USER``; the SQL engine (or the wire protocol, when the engine refuses them) calls it.

Privileges follow PostgreSQL: managing roles needs a superuser or a role with CREATEROLE, and
only a superuser creates, alters or drops superusers or grants SUPERUSER/CREATEROLE-free
escalation. Sessions made for an API token run as :func:`token_role` (a non-superuser role
named ``pg_token_<id>``, which no ``CREATE ROLE`` can make since ``pg_`` names are reserved),
except an unscoped admin token, which runs as the ``postgres`` superuser.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import weakref
import zlib
from typing import Any

from ..engine.result import Result
from ..errors import (
    DependentObjectsStillExist,
    DuplicateObject,
    InsufficientPrivilege,
    InvalidParameterValue,
    ReservedName,
    UndefinedObject,
)
from . import scram

KIND = "role"
SUPERUSER = "postgres"
#: pg_authid OID of the bootstrap superuser in PostgreSQL.
SUPERUSER_OID = 10
#: Sessions of API tokens run as ``pg_token_<token id>`` (``pg_`` names are reserved).
TOKEN_ROLE_PREFIX = "pg_token_"


def token_role(token: Any) -> str:
    """The role a session authenticated by API ``token`` runs as: the ``postgres`` superuser
    for an admin token over every workspace, else a non-superuser ``pg_token_<id>``."""
    if getattr(token, "role", None) == "admin" and getattr(token, "workspaces", ()) is None:
        return SUPERUSER
    return TOKEN_ROLE_PREFIX + str(token.id)


def is_superuser(db: Any, user: str | None) -> bool:
    """Whether ``user`` is a superuser role (None: the embedded owner, who is)."""
    if user is None:
        return True
    if user.startswith(TOKEN_ROLE_PREFIX):
        return False
    role = get_role(db, user)
    if role is None:
        # Embedded use before any server made the role: "postgres" is the owner.
        return user == SUPERUSER
    return bool(role.get("superuser"))


def has_createrole(db: Any, user: str | None) -> bool:
    if is_superuser(db, user):
        return True
    role = get_role(db, user or "") if user and not user.startswith(TOKEN_ROLE_PREFIX) else None
    return bool(role and role.get("createrole"))

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


def _check_name(name: str) -> None:
    if name.lower().startswith("pg_"):
        raise ReservedName(f'role name "{name}" is reserved',
                           detail='Role names starting with "pg_" are reserved.')
    if not name:
        raise InvalidParameterValue("a role name cannot be empty")


def create_role(db: Any, name: str, password: str | None = None, *, superuser: bool = False,
                login: bool = True, if_not_exists: bool = False,
                createrole: bool = False) -> dict[str, Any]:
    _check_name(name)
    if get_role(db, name) is not None:
        if if_not_exists:
            return get_role(db, name) or {}
        raise DuplicateObject(f'role "{name}" already exists')
    obj = {"name": name, "verifier": _verifier_for(password), "superuser": superuser,
           "createrole": createrole, "login": login, "oid": role_oid(name)}
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


_mock_keys: weakref.WeakKeyDictionary[Any, bytes] = weakref.WeakKeyDictionary()


def mock_auth_key(db: Any) -> bytes:
    """A random secret kept on the lake (so every server over it, and every restart, shows
    an unknown user name the same SCRAM salt; see :func:`.scram.mock_salt`)."""
    try:
        return _mock_keys[db]
    except (KeyError, TypeError):
        pass
    obj = db.catalog.get_object("secret", "mock_auth")
    if obj is None:
        db.catalog.put_object("secret", "mock_auth", {"key": secrets.token_hex(32)})
        obj = db.catalog.get_object("secret", "mock_auth") or {}
    key = bytes.fromhex(str(obj["key"]))
    with contextlib.suppress(TypeError):
        _mock_keys[db] = key
    return key


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


def _denied(action: str, detail: str) -> InsufficientPrivilege:
    return InsufficientPrivilege(f"permission denied to {action} role", detail=detail)


def create_role_stmt(db: Any, s: Any, current_user: str | None) -> Result:
    """CREATE ROLE/USER from its parse node (postgast ``CreateRoleStmt``)."""
    opts = _opts(s)
    if not has_createrole(db, current_user):
        raise _denied("create", "Only roles with the CREATEROLE attribute may create roles.")
    if opts.get("superuser") and not is_superuser(db, current_user):
        raise _denied("create", "Only roles with the SUPERUSER attribute may create roles "
                      "with the SUPERUSER attribute.")
    from postgast import pg_query_pb2 as pb

    # CREATE USER implies LOGIN; CREATE ROLE does not.
    is_user = s.stmt_type == pb.ROLESTMT_USER
    create_role(db, s.role, opts.get("password"), superuser=bool(opts.get("superuser")),
                login=bool(opts.get("canlogin", is_user)),
                createrole=bool(opts.get("createrole")))
    return Result(command="CREATE ROLE")


def alter_role_stmt(db: Any, s: Any, current_user: str | None) -> Result:
    """ALTER ROLE/USER from its parse node (``AlterRoleStmt``)."""
    from postgast import pg_query_pb2 as pb

    name = s.role.rolename
    if s.role.roletype in (pb.ROLESPEC_CURRENT_USER, pb.ROLESPEC_SESSION_USER,
                           pb.ROLESPEC_CURRENT_ROLE):
        name = current_user or SUPERUSER
    opts = _opts(s)
    obj = get_role(db, name)
    su = is_superuser(db, current_user)
    if not su:
        if obj is not None and obj.get("superuser"):
            raise _denied("alter", "Only roles with the SUPERUSER attribute may alter roles "
                          "with the SUPERUSER attribute.")
        if "superuser" in opts:
            raise _denied("alter", "Only roles with the SUPERUSER attribute may change the "
                          "SUPERUSER attribute.")
        # Anyone may change their own password; everything else needs CREATEROLE.
        own_password = name == current_user and not set(opts) - {"password"}
        if not own_password and not has_createrole(db, current_user):
            raise _denied("alter", "Only roles with the CREATEROLE attribute may alter "
                          "roles.")
    if obj is None:
        raise UndefinedObject(f'role "{name}" does not exist')
    if "password" in opts:
        obj["verifier"] = _verifier_for(opts["password"])
    if "superuser" in opts:
        if name == SUPERUSER and not opts["superuser"]:
            raise InsufficientPrivilege(f'permission denied to alter role "{name}"',
                                        detail="The bootstrap superuser must have the "
                                        "SUPERUSER attribute.")
        obj["superuser"] = bool(opts["superuser"])
    if "createrole" in opts:
        obj["createrole"] = bool(opts["createrole"])
    if "canlogin" in opts:
        obj["login"] = bool(opts["canlogin"])
    db.catalog.put_object(KIND, name, obj)
    return Result(command="ALTER ROLE")


def drop_role_stmt(db: Any, s: Any, current_user: str | None) -> Result:
    """DROP ROLE/USER from its parse node (``DropRoleStmt``)."""
    if not has_createrole(db, current_user):
        raise _denied("drop", "Only roles with the CREATEROLE attribute and the ADMIN option "
                      "on the target roles may drop roles.")
    su = is_superuser(db, current_user)
    for r in s.roles:
        name = r.role_spec.rolename
        if name == current_user:
            raise InsufficientPrivilege("current user cannot be dropped")
        target = get_role(db, name)
        if target is not None and target.get("superuser") and not su:
            raise _denied("drop", "Only roles with the SUPERUSER attribute may drop roles "
                          "with the SUPERUSER attribute.")
        if target is not None:
            from . import acl  # (acl imports this module)

            # Grants name the role: dropped with it, a role made later under the name would
            # hold them. PostgreSQL refuses until they are revoked (or DROP OWNED BY).
            held = acl.privileges_held(db, name)
            if held:
                raise DependentObjectsStillExist(
                    f'role "{name}" cannot be dropped because some objects depend on it',
                    detail="\n".join(held))
        drop_role(db, name, missing_ok=s.missing_ok)
    return Result(command="DROP ROLE")


def drop_owned_stmt(db: Any, s: Any, current_user: str | None) -> Result:
    """``DROP OWNED BY role, ...``: revokes every privilege granted to the roles (they own
    no objects: only the bootstrap superuser creates them). A superuser, or the role itself,
    may run it, as PostgreSQL requires the privileges of the role."""
    names = [r.role_spec.rolename for r in s.roles]
    for name in names:
        if get_role(db, name) is None:
            raise UndefinedObject(f'role "{name}" does not exist')
        if name != current_user and not is_superuser(db, current_user):
            raise InsufficientPrivilege(
                "permission denied to drop objects",
                detail=f'Only roles with privileges of role "{name}" may drop objects owned '
                       "by it.")
    from . import acl  # (acl imports this module)

    for name in names:
        acl.revoke_all_from(db, name)
    return Result(command="DROP OWNED")


def grant_role_stmt(db: Any, s: Any, current_user: str | None) -> Result:
    """GRANT/REVOKE role membership (``GrantRoleStmt``): not supported; refused with 42501
    for those who could not grant it anyway."""
    if not has_createrole(db, current_user):
        raise InsufficientPrivilege("permission denied to grant role",
                                    detail="Only roles with the CREATEROLE attribute may "
                                    "grant roles.")
    from ..errors import FeatureNotSupported

    raise FeatureNotSupported("role membership (GRANT role TO role) is not supported by "
                              "tarndb")


def set_role(session: Any, node: Any, params: Any) -> Result:  # noqa: ARG001
    """``SET ROLE``, ``SET SESSION AUTHORIZATION`` and their RESETs (``VariableSetStmt``).

    The session user (the one that logged in) is kept on the session as ``login_user``;
    ``SET ROLE r`` needs that user to be a superuser or ``r`` itself, ``SET SESSION
    AUTHORIZATION`` needs a superuser, as in PostgreSQL. A granted switch changes
    ``session.user`` (what ``current_user`` and the role checks see)."""
    from postgast import pg_query_pb2 as pb

    db = session.db
    login = getattr(session, "login_user", None) or session.user
    setattr(session, "login_user", login)  # noqa: B010 - a plain attribute on the session
    name = node.name.lower()
    word = "RESET" if node.kind in (pb.VAR_RESET, pb.VAR_RESET_ALL) else "SET"
    target: str | None = None
    if node.kind == pb.VAR_SET_VALUE and node.args:
        from ..sql import ast

        target = str(ast.const_value(node.args[0]))
    if target is None or (name == "role" and target.lower() == "none"):
        session.user = login
        session.settings[name] = "none" if name == "role" else login
        _set_acl_role(session, login)
        return Result(command=word)
    if name == "session_authorization":
        if not is_superuser(db, login):
            raise InsufficientPrivilege("permission denied to set session authorization")
    elif target != login and not is_superuser(db, login):
        raise InsufficientPrivilege(f'permission denied to set role "{target}"')
    if get_role(db, target) is None:
        raise InvalidParameterValue(f'role "{target}" does not exist')
    session.user = target
    session.settings[name] = target
    _set_acl_role(session, target)
    return Result(command="SET")


def acl_role_for(db: Any, user: str) -> str | None:
    """The role whose GRANTs a session of ``user`` is checked against (acl.py): None for
    superusers and API-token roles (limited by their token instead)."""
    if user.startswith(TOKEN_ROLE_PREFIX) or is_superuser(db, user):
        return None
    return user


def _set_acl_role(session: Any, user: str) -> None:
    setattr(session, "acl_role", acl_role_for(session.db, user))  # noqa: B010


_HANDLERS = {
    "create_role_stmt": create_role_stmt,
    "alter_role_stmt": alter_role_stmt,
    "drop_role_stmt": drop_role_stmt,
    "grant_role_stmt": grant_role_stmt,
    "drop_owned_stmt": drop_owned_stmt,
}


def install(db: Any) -> None:
    """Register the role statements with the engine (``Database.statement_hooks``), so every
    front end (Postgres protocol, HTTP, embedded) runs them the same way."""
    hooks = getattr(db, "statement_hooks", None)
    if not isinstance(hooks, dict):
        return
    for kind, fn in _HANDLERS.items():
        hooks.setdefault(kind, _hook(fn))
    hooks.setdefault("set_role", set_role)
    engines = getattr(db, "engines", None)
    if engines is not None:  # who may raise temp_file_limit & co. (engine/limits.py)
        engines.is_superuser = lambda user: is_superuser(db, user)
    from . import acl

    # GRANT/REVOKE on tables and schemas, and the check of every statement of a role that is
    # not a superuser (see acl.py).
    hooks.setdefault("grant_stmt", acl.grant_stmt)
    hooks.setdefault("check_privileges", acl.check_statement)
    hooks.setdefault("column_changed", acl.column_changed)
    # the columns a role's reads see when it holds column grants only (engine/scan.py)
    db.column_mask = acl.column_mask


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
