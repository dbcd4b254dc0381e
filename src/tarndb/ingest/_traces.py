"""Agent traces into the seed's trace table (one row per run, the conversation as JSONB).

Sources:

- JSON Lines, one trace per line, with the table's fields (``agent``, ``model``,
  ``model_provider``, ``date``, ``task``, ``episode``, ``run_id``, ``trial_name``,
  ``conversations``); chat-style records with ``messages`` instead of ``conversations`` work
  too. ``conversations`` may be a list or its JSON text.
- SWE-agent trajectories: a folder of ``.traj`` files (with an optional ``manifest.jsonl``
  naming each file's model); ``history`` becomes ``conversations`` unchanged, the problem
  statement the ``task``.

``conversations`` is stored exactly as read (same list, same key order), so
``tarndb.memory.replay(run_id)`` returns what the agent saw.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from ._common import (
    IngestReport,
    Progress,
    batched,
    ensure_table,
    existing_keys,
    insert_batch,
)

TRACE_COLUMNS: list[tuple[str, str]] = [
    ("id", "BIGSERIAL PRIMARY KEY"),
    ("agent", "TEXT"),
    ("model", "TEXT"),
    ("model_provider", "TEXT"),
    ("date", "TEXT"),
    ("task", "TEXT"),
    ("episode", "TEXT"),
    ("run_id", "TEXT"),
    ("trial_name", "TEXT"),
    ("conversations", "JSONB"),
    ("metadata", "JSONB"),
]
_TEXT_FIELDS = ("agent", "model", "model_provider", "date", "task", "episode", "run_id",
                "trial_name")
TRACE_SCHEMA = pa.schema([(n, pa.string()) for n, _ in TRACE_COLUMNS if n != "id"])
_RUN_NS = uuid.UUID("5b0e7a52-9d8e-4b8f-a3e6-7f1d2c3b4a59")
_TASK_MARKERS = ("We're currently solving the following", "We are currently solving the following")


def _text(v: Any) -> str | None:
    if v is None:
        return None
    return v if isinstance(v, str) else json.dumps(v)


def record_from_json(rec: dict[str, Any], line_no: int, source: str) -> dict[str, Any]:
    conv = rec.get("conversations", rec.get("messages"))
    if isinstance(conv, str):
        conv_text = conv  # already JSON text: keep it byte for byte
    else:
        conv_text = json.dumps(conv if conv is not None else [], ensure_ascii=False)
    run_id = rec.get("run_id") or rec.get("id")
    if not run_id:
        run_id = str(uuid.uuid5(_RUN_NS, f"{source}:{line_no}"))
    row: dict[str, Any] = {f: _text(rec.get(f)) for f in _TEXT_FIELDS}
    row["run_id"] = str(run_id)
    if row["task"] is None and isinstance(conv, list):
        row["task"] = first_user_text(conv)
    row["conversations"] = conv_text
    extra = {k: v for k, v in rec.items()
             if k not in _TEXT_FIELDS and k not in ("conversations", "messages", "id")}
    row["metadata"] = json.dumps(extra, ensure_ascii=False)
    return row


def first_user_text(conv: list[Any], limit: int = 4000) -> str | None:
    for m in conv:
        if isinstance(m, dict) and m.get("role") in ("user", "human"):
            c = m.get("content")
            if isinstance(c, list):  # OpenAI content parts
                c = " ".join(str(p.get("text", "")) for p in c if isinstance(p, dict))
            if c:
                return str(c)[:limit]
    return None


def swe_agent_task(history: list[Any]) -> str | None:
    """The problem statement of a SWE-agent run: the text after the last "We're currently
    solving ..." preamble that is not inside a demonstration, up to ``INSTRUCTIONS:``."""
    for m in history:
        if not isinstance(m, dict) or m.get("role") != "user":
            continue
        if m.get("is_demo") or m.get("message_type") == "demonstration":
            continue
        c = m.get("content")
        if not isinstance(c, str):
            continue
        if "--- DEMONSTRATION ---" in c and "END OF DEMONSTRATION" not in c:
            continue
        start = max(c.rfind(mk) for mk in _TASK_MARKERS)
        if start < 0:
            continue
        body = c[start:]
        body = body[body.find("\n") + 1:]  # drop the preamble line
        for head in ("ISSUE:\n", "The description is:\n"):
            if body.startswith(head):
                body = body[len(head):]
        end = body.find("INSTRUCTIONS:")
        return (body[:end] if end >= 0 else body).strip()
    return first_user_text(history)


def record_from_traj(path: Path, root: Path, manifest: dict[str, dict[str, Any]]
                     ) -> dict[str, Any]:
    raw = path.read_text(encoding="utf-8")
    doc = json.loads(raw)
    rel = path.relative_to(root).as_posix()
    man = manifest.get(rel) or {}
    history = doc.get("history") or []
    info = doc.get("info") or {}
    replay = doc.get("replay_config")
    if isinstance(replay, str):
        try:
            replay = json.loads(replay)
        except ValueError:
            replay = None
    model = man.get("model")
    if not model and isinstance(replay, dict):
        model = ((replay.get("agent") or {}).get("model") or {}).get("name")
    trial = path.parent.name
    extra = {"source_file": rel, "exit_status": info.get("exit_status"),
             "submission": info.get("submission"), "model_stats": info.get("model_stats"),
             "n_steps": len(doc.get("trajectory") or []),
             "environment": doc.get("environment")}
    if man:
        extra["manifest"] = {k: man[k] for k in ("source_repo", "commit", "sha256") if k in man}
    return {
        "agent": "swe-agent", "model": model, "model_provider": None, "date": None,
        "task": swe_agent_task(history), "episode": man.get("instance") or path.stem,
        "run_id": str(uuid.uuid5(_RUN_NS, rel)), "trial_name": trial,
        "conversations": json.dumps(history, ensure_ascii=False),
        "metadata": json.dumps(extra, ensure_ascii=False, default=str),
    }


def _manifest(root: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    p = root / "manifest.jsonl"
    if p.is_file():
        for line in p.read_text(encoding="utf-8").splitlines():
            if line.strip():
                rec = json.loads(line)
                if rec.get("file"):
                    out[str(rec["file"])] = rec
    return out


def iter_trace_records(source: str | Path | Iterable[dict[str, Any]]
                       ) -> Iterator[dict[str, Any]]:
    """Rows for the trace table from a JSONL file, a folder of SWE-agent ``.traj`` files
    (folders may also hold ``.jsonl`` files) or any iterable of trace dicts (a Hugging Face
    ``datasets.Dataset`` iterates as one)."""
    if not isinstance(source, (str, Path)):
        for i, rec in enumerate(source):
            yield record_from_json(dict(rec), i, "records")
        return
    p = Path(source)
    if p.is_dir():
        manifest = _manifest(p)
        for f in sorted(p.rglob("*")):
            if f.suffix == ".traj" and f.is_file():
                yield record_from_traj(f, p, manifest)
            elif f.suffix == ".jsonl" and f.is_file() and f.name != "manifest.jsonl":
                yield from iter_trace_records(f)
        return
    with p.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if line.strip():
                yield record_from_json(json.loads(line), i, p.name)


def ingest_traces(db: Any, source: str | Path | Iterable[dict[str, Any]],
                  table: str = "agent_traces",
                  workspace: str = "public", batch_size: int = 50, limit: int | None = None,
                  progress: bool = True) -> IngestReport:
    """Insert traces into ``workspace.table`` (created with the seed's schema plus a
    ``metadata`` JSONB column); runs whose ``run_id`` is already there are skipped."""
    t0 = time.perf_counter()
    report = IngestReport(table=f"{workspace}.{table}")
    session = db.session(workspace=workspace)
    try:
        ensure_table(session, workspace, table, TRACE_COLUMNS)
        done = existing_keys(session, workspace, table, "run_id")
        seen: set[str] = set()

        def fresh() -> Iterator[dict[str, Any]]:
            n = 0
            for row in iter_trace_records(source):
                if row["run_id"] in done or row["run_id"] in seen:
                    report.skipped += 1
                    continue
                seen.add(row["run_id"])
                yield row
                n += 1
                if limit is not None and n >= limit:
                    return

        with Progress(None, f"traces -> {table}", progress, "trace") as bar:
            for batch in batched(fresh(), batch_size):
                report.inserted += insert_batch(session, workspace, table, batch,
                                                TRACE_SCHEMA)
                bar.update(len(batch))
    finally:
        session.close()
    report.seconds = time.perf_counter() - t0
    return report
