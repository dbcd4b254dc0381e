"""Pieces of the HTTP API that need no server: ranges, JSON encoding, statement checks,
tokens, settings and the OpenAPI document."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from tarndb.api import ApiSettings
from tarndb.api._encode import dumps, to_param
from tarndb.api._ranges import RangeNotSatisfiable, parse_range
from tarndb.api._sqlcheck import check_statement
from tarndb.api.openapi import render
from tarndb.api.tokens import Token
from tarndb.errors import InsufficientPrivilege, SyntaxError_


@pytest.mark.parametrize(("header", "size", "expected"), [
    (None, 100, None),
    ("bytes=0-9", 100, (0, 10)),
    ("bytes=90-", 100, (90, 100)),
    ("bytes=-10", 100, (90, 100)),
    ("bytes=-1000", 100, (0, 100)),
    ("bytes=50-5000", 100, (50, 100)),
    ("bytes=0-0", 1, (0, 1)),
    ("bytes=0-9,20-29", 100, None),  # several ranges: whole file
    ("items=0-9", 100, None),
    ("bytes=abc", 100, None),
    ("bytes=9-3", 100, None),
])
def test_parse_range(header: str | None, size: int, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize(("header", "size"), [("bytes=100-", 100), ("bytes=200-300", 100),
                                              ("bytes=-0", 100), ("bytes=0-", 0)])
def test_unsatisfiable_range(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, size)


def test_dumps_types() -> None:
    u = uuid.uuid4()
    ts = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
    row = [u, ts, dt.date(2025, 1, 2), b"\x00\xff", decimal.Decimal("1.5"),
           decimal.Decimal("12345678901234567890.123456789"), decimal.Decimal("7"),
           [[0.5, 1.0], [2.0, 3.0]], {"a": [1, None]}, float("nan"), dt.timedelta(hours=1)]
    out = json.loads(dumps({"rows": [row]}))["rows"][0]
    assert out[0] == str(u)
    assert out[1] == "2025-06-01T12:00:00+00:00"
    assert out[2] == "2025-01-02"
    assert out[3] == "AP8="
    assert out[4] == 1.5
    assert out[5] == "12345678901234567890.123456789"  # a double would round it
    assert out[6] == 7 and isinstance(out[6], int)
    assert out[7] == [[0.5, 1.0], [2.0, 3.0]]
    assert out[8] == {"a": [1, None]}
    assert out[9] == "NaN"
    assert out[10] == "P0DT1H0M0S"


def test_dict_params_become_json_text() -> None:
    assert json.loads(to_param({"a": 1})) == {"a": 1}
    assert to_param([1.0, 2.0]) == [1.0, 2.0]
    assert to_param([[1.0], [2.0]]) == [[1.0], [2.0]]
    assert json.loads(to_param([{"x": 1}])) == [{"x": 1}]
    assert to_param("s") == "s" and to_param(None) is None


READ_A = Token("r", "", "o", ("a",), "read", "")
WRITE_A = Token("w", "", "o", ("a",), "write", "")
WRITE_ALL = Token("x", "", "o", None, "write", "")


@pytest.mark.parametrize(("sql", "token", "allowed"), [
    ("SELECT 1", READ_A, True),
    ('SELECT * FROM "a"."t" JOIN "a"."_files" f ON true', READ_A, True),
    ("SELECT * FROM pg_catalog.pg_class", READ_A, True),
    ('SELECT * FROM "b"."t"', READ_A, False),
    ('SELECT * FROM t WHERE x IN (SELECT y FROM "b".u)', WRITE_A, False),
    ('INSERT INTO "a"."t" VALUES (1)', WRITE_A, True),
    ('INSERT INTO "a"."t" VALUES (1)', READ_A, False),
    ('INSERT INTO "b"."t" VALUES (1)', WRITE_A, False),
    ('INSERT INTO "b"."t" VALUES (1)', WRITE_ALL, True),
    ("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", READ_A, False),
    ("UPDATE t SET x = 1", READ_A, False),
    ("CREATE TABLE t (x int)", READ_A, False),
    ("DROP TABLE t", READ_A, False),
    ("SELECT * INTO t2 FROM t", READ_A, False),
    ("SELECT nextval('s')", READ_A, False),
    ("SET search_path = b", WRITE_A, False),
    ("SELECT set_config('search_path', 'b', false)", WRITE_A, False),
    ("SELECT 1; DELETE FROM t", READ_A, False),
    ("EXPLAIN ANALYZE DELETE FROM t", READ_A, False),
    ("SHOW search_path", READ_A, True),
])
def test_check_statement(sql: str, token: Token, allowed: bool) -> None:
    if allowed:
        check_statement(sql, token, "a")
    else:
        with pytest.raises(InsufficientPrivilege):
            check_statement(sql, token, "a")


def test_check_statement_with_big_literals_and_tricks() -> None:
    vec = ",".join(f"{i * 0.001:.4f}" for i in range(20000))
    check_statement(f"SELECT e <#> ARRAY[{vec}]::float4[] AS s FROM t", READ_A, "a")
    # Collapsing numbers must not hide what follows a comment or sits in a string.
    sneaky = f"SELECT '{vec}' -- {vec}\n; DELETE FROM t"
    with pytest.raises(InsufficientPrivilege):
        check_statement(sneaky, READ_A, "a")
    with pytest.raises(SyntaxError_):
        check_statement("SELEC 1", READ_A, "a")


def test_settings_from_env() -> None:
    s = ApiSettings.from_env({"TARNDB_MAX_UPLOAD_BYTES": "1024", "TARNDB_ORG": "acme",
                              "TARNDB_TOKEN": "tok-123456"}, max_pending=3)
    assert s.max_upload_bytes == 1024 and s.org == "acme" and s.token == "tok-123456"
    assert s.max_pending == 3


def test_committed_openapi_is_current() -> None:
    committed = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
    assert committed.read_text(encoding="utf-8") == render(), (
        "docs/openapi.json is stale: run python -m tarndb.api.openapi docs/openapi.json")


def test_openapi_documents_every_route() -> None:
    from tarndb.api._app import routes

    doc: dict[str, Any] = json.loads(render())
    for route in routes():
        assert route.path in doc["paths"], route.path
        for method in route.methods or ():
            if method != "HEAD":
                assert method.lower() in doc["paths"][route.path], (method, route.path)


def test_token_cli(tmp_path: Path) -> None:
    import argparse
    import io

    import tarndb
    from tarndb.api import tokens

    parser = argparse.ArgumentParser()
    tokens.add_cli_arguments(parser)
    db = tarndb.open(str(tmp_path / "lake"))
    try:
        out = io.StringIO()
        args = parser.parse_args(["create", "--org", "acme", "--role", "read",
                                  "--workspaces", "ws1,ws2", "--name", "ci", "--json"])
        assert tokens.cli(db, args, out) == 0
        made = json.loads(out.getvalue())
        assert made["workspaces"] == ["ws1", "ws2"] and made["role"] == "read"
        found = tokens.TokenStore(db.catalog).authenticate(made["token"])
        assert found is not None and found.id == made["id"]
        out = io.StringIO()
        assert tokens.cli(db, parser.parse_args(["list"]), out) == 0
        assert made["id"] in out.getvalue() and made["token"] not in out.getvalue()
        out = io.StringIO()
        assert tokens.cli(db, parser.parse_args(["revoke", made["id"]]), out) == 0
        assert tokens.TokenStore(db.catalog).authenticate(made["token"]) is None
        assert tokens.cli(db, parser.parse_args(["revoke", made["id"]]), io.StringIO()) == 1
        bad = parser.parse_args(["create", "--workspaces", "../etc"])
        assert tokens.cli(db, bad, io.StringIO()) == 1
    finally:
        db.close()
