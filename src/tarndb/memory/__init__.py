"""Agent memory over a trace table: the seed's recipe as one object.

>>> mem = Memory(db, workspace="ws", source="agent_traces")
>>> mem.build()                                   # CTAS + embedding column + indexes
>>> mem.search("fix authentication bug", mode="hybrid", k=5)
>>> run_id = mem.remember("fix flaky test", [{"role": "user", "content": "..."}])
>>> mem.replay(run_id)                            # the stored conversation, unchanged

``build`` copies the trace table into a memory table (``CREATE TABLE ... AS SELECT``), adds an
``embedding FLOAT4[]`` column, fills it in SQL with ``embed()`` and creates a vector index on
it and a BM25 index on the text column. :meth:`Memory.tools` returns plain, typed, documented
functions an agent framework (Pydantic AI, OpenAI tools, MCP) can register as tools.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from .. import errors as E
from ..embeddings import default_model_name, get_model, install
from ..ingest._traces import TRACE_COLUMNS

MODES = ("hybrid", "vector", "bm25")
_SUMMARY_COLUMNS = ("run_id", "agent", "model", "task", "episode", "trial_name")


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Memory:
    def __init__(self, db: Any, table: str = "agent_memory", workspace: str = "public",
                 source: str = "agent_traces", text_column: str = "task",
                 embedding_column: str = "embedding", model: str | None = None,
                 session_factory: Callable[[], Any] | None = None) -> None:
        self.db = db
        #: Sessions the memory's SQL runs in: the lake owner's by default; ``tarndb mcp
        #: --token`` passes the token's (its workspaces, read or write), so an agent's tools
        #: are held to what the token may do.
        self._new_session = session_factory or (lambda: db.session(workspace=workspace))
        self.table = table
        self.workspace = workspace
        self.source = source
        self.text_column = text_column
        self.embedding_column = embedding_column
        self.model = model or default_model_name(db, workspace)
        install(db)

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def qualified(self) -> str:
        return f"{_q(self.workspace)}.{_q(self.table)}"

    @property
    def qualified_source(self) -> str:
        return f"{_q(self.workspace)}.{_q(self.source)}"

    def _sql(self, sql: str, params: Sequence[Any] | None = None) -> Any:
        s = self._new_session()
        try:
            return s.execute(sql, list(params) if params is not None else None)
        finally:
            s.close()

    def _exists(self, name: str) -> bool:
        s = self._new_session()
        try:
            s.check_workspace(self.workspace)  # a token's session: 42501 outside its own
        finally:
            s.close()
        return self.db.catalog.find_table(self.workspace, name) is not None

    def _columns(self) -> list[str]:
        return [c.name for c in self.db.catalog.table(self.workspace, self.table).columns]

    # -- building ---------------------------------------------------------------------------

    def build(self, limit: int | None = None, index: bool = True) -> int:
        """Create the memory table from the source traces (idempotent) and embed every row
        that has no embedding yet; returns how many rows were embedded."""
        if not self._exists(self.table):
            if not self._exists(self.source):
                cols = ", ".join(f"{_q(n)} {t}" for n, t in TRACE_COLUMNS)
                self._sql(f"CREATE TABLE IF NOT EXISTS {self.qualified_source} ({cols}) "
                          "USING deeplake")
            lim = f" LIMIT {int(limit)}" if limit is not None else ""
            self._sql(f"CREATE TABLE IF NOT EXISTS {self.qualified} AS "
                      f"SELECT * FROM {self.qualified_source}{lim}")
        self._sql(f"ALTER TABLE {self.qualified} ADD COLUMN IF NOT EXISTS "
                  f"{_q(self.embedding_column)} FLOAT4[]")
        n = self.refresh_embeddings()
        if index:
            self.create_indexes()
        return n

    def refresh_embeddings(self) -> int:
        """Embed rows whose embedding is NULL: one UPDATE, batched by DuckDB into model-sized
        calls of ``embed()``."""
        res = self._sql(
            f"UPDATE {self.qualified} SET {_q(self.embedding_column)} = "
            f"embed($1, {_q(self.text_column)}) WHERE {_q(self.embedding_column)} IS NULL "
            f"AND {_q(self.text_column)} IS NOT NULL", [self.model])
        return int(res.rowcount or 0)

    def create_indexes(self) -> None:
        base = self.table.replace('"', "")
        self._sql(f"CREATE INDEX IF NOT EXISTS {_q('idx_' + base + '_vec')} ON {self.qualified}"
                  f" USING deeplake_index ({_q(self.embedding_column)} DESC)")
        self._sql(f"CREATE INDEX IF NOT EXISTS {_q('idx_' + base + '_bm25')} ON "
                  f"{self.qualified} USING deeplake_index ({_q(self.text_column)}) "
                  "WITH (index_type = 'bm25')")

    # -- reading ----------------------------------------------------------------------------

    def search(self, query: str, mode: str = "hybrid", k: int = 10,
               filters: dict[str, Any] | None = None, w_vec: float = 0.5,
               w_text: float = 0.5, include_conversations: bool = False
               ) -> list[dict[str, Any]]:
        """The ``k`` best memories for ``query``. ``mode``: ``hybrid`` (vector + BM25),
        ``vector`` (semantic) or ``bm25`` (exact words, identifiers, error codes).
        ``filters`` maps a column to a value (equality) or a list of values (any of)."""
        if mode not in MODES:
            raise E.InvalidParameterValue(f"mode must be one of {', '.join(MODES)}")
        have = self._columns()
        cols = [c for c in _SUMMARY_COLUMNS if c in have]
        if include_conversations and "conversations" in have:
            cols.append("conversations")
        params: list[Any] = []

        def p(v: Any) -> str:
            params.append(v)
            return f"${len(params)}"

        emb, text = _q(self.embedding_column), _q(self.text_column)
        if mode == "bm25":
            score = f"{text} <#> {p(query)}"
        else:
            vec = get_model(self.model, db=self.db, workspace=self.workspace).embed([query])[0]
            vec_sql = f"{p(vec.tolist())}::float4[]"
            if mode == "vector":
                score = f"{emb} <#> {vec_sql}"
            else:
                score = (f"({emb}, {text}) <#> deeplake_hybrid_record({vec_sql}, {p(query)}, "
                         f"{float(w_vec)}, {float(w_text)})")
        where = [f"{emb} IS NOT NULL"] if mode != "bm25" else []
        for col, val in (filters or {}).items():
            if col not in have:
                raise E.UndefinedColumn(f'column "{col}" does not exist in {self.table}',
                                        column=col)
            if isinstance(val, (list, tuple, set)):
                vals = list(val)
                where.append(f"{_q(col)} IN ({', '.join(p(v) for v in vals)})"
                             if vals else "FALSE")
            elif val is None:
                where.append(f"{_q(col)} IS NULL")
            else:
                where.append(f"{_q(col)} = {p(val)}")
        sql = (f"SELECT {', '.join(_q(c) for c in cols)}, {score} AS score "
               f"FROM {self.qualified}"
               + (f" WHERE {' AND '.join(where)}" if where else "")
               + f" ORDER BY score DESC LIMIT {int(k)}")
        res = self._sql(sql, params)
        names = [c.name for c in res.columns]
        return [dict(zip(names, row, strict=True)) for row in res.rows]

    def replay(self, run_id: str) -> list[Any] | None:
        """The conversation stored for ``run_id`` (source table first, then memory), or
        ``None`` when there is no such run."""
        for name in (self.source, self.table):
            if not self._exists(name):
                continue
            res = self._sql(f"SELECT conversations FROM {_q(self.workspace)}.{_q(name)} "
                            "WHERE run_id = $1 LIMIT 1", [run_id])
            if res.rows:
                conv = res.rows[0][0]
                return json.loads(conv) if isinstance(conv, str) else conv
        return None

    # -- writing ----------------------------------------------------------------------------

    def remember(self, task: str, conversations: list[Any] | None = None,
                 agent: str | None = None, model: str | None = None,
                 run_id: str | None = None, episode: str | None = None,
                 trial_name: str | None = None, metadata: dict[str, Any] | None = None
                 ) -> str:
        """Store a new memory (in the trace table and, embedded, in the memory table) and
        return its ``run_id``."""
        run_id = run_id or str(uuid.uuid4())
        values = {"agent": agent, "model": model, "task": task, "episode": episode,
                  "run_id": run_id, "trial_name": trial_name,
                  "conversations": json.dumps(conversations or [], ensure_ascii=False),
                  "metadata": json.dumps(metadata or {}, ensure_ascii=False)}
        if not self._exists(self.table):
            self.build()
        s = self._new_session()
        try:
            s.execute("BEGIN")
            for name, embed in ((self.source, False), (self.table, True)):
                if not self._exists(name):
                    continue
                have = {c.name for c in self.db.catalog.table(self.workspace, name).columns}
                cols = [c for c in values if c in have]
                params = [values[c] for c in cols]
                exprs = [f"${i + 1}" + ("::jsonb" if c in ("conversations", "metadata") else "")
                         for i, c in enumerate(cols)]
                if embed and self.embedding_column in have:
                    cols.append(self.embedding_column)
                    params.append(self.model)
                    exprs.append(f"embed(${len(params)}, $"
                                 f"{cols.index(self.text_column) + 1})")
                s.execute(f"INSERT INTO {_q(self.workspace)}.{_q(name)} "
                          f"({', '.join(_q(c) for c in cols)}) VALUES ({', '.join(exprs)})",
                          params)
            s.execute("COMMIT")
        except BaseException:
            if s.transaction_status != "I":
                s.execute("ROLLBACK")
            raise
        finally:
            s.close()
        return run_id

    # -- tools ------------------------------------------------------------------------------

    def tools(self) -> list[Callable[..., Any]]:
        """``search_memory``, ``remember`` and ``replay_run`` as plain functions with type
        hints and docstrings, for agent frameworks that build tool schemas from them."""
        mem = self

        def search_memory(query: str, mode: str = "hybrid", k: int = 5) -> list[dict[str, Any]]:
            """Search past agent runs. mode: 'hybrid' (default), 'vector' for paraphrases,
            'bm25' for exact identifiers and error messages. Returns run_id, task, score."""
            rows = mem.search(query, mode=mode, k=k)
            return [{k2: v for k2, v in r.items() if k2 in ("run_id", "task", "episode",
                                                            "model", "score")} for r in rows]

        def remember(task: str, conversation: list[dict[str, Any]] | None = None,
                     agent: str | None = None) -> str:
            """Save a finished run (task and conversation) to memory; returns its run_id."""
            return mem.remember(task, conversation or [], agent=agent)

        def replay_run(run_id: str) -> list[Any] | None:
            """The exact conversation of a past run, by run_id."""
            return mem.replay(run_id)

        return [search_memory, remember, replay_run]


__all__ = ["MODES", "Memory"]
