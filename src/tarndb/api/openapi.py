"""The OpenAPI 3.1 document of the HTTP API.

Served at ``/openapi.json`` and committed as ``docs/openapi.json``; regenerate that file with
``python -m tarndb.api.openapi docs/openapi.json`` (a test fails when it is stale, and another
checks that every route of the app is documented).
"""

from __future__ import annotations

import json
import sys
from typing import Any

_JSON = "application/json"


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _ok(description: str, schema: dict[str, Any] | None = None, status: str = "200",
        content_type: str = _JSON) -> dict[str, Any]:
    resp: dict[str, Any] = {"description": description}
    if schema is not None:
        resp["content"] = {content_type: {"schema": schema}}
    return {status: resp}


def _errors(*statuses: int) -> dict[str, Any]:
    text = {400: "Malformed request", 401: "Missing or invalid token",
            403: "Wrong org, workspace or role", 404: "Not found", 408: "Statement timed out",
            409: "Conflict (exists, constraint, concurrent commit)", 413: "Too large",
            416: "Range not satisfiable", 422: "SQL error", 429: "Busy; see Retry-After"}
    return {str(s): {"description": text[s], "content": {_JSON: {"schema": _ref("Error")}}}
            for s in statuses}


def _body(schema: dict[str, Any], content_type: str = _JSON) -> dict[str, Any]:
    return {"required": True, "content": {content_type: {"schema": schema}}}


_WS = {"name": "ws", "in": "path", "required": True, "schema": {"type": "string"},
       "description": "Workspace (schema) name"}
_FILE_ID = {"name": "file_id", "in": "path", "required": True,
            "schema": {"type": "string", "format": "uuid"}}
_TABLE = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_ORG = {"name": "X-Activeloop-Org-Id", "in": "header", "required": False,
        "schema": {"type": "string"}, "description": "When sent, must be the token's org"}
_STD = [401, 403, 429]


def _op(summary: str, responses: dict[str, Any], params: list[dict[str, Any]] | None = None,
        body: dict[str, Any] | None = None, security: bool = True, op_id: str = "",
        tag: str = "") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "operationId": op_id, "tags": [tag],
                          "responses": responses}
    op["parameters"] = list(params or []) + ([_ORG] if security else [])
    if body is not None:
        op["requestBody"] = body
    if not security:
        op["security"] = []
    return op


def _schemas() -> dict[str, Any]:
    any_value: dict[str, Any] = {}
    return {
        "Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {
                "type": "object", "required": ["code", "message", "sqlstate"],
                "properties": {
                    "code": {"type": "string", "examples": ["undefined_table"]},
                    "message": {"type": "string"},
                    "sqlstate": {"type": "string", "examples": ["42P01"]},
                    "position": {"type": "integer"}, "detail": {"type": "string"},
                    "hint": {"type": "string"}, "column": {"type": "string"},
                    "table": {"type": "string"}, "batch_index": {"type": "integer"},
                }}},
        },
        "QueryRequest": {
            "type": "object", "required": ["query"],
            "properties": {
                "query": {"type": "string", "description": "SQL; $1..$n refer to params"},
                "params": {"type": "array", "items": any_value},
                "timeout_ms": {"type": "integer", "minimum": 1},
            },
        },
        "QueryResult": {
            "type": "object", "required": ["columns", "rows", "row_count"],
            "properties": {
                "columns": {"type": "array", "items": {"type": "string"}},
                "column_types": {"type": "array", "items": {"type": "string"}},
                "rows": {"type": "array", "items": {"type": "array", "items": any_value},
                         "description": "uuid as string, jsonb as JSON, arrays as lists, "
                                        "bytea as base64, timestamps as ISO 8601"},
                "row_count": {"type": "integer"},
                "command": {"type": "string", "examples": ["SELECT 3", "INSERT 0 1"]},
                "notices": {"type": "array", "items": {"type": "string"}},
            },
        },
        "BatchRequest": {
            "type": "object", "required": ["query", "params_batch"],
            "properties": {
                "query": {"type": "string"},
                "params_batch": {"type": "array", "items": {"type": "array", "items": any_value}},
                "timeout_ms": {"type": "integer", "minimum": 1},
            },
        },
        "BatchResult": {
            "type": "object", "required": ["rows_affected", "statements"],
            "properties": {
                "rows_affected": {"type": "integer"}, "row_count": {"type": "integer"},
                "statements": {"type": "integer"}, "command": {"type": "string"},
                "columns": {"type": "array", "items": {"type": "string"}},
                "rows": {"type": "array", "items": {"type": "array", "items": any_value}},
            },
        },
        "File": {
            "type": "object",
            "required": ["id", "filename", "content_type", "size", "sha256", "created_at"],
            "properties": {
                "id": {"type": "string", "format": "uuid"}, "filename": {"type": "string"},
                "content_type": {"type": "string"}, "size": {"type": "integer"},
                "sha256": {"type": "string"},
                "created_at": {"type": "string", "format": "date-time"},
                "workspace": {"type": "string"},
            },
        },
        "FileList": {
            "type": "object", "required": ["files", "total"],
            "properties": {
                "files": {"type": "array", "items": _ref("File")},
                "total": {"type": "integer"}, "limit": {"type": "integer"},
                "offset": {"type": "integer"},
                "next_offset": {"type": ["integer", "null"]},
            },
        },
        "Column": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "type": {"type": "string"},
                           "not_null": {"type": "boolean"},
                           "default": {"type": ["string", "null"]},
                           "serial": {"type": "boolean"},
                           "generated": {"type": ["string", "null"],
                                         "description": "GENERATED ALWAYS AS expression"}},
        },
        "Table": {
            "type": "object", "required": ["name", "columns"],
            "properties": {
                "name": {"type": "string"}, "workspace": {"type": "string"},
                "columns": {"type": "array", "items": _ref("Column")},
                "primary_key": {"type": "array", "items": {"type": "string"}},
                "indexes": {"type": "array", "items": {
                    "type": "object", "properties": {
                        "name": {"type": "string"}, "column": {"type": "string"},
                        "index_type": {"type": "string"}}}},
                "row_count": {"type": "integer"},
            },
        },
        "CreateTable": {
            "type": "object", "required": ["name", "schema"],
            "properties": {
                "name": {"type": "string"},
                "schema": {"type": "object", "additionalProperties": {"type": "string"},
                           "examples": [{"id": "BIGSERIAL PRIMARY KEY", "file_id": "UUID",
                                         "embedding": "FLOAT4[][]"}]},
                "if_not_exists": {"type": "boolean"},
            },
        },
        "Token": {
            "type": "object",
            "properties": {
                "id": {"type": "string"}, "name": {"type": "string"},
                "org": {"type": "string"},
                "workspaces": {"oneOf": [{"const": "*"},
                                         {"type": "array", "items": {"type": "string"}}]},
                "role": {"enum": ["read", "write", "admin"]},
                "created_at": {"type": "string", "format": "date-time"},
                "token": {"type": "string", "description": "Only in the create response"},
            },
        },
        "CreateToken": {
            "type": "object",
            "properties": {
                "name": {"type": "string"}, "role": {"enum": ["read", "write", "admin"]},
                "workspaces": {"oneOf": [{"const": "*"},
                                         {"type": "array", "items": {"type": "string"}}]},
                "org": {"type": "string"},
            },
        },
    }


def _jobs_schemas() -> dict[str, Any]:
    any_value: dict[str, Any] = {}
    number = {"type": "number"}
    relevance = {"type": "array", "description": "For each query, its relevant documents",
                 "items": {"type": "array", "items": {
                     "type": "array", "prefixItems": [any_value, {"type": "number",
                                                                  "minimum": 0, "maximum": 1}],
                     "minItems": 2, "maxItems": 2,
                     "description": "[document id, relevance score in [0, 1]]"}}}
    table = {
        "table": {"type": "string"},
        "embedding_column": {"type": "string", "default": "embedding"},
        "id_column": {"type": "string", "default": "id"},
        "text_column": {"type": ["string", "null"]},
        "embedding_model": {"type": "string",
                            "description": "Embeds the queries; default: the workspace's"},
    }
    recalls = {"type": "object", "additionalProperties": number,
               "examples": [{"recall@1": 0.53, "recall@10": 0.87}]}
    pair = {"type": "object", "properties": {"with model": recalls, "without model": recalls,
                                             "queries": {"type": "integer"}}}
    qvecs = {"type": "array", "items": {"type": "array", "items": {"type": "number"}},
             "description": "the client's own vectors for queries (one per query), when its "
                            "embedding function is its own code; training then needs "
                            "pseudo_queries: null"}
    return {
        "Job": {
            "type": "object", "required": ["id", "status"],
            "properties": {
                "id": {"type": "string", "pattern": "^[0-9a-f]{24}$"},
                "kind": {"const": "deep_memory"},
                "workspace": {"type": "string"}, "table": {"type": "string"},
                "column": {"type": "string"}, "id_column": {"type": "string"},
                "text_column": {"type": ["string", "null"]},
                "status": {"enum": ["pending", "training", "completed", "failed",
                                    "cancelled"]},
                "phase": {"type": ["string", "null"], "examples": ["epoch 3/30"]},
                "progress": {"type": ["object", "null"], "properties": {
                    "epoch": {"type": "integer"}, "max_epochs": {"type": "integer"},
                    "eta_s": number, "recall@10": number, "baseline_recall@10": number}},
                "results": {"type": ["object", "null"], "properties": {
                    "recall@10": number, "baseline_recall@10": number,
                    "train_seconds": number, "best_epoch": {"type": "integer"}}},
                "error": {"type": ["string", "null"]},
                "attempts": {"type": "integer",
                             "description": "Runs started (more than 1: resumed)"},
                "table_version": {"type": "integer"}, "queries": {"type": "integer"},
                "pairs": {"type": "integer"}, "pseudo_queries": {"type": ["string", "null"]},
                "embedding_model": {"type": ["string", "null"]},
                "config": {"type": "object"},
                **{k: {"type": ["string", "null"], "format": "date-time"}
                   for k in ("created_at", "started_at", "finished_at", "resumed_at",
                             "heartbeat")},
            },
        },
        "TrainRequest": {
            "type": "object", "required": ["table", "queries", "relevance"],
            "properties": {
                **table,
                "queries": {"type": "array", "items": {"type": "string"}},
                "relevance": relevance,
                "pseudo_queries": {"type": ["string", "null"], "default": "auto",
                                   "description": "synthetic queries made from the "
                                                  "documents: auto, first_sentence, "
                                                  "sentences, keywords, all, a text "
                                                  "column, or null; without queries and "
                                                  "relevance the job trains on them alone"},
                "config": {"type": "object", "description": "Training settings "
                                                            "(rank, max_epochs, ...)"},
                "query_embeddings": qvecs,
            },
        },
        "EvaluateRequest": {
            "type": "object", "required": ["table", "queries", "relevance"],
            "properties": {
                **table,
                "queries": {"type": "array", "items": {"type": "string"}},
                "relevance": relevance, "train_relevance": relevance,
                "top_k": {"type": "array", "items": {"type": "integer", "minimum": 1}},
                "query_embeddings": qvecs,
            },
        },
        "Recalls": {
            "type": "object",
            "properties": {"with model": recalls, "without model": recalls,
                           "queries": {"type": "integer"}, "seen": pair, "unseen": pair},
        },
    }


def _jobs_paths(ws: str) -> dict[str, Any]:
    job_id = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
    return {
        f"{ws}/jobs": {
            "get": _op("List the workspace's jobs, newest first", {
                **_ok("Jobs", {"type": "object", "properties": {
                    "jobs": {"type": "array", "items": _ref("Job")}}}),
                **_errors(400, *_STD)},
                [_WS, {"name": "table", "in": "query", "schema": {"type": "string"}}],
                op_id="list_jobs", tag="jobs"),
        },
        f"{ws}/jobs/{{job_id}}": {
            "get": _op("A job: status, phase, progress, results, error", {
                **_ok("Job", _ref("Job")), **_errors(400, 404, *_STD)},
                [_WS, job_id], op_id="get_job", tag="jobs"),
        },
        f"{ws}/jobs/{{job_id}}/cancel": {
            "post": _op("Cancel a pending or training job", {
                **_ok("Whether it was still running", {"type": "object", "properties": {
                    "id": {"type": "string"}, "cancelled": {"type": "boolean"},
                    "status": {"type": "string"}}}),
                **_errors(400, 404, *_STD)},
                [_WS, job_id], op_id="cancel_job", tag="jobs"),
        },
        f"{ws}/deep_memory/train": {
            "post": _op("Check the inputs and start training a Deep Memory query adapter", {
                **_ok("The job, pending", _ref("Job"), "202"),
                **_errors(400, 404, 413, *_STD)},
                [_WS], _body(_ref("TrainRequest")), op_id="deep_memory_train", tag="jobs"),
        },
        f"{ws}/deep_memory/evaluate": {
            "post": _op("Recall@k of exact search with and without the table's model", {
                **_ok("Recalls (seen / unseen with train_relevance or a recorded model)",
                      _ref("Recalls")),
                **_errors(400, 404, 413, *_STD)},
                [_WS], _body(_ref("EvaluateRequest")), op_id="deep_memory_evaluate",
                tag="jobs"),
        },
    }


def openapi_document() -> dict[str, Any]:
    ws = "/workspaces/{ws}"
    file_get = {
        "parameters_extra": [
            {"name": "Range", "in": "header", "required": False, "schema": {"type": "string"},
             "description": "A single byte range (bytes=START-END, bytes=-N)"},
            {"name": "If-None-Match", "in": "header", "required": False,
             "schema": {"type": "string"}},
            {"name": "pin", "in": "query", "required": False, "schema": {"type": "string"},
             "description": "A pin (training set) through which a file deleted since it was "
                            "pinned stays readable"},
        ],
    }

    def content_op(kind: str, op_id: str) -> dict[str, Any]:
        return _op(f"File bytes ({kind}); Range, ETag and If-None-Match supported",
                   {**_ok("The file", {"type": "string", "format": "binary"},
                          content_type="*/*"),
                    **_ok("Part of the file", {"type": "string", "format": "binary"}, "206",
                          "*/*"),
                    "304": {"description": "Not modified"},
                    **_errors(400, 404, 416, *_STD)},
                   [_WS, _FILE_ID, *file_get["parameters_extra"]], op_id=op_id, tag="files")

    paths: dict[str, Any] = {
        "/health": {"get": _op("Liveness", _ok("Server is up", {"type": "object"}),
                               security=False, op_id="health", tag="server")},
        "/ready": {"get": _op("Readiness: the lake's catalog and the SQL engine answer",
                              {**_ok("Ready", {"type": "object"}),
                               "503": {"description": "Not ready"}},
                              security=False, op_id="ready", tag="server")},
        "/metrics": {"get": _op("Prometheus metrics (text exposition format)",
                                _ok("Metrics", {"type": "string"},
                                    content_type="text/plain"),
                                security=False, op_id="metrics", tag="server")},
        "/me": {"get": _op("The calling token", {**_ok("Token", _ref("Token")),
                                                 **_errors(*_STD)},
                           op_id="me", tag="server")},
        "/openapi.json": {"get": _op("This document", _ok("OpenAPI", {"type": "object"}),
                                     security=False, op_id="openapi", tag="server")},
        "/tokens": {
            "get": _op("List the org's tokens (admin)", {
                **_ok("Tokens", {"type": "object", "properties": {
                    "tokens": {"type": "array", "items": _ref("Token")}}}),
                **_errors(*_STD)}, op_id="list_tokens", tag="tokens"),
            "post": _op("Create a token (admin); the plaintext is returned once", {
                **_ok("Created", _ref("Token"), "201"), **_errors(400, 413, *_STD)},
                body=_body(_ref("CreateToken")), op_id="create_token", tag="tokens"),
        },
        "/tokens/{token_id}": {
            "delete": _op("Revoke a token (admin)", {
                **_ok("Revoked", {"type": "object"}), **_errors(400, 404, *_STD)},
                [{"name": "token_id", "in": "path", "required": True,
                  "schema": {"type": "string"}}], op_id="revoke_token", tag="tokens"),
        },
        f"{ws}/tables/query": {
            "post": _op("Run SQL", {
                **_ok("Result", _ref("QueryResult")),
                **_errors(400, 404, 408, 409, 413, *_STD)},
                [_WS], _body(_ref("QueryRequest")), op_id="query", tag="tables"),
        },
        f"{ws}/tables/query/batch": {
            "post": _op("Run one statement per parameter list, in one transaction", {
                **_ok("Rows affected", _ref("BatchResult")),
                **_errors(400, 404, 408, 409, 413, *_STD)},
                [_WS], _body(_ref("BatchRequest")), op_id="query_batch", tag="tables"),
        },
        f"{ws}/tables": {
            "get": _op("List tables", {
                **_ok("Tables", {"type": "object", "properties": {
                    "tables": {"type": "array", "items": _ref("Table")}}}),
                **_errors(400, *_STD)}, [_WS], op_id="list_tables", tag="tables"),
            "post": _op("Create a table from a schema dict", {
                **_ok("Created", _ref("Table"), "201"), **_errors(400, 409, 413, *_STD)},
                [_WS], _body(_ref("CreateTable")), op_id="create_table", tag="tables"),
        },
        f"{ws}/tables/{{name}}": {
            "get": _op("Describe a table (columns, indexes, row count)", {
                **_ok("Table", _ref("Table")), **_errors(400, 404, *_STD)},
                [_WS, _TABLE], op_id="describe_table", tag="tables"),
            "delete": _op("Drop a table", {
                **_ok("Dropped", {"type": "object"}), **_errors(400, 404, *_STD)},
                [_WS, _TABLE], op_id="drop_table", tag="tables"),
        },
        f"{ws}/files": {
            "get": _op("List files, newest first", {
                **_ok("A page of files", _ref("FileList")), **_errors(400, *_STD)},
                [_WS,
                 {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                             "maximum": 1000}},
                 {"name": "offset", "in": "query", "schema": {"type": "integer",
                                                              "minimum": 0}}],
                op_id="list_files", tag="files"),
            "post": _op("Upload a file (multipart field 'file', streamed to the lake)", {
                **_ok("Stored", _ref("File"), "201"), **_errors(400, 413, *_STD)},
                [_WS], _body({"type": "object", "required": ["file"], "properties": {
                    "file": {"type": "string", "format": "binary"}}}, "multipart/form-data"),
                op_id="upload_file", tag="files"),
        },
        f"{ws}/files/{{file_id}}": {
            "get": _op("File metadata", {**_ok("Metadata", _ref("File")),
                                         **_errors(400, 404, *_STD)},
                       [_WS, _FILE_ID], op_id="get_file", tag="files"),
            "delete": _op("Delete a file", {**_ok("Deleted", {"type": "object"}),
                                            **_errors(400, 404, *_STD)},
                          [_WS, _FILE_ID], op_id="delete_file", tag="files"),
        },
        f"{ws}/files/{{file_id}}/content": {"get": content_op("inline", "file_content")},
        f"{ws}/files/{{file_id}}/download": {"get": content_op("attachment", "file_download")},
        **_jobs_paths(ws),
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "tarndb HTTP API", "version": "1",
                 "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}},
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {**_schemas(), **_jobs_schemas()},
        },
    }


def render() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    text = render()
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
