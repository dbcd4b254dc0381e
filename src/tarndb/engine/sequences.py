"""Sequences: standalone ones (``CREATE SEQUENCE``) and those of serial columns, with
``nextval`` / ``currval`` / ``setval`` / ``lastval``.

A serial column's sequence is named as PostgreSQL names it (``<table>_<column>_seq``) and
has no definition of its own. A standalone sequence is a catalog object (kind ``seqdef``,
key ``workspace.name``) with PostgreSQL's options (type, increment, bounds, start, cache,
cycle, owner column); its state (``last``, ``called``: PostgreSQL's ``last_value`` and
``is_called``) is a second catalog object (kind ``sequence``, key ``sseq:<id>``).

Values are handed out as the serial columns' are: a server reserves a block of them by
moving the state forward under the lake-wide ``catalog`` lock, and the move is committed
before any value of the block is handed out. So servers sharing one lake never hand out one
value twice and a crash never reuses one (its unused block is a gap, as PostgreSQL's
pre-logged values are after a crash). Blocks start at ``max(CACHE, 32)`` values (32 is
PostgreSQL's ``SEQ_LOG_VALS``) and double, up to 1024, while they are used up within a
second. A server closed cleanly gives its unused values back when no other server reserved
after it. ``setval`` and ``ALTER SEQUENCE RESTART`` set the state as asked (values may then
repeat, as in PostgreSQL); blocks other servers hold are theirs to finish, as other
sessions' cached values are in PostgreSQL.

``currval`` and ``lastval`` are per session, as in PostgreSQL. ``CREATE``/``ALTER``/``DROP
SEQUENCE`` follow the transactional DDL of tables (published at COMMIT, undone by
ROLLBACK); ``nextval`` and ``setval`` are never rolled back.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
import weakref
from collections import deque
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, cast

import pyarrow as pa

from .. import errors as E
from ..storage.lakelock import lake_lock
from .result import Result
from .staged import StagedObjects
from .udf import remember_error

if TYPE_CHECKING:
    from .catalog import ColumnInfo, TableInfo
    from .database import Database
    from .session import Session

_INSTALLED = "_tarndb_sequence_functions"
#: Values reserved at a time at least (PostgreSQL pre-logs SEQ_LOG_VALS = 32), at most.
_MIN_BLOCK = 32
_MAX_BLOCK = 1024
#: (lowest, highest, SQL name) of the types a sequence may have.
TYPES = {"int2": (-2**15, 2**15 - 1, "smallint"), "int4": (-2**31, 2**31 - 1, "integer"),
         "int8": (-2**63, 2**63 - 1, "bigint")}
_TYPE_NAMES = {"int2": "int2", "smallint": "int2", "int4": "int4", "integer": "int4",
               "int": "int4", "int8": "int8", "bigint": "int8"}


@dataclass
class SeqDef:
    """A standalone sequence's definition, as ``CREATE``/``ALTER SEQUENCE`` made it."""

    workspace: str
    name: str
    id: str
    type: str = "int8"
    increment: int = 1
    min: int = 1
    max: int = 2**63 - 1
    start: int = 1
    cache: int = 1
    cycle: bool = False
    #: ``OWNED BY t.c``: [table, column] in the sequence's workspace, or None.
    owned_by: list[str] | None = None
    oid: int = 0

    @property
    def key(self) -> str:
        return f"sseq:{self.id}"

    @property
    def qualified(self) -> str:
        return f"{_qi(self.workspace)}.{_qi(self.name)}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> SeqDef:
        return cls(**d)


def _qi(name: str) -> str:
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


def split_name(name: str) -> list[str]:
    """``'s'``, ``'ws.s'``, ``'"My S"'`` as PostgreSQL reads a sequence name given as text:
    unquoted parts lower-cased."""
    out = []
    for quoted, plain in re.findall(r'"((?:[^"]|"")*)"|([^."]+)', name):
        out.append(quoted.replace('""', '"') if quoted else plain.strip().lower())
    return out or [name]


@dataclass
class _Block:
    values: deque[int]
    #: the state PostgreSQL would show now (before the first unused value)
    shown: dict[str, Any]
    #: the state this block left on the lake (given back at close if still the newest)
    end: dict[str, Any]
    shape: tuple[int, int, int, bool]


class _DbState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.blocks: dict[str, _Block] = {}
        self.sizes: dict[str, tuple[int, float]] = {}


_dbs: weakref.WeakKeyDictionary[Any, _DbState] = weakref.WeakKeyDictionary()
_dbs_lock = threading.Lock()
#: sessions by the id the rewritten calls carry; their currval values and lastval
_sessions: weakref.WeakValueDictionary[str, Session] = weakref.WeakValueDictionary()
_values: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()
#: uncommitted CREATE/ALTER/DROP SEQUENCE of a session's transaction (None: dropped)
_staged: StagedObjects[SeqDef] = StagedObjects()


def _state(db: Database) -> _DbState:
    with _dbs_lock:
        st = _dbs.get(db)
        if st is None:
            st = _dbs[db] = _DbState()
        return st


# -- finding sequences -------------------------------------------------------------------------

def _overlay_of(session: Any) -> dict[tuple[str, str], SeqDef | None] | None:
    return _staged.of(session)


def lookup(db: Database, session: Session | None, ws: str, name: str) -> SeqDef | None:
    """The standalone sequence ``ws.name`` as ``session`` sees it (its own DDL first)."""
    ov = _overlay_of(session)
    if ov and (ws, name) in ov:
        return ov[(ws, name)]
    spec = db.catalog.get_object("seqdef", f"{ws}.{name}")
    return SeqDef.from_json(spec) if spec is not None else None


def all_defs(db: Database, session: Session | None = None) -> list[SeqDef]:
    """Every standalone sequence (those of ``session``'s uncommitted DDL included)."""
    out = {(s["workspace"], s["name"]): SeqDef.from_json(s)
           for s in db.catalog.list_objects("seqdef").values()}
    for key, d in (_overlay_of(session) or {}).items():
        if d is None:
            out.pop(key, None)
        else:
            out[key] = d
    return sorted(out.values(), key=lambda d: (d.workspace, d.name))


def resolve(db: Database, session: Session | None, name: str, path: list[str]
            ) -> SeqDef | tuple[TableInfo, ColumnInfo]:
    """The sequence ``name`` names: a standalone one or a serial column's; 42P01, or 42501
    for a workspace the session may not use."""
    parts = split_name(name)
    if len(parts) >= 2:
        if session is not None:
            session.check_workspace(parts[-2])
        schemas = [parts[-2]]
    else:
        allowed = session.allowed_workspaces if session is not None else None
        schemas = [ws for ws in path if allowed is None or ws in allowed]
    seq = parts[-1]
    for fresh in (False, True):
        if fresh:  # another server may have just created it
            db.catalog.refresh(force=True)
        for ws in schemas:
            d = lookup(db, session, ws, seq)
            if d is not None:
                return d
            tables = session.all_tables() if session is not None else db.catalog.all_tables()
            for info in tables:
                if info.workspace != ws:
                    continue
                for col in info.columns:
                    if col.serial and f"{info.name}_{col.name}_seq" == seq:
                        return info, col
    raise E.UndefinedTable(f'relation "{name}" does not exist')


def find(db: Database, name: str, path: list[str]) -> tuple[TableInfo, ColumnInfo]:
    """The serial column whose sequence ``name`` (``seq`` or ``schema.seq``) is; 42P01."""
    found = resolve(db, None, name, path)
    if isinstance(found, SeqDef):
        raise E.UndefinedTable(f'relation "{name}" does not exist')
    return found


# -- values ------------------------------------------------------------------------------------

def _advance(d: SeqDef, last: int, called: bool, n: int) -> list[int]:
    """The next ``n`` values after state (``last``, ``called``); fewer at a bound without
    CYCLE."""
    out: list[int] = []
    v, c = last, called
    while len(out) < n:
        if not c:
            nv, c = v, True
        else:
            nv = v + d.increment
            if d.increment > 0 and nv > d.max:
                if not d.cycle:
                    break
                nv = d.min
            elif d.increment < 0 and nv < d.min:
                if not d.cycle:
                    break
                nv = d.max
        out.append(nv)
        v = nv
    return out


def _shape(d: SeqDef) -> tuple[int, int, int, bool]:
    return (d.increment, d.min, d.max, d.cycle)


def _stored(db: Database, d: SeqDef) -> dict[str, Any]:
    spec = db.catalog.get_object("sequence", d.key)
    return dict(spec) if spec is not None else {"last": d.start, "called": False}


def _reserve(db: Database, d: SeqDef, st: _DbState, want: int = 1) -> _Block:
    now = time.monotonic()
    size = max(d.cache, _MIN_BLOCK, min(want, 1 << 20))
    prev_size, prev_at = st.sizes.get(d.key, (0, 0.0))
    if now - prev_at < 1.0:
        size = max(size, min(prev_size * 2, _MAX_BLOCK))
    cat = db.catalog
    with cat._lock, lake_lock(cat.lake, "catalog"):
        cat.refresh(force=True)
        state = _stored(db, d)
        values = _advance(d, int(state["last"]), bool(state["called"]), size)
        if not values:
            which, bound = ("maximum", d.max) if d.increment > 0 else ("minimum", d.min)
            raise E.SequenceGeneratorLimitExceeded(
                f'nextval: reached {which} value of sequence "{d.name}" ({bound})')
        end = {"last": values[-1], "called": True}
        cat.put_object("sequence", d.key, end)  # committed before any value is handed out
    st.sizes[d.key] = (size, now)
    return _Block(deque(values), state, end, _shape(d))


def next_values(db: Database, d: SeqDef, n: int) -> list[int]:
    """The next ``n`` values of ``d`` on this server (blocks reserved as needed)."""
    st = _state(db)
    out: list[int] = []
    with st.lock:
        while len(out) < n:
            b = st.blocks.get(d.key)
            if b is None or not b.values or b.shape != _shape(d):
                b = st.blocks[d.key] = _reserve(db, d, st, n - len(out))
            take = min(n - len(out), len(b.values))
            out.extend(b.values.popleft() for _ in range(take))
            b.shown = {"last": out[-1], "called": True}
    return out


def shown_state(db: Database, d: SeqDef) -> tuple[int, bool]:
    """(last_value, is_called) as ``SELECT ... FROM seq`` shows them: this server's last
    value handed out, else the state on the lake."""
    st = _state(db)
    with st.lock:
        b = st.blocks.get(d.key)
        state = b.shown if b is not None and b.values else _stored(db, d)
    return int(state["last"]), bool(state["called"])


def set_state(db: Database, d: SeqDef, last: int, called: bool) -> None:
    """``setval`` / ``RESTART``: the state as given; this server's unused values go."""
    st = _state(db)
    with st.lock:
        st.blocks.pop(d.key, None)
        db.catalog.put_object("sequence", d.key, {"last": last, "called": called})


def release(db: Database) -> None:
    """At a clean close: give back unused values no other server reserved after."""
    st = _dbs.get(db)
    if st is None:
        return
    cat = db.catalog
    with st.lock:
        for key, b in list(st.blocks.items()):
            if not b.values:
                continue
            try:
                with cat._lock, lake_lock(cat.lake, "catalog"):
                    cat.refresh(force=True)
                    if cat.get_object("sequence", key) == b.end:
                        cat.put_object("sequence", key, b.shown)
            except Exception:  # noqa: BLE001 - the values are a gap then, never reused
                pass
        st.blocks.clear()


def _remember(session: Session | None, key: str, value: int, used: bool = True) -> None:
    if session is None:
        return
    vals = _values.setdefault(session, {"by_key": {}, "last": None})
    vals["by_key"][key] = value
    if used:
        vals["last"] = value


def _key_and_name(target: SeqDef | tuple[TableInfo, ColumnInfo]) -> tuple[str, str]:
    if isinstance(target, SeqDef):
        return target.key, target.name
    info, col = target
    return f"seq:{info.path}:{col.name}", f"{info.name}_{col.name}_seq"


def nextval(db: Database, session: Session | None, name: str, path: list[str], n: int = 1
            ) -> list[int]:
    """The next ``n`` values of the sequence ``name`` (one row each of a statement)."""
    target = resolve(db, session, name, path)
    if session is not None and session.read_only:
        raise E.InsufficientPrivilege("permission denied: this session is read-only (nextval)")
    if isinstance(target, SeqDef):
        values = next_values(db, target, n)
    else:
        values = db.next_values(target[0], target[1].name, n)
    _remember(session, _key_and_name(target)[0], values[-1])
    return values


def currval(db: Database, session: Session | None, name: str, path: list[str]) -> int:
    target = resolve(db, session, name, path)
    key, seq = _key_and_name(target)
    vals = _values.get(session) if session is not None else None
    if vals is None or key not in vals["by_key"]:
        raise E.ObjectNotInPrerequisiteState(
            f'currval of sequence "{seq}" is not yet defined in this session')
    return int(vals["by_key"][key])


def lastval(session: Session | None) -> int:
    vals = _values.get(session) if session is not None else None
    if vals is None or vals["last"] is None:
        raise E.ObjectNotInPrerequisiteState("lastval is not yet defined in this session")
    return int(vals["last"])


def setval(db: Database, session: Session | None, name: str, value: int, called: bool,
           path: list[str]) -> int:
    target = resolve(db, session, name, path)
    if session is not None and session.read_only:
        raise E.InsufficientPrivilege("permission denied: this session is read-only (setval)")
    if isinstance(target, SeqDef):
        if value < target.min or value > target.max:
            raise E.NumericValueOutOfRange(
                f'setval: value {value} is out of bounds for sequence "{target.name}" '
                f"({target.min}..{target.max})")
        set_state(db, target, value, called)
    else:
        info, col = target
        key = f"seq:{info.path}:{col.name}"
        nxt = value + 1 if called else value
        with db._lock:
            db._blocks.pop(key, None)  # this process's unused values go
            db.catalog.set_next(key, nxt)  # lower too, as PostgreSQL's setval
    if called:
        _remember(session, _key_and_name(target)[0], value, used=False)
    return value


# -- SQL functions -----------------------------------------------------------------------------

def install(db: Database) -> None:
    """Register the functions on the database's DuckDB connection (once). ``nextval(text)``
    (a column's ``DEFAULT nextval('ws.s')``, evaluated by DuckDB) is a macro over them."""
    con = db._duck
    if getattr(db, _INSTALLED, False):
        return
    import duckdb

    def session_of(sid: str) -> Session | None:
        return _sessions.get(sid) if sid else None

    def nextval_(names: pa.Array, paths: pa.Array, sids: pa.Array) -> pa.Array:
        # a batch of rows at once: one block reservation serves them all
        out: list[int | None] = [None] * len(names)
        groups: dict[tuple[str, str, str], list[int]] = {}
        for i, key in enumerate(zip(names.to_pylist(), paths.to_pylist(), sids.to_pylist(),
                                    strict=True)):
            if key[0] is not None:  # nextval(NULL) is NULL
                groups.setdefault(key, []).append(i)
        try:
            for (name, path, sid), rows in groups.items():
                values = nextval(db, session_of(sid), name, (path or "").split(","),
                                 len(rows))
                for i, v in zip(rows, values, strict=True):
                    out[i] = v
        except E.TarnError as e:
            remember_error(e)
            raise
        return pa.array(out, pa.int64())

    def currval_(name: str, path: str, sid: str) -> int:
        try:
            return currval(db, session_of(sid), name, path.split(","))
        except E.TarnError as e:
            remember_error(e)
            raise

    def lastval_(sid: str) -> int:
        try:
            return lastval(session_of(sid))
        except E.TarnError as e:
            remember_error(e)
            raise

    def setval_(name: str, value: int, called: bool, path: str, sid: str) -> int:
        try:
            return setval(db, session_of(sid), name, value, called, path.split(","))
        except E.TarnError as e:
            remember_error(e)
            raise

    big, text = duckdb.sqltype("BIGINT"), duckdb.sqltype("VARCHAR")
    # (cast: duckdb's stubs do not list the string form of type)
    cast(Any, con).create_function("__tarndb_nextval", nextval_, [text, text, text], big,
                                   type="arrow", side_effects=True)
    con.create_function("__tarndb_currval", currval_, [text, text, text], big,
                        side_effects=True)
    con.create_function("__tarndb_lastval", lastval_, [text], big, side_effects=True)
    con.create_function("__tarndb_setval", setval_,
                        [text, big, duckdb.sqltype("BOOLEAN"), text, text], big,
                        side_effects=True)
    # The session id comes from the calling cursor (attach): a column's DEFAULT sets the
    # session's currval / lastval as an explicit nextval does.
    con.execute("CREATE OR REPLACE MACRO nextval(x) AS "
                "__tarndb_nextval(CAST(x AS VARCHAR), 'public', "
                "coalesce(getvariable('tarndb_seq_session'), ''))")
    setattr(db, _INSTALLED, True)


def attach(cur: Any, session: Session) -> None:
    """Name ``session`` on its DuckDB cursor, so that ``nextval`` in a column's DEFAULT
    (the macro above, run by DuckDB without the statement's rewrite) counts for its
    ``currval`` and ``lastval``."""
    sid = str(id(session))
    _sessions[sid] = session
    cur.execute(f"SET VARIABLE tarndb_seq_session = '{sid}'")


def rewrite_calls(stmt: Any, db: Database, session: Any, path: list[str]) -> None:
    """``nextval('s'[::regclass])`` / ``currval`` / ``setval('s', n[, called])`` /
    ``lastval()`` -> the functions above, with the session's search path and id."""
    from postgast import pg_query_pb2 as pb

    from ..sql import ast

    calls = [m for m in ast.walk(stmt) if isinstance(m, pb.Node)
             and ast.kind(m) == "func_call" and ast.func_name(m.func_call) in (
                 "nextval", "setval", "currval", "lastval")]
    if not calls:
        return
    install(db)
    sid = ""
    if session is not None and hasattr(session, "check_workspace"):
        sid = str(id(session))
        _sessions[sid] = session
    for node in calls:
        fc = node.func_call
        name = ast.func_name(fc)
        args = list(fc.args)
        if name == "lastval":
            if not args:
                node.CopyFrom(ast.func_call("__tarndb_lastval", [ast.string_const(sid)]))
            continue
        if not args:
            continue
        first = args[0]
        if ast.kind(first) == "type_cast":  # 's'::regclass: the name itself
            first = first.type_cast.arg
        rest = args[1:]
        if name == "setval":
            if len(rest) == 1:
                rest.append(_bool(True))
            if len(rest) != 2:
                continue
        elif rest:
            continue
        new_args = [ast.type_cast(first, ["text"])] + rest + [
            ast.string_const(",".join(path)), ast.string_const(sid)]
        node.CopyFrom(ast.func_call(f"__tarndb_{name}", new_args))


def _bool(value: bool) -> Any:
    from postgast import pg_query_pb2 as pb

    n = pb.Node()
    n.a_const.boolval.boolval = value
    return n


# -- CREATE / ALTER / DROP SEQUENCE --------------------------------------------------------------

def _int_arg(d: Any) -> int | None:
    """The integer of a sequence option (``integer``, ``float`` for big ones, or a
    constant); None when the option has none (``NO MINVALUE``, ``RESTART``)."""
    if not d.HasField("arg"):
        return None
    arg = d.arg
    k = arg.WhichOneof("node")
    try:
        if k == "integer":
            return int(arg.integer.ival)
        if k == "float":
            return int(arg.float.fval)
        if k == "a_const":
            c = arg.a_const
            ck = c.WhichOneof("val")
            if ck == "ival":
                return int(c.ival.ival)
            if ck == "fval":
                return int(c.fval.fval)
            if ck == "sval":
                return int(c.sval.sval)
    except ValueError:
        pass
    raise E.SyntaxError_(f'invalid value for sequence option "{d.defname}"')


def _apply_options(d: SeqDef, options: Any, session: Session, creating: bool
                   ) -> tuple[bool, int | None]:
    """Set ``d`` from CREATE/ALTER SEQUENCE options; returns (restart, restart value)."""
    from ..sql import ast

    given: dict[str, Any] = {}
    for opt in options:
        o = opt.def_elem
        if o.defname in given:
            raise E.SyntaxError_("conflicting or redundant options")
        given[o.defname] = o
    old_type = d.type
    if "as" in given:
        tn = ast.names(given["as"].arg.type_name.names)[-1].lower()
        if tn not in _TYPE_NAMES:
            raise E.InvalidParameterValue(
                "sequence type must be smallint, integer, or bigint")
        d.type = _TYPE_NAMES[tn]
    if "increment" in given:
        inc = _int_arg(given["increment"])
        if inc == 0:
            raise E.InvalidParameterValue("INCREMENT must not be zero")
        d.increment = inc if inc is not None else 1
    lo, hi, type_name = TYPES[d.type]
    old_lo, old_hi, _ = TYPES[old_type]
    up = d.increment > 0
    if "minvalue" in given:
        v = _int_arg(given["minvalue"])
        d.min = v if v is not None else (1 if up else lo)
    elif creating or (d.type != old_type and d.min == (old_lo if d.min < 0 else 1)):
        d.min = 1 if up else lo
    if "maxvalue" in given:
        v = _int_arg(given["maxvalue"])
        d.max = v if v is not None else (hi if up else -1)
    elif creating or (d.type != old_type and d.max == (old_hi if d.max > 0 else -1)):
        d.max = hi if up else -1
    for what, v in (("MINVALUE", d.min), ("MAXVALUE", d.max)):
        if v < lo or v > hi:
            raise E.InvalidParameterValue(
                f"{what} ({v}) is out of range for sequence data type {type_name}")
    if d.min >= d.max:
        raise E.InvalidParameterValue(
            f"MINVALUE ({d.min}) must be less than MAXVALUE ({d.max})")
    if "start" in given:
        v = _int_arg(given["start"])
        d.start = v if v is not None else d.start
    elif creating:
        d.start = d.min if up else d.max
    if d.start < d.min:
        raise E.InvalidParameterValue(
            f"START value ({d.start}) cannot be less than MINVALUE ({d.min})")
    if d.start > d.max:
        raise E.InvalidParameterValue(
            f"START value ({d.start}) cannot be greater than MAXVALUE ({d.max})")
    if "cache" in given:
        v = _int_arg(given["cache"])
        if v is not None and v < 1:
            raise E.InvalidParameterValue(f"CACHE ({v}) must be greater than zero")
        d.cache = v or 1
    if "cycle" in given:
        arg = given["cycle"].arg
        d.cycle = bool(arg.boolean.boolval) if given["cycle"].HasField("arg") and \
            arg.WhichOneof("node") == "boolean" else True
    if "owned_by" in given:
        arg = given["owned_by"].arg
        names = ast.names(arg.list.items) if ast.kind(arg) == "list" else []
        if not names or names == ["none"]:
            d.owned_by = None
        else:
            if len(names) < 2:
                raise E.SyntaxError_("invalid OWNED BY option",
                                     hint="Specify OWNED BY table.column or OWNED BY NONE.")
            ws = names[-3] if len(names) >= 3 else None
            info = session.resolve_table(ws, names[-2])
            if info is None:
                raise E.UndefinedTable(f'relation "{names[-2]}" does not exist')
            if info.workspace != d.workspace:
                raise E.ObjectNotInPrerequisiteState(
                    "sequence must be in same schema as table it is linked to")
            if info.column(names[-1]) is None:
                raise E.UndefinedColumn(
                    f'column "{names[-1]}" of relation "{info.name}" does not exist')
            d.owned_by = [info.name, names[-1]]
    if creating and "restart" in given:
        raise E.SyntaxError_('option "restart" not recognized')
    restart = "restart" in given
    at = _int_arg(given["restart"]) if restart else None
    if restart:
        at = d.start if at is None else at
        if at < d.min:
            raise E.InvalidParameterValue(
                f"RESTART value ({at}) cannot be less than MINVALUE ({d.min})")
        if at > d.max:
            raise E.InvalidParameterValue(
                f"RESTART value ({at}) cannot be greater than MAXVALUE ({d.max})")
    unknown = set(given) - {"as", "increment", "minvalue", "maxvalue", "start", "cache",
                            "cycle", "owned_by", "restart", "sequence_name"}
    if unknown:
        raise E.SyntaxError_(f'option "{sorted(unknown)[0]}" not recognized')
    return restart, at


def _stage(session: Session, ws: str, name: str, d: SeqDef | None,
           publish: Any) -> None:
    """Make ``d`` (None: dropped) what ``session`` sees of ``ws.name`` now, and publish it
    at COMMIT (``publish()``); ROLLBACK forgets it."""
    _staged.stage(session, ws, name, d, publish)


def creation_schema(session: Session) -> str:
    """Where an unqualified CREATE SEQUENCE puts it: the session's workspace, as CREATE
    TABLE does."""
    return session.workspace


def create(session: Session, node: Any) -> Result:
    """``CREATE SEQUENCE [IF NOT EXISTS] [ws.]name [options]``."""
    rv = node.sequence
    ws = rv.schemaname or creation_schema(session)
    session.check_workspace(ws)
    db = session.db
    db.catalog.ensure_workspace(ws)  # as CREATE TABLE does: a workspace on first use
    name = rv.relname
    if lookup(db, session, ws, name) is not None or \
            session.find_table(ws, name) is not None:
        if node.if_not_exists:
            session.notices.append(f'relation "{name}" already exists, skipping')
            return Result(command="CREATE SEQUENCE")
        raise E.DuplicateTable(f'relation "{name}" already exists', table=name)
    d = SeqDef(ws, name, uuid.uuid4().hex)
    _apply_options(d, node.options, session, creating=True)
    cat = db.catalog

    def publish() -> None:
        with cat._lock, lake_lock(cat.lake, "catalog"):
            cat.refresh(force=True)
            if cat.get_object("seqdef", f"{ws}.{name}") is not None:
                raise E.DuplicateTable(f'relation "{name}" already exists', table=name)
            d.oid = cat._next_oid()
            cat.put_object("seqdef", f"{ws}.{name}", d.to_json())

    _stage(session, ws, name, d, publish)
    return Result(command="CREATE SEQUENCE")


def alter(session: Session, node: Any) -> Result | None:
    """``ALTER SEQUENCE [IF EXISTS] s options`` of a standalone sequence (None: ``s`` is
    not one)."""
    rv = node.sequence
    if rv.schemaname:
        session.check_workspace(rv.schemaname)
    path = [rv.schemaname] if rv.schemaname else session.search_path()
    d = next((x for ws in path if (x := lookup(session.db, session, ws, rv.relname))), None)
    if d is None:
        return None
    new = SeqDef.from_json(d.to_json())
    restart, at = _apply_options(new, node.options, session, creating=False)
    db = session.db

    def publish() -> None:
        db.catalog.put_object("seqdef", f"{new.workspace}.{new.name}", new.to_json())
        if restart:
            assert at is not None
            set_state(db, new, at, False)

    _stage(session, new.workspace, new.name, new, publish)
    return Result(command="ALTER SEQUENCE")


def default_of(session: Session, seq: str) -> str | None:
    """The stored DEFAULT for ``nextval('seq')`` when ``seq`` is a standalone sequence
    (qualified, so that it does not depend on a search path), else None."""
    target = resolve(session.db, session, seq, session.search_path())
    if not isinstance(target, SeqDef):
        return None
    return "nextval('" + target.qualified.replace("'", "''") + "')"


_DEFAULT = re.compile(r"^\s*nextval\('((?:[^']|'')*)'(?:::regclass)?\)\s*$", re.I)


def default_names(col: ColumnInfo) -> str | None:
    """The sequence a column's default ``nextval('...')`` names, else None."""
    m = _DEFAULT.match(col.default_sql or "")
    return m.group(1).replace("''", "'") if m else None


def dependents(session: Session | None, db: Database, d: SeqDef
               ) -> list[tuple[TableInfo, ColumnInfo]]:
    """Columns whose default is ``nextval`` of ``d``."""
    out = []
    tables = session.all_tables() if session is not None else db.catalog.all_tables()
    for info in tables:
        for col in info.columns:
            seq = default_names(col)
            if seq is None:
                continue
            parts = split_name(seq)
            ws = parts[-2] if len(parts) >= 2 else "public"
            if (ws, parts[-1]) == (d.workspace, d.name):
                out.append((info, col))
    return out


def drop(session: Session, node: Any) -> Result:
    """``DROP SEQUENCE [IF EXISTS] s [, ...] [CASCADE | RESTRICT]``."""
    from postgast import pg_query_pb2 as pb

    from ..sql import ast

    db = session.db
    cascade = node.behavior == pb.DROP_CASCADE
    for obj in node.objects:
        parts = ast.names(obj.list.items)
        if len(parts) >= 2:
            session.check_workspace(parts[-2])
        path = [parts[-2]] if len(parts) >= 2 else session.search_path()
        if session.allowed_workspaces is not None:
            path = [ws for ws in path if ws in session.allowed_workspaces]
        d = next((x for ws in path if (x := lookup(db, session, ws, parts[-1]))), None)
        if d is None:
            db.catalog.refresh(force=True)
            d = next((x for ws in path if (x := lookup(db, session, ws, parts[-1]))), None)
        if d is None:
            if node.missing_ok:
                session.notices.append(f'sequence "{parts[-1]}" does not exist, skipping')
                continue
            raise E.UndefinedTable(f'sequence "{parts[-1]}" does not exist')
        deps = dependents(session, db, d)
        if deps and not cascade:
            info, col = deps[0]
            raise E.DependentObjectsStillExist(
                f"cannot drop sequence {d.name} because other objects depend on it",
                detail=f"default value for column {col.name} of table {info.name} depends "
                       f"on sequence {d.name}",
                hint="Use DROP ... CASCADE to drop the dependent objects too.")
        for info, col in deps:
            session.notices.append(
                f"drop cascades to default value for column {col.name} of table {info.name}")
            c = info.column(col.name)
            assert c is not None
            c.default_sql = None
            session.catalog_update(info)
        gone = d

        def publish(gone: SeqDef = gone) -> None:
            db.catalog._write([("seqdef", f"{gone.workspace}.{gone.name}", None),
                               ("sequence", gone.key, None)])
            st = _state(db)
            with st.lock:
                st.blocks.pop(gone.key, None)

        _stage(session, d.workspace, d.name, None, publish)
    return Result(command="DROP SEQUENCE")


def owned_by(db: Database, session: Session | None, info: TableInfo) -> list[SeqDef]:
    """Standalone sequences ``OWNED BY`` a column of ``info`` (dropped with the table)."""
    return [d for d in all_defs(db, session)
            if d.owned_by and d.workspace == info.workspace and d.owned_by[0] == info.name]


def drop_owned(session: Session, info: TableInfo) -> None:
    """DROP TABLE: the sequences it owns go with it, as in PostgreSQL."""
    db = session.db
    for d in owned_by(db, session, info):
        def publish(gone: SeqDef = d) -> None:
            db.catalog._write([("seqdef", f"{gone.workspace}.{gone.name}", None),
                               ("sequence", gone.key, None)])
        _stage(session, d.workspace, d.name, None, publish)


def rename(session: Session, node: Any) -> Result:
    """``ALTER SEQUENCE [IF EXISTS] s RENAME TO n``: the columns whose default uses it
    follow (PostgreSQL's defaults name the sequence by OID)."""
    rv = node.relation
    if rv.schemaname:
        session.check_workspace(rv.schemaname)
    db = session.db
    path = [rv.schemaname] if rv.schemaname else session.search_path()
    d = next((x for ws in path if (x := lookup(db, session, ws, rv.relname))), None)
    if d is None:
        if node.missing_ok:
            session.notices.append(f'relation "{rv.relname}" does not exist, skipping')
            return Result(command="ALTER SEQUENCE")
        raise E.UndefinedTable(f'relation "{rv.relname}" does not exist')
    if lookup(db, session, d.workspace, node.newname) is not None or \
            session.find_table(d.workspace, node.newname) is not None:
        raise E.DuplicateTable(f'relation "{node.newname}" already exists')
    new = SeqDef.from_json(d.to_json())
    new.name = node.newname
    for info, col in dependents(session, db, d):
        c = info.column(col.name)
        assert c is not None
        c.default_sql = "nextval('" + new.qualified.replace("'", "''") + "')"
        session.catalog_update(info)
    old_key = f"{d.workspace}.{d.name}"
    _stage(session, d.workspace, d.name, None, lambda: None)

    def publish() -> None:
        db.catalog._write([("seqdef", old_key, None),
                           ("seqdef", f"{new.workspace}.{new.name}", new.to_json())])

    _stage(session, new.workspace, new.name, new, publish)
    return Result(command="ALTER SEQUENCE")


def owner_renamed(session: Session, ws: str, table: str, new_table: str,
                  column: str | None = None, new_column: str | None = None) -> None:
    """A table or column renamed: the sequences ``OWNED BY`` it follow."""
    db = session.db
    for d in all_defs(db, session):
        if d.workspace != ws or not d.owned_by or d.owned_by[0] != table or (
                column is not None and d.owned_by[1] != column):
            continue
        new = SeqDef.from_json(d.to_json())
        new.owned_by = [new_table, new_column or d.owned_by[1]]
        _stage(session, ws, d.name, new,
               lambda new=new: db.catalog.put_object(
                   "seqdef", f"{new.workspace}.{new.name}", new.to_json()))


def drop_workspace(session: Session, ws: str, cascade: bool) -> None:
    """DROP SCHEMA: its sequences go with CASCADE, else 2BP01 (before the schema goes)."""
    db = session.db
    seqs = [d for d in all_defs(db, session) if d.workspace == ws]
    if not seqs:
        return
    if not cascade:
        raise E.DependentObjectsStillExist(
            f'cannot drop schema "{ws}" because other objects depend on it',
            detail=f"sequence {ws}.{seqs[0].name} depends on schema {ws}",
            hint="Use DROP ... CASCADE to drop the dependent objects too.")
    db.catalog._write([row for d in seqs for row in (
        ("seqdef", f"{d.workspace}.{d.name}", None), ("sequence", d.key, None))])
