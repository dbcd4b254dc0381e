"""The server side of one Postgres connection, without sockets (sans-io).

:class:`ServerConnection` takes the bytes a client sent (:meth:`ServerConnection.receive_data`)
and returns the bytes to send back. It runs startup, SSL negotiation (it only *says* 'S'; the
caller wraps the socket), SCRAM authentication, the simple and extended query protocols and
COPY, calling the engine's :class:`Session` synchronously. The server (:mod:`.server`) calls
it from the connection's own thread, so a slow statement blocks no other session.

Life of a connection::

    STARTUP --SSLRequest--> (S, caller starts TLS) --StartupMessage--> AUTH (SCRAM or token)
        --> READY <--> COPY_IN
    any state --Terminate / fatal error--> CLOSED

Who logs in how: a user that is a role in the catalog authenticates with SCRAM-SHA-256 and gets
a session with full access. Any other user name may log in with an HTTP API token as its
password: the server asks for it with AuthenticationCleartextPassword, but only on a TLS
connection (tokens are stored as hashes, so SCRAM cannot verify them, and a token must never
cross the network in the clear). The session is then limited the way the token is over HTTP:
to the token's workspaces, and read-only for a ``read`` token; the engine enforces both
(SQLSTATE 42501). Without TLS such a user gets a SCRAM exchange that cannot succeed (28P01),
so the token is never sent.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .. import errors
from ..engine import prepared
from ..engine.result import Column, Result
from ..engine.types import ColumnType
from . import acl, codecs, copy, intercept, roles
from . import messages as m
from .scram import MECHANISM, ScramServer, mock_salt

SERVER_VERSION = "15.8"
SERVER_VERSION_NUM = "150008"

#: Settings a client learns through ParameterStatus, with their values at connection start.
REPORTED = {
    "server_version": SERVER_VERSION,
    "server_encoding": "UTF8",
    "client_encoding": "UTF8",
    "DateStyle": "ISO, MDY",
    "IntervalStyle": "postgres",
    "TimeZone": "UTC",
    "integer_datetimes": "on",
    "standard_conforming_strings": "on",
    "is_superuser": "off",
    "session_authorization": "",
    "application_name": "",
    "default_transaction_read_only": "off",
    "in_hot_standby": "off",
}

#: (ParameterStatus name, session setting) of the settings whose changes a client hears of.
_REPORTABLE = [(k, k.lower()) for k in REPORTED
               if k not in ("server_version", "server_encoding", "is_superuser",
                            "session_authorization", "integer_datetimes")]

_REPORTABLE_KEYS = [key for _, key in _REPORTABLE]

log = logging.getLogger("tarndb.pgwire")
_SESSION_LOCK = threading.Lock()

# Only blanks, semicolons and comments: an empty query (pg_restore sends a dump's header
# comment alone and expects EmptyQueryResponse, as PostgreSQL answers).
_EMPTY = re.compile(r"^(?:[\s;]|--[^\n]*|/\*(?:[^*]|\*(?!/))*\*/)*$")
_COPY = re.compile(r"^\s*copy\b", re.IGNORECASE)
_INSERT = re.compile(r"^\s*insert\b", re.IGNORECASE)
_READ_ONLY = re.compile(r"^\s*(\(\s*)*(select|values|show|with|table|explain)\b", re.IGNORECASE)
_WRITE_IN_WITH = re.compile(r"\b(insert|update|delete)\b", re.IGNORECASE)


@dataclass(frozen=True)
class _Text:
    """What the text of a statement alone says about how the protocol runs it (the tests
    above, and the intercepted queries). Worked out once per text (:func:`_text_of`): the
    same prepared statement is bound and executed again and again, and these tests were a
    tenth of a small statement's cost in this module."""

    empty: bool
    copy: bool
    insert: bool
    read_only: bool
    role: bool
    special: tuple[Any, list[ColumnType], list[Column]] | None


_TEXTS: dict[str, _Text] = {}
_TEXTS_MAX = 1024
_TEXTS_MAX_TEXT = 4096  # longer texts (bulk INSERTs with literals) are tested, not kept


def _text_of(sql: str) -> _Text:
    found = _TEXTS.get(sql)
    if found is None:
        found = _Text(bool(_EMPTY.match(sql)), bool(_COPY.match(sql)),
                      bool(_INSERT.match(sql)), _is_read_only(sql),
                      roles.is_role_statement(sql), intercept.match(sql))
        if len(sql) <= _TEXTS_MAX_TEXT:
            if len(_TEXTS) >= _TEXTS_MAX:
                _TEXTS.clear()
            _TEXTS[sql] = found
    return found


class State(enum.Enum):
    STARTUP = "startup"
    AUTH_SASL_INITIAL = "auth_sasl_initial"
    AUTH_SASL_CONTINUE = "auth_sasl_continue"
    AUTH_TOKEN = "auth_token"
    READY = "ready"
    COPY_IN = "copy_in"
    CLOSED = "closed"


class Fatal(Exception):
    """An error that ends the connection after its ErrorResponse (severity FATAL)."""

    def __init__(self, sqlstate: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
        self.message = message
        self.hint = hint


@dataclass
class PreparedStatement:
    name: str
    sql: str
    param_oids: list[int]
    #: From session.describe, filled on first need.
    described: tuple[list[int], list[Column]] | None = None
    #: Whether pipelined executions may run as one batch (None: not asked yet).
    batchable: bool | None = None


@dataclass
class Portal:
    name: str
    statement: PreparedStatement
    params: list[Any]
    result_formats: list[int]
    result: Result | None = None
    rows_sent: int = 0
    done: bool = False
    #: Columns announced by Describe (so Execute encodes exactly what was described).
    columns: list[Column] | None = None
    #: Bytes of parameters as the client sent them (what a held batch counts).
    param_bytes: int = 0
    #: (encoders, RowDescription) of :attr:`columns`, from Describe
    shape: tuple[list[codecs.Encoder], bytes] | None = None


#: Largest message before authentication completes (PostgreSQL allows SASL and password
#: messages of up to 64 KB; the startup packet itself is limited to 10,000 bytes).
PRE_AUTH_MAX_MESSAGE = 65536


@dataclass
class ServerConfig:
    """What the connection needs to know about the server it runs in."""

    #: Whether the caller can wrap the socket in TLS after answering an SSLRequest with 'S'.
    tls_available: bool = False
    #: Refuse clients that did not negotiate TLS.
    require_tls: bool = False
    #: Roles that must log in over TLS even when require_tls is off (hostssl lines for them).
    tls_roles: frozenset[str] = frozenset()
    #: Database names a client may connect to, besides the workspaces.
    databases: tuple[str, ...] = ("postgres", "tarndb", "template1")
    #: Row batch the core buffers before handing bytes back (bounds memory for big results).
    max_message: int = m.MAX_MESSAGE
    #: Let users that are not catalog roles log in with an API token as password (TLS only).
    token_auth: bool = True
    #: The :class:`tarndb.api.tokens.TokenStore` that checks tokens (made at the first token
    #: login when None; the connections of a server share it and its cache).
    tokens: Any = None
    #: Called once a client has authenticated, with the connection and whether its role is a
    #: superuser: None lets it in, (SQLSTATE, message) turns it away (connection limits).
    admit: Any = None


@dataclass
class _Batch:
    """Pipelined executions of one INSERT waiting to run as one statement.

    A pipeline (psycopg's ``executemany``, asyncpg's ``executemany``, any client in
    pipeline mode) sends Bind/Execute for one INSERT many times before its Sync. PostgreSQL
    may hold its replies until Sync or Flush, so tarndb does: it gathers the parameter sets
    and runs them as ONE insert (one Arrow conversion, one constraint check) instead of one
    statement per row, then puts each Execute's reply where it belongs in the output."""

    sql: str
    #: The parameter sets, in Execute order.
    sets: list[list[Any]]
    #: Where each Execute's reply goes in the connection's output (later messages' replies,
    #: e.g. the next BindComplete, were appended after it).
    slots: list[int]
    #: Bytes of parameters held (the batch runs early past MAX_BATCH_BYTES).
    size: int = 0


#: A long answer goes out through the connection's sink once this much of it waits.
SPILL_BYTES = 4 << 20
_SPILL_CHECK = 256 << 10  # bytes of rows between two looks at the sink
#: A batch runs once it holds this many parameter sets or bytes of parameters.
MAX_BATCH_SETS = 10_000
MAX_BATCH_BYTES = 16 << 20
#: Once all that arrived is read, a batch holding this many sets or bytes runs without
#: waiting for Sync (small enough that the work overlaps the client's, large enough that
#: the per-statement cost is shared).
EARLY_BATCH_SETS = 64
EARLY_BATCH_BYTES = 512 << 10


@dataclass
class _Copy:
    """A COPY FROM STDIN in progress."""

    reader: copy.CopyReader
    target: copy.CopyTarget
    from_simple_query: bool
    #: rows handed to the engine so far
    rows: int = 0



class ServerConnection:
    """One client connection's protocol state. Not thread-safe: one call at a time."""

    def __init__(self, db: Any, config: ServerConfig | None = None, *, pid: int = 0,
                 secret: int = 0, is_tls: bool = False) -> None:
        self.db = db
        self.config = config or ServerConfig()
        self.pid = pid
        self.secret = secret
        self.state = State.STARTUP
        # Until the login completes, a message may be at most PRE_AUTH_MAX_MESSAGE bytes: a
        # client without credentials cannot make the server buffer more.
        self.reader = m.FrameReader(min(PRE_AUTH_MAX_MESSAGE, self.config.max_message))
        #: Set when a password (or token) was wrong: the server throttles what follows.
        self.auth_failed = False
        self.is_tls = is_tls
        #: Set when an SSLRequest was answered with 'S': the caller must start TLS now.
        self.wants_tls = False
        #: Set by a CancelRequest packet: (pid, secret); the connection then closes.
        self.cancel_request: tuple[int, int] | None = None
        #: Set by the server to turn the client away once its StartupMessage arrives (after
        #: TLS, so the client can read why): (SQLSTATE, message).
        self.refuse_with: tuple[str, str] | None = None
        self.session: Any = None
        self.user = ""
        self.database = ""
        #: The workspace of a "user@workspace" login name.
        self.login_workspace: str | None = None
        self.startup_params: dict[str, str] = {}
        self._scram: ScramServer | None = None
        #: The API token this connection logged in with (None: a catalog role, via SCRAM).
        self.token: Any = None
        self._statements: dict[str, PreparedStatement] = {}
        self._portals: dict[str, Portal] = {}
        self._skip_until_sync = False
        self._copy: _Copy | None = None
        self._reported: dict[str, str] = {}
        #: the reportable settings' values when :meth:`_report_changes` last looked
        self._reported_values: tuple[Any, ...] | None = None
        self._out: list[bytes] = []
        self._batch: _Batch | None = None
        #: Where a long answer (a big result or COPY TO) goes while it is being made, once
        #: SPILL_BYTES of it wait: set by the socket server (``sock.sendall``), so that the
        #: answer never sits whole in memory, as PostgreSQL streams rows. Without one (the
        #: sans-io tests) everything comes back from :meth:`receive_data`.
        self.sink: Callable[[bytes], None] | None = None
        self._unspilled = 0  # bytes of answer counted since the last spill
        #: (columns, formats, (encoders, RowDescription)) of the last result (:meth:`_shape`)
        self._last_shape: tuple[tuple[Column, ...], list[int],
                                tuple[list[codecs.Encoder], bytes]] | None = None

    # -- the one entry point -----------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self.state is State.CLOSED

    def receive_data(self, data: bytes | bytearray) -> bytes:
        """Feed bytes from the client (a bytearray is taken over, not copied); returns the
        bytes to send (possibly empty)."""
        if self.closed:
            return b""
        self.reader.feed(data)
        if self._batch is None:
            self._out = []
            self._unspilled = 0
        out = self._out
        reader, closed, startup = self.reader, State.CLOSED, State.STARTUP
        try:
            while self.state is not closed and not self.wants_tls:
                if self.state is startup:
                    body = reader.next_startup()
                    if body is None:
                        break
                    self._on_startup_packet(m.parse_startup(body))
                    continue
                frame = reader.next_message()
                if frame is None:
                    break
                self._dispatch(m.parse_frontend(*frame))
        except Fatal as e:
            out.append(m.b_error(e.sqlstate, e.message, severity="FATAL", hint=e.hint))
            self._close()
        except m.ProtocolError as e:
            out.append(m.b_error(e.sqlstate, e.message, severity="FATAL"))
            self._close()
        except Exception as e:  # noqa: BLE001 - tell the client why before hanging up
            log.exception("pg connection %s: internal error", self.pid)
            out.append(m.b_error("XX000", f"internal error: {type(e).__name__}: {e}",
                                 severity="FATAL"))
            self._close()
        batch = self._batch
        if batch is not None and not self.closed and (
                len(batch.sets) >= EARLY_BATCH_SETS or batch.size >= EARLY_BATCH_BYTES):
            # Everything the client sent so far is read: run what the batch holds now, while
            # the client encodes the next rows (as PostgreSQL runs each Execute on arrival),
            # instead of leaving all the work until Sync. The rows join the same implicit
            # transaction, committed at Sync.
            self._run_batch()
        if self._batch is not None:
            return b""  # the replies wait for the batch, which runs at Sync or Flush
        return b"".join(out)

    def connection_lost(self) -> None:
        """The client went away: cancel what runs and release the session."""
        self._close()

    def tls_started(self) -> None:
        """The caller finished the TLS handshake; the StartupMessage comes next."""
        self.wants_tls = False
        self.is_tls = True

    # -- startup and authentication ----------------------------------------------------------

    def _on_startup_packet(self, pkt: m.StartupPacket) -> None:
        if isinstance(pkt, m.SSLRequest):
            if self.is_tls:
                raise m.ProtocolError("SSLRequest on an encrypted connection")
            if self.config.tls_available:
                self._out.append(b"S")
                self.wants_tls = True
            else:
                self._out.append(b"N")
            return
        if isinstance(pkt, m.GSSENCRequest):
            self._out.append(b"N")  # no GSSAPI encryption; the client goes on in the clear/TLS
            return
        if isinstance(pkt, m.CancelRequest):
            self.cancel_request = (pkt.pid, pkt.secret)
            self.state = State.CLOSED
            return
        self._on_startup(pkt)

    def _on_startup(self, pkt: m.StartupMessage) -> None:
        if self.refuse_with is not None:
            raise Fatal(*self.refuse_with)
        params = pkt.params
        self.startup_params = params
        user = params.get("user")
        if not user:
            raise Fatal("28000", "no PostgreSQL user name specified in startup packet")
        if self.config.require_tls and not self.is_tls:
            raise Fatal("28000", f'no pg_hba.conf entry for user "{user}", no encryption')
        self.database = params.get("database") or user
        # "user@workspace" names a role (or a token login) and the session's workspace, as
        # hosted Postgres services spell it; a role whose name holds the "@" keeps it.
        if "@" in user and roles.get_role(self.db, user) is None:
            user, _, ws = user.rpartition("@")
            if not user or not ws:
                raise Fatal("28000", f'invalid user name "{params["user"]}"')
            self.login_workspace = ws
            if not params.get("database"):
                self.database = user
        if user in self.config.tls_roles and not self.is_tls:
            raise Fatal("28000", f'no pg_hba.conf entry for user "{user}", no encryption')
        self.user = user
        # Clients asking for protocol 3.x (x > 0) or _pq_ options learn what we speak.
        unknown = [k for k in params if k.startswith("_pq_.")]
        if pkt.version != m.PROTOCOL_V3 or unknown:
            self._out.append(m.b_negotiate_protocol_version(0, unknown))
        role = roles.get_role(self.db, user)
        if role is None and self.config.token_auth and self.is_tls:
            self._out.append(m.b_auth_cleartext())
            self.state = State.AUTH_TOKEN
            return
        verifier = None
        if role is not None and role.get("login", True):
            verifier = role.get("verifier")
        salt = None if verifier else mock_salt(roles.mock_auth_key(self.db), user)
        self._scram = ScramServer(verifier, mock_salt=salt)
        self._out.append(m.b_auth_sasl([MECHANISM]))
        self.state = State.AUTH_SASL_INITIAL

    def _on_token(self, msg: m.AuthResponse) -> None:
        """The password message of a token login: the token, NUL-terminated."""
        token = msg.data[:-1] if msg.data.endswith(b"\0") else msg.data
        store = self.config.tokens
        if store is None:
            from ..api.tokens import TokenStore

            # The server shares one config between connections, so they share the cache too.
            store = self.config.tokens = TokenStore(self.db.catalog)
        try:
            found = store.authenticate(token.decode("utf-8")) if token else None
        except UnicodeDecodeError:
            found = None
        if found is None:
            self.auth_failed = True
            raise Fatal("28P01", f'password authentication failed for user "{self.user}"')
        self.token = found
        self._out.append(m.b_auth_ok())
        self._after_auth()

    def _on_auth(self, msg: m.AuthResponse) -> None:
        if self.state is State.AUTH_TOKEN:
            self._on_token(msg)
            return
        assert self._scram is not None
        c = m._Cursor(msg.data)
        try:
            if self.state is State.AUTH_SASL_INITIAL:
                mech = c.cstr()
                if mech != MECHANISM:
                    raise Fatal("08P01", "client selected an invalid SASL authentication "
                                "mechanism")
                n = c.int32()
                data = c.take(n) if n >= 0 else b""
                self._out.append(m.b_auth_sasl_continue(self._scram.first(data)))
                self.state = State.AUTH_SASL_CONTINUE
                return
            final = self._scram.final(msg.data)
        except errors.InvalidPassword:
            self.auth_failed = True
            hint = None
            if self.config.token_auth and not self.is_tls and roles.get_role(
                    self.db, self.user) is None:
                hint = "API tokens are accepted as passwords only over TLS (sslmode=require)"
            raise Fatal("28P01", f'password authentication failed for user "{self.user}"',
                        hint) from None
        except errors.ProtocolViolation as e:
            raise Fatal("08P01", e.message) from None
        self._out.append(m.b_auth_sasl_final(final))
        self._out.append(m.b_auth_ok())
        self._scram = None
        self._after_auth()

    def _workspace_from_params(self) -> str | None:
        search_path = self.startup_params.get("search_path")
        options = self.startup_params.get("options", "")
        for key, value in parse_options(options):
            if key.lower() == "search_path":
                search_path = value
        if not search_path:
            return None
        for part in search_path.split(","):
            name = part.strip().strip('"')
            if name and name != "$user" and name != "pg_catalog":
                return name
        return None

    def _after_auth(self) -> None:
        db_name = self.database
        allowed = None if self.token is None else self.token.workspaces
        db_is_workspace = db_name not in self.config.databases
        # A scoped token learns nothing about workspaces it cannot use, not even whether
        # they exist: the privilege check comes before the existence check.
        if db_is_workspace and allowed is not None and db_name not in allowed:
            raise Fatal("42501", f'permission denied for database "{db_name}"',
                        "User does not have CONNECT privilege.")
        if db_is_workspace and not self._is_workspace(db_name):
            raise Fatal("3D000", f'database "{db_name}" does not exist')
        # Where unqualified names resolve, first given first: the search_path startup
        # parameter (or -c search_path in options), user@workspace, the database when it
        # names a workspace, then a scoped token's first workspace.
        workspace = self._workspace_from_params() or self.login_workspace \
            or (db_name if db_is_workspace else None)
        limits: dict[str, Any] = {}
        session_user = self.user
        acl_role = None
        if self.token is not None:
            limits = {"allowed_workspaces": None if allowed is None else set(allowed),
                      "read_only": self.token.role == "read"}
            if workspace is None and allowed:
                workspace = allowed[0]  # unqualified names resolve in the token's workspace
            session_user = roles.token_role(self.token)
        else:
            acl_role = roles.acl_role_for(self.db, self.user)
            if acl_role is not None:
                # A role that is not a superuser reaches the schemas it has USAGE on (acl.py).
                usable = acl.usable_schemas(self.db, acl_role)
                limits = {"allowed_workspaces": usable}
                if workspace is None and "public" not in usable and usable:
                    workspace = sorted(usable)[0]
                if db_is_workspace and db_name not in usable:
                    raise Fatal("42501", f'permission denied for database "{db_name}"',
                                "User does not have CONNECT privilege.")
        usable_ws = limits.get("allowed_workspaces")
        if workspace is not None and usable_ws is not None and workspace not in usable_ws:
            raise Fatal("42501", f'permission denied for schema "{workspace}"')
        self._check_startup_settings(session_user)
        if self.config.admit is not None:
            refused = self.config.admit(self, roles.is_superuser(self.db, session_user))
            if refused is not None:
                raise Fatal(*refused)
        self.reader.max_message = self.config.max_message
        try:
            # Creating a session installs DuckDB macros on a new cursor; concurrent installs
            # conflict in DuckDB's catalog, so sessions are created one at a time.
            with _SESSION_LOCK:
                if workspace is not None:
                    self.session = self.db.session(workspace=workspace, user=session_user,
                                                   **limits)
                else:
                    self.session = self.db.session(user=session_user, **limits)
        except errors.TarnError as e:
            raise Fatal(e.sqlstate, e.message) from None
        self.session.acl_role = acl_role
        # One namespace for Parse's names and PREPARE's, as in PostgreSQL (engine/prepared.py)
        prepared.share_protocol_statements(self.session, self._statements)
        settings = getattr(self.session, "settings", None)
        extra = dict(parse_options(self.startup_params.get("options", "")))
        for key in ("application_name", "DateStyle", "TimeZone", "extra_float_digits",
                    "client_encoding"):
            if key in self.startup_params:
                extra.setdefault(key, self.startup_params[key])
        # asyncpg sends 'utf-8' (quoted); Postgres accepts any spelling of UTF8.
        enc = extra.get("client_encoding", "UTF8").strip("'\"").upper().replace("-", "") \
            .replace("_", "")
        if enc not in ("UTF8", "UNICODE", "SQLASCII"):
            raise Fatal("22023", f'client encoding "{extra["client_encoding"]}" is not supported')
        if isinstance(settings, dict):
            for k, v in extra.items():
                if k not in ("search_path", "client_encoding"):
                    settings[k.lower()] = v
        reported = dict(REPORTED)
        if isinstance(settings, dict):
            # Report what SHOW will answer, so a client sees one consistent server.
            for k in reported:
                if k.lower() in settings and k not in ("is_superuser", "client_encoding"):
                    reported[k] = str(settings[k.lower()])
        reported["is_superuser"] = "on" if roles.is_superuser(self.db, session_user) else "off"
        reported["session_authorization"] = self.user
        reported["application_name"] = extra.get("application_name", "")
        for k, v in reported.items():
            self._out.append(m.b_parameter_status(k, v))
        self._reported = reported
        self._reported_values = None
        self._out.append(m.b_backend_key_data(self.pid, self.secret))
        self.state = State.READY
        self._ready()

    def _check_startup_settings(self, session_user: str) -> None:
        """Startup options are SETs: those that change who the session is are checked like
        ``SET ROLE`` / ``SET SESSION AUTHORIZATION`` (and are otherwise not applied)."""
        pairs = parse_options(self.startup_params.get("options", ""))
        pairs += [(k, v) for k, v in self.startup_params.items()
                  if k.lower() in ("role", "session_authorization")]
        for key, value in pairs:
            k = key.lower()
            if k not in ("role", "session_authorization"):
                continue
            if value in (session_user, "none", "") or roles.is_superuser(self.db, session_user):
                continue
            if k == "role":
                raise Fatal("42501", f'permission denied to set role "{value}"')
            raise Fatal("42501", "permission denied to set session authorization")

    def _is_workspace(self, name: str) -> bool:
        try:
            return name in self.db.catalog.workspaces()
        except Exception:  # noqa: BLE001 - a catalog hiccup must not hide the real error
            return False

    # -- dispatch ------------------------------------------------------------------------------

    def _dispatch(self, msg: m.FrontendMessage) -> None:
        state = self.state
        if state is not State.READY:
            if state in (State.AUTH_SASL_INITIAL, State.AUTH_SASL_CONTINUE,
                         State.AUTH_TOKEN):
                if not isinstance(msg, m.AuthResponse):
                    raise Fatal("08P01", "expected password response"
                                if state is State.AUTH_TOKEN else "expected SASL response")
                self._on_auth(msg)
                return
            if state is State.COPY_IN:
                self._on_copy_message(msg)
                return
        handler = _EXTENDED.get(type(msg))
        if handler is not None:
            # Parse, Bind, Describe, Execute (most messages): what the chain below does for
            # them, without walking it.
            if self._batch is not None and not self._continues_batch(msg):
                self._run_batch()
            if self._skip_until_sync:
                return
            try:
                handler(self, msg)
            except Exception as e:  # noqa: BLE001 - every error becomes an ErrorResponse
                self._message_failed(e)
            return
        if isinstance(msg, m.Terminate):
            self._close()
            return
        if self._batch is not None and not self._continues_batch(msg):
            self._run_batch()
        if isinstance(msg, m.Sync):
            self._skip_until_sync = False
            self._end_implicit()
            self._ready()
            return
        if isinstance(msg, (m.CopyData, m.CopyDone, m.CopyFail)):
            return  # Postgres ignores stray COPY messages outside COPY
        if isinstance(msg, m.AuthResponse):
            raise m.ProtocolError("unexpected password message")
        if isinstance(msg, m.Query):
            self._skip_until_sync = False
            self._end_implicit()
            self._simple_query(msg.sql)
            return
        if self._skip_until_sync:
            return
        try:
            if isinstance(msg, m.Parse):
                self._parse(msg)
            elif isinstance(msg, m.Bind):
                self._bind(msg)
            elif isinstance(msg, m.Describe):
                self._describe(msg)
            elif isinstance(msg, m.Execute):
                self._execute(msg)
            elif isinstance(msg, m.Close):
                if msg.kind == "S":
                    self._statements.pop(msg.name, None)
                    prepared.drop(self.session, msg.name)  # or PREPARE's, by that name
                else:
                    self._portals.pop(msg.name, None)
                self._out.append(m.b_close_complete())
            elif isinstance(msg, m.Flush):
                pass
            elif isinstance(msg, m.FunctionCall):
                raise errors.FeatureNotSupported("the function call protocol is not supported")
        except Exception as e:  # noqa: BLE001 - every error becomes an ErrorResponse
            self._message_failed(e)

    def _message_failed(self, e: Exception) -> None:
        """A message of the extended protocol failed: its ErrorResponse, then nothing until
        Sync."""
        if self._batch is not None:
            self._run_batch()  # the Executes before this message ran before it failed
            if self._skip_until_sync:
                return  # one of them failed: PostgreSQL never got to this message
        self._error(e)
        self._skip_until_sync = True
        # As in PostgreSQL, any error aborts the transaction it happens in (an implicit one
        # rolls back at Sync), not only errors of statements.
        abort = getattr(self.session, "abort_transaction", None)
        if abort is not None:
            abort()

    # -- pipelined inserts as one batch -------------------------------------------------------

    def _continues_batch(self, msg: m.FrontendMessage) -> bool:
        """Messages a pipeline of one INSERT repeats: they may join the held batch."""
        batch = self._batch
        assert batch is not None
        if isinstance(msg, m.Execute):
            return not msg.portal  # _execute checks the portal's statement
        if isinstance(msg, m.Bind):
            st = self._statements.get(msg.statement)
            return not msg.portal and st is not None and st.sql == batch.sql
        if isinstance(msg, m.Describe):
            return msg.kind == "P" and not msg.name
        if isinstance(msg, m.Parse):  # libpq re-parses the unnamed statement every time
            return not msg.name and msg.sql == batch.sql
        return False

    def _batchable(self, portal: Portal) -> bool:
        return self._batchable_statement(portal.statement) and not portal.name

    def _batchable_statement(self, st: PreparedStatement) -> bool:
        if st.batchable is None:
            check = getattr(self.session, "batchable", None)
            st.batchable = bool(_text_of(st.sql).insert and check is not None and
                                hasattr(self.session, "execute_many") and check(st.sql))
        return st.batchable

    def _hold(self, portal: Portal) -> None:
        """Add an Execute of a batchable INSERT to the batch, its reply to come."""
        batch = self._batch
        if batch is not None and batch.sql != portal.statement.sql:
            self._run_batch()
            batch = None
        if batch is None:
            batch = self._batch = _Batch(portal.statement.sql, [], [])
        batch.sets.append(portal.params)
        batch.slots.append(len(self._out))
        # (As sent, not as decoded: a decoded embedding is its float32 array, about the same
        # size, and counting what Python objects hold cost a tenth of a pipelined row.)
        batch.size += portal.param_bytes
        portal.done = True
        portal.result = Result(command="INSERT 0 1", rowcount=1)
        if len(batch.sets) >= MAX_BATCH_SETS or batch.size >= MAX_BATCH_BYTES:
            self._run_batch()

    def _run_batch(self) -> None:
        """Run the held batch and put each Execute's reply in its slot. If the batch as one
        statement fails, its sets run one by one, so the client sees exactly what
        PostgreSQL would send: replies up to the failing Execute, its error, then nothing
        until Sync."""
        batch, self._batch = self._batch, None
        if batch is None:
            return
        replies: list[bytes] = []
        results = None
        if len(batch.sets) > 1:
            try:
                results = self.session.execute_many(batch.sql, batch.sets)
            except Exception as e:  # noqa: BLE001 - a cancel: the first Execute reports it
                self._fail_batch_at(batch, 0, e)
                return
        if results is None:
            for i, params in enumerate(batch.sets):
                try:
                    result = self._run_one(batch.sql, params)
                except Exception as e:  # noqa: BLE001 - the failing Execute reports it
                    for slot, reply in zip(reversed(batch.slots[:i]), reversed(replies),
                                           strict=True):
                        self._out.insert(slot, reply)
                    self._fail_batch_at(batch, i, e, shifted=i)
                    return
                replies.append(self._reply_bytes(result))
        else:
            replies = [self._reply_bytes(r) for r in results]
        for slot, reply in zip(reversed(batch.slots), reversed(replies), strict=True):
            self._out.insert(slot, reply)
        self._report_changes()

    def _fail_batch_at(self, batch: _Batch, i: int, e: BaseException, shifted: int = 0) -> None:
        """Execute ``i`` of the batch failed: its error goes in its slot and what the
        messages after it answered is dropped (PostgreSQL skips them until Sync)."""
        del self._out[batch.slots[i] + shifted:]
        self._error(e)
        self._skip_until_sync = True

    def _reply_bytes(self, result: Result) -> bytes:
        return b"".join([m.b_notice(n) for n in result.notices] +
                        [m.b_command_complete(self._tag(result))])

    def _end_implicit(self) -> None:
        try:
            self._end_implicit_or_raise()
        except Exception as e:  # noqa: BLE001 - the batch's commit failed: tell the client
            self._error(e)

    def _end_implicit_or_raise(self) -> None:
        end = getattr(self.session, "end_implicit", None)
        if end is not None:
            end()

    def _ready(self) -> None:
        status = "I"
        if self.session is not None:
            status = getattr(self.session, "transaction_status", "I") or "I"
        self._out.append(m.b_ready_for_query(status))

    def _close(self) -> None:
        if self.state is State.CLOSED:
            return
        self.state = State.CLOSED
        self._batch = None  # never run: the implicit transaction it belongs to rolls back
        s, self.session = self.session, None
        if s is not None:
            try:
                s.cancel()
            except Exception:  # noqa: BLE001, S110 - the session may have nothing running
                pass
            try:
                s.close()
            except Exception:  # noqa: BLE001, S110 - closing is best effort on hang-up
                pass

    def _error(self, e: BaseException) -> None:
        if isinstance(e, errors.TarnError):
            self._out.append(m.b_error(e.sqlstate, e.message, detail=e.detail, hint=e.hint,
                                       position=e.position, table=e.table, column=e.column))
        else:
            self._out.append(m.b_error("XX000", f"internal error: {type(e).__name__}: {e}"))

    def _notices(self, result: Result) -> None:
        for n in result.notices:
            self._out.append(m.b_notice(n))

    def _report_changes(self) -> None:
        settings = getattr(self.session, "settings", None)
        if not isinstance(settings, dict):
            return
        # Once per statement: look up the few reported names (settings keys are lower case)
        # rather than walk every setting, in one pass, and compare them with what the last
        # statement left (nearly always the same: nothing more to do).
        values = tuple(map(settings.get, _REPORTABLE_KEYS))
        if values == self._reported_values:
            return
        self._reported_values = values
        for (name, _), value in zip(_REPORTABLE, values, strict=True):
            if value is None or name not in self._reported:
                continue
            v = str(value)
            if self._reported[name] != v:
                self._reported[name] = v
                self._out.append(m.b_parameter_status(name, v))

    # -- simple query --------------------------------------------------------------------------

    def _simple_query(self, sql: str) -> None:
        text = _text_of(sql)
        if text.empty:
            self._out.append(m.b_empty_query())
            self._ready()
            return
        try:
            if text.copy:
                if self._start_copy(sql, [], from_simple_query=True):
                    return  # CopyInResponse sent; ReadyForQuery comes after CopyDone
            else:
                for result in self._run_all(sql):
                    self._notices(result)
                    cols = result.columns
                    if result.returns_rows:
                        encs = self._encoders(cols, [])
                        self._out.append(self._row_description(cols, []))
                        for rows in result.row_batches():
                            self._rows(rows, encs)
                    self._out.append(m.b_command_complete(self._tag(result)))
        except Exception as e:  # noqa: BLE001 - every error becomes an ErrorResponse
            self._error(e)
        self._report_changes()
        self._ready()

    def _run_all(self, sql: str) -> list[Result]:
        text = _text_of(sql)
        special = text.special
        if special is not None:
            return [special[0](self.db, self.session, [])]
        if text.role:
            res = self._run_role(sql)
            if res is not None:
                return [res]
        results: list[Result] = self.session.execute_all(sql)
        return results

    def _run_one(self, sql: str, params: Sequence[Any]) -> Result:
        text = _text_of(sql)
        special = text.special
        if special is not None:
            return special[0](self.db, self.session, list(params))
        if text.role:
            res = self._run_role(sql)
            if res is not None:
                return res
        result: Result = self.session.execute(sql, list(params) if params else None)
        return result

    def _run_role(self, sql: str) -> Result | None:
        """Role statements: the engine first; roles.py when the engine does not run them."""
        try:
            if hasattr(self.session, "execute_all"):
                results = self.session.execute_all(sql)
                if results:
                    last: Result = results[-1]
                    return last
        except (errors.FeatureNotSupported, errors.SyntaxError_):
            pass
        return roles.execute_role_statement(self.db, sql, getattr(self.session, "user", self.user))

    @staticmethod
    def _tag(result: Result) -> str:
        if result.command:
            return result.command
        return f"SELECT {result.rowcount}" if result.returns_rows else "OK"

    def _encoders(self, cols: list[Column], formats: list[int]) -> list[codecs.Encoder]:
        return self._shape(cols, formats)[0]

    def _shape(self, cols: list[Column], formats: list[int]
               ) -> tuple[list[codecs.Encoder], bytes]:
        """The encoders and the RowDescription of result columns ``cols`` in ``formats``.
        The last shape is kept per connection by the columns' identity (a statement run
        again answers with the same Column objects; hashing them is what the per-value
        dictionaries cost), else found in those by value."""
        last = self._last_shape
        key_cols = tuple(cols)
        # (Tuple equality compares identities first: the same Column objects cost no
        # dataclass comparison; equal ones that are not the same are the same shape too.)
        if last is not None and last[1] == formats and last[0] == key_cols:
            return last[2]
        key = (key_cols, tuple(formats))
        encs = _ENCODERS.get(key)
        if encs is None:
            encs = [codecs.encoder(c.type, self._fmt(formats, i)) for i, c in enumerate(cols)]
            if len(_ENCODERS) >= 1024:
                _ENCODERS.clear()
            _ENCODERS[key] = encs
        desc = _ROW_DESCRIPTIONS.get(key)
        if desc is None:
            desc = m.b_row_description(self._fields(cols, formats))
            if len(_ROW_DESCRIPTIONS) >= 1024:
                _ROW_DESCRIPTIONS.clear()
            _ROW_DESCRIPTIONS[key] = desc
        # (The tuple holds the columns: their identities stay theirs while it is kept.)
        self._last_shape = (key[0], list(formats), (encs, desc))
        return encs, desc

    @staticmethod
    def _fmt(formats: list[int], i: int) -> int:
        if not formats:
            return 0
        if len(formats) == 1:
            return formats[0]
        return formats[i] if i < len(formats) else 0

    def _fields(self, cols: list[Column], formats: list[int]) -> list[m.FieldDesc]:
        return [m.FieldDesc(c.name, c.type.oid, codecs.type_size(c.type),
                            codecs.type_mod(c.type), 0, 0, self._fmt(formats, i))
                for i, c in enumerate(cols)]

    def _row_description(self, cols: list[Column], formats: list[int]) -> bytes:
        """RowDescription of ``cols``, kept per (columns, formats): the same statement
        sends the same one every time."""
        return self._shape(cols, formats)[1]

    def _rows(self, rows: Sequence[tuple[Any, ...]], encs: list[codecs.Encoder]) -> None:
        data_row = m.b_data_row
        if len(rows) == 1:  # (a key lookup's answer: no generator, nothing to spill yet)
            msg = data_row([None if v is None else enc(v)
                            for v, enc in zip(rows[0], encs, strict=False)])
            self._out.append(msg)
            self._spill(len(msg))
            return
        self._stream(data_row([None if v is None else enc(v)
                               for v, enc in zip(row, encs, strict=False)]) for row in rows)

    def _stream(self, messages: Iterable[bytes]) -> None:
        """Append a long answer's messages, spilling them through :attr:`sink` as they
        grow (:meth:`_spill`, looked at every _SPILL_CHECK bytes)."""
        out = self._out
        added = 0
        for msg in messages:
            out.append(msg)
            added += len(msg)
            if added >= _SPILL_CHECK:
                self._spill(added)
                added = 0
        self._spill(added)

    def _spill(self, added: int) -> None:
        """Count ``added`` bytes of answer; send the answer so far through :attr:`sink` once
        SPILL_BYTES wait (never while a held batch's replies wait for their places in it)."""
        self._unspilled += added
        if self.sink is None or self._batch is not None or self._unspilled < SPILL_BYTES:
            return
        out = self._out
        data = b"".join(out)
        del out[:]  # in place: receive_data holds the same list
        self._unspilled = 0
        try:
            self.sink(data)
        except OSError:
            self.sink = None
            raise errors.QueryCanceled("canceling statement: the client has hung up") from None

    # -- extended query ------------------------------------------------------------------------

    def _parse(self, msg: m.Parse) -> None:
        if msg.name and (msg.name in self._statements or prepared.named(self.session, msg.name)):
            raise errors.DuplicatePreparedStatement(
                f'prepared statement "{msg.name}" already exists')
        self._statements[msg.name] = PreparedStatement(msg.name, msg.sql, list(msg.param_oids))
        self._out.append(m.b_parse_complete())

    def _statement(self, name: str) -> PreparedStatement:
        st = self._statements.get(name)
        if st is None and name:
            # one namespace with SQL PREPARE's statements, which a Bind may run too
            found = prepared.sql_statement(self.session, name)
            if found is not None:
                return PreparedStatement(name, *found)
        if st is None:
            raise errors.InvalidSqlStatementName(f'prepared statement "{name}" does not exist')
        return st

    def _describe_statement(self, st: PreparedStatement) -> tuple[list[int], list[Column]]:
        if st.described is None:
            text = _text_of(st.sql)
            special = text.special
            if text.empty or text.copy or text.role:
                st.described = (list(st.param_oids), [])
            elif special is not None:
                st.described = ([t.oid for t in special[1]], list(special[2]))
            else:
                given = [codecs.type_for_param_oid(o) for o in st.param_oids]
                params, cols = self.session.describe(st.sql, given if st.param_oids else None)
                oids = [_oid(p) for p in params]
                # Types the client fixed in Parse win over what the engine inferred.
                for i, o in enumerate(st.param_oids):
                    if o and i < len(oids):
                        oids[i] = o
                if len(st.param_oids) > len(oids):
                    oids += st.param_oids[len(oids):]
                st.described = (oids, list(cols))
        return st.described

    def _bind(self, msg: m.Bind) -> None:
        st = self._statement(msg.statement)
        nparams = len(msg.params)
        if msg.param_formats and len(msg.param_formats) not in (1, nparams):
            raise m.ProtocolError(f"bind message has {len(msg.param_formats)} parameter formats "
                                  f"but {nparams} parameters")
        oids = st.param_oids
        formats = msg.param_formats
        fmts = formats if len(formats) == nparams else \
            [formats[0] if formats else 0] * nparams  # (one format for all, or none)
        if 1 in fmts and any(f == 1 and (i >= len(oids) or oids[i] in (0, 705))
                             for i, f in enumerate(fmts)):
            oids = self._describe_statement(st)[0]
        values: list[Any] = []
        decoder = codecs.param_decoder
        size = 0
        for i, raw in enumerate(msg.params):
            if raw is None:
                values.append(None)
                continue
            size += len(raw)
            values.append(decoder(oids[i] if i < len(oids) else 0, fmts[i])(raw))
        if msg.portal and msg.portal in self._portals:
            raise DuplicateCursor(f'portal "{msg.portal}" already exists')
        self._portals[msg.portal] = Portal(msg.portal, st, values, msg.result_formats,
                                           param_bytes=size)
        self._out.append(m.b_bind_complete())

    def _describe(self, msg: m.Describe) -> None:
        if msg.kind == "S":
            st = self._statement(msg.name)
            oids, cols = self._describe_statement(st)
            self._out.append(m.b_parameter_description(oids))
            if cols:
                self._out.append(self._row_description(cols, []))
            else:
                self._out.append(m.b_no_data())
            return
        portal = self._portals.get(msg.name)
        if portal is None:
            raise InvalidCursorName(f'portal "{msg.name}" does not exist')
        cols = self._portal_columns(portal)
        portal.columns = cols
        if cols:
            portal.shape = self._shape(cols, portal.result_formats)
            self._out.append(portal.shape[1])
        else:
            self._out.append(m.b_no_data())

    def _portal_columns(self, portal: Portal) -> list[Column]:
        sql = portal.statement.sql
        if portal.result is not None:
            return portal.result.columns
        text = _text_of(sql)
        if text.empty or text.copy or text.role or \
                self._batchable_statement(portal.statement):
            return []  # (a batchable INSERT has no RETURNING: no need to plan it)
        if text.read_only:
            # Reads run now, so the RowDescription is exactly what Execute sends; their
            # notices go out now too (Execute sends only those of statements it runs).
            portal.result = self._run_one(sql, portal.params)
            self._notices(portal.result)
            return portal.result.columns
        return self._describe_statement(portal.statement)[1]

    def _execute(self, msg: m.Execute) -> None:
        portal = self._portals.get(msg.portal)
        if portal is None:
            raise InvalidCursorName(f'portal "{msg.portal}" does not exist')
        sql = portal.statement.sql
        text = _text_of(sql)
        if text.empty:
            self._out.append(m.b_empty_query())
            return
        if portal.done:
            # Executing a finished portal again yields no more rows (as in Postgres).
            tag = self._tag(portal.result) if portal.result is not None else "SELECT 0"
            if tag.startswith("SELECT"):
                tag = "SELECT 0"
            self._out.append(m.b_command_complete(tag))
            return
        if portal.result is None:
            if text.copy:
                self._start_copy(sql, portal.params, from_simple_query=False)
                portal.done = True
                return
            if text.insert and self.session is not None and \
                    hasattr(self.session, "begin_implicit"):
                # Inserts up to a Sync share one implicit transaction (one commit at Sync),
                # as PostgreSQL runs a pipeline such as psycopg's executemany: all or
                # nothing. Other statements still commit on their own, so a READ COMMITTED
                # update that lost a race with another server's commit is re-run before
                # its answer is sent.
                self.session.begin_implicit()
                if self._batchable(portal):
                    self._hold(portal)
                    return
            portal.result = self._run_one(sql, portal.params)
            self._notices(portal.result)
        result = portal.result
        cols = result.columns
        if portal.columns is not None and len(portal.columns) == len(cols):
            cols = portal.columns
        if result.returns_rows:
            encs = portal.shape[0] if portal.shape is not None and cols is portal.columns \
                else self._encoders(cols, portal.result_formats)
            if msg.max_rows <= 0 and not portal.rows_sent:
                # All rows at once: converted from Arrow a batch at a time (a big result
                # never sits whole in memory as Python objects), as the simple query does.
                for batch in result.row_batches():
                    self._rows(batch, encs)
                tag = self._tag(result)
            else:
                rows = result.rows
                start = portal.rows_sent
                end = len(rows) if msg.max_rows <= 0 else min(len(rows), start + msg.max_rows)
                self._rows(rows[start:end], encs)
                portal.rows_sent = end
                if end < len(rows):
                    self._out.append(m.b_portal_suspended())
                    return
                tag = self._tag(result)
                if tag.startswith("SELECT") and msg.max_rows > 0:
                    tag = f"SELECT {len(rows)}"
        else:
            tag = self._tag(result)
        portal.done = True
        self._report_changes()
        self._out.append(m.b_command_complete(tag))
        if not portal.name:
            # The unnamed portal lives until the next Bind; drop the rows now to free memory.
            portal.result = Result(columns=result.columns, command=result.command,
                                   rowcount=result.rowcount)

    # -- COPY ----------------------------------------------------------------------------------

    def _start_copy(self, sql: str, params: Sequence[Any], *, from_simple_query: bool) -> bool:
        """Start a COPY. Returns True when a COPY FROM STDIN now waits for data."""
        spec = copy.parse_copy(sql)
        copy.refuse_view(self.session, spec)  # 42809, as PostgreSQL
        workspace = getattr(self.session, "workspace", None) or "default"
        if spec.is_from:
            if getattr(self.session, "read_only", False):
                raise errors.InsufficientPrivilege(
                    "permission denied: this session is read-only (COPY FROM)")
            check = getattr(self.session, "check_workspace", None)
            if check is not None:
                check(spec.schema or workspace)
            acl.check_table_named(self.session, spec.schema, spec.table or "", "INSERT",
                                  spec.columns)
            target = copy.CopyTarget.resolve(self.db, self.session, spec, workspace)
            reader = copy.CopyReader(spec.options, [c.type for c in target.columns])
            # The rows come in batches (copy.BATCH_BYTES), each a statement of one
            # implicit transaction: a simple query's COPY commits it at CopyDone, an
            # extended protocol's at the Sync after CopyDone (inside BEGIN: the block's own).
            begin = getattr(self.session, "begin_implicit", None)
            if begin is not None:
                begin()
            self._copy = _Copy(reader, target, from_simple_query)
            self._out.append(m.b_copy_in_response(spec.options.format == "binary",
                                                  len(target.columns)))
            self.state = State.COPY_IN
            return True
        # COPY table TO: the answer streams from the engine a batch at a time (a dump of a
        # big table holds a few batches, not the table), while the statement's scope stays
        # open. A query's may read a table more than once, so it is run whole.
        streamed = getattr(self.session, "streamed_selects", None)
        with streamed() if streamed is not None and spec.query is None \
                else contextlib.nullcontext():
            result = self._run_one(copy.select_for(spec), params)
            writer = copy.CopyWriter(spec.options, [c.type for c in result.columns])
            self._out.append(m.b_copy_out_response(spec.options.format == "binary",
                                                   len(result.columns)))
            header = writer.header([c.name for c in result.columns])
            binary = spec.options.format == "binary"
            if header and not binary:
                self._out.append(m.b_copy_data(header))
            # One CopyData per row, as Postgres sends it: psycopg's Copy.rows() relies on it.
            sent = [0]  # rows, counted as they go

            def messages() -> Iterator[bytes]:
                # The binary header travels with the first row (or the trailer), as in Postgres.
                first = header if binary else b""
                # (1024 rows of Python values at a time: 8192 rows of 384-d vectors are
                # ~100 MB of float objects)
                for rows in result.row_batches(1024):
                    for row in rows:
                        yield m.b_copy_data(first + writer.row(row))
                        first = b""
                    sent[0] += len(rows)
                if binary:
                    yield m.b_copy_data(first + writer.trailer())

            self._stream(messages())
        self._out.append(m.b_copy_done())
        self._out.append(m.b_command_complete(f"COPY {sent[0]}"))
        return False

    def _on_copy_message(self, msg: m.FrontendMessage) -> None:
        assert self._copy is not None
        cp = self._copy
        if isinstance(msg, (m.Flush, m.Sync)):
            return  # allowed and ignored during COPY IN
        try:
            if isinstance(msg, m.CopyData):
                cp.reader.feed(msg.data)
                batch = cp.reader.take()
                if batch is not None:
                    cp.rows += cp.target.insert(self.session, batch)
                return
            if isinstance(msg, m.CopyDone):
                for batch in cp.reader.finish():
                    cp.rows += cp.target.insert(self.session, batch)
                self._end_copy()
                if cp.from_simple_query:
                    self._end_implicit_or_raise()
                self._out.append(m.b_command_complete(f"COPY {cp.rows}"))
            elif isinstance(msg, m.CopyFail):
                raise errors.QueryCanceled(f"COPY from stdin failed: {msg.message}")
            else:
                raise m.ProtocolError(f"unexpected message type {type(msg).__name__} during "
                                      "COPY from stdin")
        except m.ProtocolError:
            raise
        except Exception as e:  # noqa: BLE001 - every error becomes an ErrorResponse
            self._end_copy()
            abort = getattr(self.session, "abort_transaction", None)
            if abort is not None:
                abort()  # the COPY's earlier batches go with the transaction
            if cp.from_simple_query:
                self._end_implicit()  # rolls back an implicit one
            self._error(e)
            if not cp.from_simple_query:
                self._skip_until_sync = True
        if cp.from_simple_query:
            self._report_changes()
            self._ready()

    def _end_copy(self) -> None:
        self._copy = None
        if self.state is State.COPY_IN:
            self.state = State.READY


def _oid(p: Any) -> int:
    if p is None:
        return 0
    if isinstance(p, int):
        return p
    if isinstance(p, ColumnType):
        return p.oid
    return int(getattr(p, "oid", 0) or getattr(p, "type_oid", 0))


#: The extended protocol's statement messages and their handlers (ServerConnection._dispatch).
_EXTENDED: dict[type, Callable[[ServerConnection, Any], None]] = {
    m.Parse: ServerConnection._parse, m.Bind: ServerConnection._bind,
    m.Describe: ServerConnection._describe, m.Execute: ServerConnection._execute}

#: Encoders and RowDescription bytes per (result columns, formats): built once per shape
#: (Column and ColumnType are frozen; encoders are pure functions). Bounded; cleared when full.
_ENCODERS: dict[tuple[tuple[Column, ...], tuple[int, ...]], list[codecs.Encoder]] = {}
_ROW_DESCRIPTIONS: dict[tuple[tuple[Column, ...], tuple[int, ...]], bytes] = {}


def _is_read_only(sql: str) -> bool:
    if not _READ_ONLY.match(sql):
        return False
    head = sql.lstrip().lstrip("(").lstrip()[:4].lower()
    # WITH ... INSERT/UPDATE/DELETE is a write; data-modifying CTEs must not run at Describe.
    return not (head == "with" and _WRITE_IN_WITH.search(sql))


def parse_options(options: str) -> list[tuple[str, str]]:
    """``-c key=value`` / ``--key=value`` pairs of the startup ``options`` parameter."""
    out: list[tuple[str, str]] = []
    tokens: list[str] = []
    cur: list[str] = []
    i = 0
    # Backslash escapes a space inside a value (libpq's rule for options).
    while i < len(options):
        ch = options[i]
        if ch == "\\" and i + 1 < len(options):
            cur.append(options[i + 1])
            i += 2
            continue
        if ch.isspace():
            if cur:
                tokens.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
        i += 1
    if cur:
        tokens.append("".join(cur))
    j = 0
    while j < len(tokens):
        t = tokens[j]
        kv = None
        if t == "-c" and j + 1 < len(tokens):
            kv = tokens[j + 1]
            j += 1
        elif t.startswith("-c"):
            kv = t[2:]
        elif t.startswith("--"):
            kv = t[2:]
        j += 1
        if kv and "=" in kv:
            k, v = kv.split("=", 1)
            out.append((k.replace("-", "_"), v))
    return out


class InvalidCursorName(errors.TarnError):
    sqlstate = "34000"
    http_status = 400
    code = "invalid_cursor_name"


class DuplicateCursor(errors.TarnError):
    sqlstate = "42P03"
    http_status = 409
    code = "duplicate_cursor"


__all__ = ["ServerConnection", "ServerConfig", "State", "parse_options", "REPORTED"]
